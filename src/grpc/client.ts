/**
 * A small gRPC client on Node's own HTTP/2, for buildkitd's Control service.
 *
 * Why not grpc-js: loading it and setting up its channel and load balancer
 * cost the CLI about 70 ms before the first byte reached the daemon, a third
 * of a cached rebuild's overhead. What buildkitd needs is small: unary,
 * server-streaming and one bidi call, identity encoding, trailers. A caller
 * supplies the byte stream (unix socket, TLS, or an SSH channel), so every
 * transport is the same code here.
 *
 * Failures are classified from facts (connect-es' node-error.ts does the
 * same): whether the connection had been established (the server's first
 * SETTINGS arrived), the stream's reset code, and Node's error codes. A
 * stream refused by a server that is going away (GOAWAY, REFUSED_STREAM) is
 * marked retryable; calls in flight on a connection that got GOAWAY finish
 * there, new calls go to a new connection.
 */
import * as http2 from "node:http2";
import type { Duplex } from "node:stream";
import { debuglog } from "node:util";
import { GrpcStatusError, MAX_MESSAGE_BYTES, MessageReader, Status, decodeGrpcMessage, prefix, statusName } from "./frame.js";
import { h2CodeName, isProtocolCode, nodeCode, statusFromResetCode } from "./node-error.js";

const debug = debuglog("bk-build");
const C = http2.constants;

/** setTimeout's limit: longer delays fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CallOptions {
  signal?: AbortSignal | undefined;
  deadline?: Date | undefined;
}

/** Request metadata; an array value sends the header once per element. */
export type Metadata = Record<string, string | string[]>;

/**
 * How a call failed on our side of the wire:
 * - `connect`: the dial failed (no socket, refused, TLS);
 * - `protocol`: what answered is not an HTTP/2 gRPC server;
 * - `lost`: an established connection broke (reset, closed, keepalive);
 * - `refused`: the server refused the stream before working on it (safe to retry);
 * - `reset`: the server reset this stream (CANCEL, INTERNAL_ERROR, ...);
 * - `closed`: the channel was closed by its owner.
 */
export type TransportFailure = "connect" | "protocol" | "lost" | "refused" | "reset" | "closed";

/** A call that failed in the transport, with the facts it was classified from. */
export class TransportError extends GrpcStatusError {
  constructor(
    code: number,
    message: string,
    readonly kind: TransportFailure,
    readonly facts: {
      nodeCode?: string | undefined;
      rstCode?: number | undefined;
      cause?: unknown;
      /** The server had sent response headers for this call. */
      answered?: boolean | undefined;
    } = {},
  ) {
    super(code, message);
    this.name = "TransportError";
    if (facts.cause !== undefined) Object.defineProperty(this, "cause", { value: facts.cause, configurable: true, writable: true });
  }
}

/** A grpc-timeout header value: at most 8 digits, in the largest unit needed (gRPC HTTP/2 spec). */
export function grpcTimeout(ms: number): string {
  const v = Math.max(1, Math.ceil(ms));
  if (v < 1e8) return `${v}m`;
  const s = Math.ceil(v / 1000);
  if (s < 1e8) return `${s}S`;
  const m = Math.ceil(s / 60);
  if (m < 1e8) return `${m}M`;
  return `${Math.min(99_999_999, Math.ceil(m / 60))}H`;
}

/** setTimeout that also waits for delays past 2^31-1 ms (chaining), instead of firing at once. */
function longTimeout(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const arm = (left: number): void => {
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(Math.max(0, left), MAX_TIMER_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}

/** One HTTP/2 connection and what is known about it. */
interface Conn {
  readonly id: number;
  readonly session: http2.ClientHttp2Session;
  /** The dialled byte stream. Destroying the session alone waits for the peer to close it. */
  socket: Duplex | undefined;
  /** The server's first SETTINGS arrived: it speaks HTTP/2. */
  established: boolean;
  /** Why the connection failed, once it has. */
  error?: Error;
  /** GOAWAY's code and debug data, when the server sent one. */
  goaway?: { code: number; data: string };
  /** Last time a response header or data frame arrived, for keepalive. */
  lastDataAt: number;
  lastPingAt: number;
  /** Pings sent since the last data frame. */
  silentPings: number;
  active: number;
  stopKeepalive: () => void;
  /** Wakes the keepalive timer when a call starts. */
  rearm: () => void;
}

export interface KeepaliveOptions {
  /** Ping after this long without a frame from the server while calls are open. */
  intervalMs: number;
  /** The connection counts as dead when a ping is not answered within this. */
  timeoutMs: number;
}

/** One call's HTTP/2 stream with gRPC framing on both sides. */
export class ClientCall {
  /** Settles with the call's final status: resolves on OK, rejects with GrpcStatusError. */
  readonly status: Promise<void>;
  readonly path: string;
  readonly #stream: http2.ClientHttp2Stream;
  readonly #conn: Conn;
  readonly #reader = new MessageReader();
  #onMessage: (m: Buffer) => void = () => undefined;
  #onPieces: ((pieces: Buffer[]) => void) | undefined;
  #settle!: (err: GrpcStatusError | undefined) => void;
  #ended = false;
  #responded = false;
  #streamError: Error | undefined;
  readonly #cleanups: Array<() => void> = [];

  constructor(stream: http2.ClientHttp2Stream, conn: Conn, path: string, options: CallOptions) {
    this.#stream = stream;
    this.#conn = conn;
    this.path = path;
    this.status = new Promise<void>((resolve, reject) => {
      this.#settle = (err) => {
        if (this.#ended) return;
        this.#ended = true;
        for (const c of this.#cleanups) c();
        if (err) {
          debug("call %s on connection %d failed: %s %s", path, conn.id, statusName(err.code), err.message);
          reject(err);
        } else resolve();
      };
    });
    // A rejection nobody asked about is not an unhandled one: callers that
    // care await status.
    this.status.catch(() => undefined);
    stream.on("response", (headers) => this.#onResponse(headers));
    stream.on("data", (chunk: Buffer) => this.#onData(chunk));
    stream.on("trailers", (trailers: http2.IncomingHttpHeaders) => {
      conn.lastDataAt = Date.now();
      this.#finish(trailers);
    });
    stream.on("error", (e: Error) => {
      this.#streamError = e;
    });
    // The session reports why the connection failed after its streams
    // close; wait a turn so that reason can be named.
    stream.on("close", () => setImmediate(() => this.#onClose()));
    this.#watch(options);
  }

  #watch({ signal, deadline }: CallOptions): void {
    if (signal) {
      const onAbort = (): void => this.cancel(Status.CANCELLED, "the call was cancelled");
      signal.addEventListener("abort", onAbort, { once: true });
      this.#cleanups.push(() => signal.removeEventListener("abort", onAbort));
    }
    if (deadline) {
      this.#cleanups.push(longTimeout(() => this.cancel(Status.DEADLINE_EXCEEDED, "deadline exceeded"), deadline.getTime() - Date.now()));
    }
  }

  #onResponse(headers: http2.IncomingHttpHeaders): void {
    this.#responded = true;
    this.#conn.lastDataAt = Date.now();
    const http = Number(headers[":status"]);
    if (http !== 200) {
      this.#fail(new TransportError(Status.INTERNAL, `unexpected HTTP status code ${http} from the server`, "protocol"));
      return;
    }
    const type = headers["content-type"] ?? "";
    if (!type.startsWith("application/grpc")) {
      this.#fail(new TransportError(Status.INTERNAL, `unexpected content-type "${type}" from the server`, "protocol"));
      return;
    }
    if (headers["grpc-status"] !== undefined) this.#finish(headers);
  }

  #onData(chunk: Buffer): void {
    this.#conn.lastDataAt = Date.now();
    const onPieces = this.#onPieces;
    if (onPieces) {
      let pieces: Buffer[][];
      try {
        pieces = this.#reader.pushPieces(chunk);
      } catch (e) {
        this.#fail(e instanceof GrpcStatusError ? e : new GrpcStatusError(Status.INTERNAL, String(e)));
        return;
      }
      for (const p of pieces) onPieces(p);
      return;
    }
    let messages: Buffer[];
    try {
      messages = this.#reader.push(chunk);
    } catch (e) {
      this.#fail(e instanceof GrpcStatusError ? e : new GrpcStatusError(Status.INTERNAL, String(e)));
      return;
    }
    for (const m of messages) this.#onMessage(m);
  }

  /** The stream closed without a status: say why, from what is known. */
  #onClose(): void {
    if (this.#ended) return;
    const conn = this.#conn;
    const rst = this.#stream.rstCode;
    if (rst === C.NGHTTP2_REFUSED_STREAM) {
      // Also what a stream past GOAWAY's last stream id gets: never seen by the server.
      this.#settle(
        new TransportError(Status.UNAVAILABLE, "the server refused the call (REFUSED_STREAM); it is probably shutting down", "refused", { rstCode: rst }),
      );
      return;
    }
    if (conn.session.destroyed) {
      const cause = conn.error ?? this.#streamError;
      const code = nodeCode(cause);
      if (!conn.established) {
        if (cause && !isProtocolCode(code)) {
          // The dial failed: a socket error (ENOENT, ECONNREFUSED, TLS,
          // ECONNRESET before the server spoke), or a dialer's own error
          // (ssh://) arriving as the session's.
          this.#settle(new TransportError(Status.UNAVAILABLE, describeCause(cause), "connect", { nodeCode: code, cause }));
        } else {
          const why = cause ? describeCause(cause) : "the connection closed before the server answered";
          this.#settle(new TransportError(Status.UNAVAILABLE, why, "protocol", { nodeCode: code, cause }));
        }
        return;
      }
      let why = cause ? describeCause(cause) : "the server closed the connection";
      if (conn.goaway && conn.goaway.code !== C.NGHTTP2_NO_ERROR) {
        why = `the server closed the connection with ${h2CodeName(conn.goaway.code)}${conn.goaway.data ? ` (${conn.goaway.data})` : ""}`;
      }
      this.#settle(new TransportError(Status.UNAVAILABLE, why, "lost", { nodeCode: code, rstCode: rst, cause, answered: this.#responded }));
      return;
    }
    if (rst !== C.NGHTTP2_NO_ERROR) {
      const code = statusFromResetCode(rst);
      this.#settle(new TransportError(code, `RST_STREAM ${h2CodeName(rst)}`, "reset", { rstCode: rst }));
    } else if (!this.#responded) {
      this.#settle(new TransportError(Status.UNAVAILABLE, "the server closed the call before answering", "protocol"));
    } else {
      // Answered, no trailers, the connection alive: the stream was reset.
      // Node reports no RST code once our side has half-closed (it shows as
      // a plain end), and a gRPC server sends a status unless it cancels
      // the stream (grpc-go resets with CANCEL), so this is a cancellation.
      this.#settle(new TransportError(Status.CANCELLED, "RST_STREAM without a status", "reset"));
    }
  }

  /** Receives each response message's bytes, in order. */
  /** Each message as the views of the DATA chunks that hold it, in place of onMessage (no reassembly copy). */
  onMessagePieces(handler: (pieces: Buffer[]) => void): void {
    this.#onPieces = handler;
  }

  onMessage(handler: (m: Buffer) => void): void {
    this.#onMessage = handler;
  }

  /** Sends one encoded message; false when HTTP/2 wants the caller to wait for drain. */
  write(message: Buffer): boolean {
    if (message.length > MAX_MESSAGE_BYTES) {
      throw new GrpcStatusError(Status.RESOURCE_EXHAUSTED, `a message of ${message.length} bytes is over the ${MAX_MESSAGE_BYTES >> 20} MiB limit`);
    }
    if (message.length < 4096) return this.#stream.write(Buffer.concat([prefix(message.length), message]));
    return this.writeParts([message], message.length);
  }

  /**
   * Sends one message given as parts of `size` bytes in all, never copied
   * here: the parts are held until written, so the caller must not reuse
   * them before `written` is called.
   */
  writeParts(parts: readonly Buffer[], size: number, written?: () => void): boolean {
    if (size > MAX_MESSAGE_BYTES) {
      throw new GrpcStatusError(Status.RESOURCE_EXHAUSTED, `a message of ${size} bytes is over the ${MAX_MESSAGE_BYTES >> 20} MiB limit`);
    }
    const stream = this.#stream;
    stream.cork();
    let ok = stream.write(prefix(size));
    let last = -1;
    for (let i = 0; i < parts.length; i++) if (parts[i]!.length) last = i;
    // Writes complete in order: the last one's callback (called with an
    // error too, should the stream be destroyed first) frees them all.
    for (let i = 0; i <= last; i++) if (parts[i]!.length) ok = stream.write(parts[i]!, i === last && written ? () => written() : undefined);
    stream.uncork();
    if (last < 0) written?.();
    return ok;
  }

  /** False once the request side is ended or the stream is gone. */
  get writable(): boolean {
    return !this.#stream.destroyed && !this.#stream.writableEnded;
  }

  /** Calls `cb` once written data has left the queue. */
  onceDrained(cb: () => void): void {
    this.#stream.once("drain", cb);
  }

  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    this.#stream.resume();
  }

  /** Half-closes the request side. */
  end(): void {
    if (!this.#stream.writableEnded) this.#stream.end();
  }

  /** Ends the call from this side with `code`. */
  cancel(code: number = Status.CANCELLED, details = "the call was cancelled"): void {
    // After the status, there is nothing to settle: no error (and its stack) to make.
    if (!this.#ended) this.#settle(new GrpcStatusError(code, details));
    if (!this.#stream.closed) this.#stream.close(C.NGHTTP2_CANCEL);
  }

  #fail(err: GrpcStatusError): void {
    this.#settle(err);
    if (!this.#stream.closed) this.#stream.close(C.NGHTTP2_CANCEL);
  }

  #finish(headers: http2.IncomingHttpHeaders): void {
    const raw = headers["grpc-status"];
    const code = raw === undefined ? Status.UNKNOWN : Number(raw);
    if (!Number.isInteger(code) || code < 0) {
      this.#settle(new GrpcStatusError(Status.UNKNOWN, `invalid grpc-status "${String(raw)}" from the server`, undefined, true));
      return;
    }
    if (code === Status.OK) {
      this.#settle(undefined);
      return;
    }
    const msg = headers["grpc-message"];
    const details = msg === undefined ? "" : decodeGrpcMessage(String(msg));
    const bin = headers["grpc-status-details-bin"];
    this.#settle(new GrpcStatusError(code, details, bin === undefined ? undefined : Buffer.from(String(bin), "base64"), true));
  }
}

/** "ECONNRESET: read ECONNRESET" style text that names Node's code once. */
function describeCause(cause: Error): string {
  const code = nodeCode(cause);
  return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
}

let connIds = 0;

/** Destroys a connection now, socket included (a frozen peer never closes it). */
function destroy(conn: Conn): void {
  conn.session.destroy();
  conn.socket?.destroy();
}

/**
 * One HTTP/2 connection to a gRPC server at a time, opened on first use
 * with the caller's dialer and opened again after it breaks or the server
 * sends GOAWAY.
 */
export class H2Channel {
  readonly #dial: () => Duplex;
  readonly #authority: string;
  readonly #keepalive: KeepaliveOptions | undefined;
  /** Doubled when the server says "too_many_pings", as grpc-go's client does. */
  #pingInterval: number;
  #conn: Conn | undefined;
  readonly #all = new Set<Conn>();
  #closed = false;

  constructor(dial: () => Duplex, authority: string, keepalive?: KeepaliveOptions) {
    this.#dial = dial;
    this.#authority = authority;
    this.#keepalive = keepalive;
    this.#pingInterval = keepalive?.intervalMs ?? 0;
  }

  #connection(): Conn {
    const current = this.#conn;
    if (current && !current.session.closed && !current.session.destroyed) return current;
    let socket: Duplex | undefined;
    const session = http2.connect(`http://${this.#authority}`, {
      createConnection: () => (socket = this.#dial()),
      // Large windows: a context upload is many megabytes through one stream.
      settings: { enablePush: false, initialWindowSize: 4 << 20 },
      maxSessionMemory: 64,
    });
    const conn: Conn = {
      id: ++connIds,
      session,
      socket,
      established: false,
      lastDataAt: Date.now(),
      lastPingAt: 0,
      silentPings: 0,
      active: 0,
      stopKeepalive: () => undefined,
      rearm: () => undefined,
    };
    debug("connection %d: dialling %s", conn.id, this.#authority);
    session.on("error", (e: Error) => {
      conn.error ??= e;
      debug("connection %d: error %s", conn.id, describeCause(e));
      // Node destroys the session but may leave the socket open (a TLS
      // alert after the handshake): close it once the streams have seen why.
      setImmediate(() => conn.socket?.destroy());
    });
    session.on("connect", () => session.setLocalWindowSize(16 << 20));
    session.once("remoteSettings", () => {
      conn.established = true;
      debug("connection %d: established", conn.id);
    });
    session.on("goaway", (code: number, lastStreamID: number, data?: Buffer) => {
      const text = data?.length ? data.toString("utf8") : "";
      conn.goaway = { code, data: text };
      debug("connection %d: GOAWAY %s last stream %d%s", conn.id, h2CodeName(code), lastStreamID, text ? ` (${text})` : "");
      if (code === C.NGHTTP2_ENHANCE_YOUR_CALM && text === "too_many_pings" && this.#keepalive) {
        this.#pingInterval *= 2;
        debug("keepalive interval raised to %d ms", this.#pingInterval);
      }
    });
    session.on("close", () => {
      conn.stopKeepalive();
      this.#all.delete(conn);
      debug("connection %d: closed", conn.id);
    });
    this.#all.add(conn);
    this.#conn = conn;
    if (this.#keepalive) this.#startKeepalive(conn, this.#keepalive);
    return conn;
  }

  /**
   * Pings while calls are open and the server has been silent: first after
   * the interval, then at growing gaps, and never more than twice within 5
   * minutes without a data frame in between, so grpc-go's default
   * enforcement (buildkitd sets none of its own; more than 2 such pings is
   * a GOAWAY "too_many_pings") is never tripped. An unanswered ping destroys
   * the connection, which fails its calls as lost.
   */
  #startKeepalive(conn: Conn, ka: KeepaliveOptions): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let ackTimer: ReturnType<typeof setTimeout> | undefined;
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      if (ackTimer) clearTimeout(ackTimer);
      timer = ackTimer = undefined;
    };
    conn.stopKeepalive = stop;
    /** When the next ping is due: the interval after the last data, then growing gaps after each silent ping. */
    const due = (): number => {
      if (conn.lastPingAt < conn.lastDataAt) conn.silentPings = 0;
      const i = this.#pingInterval;
      const n = conn.silentPings;
      if (n === 0) return conn.lastDataAt + i;
      return conn.lastPingAt + (n < 3 ? i * 2 ** n : Math.max(i * 8, 301_000));
    };
    const schedule = (): void => {
      if (conn.session.destroyed || ackTimer) return;
      const wait = Math.min(MAX_TIMER_MS, Math.max(0, due() - Date.now()));
      if (timer) clearTimeout(timer);
      timer = setTimeout(tick, wait);
      timer.unref();
    };
    const tick = (): void => {
      timer = undefined;
      if (conn.session.destroyed) return;
      if (conn.active === 0 || Date.now() < due()) {
        schedule();
        return;
      }
      conn.lastPingAt = Date.now();
      conn.silentPings++;
      debug("connection %d: keepalive ping", conn.id);
      ackTimer = setTimeout(() => {
        debug("connection %d: no answer to a keepalive ping within %d ms", conn.id, ka.timeoutMs);
        conn.error ??= Object.assign(new Error(`no answer to a keepalive ping within ${ka.timeoutMs} ms`), { code: "ETIMEDOUT_KEEPALIVE" });
        destroy(conn);
      }, ka.timeoutMs);
      ackTimer.unref();
      const sent = conn.session.ping((err) => {
        if (ackTimer) clearTimeout(ackTimer);
        ackTimer = undefined;
        if (!err) schedule();
      });
      if (!sent) {
        clearTimeout(ackTimer);
        ackTimer = undefined;
      }
    };
    // Called again when a call starts, so an idle connection's timer can sleep.
    conn.rearm = schedule;
    schedule();
  }

  /** Starts a call to `path` (e.g. "/moby.buildkit.v1.Control/Info"). */
  call(path: string, metadata: Metadata, options: CallOptions = {}): ClientCall {
    if (this.#closed) throw new TransportError(Status.UNAVAILABLE, "the connection is closed", "closed");
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "bk-build",
      ...metadata,
    };
    if (options.deadline) headers["grpc-timeout"] = grpcTimeout(options.deadline.getTime() - Date.now());
    let conn = this.#connection();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: false });
    } catch (e) {
      // The session went away between our check and the request (GOAWAY
      // being processed): the next connection takes the call.
      debug("connection %d: request refused locally (%s); opening a new connection", conn.id, nodeCode(e) ?? String(e));
      conn.session.close();
      conn = this.#connection();
      stream = conn.session.request(headers, { endStream: false });
    }
    const call = new ClientCall(stream, conn, path, options);
    // An idle connection does not keep the process alive (as grpc-js and
    // Node's HTTP agents): only open calls do.
    if (conn.active++ === 0) conn.session.ref();
    conn.rearm();
    const done = (): void => {
      if (--conn.active === 0 && !conn.session.destroyed) conn.session.unref();
    };
    call.status.then(done, done);
    if (options.signal?.aborted) call.cancel();
    return call;
  }

  /**
   * Closes the channel: an idle connection at once; one with calls open
   * gets GOAWAY, and those calls may finish within `graceMs` before the
   * socket is destroyed. Resolves once every socket is closed.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closed = true;
    const waits = [...this.#all].map(
      (conn) =>
        new Promise<void>((resolve) => {
          const s = conn.session;
          conn.stopKeepalive();
          if (s.destroyed) {
            conn.socket?.destroy();
            return resolve();
          }
          s.once("close", () => resolve());
          // With no call open a graceful close buys nothing and costs a
          // round trip to the server (about 6 ms a CLI command): close now.
          if (conn.active === 0) {
            destroy(conn);
            return;
          }
          // Idle sessions are unref'd; closing one must still run to its end.
          s.ref();
          s.close();
          const timer = setTimeout(() => destroy(conn), graceMs);
          s.once("close", () => clearTimeout(timer));
        }),
    );
    return Promise.all(waits).then(() => undefined);
  }
}
