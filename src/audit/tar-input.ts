/**
 * tar-stream's extractor behind promises: write() says when to wait,
 * end() resolves when every entry was consumed, and a broken tarball
 * rejects whichever of them is pending instead of hanging it.
 */
import { extract, type Extract, type ExtractEvents, type Header } from "tar-stream";

/** A tar entry's body as tar-stream hands it out (a streamx Readable; chunks are Buffers). */
export type EntryStream = ExtractEvents["entry"][1];

export type TarHeader = Header & { pax?: Record<string, string> | null };

/** Handles one entry; it must consume `stream` and call `next` once done with it. */
export type EntryHandler = (header: TarHeader, stream: EntryStream, next: (error?: Error | null) => void) => void;

export class TarInput {
  readonly #x: Extract;
  #error: Error | undefined;
  #closed = false;

  constructor(onEntry: EntryHandler, highWaterMark: number) {
    this.#x = extract({ highWaterMark });
    this.#x.on("entry", (header, stream, next) => {
      // A broken tarball destroys the open entry with the error; the
      // extractor reports it, so the entry need not.
      stream.on("error", () => undefined);
      onEntry(header as TarHeader, stream, next);
    });
    this.#x.on("error", (e: Error) => (this.#error ??= e));
    this.#x.on("close", () => (this.#closed = true));
  }

  /** Undefined when the bytes were taken at once; otherwise wait for the promise before writing more. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.#error || this.#closed) return this.#until("drain");
    if (this.#x.write(chunk)) return undefined;
    return this.#until("drain");
  }

  /** Resolves when the tarball ended properly and every entry was handled. */
  end(): Promise<void> {
    if (this.#error || this.#closed) return this.#until("finish");
    this.#x.end(undefined);
    return this.#until("finish");
  }

  destroy(): void {
    this.#x.destroy();
  }

  #until(event: "drain" | "finish"): Promise<void> {
    const x = this.#x;
    return new Promise((resolve, reject) => {
      if (this.#error) {
        reject(this.#error);
        return;
      }
      if (this.#closed) {
        reject(new Error("the tar reader was closed"));
        return;
      }
      const done = (error?: Error): void => {
        x.off(event, onEvent);
        x.off("error", onError);
        x.off("close", onClose);
        if (error) reject(error);
        else resolve();
      };
      const onEvent = (): void => done();
      const onError = (e: Error): void => done(e);
      const onClose = (): void => done(this.#error ?? new Error("the tar reader was closed"));
      x.on(event, onEvent);
      x.on("error", onError);
      x.on("close", onClose);
    });
  }
}
