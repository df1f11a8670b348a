/**
 * The daemon's side of a `local` export, for driving the fsutil receiver in
 * tests: it sends a scripted packet stream (STATs, or anything at all) and
 * answers the receiver's REQs the way fsutil's sender does: 32 KiB DATA
 * chunks, up to four files interleaved, an empty DATA at each end, FIN
 * answered with FIN. After FIN it neither ends nor fails the stream unless
 * told to (buildkitd cancels the call some time later).
 */
import { readFileSync } from "node:fs";
import { dataPacketHead, decodePacket, finPacket, statPacket, type DecodedPacket, type WireStat } from "../../src/session/fsutil/wire.js";
import { isRequestable } from "../../src/session/fsutil/mode.js";
import { walk } from "../../src/session/fsutil/walk.js";

export interface FakeDaemonOptions {
  /** Packets sent first, in order (STATs and whatever else a test wants). */
  script: Buffer[];
  /** Content served for REQ{id}: bytes, or an absolute path read when asked. */
  content?: Map<number, Buffer | string>;
  /** DATA chunk size (fsutil: 32 KiB). */
  chunk?: number;
  /** Files served at once (fsutil: 4). */
  parallel?: number;
  /** After the script: "serve" answers REQs and FIN (default); "hang" answers nothing but FIN; "end" ends the stream after the script; "throw" fails it. */
  after?: "serve" | "hang" | "end" | "throw";
  /** After answering FIN: "hang" (default, as buildkitd until it cancels), "end", or "throw" (the cancel). */
  afterFin?: "hang" | "end" | "throw";
  /** Whether FIN is answered (default true); without, afterFin still applies. */
  answerFin?: boolean;
  /** Messages buffered before the sender waits for the receiver (flow control). */
  window?: number;
}

/** A message channel with a bounded buffer: push waits while it is full. */
class Pipe implements AsyncIterable<Buffer> {
  #items: Buffer[] = [];
  #head = 0;
  #ended = false;
  #error: Error | undefined;
  #wakeReader: (() => void) | undefined;
  #wakeWriters: Array<() => void> = [];
  constructor(readonly window: number) {}

  async push(b: Buffer): Promise<void> {
    while (!this.#ended && this.#items.length - this.#head >= this.window) await new Promise<void>((r) => this.#wakeWriters.push(r));
    if (this.#ended) return;
    this.#items.push(b);
    this.#wakeReader?.();
  }

  end(error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#wakeReader?.();
    for (const w of this.#wakeWriters.splice(0)) w();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Messages pushed but not yet read. */
  get pending(): number {
    return this.#items.length - this.#head;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head++]!;
        if (this.#head > 1024) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        for (const w of this.#wakeWriters.splice(0)) w();
        yield item;
        continue;
      }
      if (this.#ended) {
        if (this.#error) throw this.#error;
        return;
      }
      await new Promise<void>((r) => (this.#wakeReader = r));
      this.#wakeReader = undefined;
    }
  }
}

export class FakeDaemon {
  readonly messages: AsyncIterable<Buffer>;
  /** Every packet the receiver sent, decoded. */
  readonly received: DecodedPacket[] = [];
  /** REQ ids in the order they came. */
  readonly requested: number[] = [];
  /** Set when the receiver sent ERR. */
  receiverError: string | undefined;
  readonly #pipe: Pipe;
  readonly #opts: FakeDaemonOptions;
  readonly #queue: number[] = [];
  #active = 0;
  #scriptDone = false;

  constructor(opts: FakeDaemonOptions) {
    this.#opts = opts;
    this.#pipe = new Pipe(opts.window ?? 64);
    this.messages = this.#pipe;
    void this.#run();
  }

  async #run(): Promise<void> {
    for (const p of this.#opts.script) await this.#pipe.push(p);
    this.#scriptDone = true;
    if (this.#opts.after === "end") this.#pipe.end();
    else if (this.#opts.after === "throw") this.#pipe.end(new Error("stream reset by peer"));
  }

  /** The receiver's send(). */
  readonly send = async (packet: Buffer): Promise<void> => {
    const p = decodePacket(Buffer.from(packet));
    this.received.push(p);
    if (p.type === 1) {
      this.requested.push(p.id);
      this.#queue.push(p.id);
      this.#serve();
    } else if (p.type === 3) {
      if (this.#opts.answerFin !== false) await this.#pipe.push(finPacket());
      if (this.#opts.afterFin === "end") this.#pipe.end();
      else if (this.#opts.afterFin === "throw") this.#pipe.end(new Error("call cancelled"));
    } else if (p.type === 4) {
      this.receiverError = p.data.toString();
      this.#pipe.end(new Error("call cancelled"));
    }
  };

  #serve(): void {
    if (this.#opts.after && this.#opts.after !== "serve") return;
    while (this.#active < (this.#opts.parallel ?? 4) && this.#queue.length) {
      const id = this.#queue.shift()!;
      this.#active++;
      void this.#sendFile(id).finally(() => {
        this.#active--;
        this.#serve();
      });
    }
  }

  async #sendFile(id: number): Promise<void> {
    const c = this.#opts.content?.get(id);
    const data = c === undefined ? Buffer.alloc(0) : typeof c === "string" ? readFileSync(c) : c;
    const chunk = this.#opts.chunk ?? 32 * 1024;
    for (let off = 0; off < data.length; off += chunk) {
      const part = data.subarray(off, off + chunk);
      await this.#pipe.push(Buffer.concat([dataPacketHead(id, part.length), part]));
      // Let the other files' chunks in between, as four senders do.
      await new Promise<void>((r) => setImmediate(r));
    }
    await this.#pipe.push(dataPacketHead(id, 0));
  }

  /** Nothing left to send and everything sent was read: the receiver waits for a daemon that has nothing more to say. */
  get idle(): boolean {
    return this.#scriptDone && this.#queue.length === 0 && this.#active === 0 && this.#pipe.pending === 0;
  }

  /** Ends the stream (the daemon went away). */
  end(error?: Error): void {
    this.#pipe.end(error);
  }
}

/** The STAT packets of a real directory (as walk.ts sends them, uid/gid 0), its end-of-walk STAT, and the content map for REQs. */
export async function scriptOf(root: string, rewrite?: (s: WireStat) => WireStat): Promise<{ script: Buffer[]; content: Map<number, string> }> {
  const script: Buffer[] = [];
  const content = new Map<number, string>();
  let id = 0;
  for await (const e of walk(root)) {
    const stat = rewrite ? rewrite(e.stat) : e.stat;
    if (isRequestable(stat.mode) && !stat.linkname) content.set(id, e.absPath);
    script.push(statPacket(stat));
    id++;
  }
  script.push(statPacket());
  return { script, content };
}

/** A STAT packet from the fields that matter in a test. */
export function stat(path: string, mode: number, more: Partial<WireStat> = {}): Buffer {
  return statPacket({ path, mode, uid: 0, gid: 0, size: 0n, modTime: 0n, linkname: "", devmajor: 0, devminor: 0, ...more });
}

/** A DATA packet. */
export function data(id: number, bytes: Buffer | string): Buffer {
  const b = Buffer.from(bytes);
  return Buffer.concat([dataPacketHead(id, b.length), b]);
}
