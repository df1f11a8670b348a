/**
 * The work a BuildKitClient or BuildKitPool waits for in close(): each
 * promise is kept until it settles, whichever way.
 */
export class WorkSet {
  readonly #all = new Set<Promise<void>>();

  /** Keeps `work` until it settles; returns it. */
  track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#all.add(settled);
    void settled.then(() => this.#all.delete(settled));
    return work;
  }

  /** Resolves once everything tracked so far has settled. */
  async settled(): Promise<void> {
    await Promise.all(this.#all);
  }
}
