import { Duplex } from "node:stream";

/**
 * A Duplex that stands in for a stream still being opened: writes wait,
 * then everything flows to and from the real stream once it is attached.
 */
export class PendingStream extends Duplex {
  #target: Duplex | undefined;
  #queued: Array<{ chunk: Buffer; cb: (e?: Error | null) => void }> = [];
  #ended = false;

  attach(target: Duplex): void {
    this.#target = target;
    target.on("data", (d: Buffer) => {
      if (!this.push(d)) target.pause();
    });
    target.on("end", () => this.push(null));
    target.on("error", (e: Error) => this.destroy(e));
    target.on("close", () => this.destroy());
    for (const { chunk, cb } of this.#queued) target.write(chunk, cb);
    this.#queued = [];
    if (this.#ended) target.end();
  }

  override _read(): void {
    this.#target?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#target) this.#target.write(chunk, cb);
    else this.#queued.push({ chunk, cb });
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.#target) this.#target.end();
    else this.#ended = true;
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#target?.destroy();
    cb(err);
  }
}
