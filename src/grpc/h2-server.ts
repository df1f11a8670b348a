/**
 * The server side of one HTTP/2 connection (RFC 9113), written for the
 * session: buildkitd is the client, and the bytes come and go either inside
 * Control.Session's BytesMessages or over a socket an Engine hands over.
 *
 * Why not node:http2: served over a JS stream (the Control.Session pipe),
 * Node copies every byte its HTTP/2 session writes into a new Buffer, so
 * sending a 500 MB context made 500 MB of garbage, which set the process'
 * peak RSS. Here what a handler sends goes out by reference, from the file
 * read's slab to the outer call's socket, and is released once written.
 *
 * What a gRPC server needs is here: streams opened by the client, HPACK,
 * flow control both ways, SETTINGS, PING, WINDOW_UPDATE, RST_STREAM,
 * GOAWAY. No server push, no priorities (PRIORITY is read and ignored).
 */
import { HpackDecoder, HpackError, encodeHeaders } from "./hpack.js";

/** Where the connection's bytes go. */
export interface FrameSink {
  /**
   * Writes `parts` (`size` bytes) in order; `written` is called once none
   * of them is held any more. False asks the writer to wait for drained().
   */
  write(parts: Buffer[], size: number, written?: () => void): boolean;
  onceDrained(cb: () => void): void;
  /** Half-closes: nothing more will be written. */
  end(): void;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** Frame types (RFC 9113 section 6). */
const Type = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

/** Error codes (RFC 9113 section 7). */
export const H2Code = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

/** What we let a frame be (SETTINGS_MAX_FRAME_SIZE is not sent: the default). */
const MAX_FRAME_IN = 16384;
/** The stream window we grant (SETTINGS_INITIAL_WINDOW_SIZE): exports stream hundreds of MB to us. */
const STREAM_WINDOW = 4 << 20;
/** The connection window we grant. */
const CONNECTION_WINDOW = 16 << 20;
/** A header block may not grow past this (CONTINUATION frames included). */
const MAX_HEADER_BLOCK = 16 << 20;
/** Past this many bytes gathered, a batch is written out at once; otherwise once per event loop turn. */
const FLUSH_BYTES = 256 * 1024;
/** Smaller parts are copied together into one buffer; larger ones go out by reference. */
const COPY_BELOW = 1024;
const MAX_WINDOW = 2 ** 31 - 1;

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function frameHeader(length: number, type: number, flags: number, stream: number): Buffer {
  const h = Buffer.allocUnsafe(9);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return h;
}

interface Queued {
  buf: Buffer;
  released: (() => void) | undefined;
}

/** One stream the client opened. */
export class H2Stream {
  /** Called with each DATA payload, in order (views of what arrived). */
  onData: (chunk: Buffer) => void = () => undefined;
  /** The client half-closed. */
  onEnd: () => void = () => undefined;
  /** The stream is gone: `reset` when it ended other than by both sides' END_STREAM. */
  onClose: (reset: boolean) => void = () => undefined;

  /** Bytes we may still send, and may still receive. */
  sendWindow: number;
  recvWindow = STREAM_WINDOW;
  /** Bytes received and not yet granted back. */
  #unacked = 0;
  #paused = false;
  readonly queue: Queued[] = [];
  /** Offset into queue[0] already sent. */
  head = 0;
  queued = 0;
  /** Trailers to send once the queue is empty. */
  trailers: Buffer | undefined;
  responded = false;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  #waiting: Array<{ below: number; cb: () => void }> = [];

  constructor(
    readonly id: number,
    readonly rawHeaders: readonly string[],
    readonly conn: H2ServerConnection,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  /** Sends the response headers. With `endStream` they are the whole response (trailers-only). */
  respond(fields: ReadonlyArray<readonly [string, string]>, endStream = false): void {
    if (this.closed || this.responded) return;
    this.responded = true;
    this.conn.headers(this, encodeHeaders(fields), endStream);
  }

  /** Queues DATA; `released` is called once none of `parts` is held any more. */
  write(parts: readonly Buffer[], released?: () => void): void {
    if (this.closed || this.localEnded) {
      released?.();
      return;
    }
    let last = -1;
    for (let i = 0; i < parts.length; i++) if (parts[i]!.length) last = i;
    for (let i = 0; i <= last; i++) {
      const buf = parts[i]!;
      if (!buf.length) continue;
      this.queue.push({ buf, released: i === last ? released : undefined });
      this.queued += buf.length;
    }
    if (last < 0) released?.();
    this.conn.wake(this);
  }

  /** Ends the response with trailers, after what is queued. */
  end(fields: ReadonlyArray<readonly [string, string]>): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.trailers = encodeHeaders(fields);
    this.conn.wake(this);
  }

  /** Ends the stream with RST_STREAM. */
  reset(code: number = H2Code.CANCEL): void {
    this.conn.reset(this, code);
  }

  /** Stops granting window: the client can send at most what it was granted. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#grant();
  }

  /** Calls `cb` once at most `below` bytes are queued, or the stream is gone. */
  onceBelow(below: number, cb: () => void): void {
    if (this.queued <= below || this.closed) cb();
    else this.#waiting.push({ below, cb });
  }

  /** @internal DATA arrived. */
  received(length: number): void {
    this.recvWindow -= length;
    this.#unacked += length;
    this.#grant();
  }

  /** @internal after bytes left the queue or the stream closed. */
  notifyDrained(): void {
    if (!this.#waiting.length) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) {
      if (this.queued <= w.below || this.closed) w.cb();
      else this.#waiting.push(w);
    }
  }

  #grant(): void {
    if (this.#paused || this.closed || this.remoteEnded || this.#unacked < STREAM_WINDOW / 4) return;
    this.conn.windowUpdate(this.id, this.#unacked);
    this.recvWindow += this.#unacked;
    this.#unacked = 0;
  }
}

/**
 * One HTTP/2 server connection. Feed it what arrives with receive() and
 * receiveEnd(); it writes to `sink` and hands each new stream to `onStream`.
 */
export class H2ServerConnection {
  readonly #sink: FrameSink;
  readonly #onStream: (stream: H2Stream) => void;
  readonly #onError: (message: string) => void;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, H2Stream>();

  // Input: chunks not yet parsed.
  #in: Buffer[] = [];
  #inBytes = 0;
  #prefaced = false;
  /** A header block in CONTINUATION frames: its stream, flags and pieces so far. */
  #block: { stream: number; flags: number; pieces: Buffer[]; size: number } | undefined;
  #lastStream = 0;

  // Peer settings.
  #peerInitialWindow = 65535;
  #peerMaxFrame = 16384;
  #sendWindow = 65535;
  /** Connection-level bytes received and not yet granted back. */
  #connUnacked = 0;

  // Output.
  #out: Buffer[] = [];
  #outBytes = 0;
  #small: Buffer[] = [];
  #smallBytes = 0;
  #written: Array<() => void> = [];
  #flushScheduled = false;
  #pumpScheduled = false;
  #congested = false;
  /** Streams with data or trailers waiting, in the order they asked. */
  readonly #ready = new Set<H2Stream>();
  #goaway = false;
  #ended = false;

  constructor(sink: FrameSink, onStream: (stream: H2Stream) => void, onError: (message: string) => void = () => undefined) {
    this.#sink = sink;
    this.#onStream = onStream;
    this.#onError = onError;
    // SETTINGS: INITIAL_WINDOW_SIZE. Then the connection window, raised.
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(0x4, 0);
    settings.writeUInt32BE(STREAM_WINDOW, 2);
    this.#control(Type.SETTINGS, 0, 0, settings);
    this.windowUpdate(0, CONNECTION_WINDOW - 65535);
  }

  /** Open streams (for tests and the server's bookkeeping). */
  get streams(): number {
    return this.#streams.size;
  }

  /** Bytes from the client. */
  receive(chunk: Buffer): void {
    if (this.#ended || !chunk.length) return;
    this.#in.push(chunk);
    this.#inBytes += chunk.length;
    try {
      this.#parse();
    } catch (e) {
      if (e instanceof ConnectionError) this.#fail(e.code, e.message);
      else if (e instanceof HpackError) this.#fail(H2Code.COMPRESSION_ERROR, e.message);
      else throw e;
    }
  }

  /** The client's side ended (or the transport broke): every stream is gone. */
  receiveEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const s of [...this.#streams.values()]) this.#close(s, true);
    this.#flushNow();
    this.#sink.end();
  }

  /** Sends GOAWAY (no new streams) and what is gathered; open streams go on. */
  goaway(code: number = H2Code.NO_ERROR): void {
    if (this.#ended || this.#goaway) return;
    this.#goaway = true;
    const p = Buffer.alloc(8);
    p.writeUInt32BE(this.#lastStream, 0);
    p.writeUInt32BE(code, 4);
    this.#control(Type.GOAWAY, 0, 0, p);
    this.#pump();
    this.#flushNow();
  }

  // --- output -------------------------------------------------------------

  /** @internal */
  headers(stream: H2Stream, block: Buffer, endStream: boolean): void {
    this.#emitHeaders(stream.id, block, endStream ? END_STREAM : 0);
    if (endStream) {
      stream.localEnded = true;
      this.#localEnd(stream);
    }
    this.#scheduleFlush();
  }

  /** @internal */
  windowUpdate(stream: number, n: number): void {
    if (this.#ended || n <= 0) return;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(n, 0);
    this.#control(Type.WINDOW_UPDATE, 0, stream, p);
  }

  /** @internal */
  reset(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.#control(Type.RST_STREAM, 0, stream.id, p);
    this.#close(stream, true);
  }

  /** @internal a stream has something to send. */
  wake(stream: H2Stream): void {
    this.#ready.add(stream);
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #control(type: number, flags: number, stream: number, payload: Buffer): void {
    if (this.#ended) return;
    this.#add(frameHeader(payload.length, type, flags, stream));
    if (payload.length) this.#add(payload);
    this.#scheduleFlush();
  }

  #emitHeaders(stream: number, block: Buffer, flags: number): void {
    let at = 0;
    let first = true;
    do {
      const n = Math.min(this.#peerMaxFrame, block.length - at);
      const last = at + n >= block.length;
      const type = first ? Type.HEADERS : Type.CONTINUATION;
      this.#add(frameHeader(n, type, (first ? flags : 0) | (last ? END_HEADERS : 0), stream));
      if (n) this.#add(block.subarray(at, at + n));
      at += n;
      first = false;
    } while (at < block.length);
  }

  /** Gathers a part into the batch: small ones copied together, others by reference. */
  #add(part: Buffer): void {
    if (part.length < COPY_BELOW) {
      this.#small.push(part);
      this.#smallBytes += part.length;
    } else {
      this.#sealSmall();
      this.#out.push(part);
    }
    this.#outBytes += part.length;
  }

  #sealSmall(): void {
    if (!this.#small.length) return;
    this.#out.push(this.#small.length === 1 ? this.#small[0]! : Buffer.concat(this.#small, this.#smallBytes));
    this.#small = [];
    this.#smallBytes = 0;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flushNow();
    });
  }

  /** Writes the batch out; false when the sink is congested. */
  #flushNow(): boolean {
    this.#sealSmall();
    if (!this.#out.length) return !this.#congested;
    const parts = this.#out;
    const size = this.#outBytes;
    const written = this.#written;
    this.#out = [];
    this.#outBytes = 0;
    this.#written = [];
    const ok = this.#sink.write(
      parts,
      size,
      written.length
        ? () => {
            for (const cb of written) cb();
          }
        : undefined,
    );
    if (!ok && !this.#congested) {
      this.#congested = true;
      this.#sink.onceDrained(() => {
        this.#congested = false;
        this.#pump();
      });
    }
    return ok;
  }

  /** Sends what the windows allow from the streams that wait, round robin a frame at a time. */
  #pump(): void {
    while (this.#ready.size && !this.#congested && !this.#ended) {
      let progress = false;
      for (const s of this.#ready) {
        if (s.closed) {
          this.#ready.delete(s);
          continue;
        }
        if (s.queued > 0) {
          const n = Math.min(this.#peerMaxFrame, s.sendWindow, this.#sendWindow, s.queued);
          if (n <= 0) continue;
          this.#emitData(s, n);
          progress = true;
        }
        if (s.queued === 0) {
          this.#ready.delete(s);
          if (s.trailers) {
            const t = s.trailers;
            s.trailers = undefined;
            this.#emitHeaders(s.id, t, END_STREAM);
            this.#localEnd(s);
          }
        }
        s.notifyDrained();
        if (this.#outBytes >= FLUSH_BYTES) {
          if (!this.#flushNow()) break;
        }
      }
      if (!progress) break;
    }
    this.#flushNow();
  }

  #emitData(s: H2Stream, n: number): void {
    this.#add(frameHeader(n, Type.DATA, 0, s.id));
    let left = n;
    while (left > 0) {
      const q = s.queue[0]!;
      const avail = q.buf.length - s.head;
      const take = Math.min(avail, left);
      this.#add(take === q.buf.length ? q.buf : q.buf.subarray(s.head, s.head + take));
      left -= take;
      if (take === avail) {
        s.queue.shift();
        s.head = 0;
        if (q.released) this.#written.push(q.released);
      } else s.head += take;
    }
    s.queued -= n;
    s.sendWindow -= n;
    this.#sendWindow -= n;
  }

  /** We sent END_STREAM: the stream is done if the client was too; otherwise it is told to stop (RST_STREAM NO_ERROR, as grpc-go does). */
  #localEnd(s: H2Stream): void {
    if (s.remoteEnded) {
      this.#close(s, false);
      return;
    }
    const p = Buffer.alloc(4);
    this.#control(Type.RST_STREAM, 0, s.id, p);
    this.#close(s, false);
  }

  #close(s: H2Stream, reset: boolean): void {
    if (s.closed) return;
    s.closed = true;
    this.#streams.delete(s.id);
    this.#ready.delete(s);
    for (const q of s.queue) q.released?.();
    s.queue.length = 0;
    s.queued = 0;
    s.notifyDrained();
    s.onClose(reset);
  }

  #fail(code: number, message: string): void {
    this.#onError(message);
    if (this.#ended) return;
    const p = Buffer.alloc(8);
    p.writeUInt32BE(this.#lastStream, 0);
    p.writeUInt32BE(code, 4);
    this.#control(Type.GOAWAY, 0, 0, p);
    this.receiveEnd();
  }

  // --- input --------------------------------------------------------------

  /** The next `n` input bytes as one buffer (copied only when they span chunks). */
  #take(n: number): Buffer {
    const first = this.#in[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#in.shift();
      else this.#in[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.#in[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.#in.shift();
        else this.#in[0] = c.subarray(k);
      }
    }
    this.#inBytes -= n;
    return out;
  }

  /** The next `n` input bytes as views of the chunks they are in (no copy). */
  #takePieces(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#in[0]!;
      if (c.length <= left) {
        out.push(c);
        this.#in.shift();
        left -= c.length;
      } else {
        out.push(c.subarray(0, left));
        this.#in[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#inBytes -= n;
    return out;
  }

  #peekHeader(): { length: number; type: number; flags: number; stream: number } {
    const first = this.#in[0]!;
    const h = first.length >= 9 ? first : Buffer.concat(this.#in, 9);
    return { length: h.readUIntBE(0, 3), type: h[3]!, flags: h[4]!, stream: h.readUInt32BE(5) & 0x7fffffff };
  }

  #parse(): void {
    if (!this.#prefaced) {
      if (this.#inBytes < PREFACE.length) return;
      if (!this.#take(PREFACE.length).equals(PREFACE)) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "not an HTTP/2 connection preface");
      this.#prefaced = true;
    }
    while (!this.#ended && this.#inBytes >= 9) {
      const { length, type, flags, stream } = this.#peekHeader();
      if (length > MAX_FRAME_IN) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, `a frame of ${length} bytes`);
      if (this.#inBytes < 9 + length) return;
      this.#take(9);
      if (this.#block && type !== Type.CONTINUATION) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "a header block was cut by another frame");
      if (type === Type.DATA) this.#data(flags, stream, length);
      else this.#frame(type, flags, stream, length ? this.#take(length) : Buffer.alloc(0));
    }
  }

  /** Strips padding (PADDED flag: a length octet first, that many octets last). */
  static #unpad(flags: number, payload: Buffer): Buffer {
    if (!(flags & PADDED)) return payload;
    const pad = payload[0];
    if (pad === undefined || pad >= payload.length) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "bad padding");
    return payload.subarray(1, payload.length - pad);
  }

  #data(flags: number, id: number, length: number): void {
    if (id === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "DATA on stream 0");
    // Every DATA counts against the connection window, on a closed stream too.
    this.#connUnacked += length;
    if (this.#connUnacked >= CONNECTION_WINDOW / 4) {
      this.windowUpdate(0, this.#connUnacked);
      this.#connUnacked = 0;
    }
    const s = this.#streams.get(id);
    let pieces: Buffer[];
    if (flags & PADDED) {
      const payload = H2ServerConnection.#unpad(flags, length ? this.#take(length) : Buffer.alloc(0));
      pieces = payload.length ? [payload] : [];
    } else pieces = this.#takePieces(length);
    if (!s) {
      if (id > this.#lastStream) throw new ConnectionError(H2Code.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return;
    }
    if (s.remoteEnded) {
      this.reset(s, H2Code.STREAM_CLOSED);
      return;
    }
    if (length > s.recvWindow) {
      this.reset(s, H2Code.FLOW_CONTROL_ERROR);
      return;
    }
    s.received(length);
    for (const p of pieces) s.onData(p);
    if (flags & END_STREAM) this.#remoteEnd(s);
  }

  #remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    s.onEnd();
    if (s.localEnded && !s.trailers && s.queued === 0) this.#close(s, false);
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    switch (type) {
      case Type.HEADERS: {
        if (id === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "HEADERS on stream 0");
        let block = H2ServerConnection.#unpad(flags, payload);
        if (flags & PRIORITY_FLAG) {
          if (block.length < 5) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, "short HEADERS priority");
          block = block.subarray(5);
        }
        if (flags & END_HEADERS) this.#headerBlock(id, flags, block);
        else this.#block = { stream: id, flags, pieces: [Buffer.from(block)], size: block.length };
        return;
      }
      case Type.CONTINUATION: {
        const b = this.#block;
        if (!b || b.stream !== id) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        b.pieces.push(Buffer.from(payload));
        b.size += payload.length;
        if (b.size > MAX_HEADER_BLOCK) throw new ConnectionError(H2Code.ENHANCE_YOUR_CALM, "header block too large");
        if (flags & END_HEADERS) {
          this.#block = undefined;
          this.#headerBlock(id, b.flags, Buffer.concat(b.pieces, b.size));
        }
        return;
      }
      case Type.PRIORITY:
        if (payload.length !== 5) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, "PRIORITY of the wrong size");
        return;
      case Type.RST_STREAM: {
        if (payload.length !== 4) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, "RST_STREAM of the wrong size");
        if (id === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        const s = this.#streams.get(id);
        if (s) this.#close(s, true);
        return;
      }
      case Type.SETTINGS:
        this.#settings(flags, id, payload);
        return;
      case Type.PUSH_PROMISE:
        throw new ConnectionError(H2Code.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case Type.PING:
        if (payload.length !== 8 || id !== 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "bad PING");
        if (!(flags & ACK)) this.#control(Type.PING, ACK, 0, Buffer.from(payload));
        return;
      case Type.GOAWAY:
        // The client opens no more streams; it closes the transport when done.
        return;
      case Type.WINDOW_UPDATE: {
        if (payload.length !== 4) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size");
        const n = payload.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) {
          if (n === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
          this.#sendWindow += n;
          if (this.#sendWindow > MAX_WINDOW) throw new ConnectionError(H2Code.FLOW_CONTROL_ERROR, "connection window overflow");
          this.#wakeAll();
          return;
        }
        const s = this.#streams.get(id);
        if (!s) return;
        if (n === 0) return this.reset(s, H2Code.PROTOCOL_ERROR);
        s.sendWindow += n;
        if (s.sendWindow > MAX_WINDOW) return this.reset(s, H2Code.FLOW_CONTROL_ERROR);
        if (s.queued) this.wake(s);
        return;
      }
      default:
        // Unknown frame types are ignored (RFC 9113 section 4.1).
        return;
    }
  }

  #wakeAll(): void {
    for (const s of this.#streams.values()) if (s.queued || s.trailers) this.wake(s);
  }

  #settings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) {
      if (payload.length) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, "SETTINGS of the wrong size");
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (key === 0x4) {
        if (value > MAX_WINDOW) throw new ConnectionError(H2Code.FLOW_CONTROL_ERROR, "initial window too large");
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) s.sendWindow += delta;
        if (delta > 0) this.#wakeAll();
      } else if (key === 0x5) {
        if (value < 16384 || value > 16777215) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "bad max frame size");
        this.#peerMaxFrame = value;
      } else if (key === 0x2 && value > 1) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "bad ENABLE_PUSH");
      // HEADER_TABLE_SIZE: our encoder never uses the table. MAX_CONCURRENT_STREAMS,
      // MAX_HEADER_LIST_SIZE: we open no streams, and send small headers.
    }
    this.#control(Type.SETTINGS, ACK, 0, Buffer.alloc(0));
  }

  #headerBlock(id: number, flags: number, block: Buffer): void {
    // The block is decoded even when it is not used: the table depends on it.
    const raw = this.#decoder.decode(block);
    const existing = this.#streams.get(id);
    if (existing) {
      // Trailers from the client: must end the stream.
      if (!(flags & END_STREAM)) throw new ConnectionError(H2Code.PROTOCOL_ERROR, "trailers without END_STREAM");
      this.#remoteEnd(existing);
      return;
    }
    if (id <= this.#lastStream) return; // a stream already closed
    if (id % 2 === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, `client stream ${id} is even`);
    this.#lastStream = id;
    if (this.#goaway) {
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(H2Code.REFUSED_STREAM, 0);
      this.#control(Type.RST_STREAM, 0, id, p);
      return;
    }
    const s = new H2Stream(id, raw, this, this.#peerInitialWindow);
    this.#streams.set(id, s);
    this.#onStream(s);
    if (flags & END_STREAM) this.#remoteEnd(s);
  }
}
