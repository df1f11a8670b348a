/**
 * An unbounded queue consumed as an async iterable: producers push, one
 * consumer iterates. close() ends the iteration once the items are taken;
 * close(error) makes it throw `error` after them.
 */
export class Queue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #wait: (() => void) | undefined;
  #closed = false;
  #error: unknown;

  /** Items pushed but not yet taken. */
  get length(): number {
    return this.#items.length;
  }

  push(item: T): void {
    this.#items.push(item);
    this.#wake();
  }

  close(error?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    this.#wake();
  }

  #wake(): void {
    const w = this.#wait;
    this.#wait = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#items.length) {
        yield this.#items.shift()!;
        continue;
      }
      if (this.#closed) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await new Promise<void>((r) => (this.#wait = r));
    }
  }
}
