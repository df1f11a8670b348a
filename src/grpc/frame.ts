/**
 * gRPC's framing over HTTP/2, shared by the session server and the Control
 * client: status codes, the 5-byte message prefix, grpc-message encoding.
 */
import { Writer } from "./protobuf-writer.js";

/** Message size limit both ways, as buildctl and buildkitd (containerd's default). */
export const MAX_MESSAGE_BYTES = 16 << 20;

/** gRPC status names, indexed by code. */
const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** gRPC status codes by name. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const satisfies Record<(typeof STATUS_NAMES)[number], number>;

/** The gRPC status name of a numeric code ("UNAVAILABLE"). */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `CODE_${code}`;
}

/**
 * A call's final status other than OK: thrown by a server handler to end
 * its call so, and raised by a client call that ended so.
 */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** The raw google.rpc.Status a server sent in grpc-status-details-bin. */
    readonly statusDetails?: Buffer,
    /** True when the server sent this status; false when the call failed on this side (transport). */
    readonly remote = false,
  ) {
    super(message);
    this.name = "GrpcStatusError";
  }
}

/** Percent-encodes a grpc-message value as the gRPC HTTP/2 spec asks. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Undoes grpc-message percent-encoding; a malformed value is kept as it is. */
export function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Splits a byte stream into gRPC messages (5-byte prefix: flag, length). */
export class MessageReader {
  #chunks: Buffer[] = [];
  #length = 0;

  /** Takes a chunk; returns the complete messages it finishes. */
  push(chunk: Buffer): Buffer[] {
    this.#add(chunk);
    const out: Buffer[] = [];
    for (let size = this.#next(); size !== undefined; size = this.#next()) out.push(this.#take(size));
    return out;
  }

  /**
   * Like push, but each complete message comes as the views of the chunks
   * that hold it, in order (nothing is copied but a prefix split across
   * chunks): for consumers that pass the bytes on, such as the session
   * tunnel.
   */
  pushPieces(chunk: Buffer): Buffer[][] {
    this.#add(chunk);
    const out: Buffer[][] = [];
    for (let size = this.#next(); size !== undefined; size = this.#next()) {
      const pieces: Buffer[] = [];
      let left = size;
      while (left > 0) {
        const c = this.#chunks[0]!;
        if (c.length <= left) {
          pieces.push(c);
          this.#chunks.shift();
          left -= c.length;
        } else {
          pieces.push(c.subarray(0, left));
          this.#chunks[0] = c.subarray(left);
          left = 0;
        }
      }
      this.#length -= size;
      out.push(pieces);
    }
    return out;
  }

  #add(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** When a whole message is buffered: checks and consumes its prefix, and returns its size. */
  #next(): number | undefined {
    if (this.#length < 5) return undefined;
    const head = this.#peek(5);
    if (head[0] !== 0) throw new GrpcStatusError(Status.UNIMPLEMENTED, "compressed messages are not supported");
    const size = head.readUInt32BE(1);
    if (size > MAX_MESSAGE_BYTES) throw new GrpcStatusError(Status.RESOURCE_EXHAUSTED, `message of ${size} bytes is over the limit`);
    if (this.#length < 5 + size) return undefined;
    this.#take(5);
    return size;
  }

  /** The first `n` bytes as one buffer: a view when the first chunk holds them, else exactly those bytes gathered. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    // Gather only what is asked for: the rest stays in its chunks (no copy
    // of the next message's bytes, no big buffer kept alive by a view).
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    let i = 0;
    while (o < n) {
      const c = this.#chunks[i]!;
      const k = Math.min(c.length, n - o);
      c.copy(out, o, 0, k);
      o += k;
      if (k === c.length) i++;
      else this.#chunks[i] = c.subarray(k);
    }
    this.#chunks.splice(0, i, out);
    return out;
  }

  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const buf = this.#peek(n);
    const out = buf.length === n ? buf : buf.subarray(0, n);
    if (buf.length === n) this.#chunks.shift();
    else this.#chunks[0] = buf.subarray(n);
    this.#length -= n;
    return out;
  }
}

/** A 5-byte gRPC message prefix (uncompressed) for a body of `size` bytes. */
export function prefix(size: number): Buffer {
  const p = Buffer.allocUnsafe(5);
  p[0] = 0;
  p.writeUInt32BE(size, 1);
  return p;
}

/** One message, prefix and body, in a single buffer. */
export function frame(parts: readonly Buffer[], size: number): Buffer {
  const f = Buffer.allocUnsafe(5 + size);
  f[0] = 0;
  f.writeUInt32BE(size, 1);
  let o = 5;
  for (const p of parts) o += p.copy(f, o);
  return f;
}

/** What a FrameBatch starts with; it grows as needed. */
const BATCH_BYTES = 16 << 10;

/**
 * Messages framed one after another into one buffer as they are encoded,
 * with no buffer of their own, for a call to send in a single write
 * (StreamCall.sendFrames): a context walk's STAT packets.
 */
export class FrameBatch {
  #buf = Buffer.allocUnsafe(BATCH_BYTES);
  #pos = 0;
  #count = 0;

  /** Messages framed so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Frames a message of exactly `size` bytes and returns a Writer at its
   * body; it must be written before the next message() (which may move the buffer).
   */
  message(size: number): Writer {
    const need = this.#pos + 5 + size;
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.#buf.length));
      this.#buf.copy(grown, 0, 0, this.#pos);
      this.#buf = grown;
    }
    this.#buf[this.#pos] = 0;
    this.#buf.writeUInt32BE(size, this.#pos + 1);
    const w = new Writer(this.#buf);
    w.pos = this.#pos + 5;
    this.#pos = need;
    this.#count++;
    return w;
  }

  /** The framed messages, and a fresh start. */
  take(): Buffer {
    const out = this.#buf.subarray(0, this.#pos);
    this.#buf = Buffer.allocUnsafe(BATCH_BYTES);
    this.#pos = 0;
    this.#count = 0;
    return out;
  }
}
