/**
 * The Control.Session byte pipe: a bidi call of BytesMessages turned into a
 * Duplex, over which buildkitd (the HTTP/2 client there) reaches the
 * session's gRPC server. buildkit calls this grpchijack.
 */
import { Duplex } from "node:stream";
import type { ClientCall } from "../grpc/client.js";
import { bytesMessageHead, bytesMessagePieces } from "../grpc/bytes-message.js";
import { Writer, varintSize } from "../grpc/protobuf-writer.js";

/** Pipe bytes are sent as one BytesMessage per event loop turn, or sooner past this size. */
const FLUSH_BYTES = 256 * 1024;

/** Below this, a batch is copied into one BytesMessage buffer; above, its chunks go out as they are behind a head. */
const COPY_BELOW = 4096;

/** Encodes a BytesMessage (field 1, bytes) holding `chunks` back to back. */
function bytesMessage(chunks: readonly Buffer[], size: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(size) + size));
  w.buf[w.pos++] = 0x0a;
  w.varint(size);
  for (const c of chunks) w.raw(c);
  return w.buf;
}

export interface HijackedPipe {
  /** Bytes from buildkitd come out, bytes written go to buildkitd. */
  readonly pipe: Duplex;
  /** Sends what the pipe has buffered but not yet written to the call. */
  readonly flush: () => void;
  /** Settles (never rejects) when the call has ended and the pipe's readable side is closed. */
  readonly done: Promise<void>;
}

/**
 * Wraps a Control.Session call. HTTP/2 writes many frames; sending each as
 * its own BytesMessage costs a gRPC message apiece on both sides, so what
 * one event loop turn writes leaves as one message (sooner past
 * FLUSH_BYTES), encoded in a single copy. Backpressure holds both ways:
 * a congested call holds the pipe's write callbacks, a full pipe pauses
 * the call.
 */
export function hijack(call: ClientCall): HijackedPipe {
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let scheduled = false;
  // Write callbacks held while the Control.Session call is congested.
  let waiting: Array<() => void> = [];
  let congested = false;
  const drained = (): void => {
    congested = false;
    const cbs = waiting;
    waiting = [];
    for (const cb of cbs) cb();
  };
  const flush = (): void => {
    scheduled = false;
    if (!batch.length) return;
    // The chunks are the pipe's own copies (an HTTP/2 session writing to a
    // JS stream hands over new buffers): past a few KiB they go out as they
    // are, not copied once more into a new buffer that is garbage a moment later.
    let ok: boolean;
    if (batchBytes < COPY_BELOW) ok = call.write(bytesMessage(batch, batchBytes));
    else {
      const head = bytesMessageHead(batchBytes);
      ok = call.writeParts([head, ...batch], head.length + batchBytes);
    }
    batch = [];
    batchBytes = 0;
    if (!ok && !congested) {
      congested = true;
      call.onceDrained(drained);
    }
  };
  const take = (chunk: Buffer): void => {
    batch.push(chunk);
    batchBytes += chunk.length;
    if (batchBytes >= FLUSH_BYTES) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  /** Completes a pipe write now, or once the call drains. */
  const written = (cb: () => void): void => {
    if (congested) waiting.push(cb);
    else cb();
  };
  const pipe = new Duplex({
    read() {
      call.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      take(chunk);
      written(() => cb());
    },
    writev(chunks: Array<{ chunk: Buffer }>, cb) {
      for (const c of chunks) take(c.chunk);
      written(() => cb());
    },
    final(cb) {
      flush();
      call.end();
      cb();
    },
  });
  call.onMessagePieces((pieces) => {
    // Views into the DATA chunks, no copy (moby.buildkit.v1.BytesMessage is field 1, bytes).
    let data: Buffer[];
    try {
      data = bytesMessagePieces(pieces);
    } catch (e) {
      // Not a BytesMessage: the tunnel cannot go on.
      call.cancel();
      pipe.destroy(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    let room = true;
    for (const d of data) room = pipe.push(d) && room;
    if (!room) call.pause();
  });
  const done = call.status
    .then(
      () => undefined,
      () => undefined,
    )
    .then(() => {
      pipe.push(null);
    });
  return { pipe, flush, done };
}
