/**
 * An async queue with one consumer: producers push, the consumer iterates.
 * close() ends the iteration once the items are taken; close(error) makes it
 * throw `error` after them. A second concurrent consumer is refused (as a
 * locked ReadableStream is), and producers can wait for the consumer to
 * catch up (waitBelow) instead of buffering without bound.
 */
import { UsageError } from "./errors.js";

export class Queue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #wait: (() => void) | undefined;
  /** Producers waiting for the queue to shrink, with their mark. */
  #roomWaiters: Array<{ mark: number; resolve: () => void }> = [];
  #closed = false;
  #error: unknown;
  #reading = false;
  readonly #what: string;

  /** `what` names the queue in the error a second consumer gets ("build.progress"). */
  constructor(what = "this queue") {
    this.#what = what;
  }

  /** Items pushed but not yet taken. */
  get length(): number {
    return this.#items.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(item: T): void {
    if (this.#closed) return;
    this.#items.push(item);
    this.#wake();
  }

  close(error?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    this.#wake();
    this.#roomFreed(true);
  }

  /** Resolves once at most `mark` items are waiting, or the queue is closed. */
  waitBelow(mark: number): Promise<void> {
    if (this.#closed || this.#items.length <= mark) return Promise.resolve();
    return new Promise<void>((resolve) => this.#roomWaiters.push({ mark, resolve }));
  }

  #wake(): void {
    const w = this.#wait;
    this.#wait = undefined;
    w?.();
  }

  #roomFreed(all = false): void {
    if (!this.#roomWaiters.length) return;
    const ready = this.#roomWaiters.filter((w) => all || this.#items.length <= w.mark);
    this.#roomWaiters = this.#roomWaiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#reading) throw new UsageError(`${this.#what} is already being read; it has one reader (iterate it once, or fan the updates out yourself)`);
    this.#reading = true;
    try {
      for (;;) {
        if (this.#items.length) {
          const item = this.#items.shift()!;
          this.#roomFreed();
          yield item;
          continue;
        }
        if (this.#closed) {
          // Rethrows what close(error) was given, as it was given.
          // eslint-disable-next-line @typescript-eslint/only-throw-error
          if (this.#error !== undefined) throw this.#error;
          return;
        }
        await new Promise<void>((r) => (this.#wait = r));
      }
    } finally {
      this.#reading = false;
    }
  }
}
