/**
 * A small gRPC client on Node's own HTTP/2, for buildkitd's Control service.
 *
 * Why not grpc-js: loading it and setting up its channel and load balancer
 * cost the CLI about 70 ms before the first byte reached the daemon, a third
 * of a cached rebuild's overhead. What buildkitd needs is small: unary,
 * server-streaming and one bidi call, identity encoding, trailers. A caller
 * supplies the byte stream (unix socket, TLS, or later an SSH channel), so
 * every transport is the same code here.
 */
import * as http2 from "node:http2";
import type { Duplex } from "node:stream";
import { GrpcStatusError, MessageReader, Status, decodeGrpcMessage, prefix } from "./frame.js";

export interface CallOptions {
  signal?: AbortSignal | undefined;
  deadline?: Date | undefined;
}

/** Request metadata; an array value sends the header once per element. */
export type Metadata = Record<string, string | string[]>;

/** One call's HTTP/2 stream with gRPC framing on both sides. */
export class ClientCall {
  /** Settles with the call's final status: resolves on OK, rejects with GrpcStatusError. */
  readonly status: Promise<void>;
  readonly #stream: http2.ClientHttp2Stream;
  readonly #reader = new MessageReader();
  #onMessage: (m: Buffer) => void = () => undefined;
  #settle!: (err: GrpcStatusError | undefined) => void;
  #ended = false;
  #release: () => void = () => undefined;

  constructor(stream: http2.ClientHttp2Stream, sessionError: () => Error | undefined, options: CallOptions) {
    this.#stream = stream;
    this.status = new Promise<void>((resolve, reject) => {
      this.#settle = (err) => {
        if (this.#ended) return;
        this.#ended = true;
        this.#release();
        if (err) reject(err);
        else resolve();
      };
    });
    // A rejection nobody asked about is not an unhandled one: callers that
    // care await status.
    this.status.catch(() => undefined);
    let responded = false;
    stream.on("response", (headers) => {
      responded = true;
      const http = Number(headers[":status"]);
      if (http !== 200) {
        this.cancel(Status.INTERNAL, `unexpected HTTP status code ${http} from the server`);
        return;
      }
      const type = String(headers["content-type"] ?? "");
      if (!type.startsWith("application/grpc")) {
        this.cancel(Status.INTERNAL, `unexpected content-type "${type}" from the server`);
        return;
      }
      if (headers["grpc-status"] !== undefined) this.#finish(headers);
    });
    stream.on("data", (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = this.#reader.push(chunk);
      } catch (e) {
        this.cancel(Status.INTERNAL, (e as Error).message);
        return;
      }
      for (const m of messages) this.#onMessage(m);
    });
    stream.on("trailers", (trailers) => this.#finish(trailers));
    let streamError: Error | undefined;
    stream.on("error", (e: Error) => {
      streamError = e;
    });
    stream.on("close", () => {
      if (this.#ended) return;
      // The session reports why the connection failed after its streams
      // close; wait a turn so that reason can be named.
      setImmediate(() => {
        if (this.#ended) return;
        const cause = sessionError() ?? causeOf(streamError);
        if (cause) {
          const code = (cause as { code?: string }).code;
          const err = new GrpcStatusError(Status.UNAVAILABLE, code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message);
          this.#settle(Object.assign(err, { cause }));
        } else if (stream.session?.destroyed !== false && !responded) {
          this.#settle(new GrpcStatusError(Status.UNAVAILABLE, "the connection closed before the server answered"));
        } else if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
          this.#settle(new GrpcStatusError(Status.INTERNAL, `Received RST_STREAM with code ${stream.rstCode}`));
        } else {
          this.#settle(new GrpcStatusError(Status.UNAVAILABLE, "the connection closed before the call ended"));
        }
      });
    });
    const { signal, deadline } = options;
    const cleanups: Array<() => void> = [];
    if (signal) {
      const onAbort = (): void => this.cancel(Status.CANCELLED, "the call was cancelled");
      signal.addEventListener("abort", onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener("abort", onAbort));
    }
    if (deadline) {
      const timer = setTimeout(() => this.cancel(Status.DEADLINE_EXCEEDED, "deadline exceeded"), Math.max(0, deadline.getTime() - Date.now()));
      cleanups.push(() => clearTimeout(timer));
    }
    this.#release = () => {
      for (const c of cleanups) c();
    };
  }

  /** Receives each response message's bytes, in order. */
  onMessage(handler: (m: Buffer) => void): void {
    this.#onMessage = handler;
  }

  /** Sends one encoded message; false when HTTP/2 wants the caller to wait for drain. */
  write(message: Buffer): boolean {
    if (message.length < 4096) return this.#stream.write(Buffer.concat([prefix(message.length), message]));
    this.#stream.cork();
    this.#stream.write(prefix(message.length));
    const ok = this.#stream.write(message);
    this.#stream.uncork();
    return ok;
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
    this.#settle(new GrpcStatusError(code, details));
    if (!this.#stream.closed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  #finish(headers: http2.IncomingHttpHeaders): void {
    const code = Number(headers["grpc-status"] ?? Status.UNKNOWN);
    if (code === Status.OK) {
      this.#settle(undefined);
      return;
    }
    const raw = headers["grpc-message"];
    const details = raw === undefined ? "" : decodeGrpcMessage(String(raw));
    const bin = headers["grpc-status-details-bin"];
    this.#settle(new GrpcStatusError(code, details, bin === undefined ? undefined : Buffer.from(String(bin), "base64"), true));
  }
}

/** The error behind a stream's cancellation by its broken session, if any. */
function causeOf(e: Error | undefined): Error | undefined {
  if (!e) return undefined;
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error ? cause : (e as { code?: string }).code === "ERR_HTTP2_STREAM_CANCEL" ? undefined : e;
}

/**
 * One HTTP/2 connection to a gRPC server, opened on first use with the
 * caller's dialer and opened again after it breaks.
 */
export class H2Channel {
  readonly #dial: () => Duplex;
  readonly #authority: string;
  #conn: { session: http2.ClientHttp2Session; error?: Error } | undefined;
  #closed = false;
  #active = 0;

  constructor(dial: () => Duplex, authority: string) {
    this.#dial = dial;
    this.#authority = authority;
  }

  #connection(): { session: http2.ClientHttp2Session; error?: Error } {
    const current = this.#conn;
    if (current && !current.session.closed && !current.session.destroyed) return current;
    const session = http2.connect(`http://${this.#authority}`, {
      createConnection: () => this.#dial(),
      // Large windows: a context upload is many megabytes through one stream.
      settings: { enablePush: false, initialWindowSize: 4 << 20 },
      maxSessionMemory: 64,
    });
    const conn: { session: http2.ClientHttp2Session; error?: Error } = { session };
    session.on("error", (e: Error) => {
      conn.error = e;
    });
    session.on("connect", () => session.setLocalWindowSize(16 << 20));
    this.#conn = conn;
    return conn;
  }

  /** Starts a call to `path` (e.g. "/moby.buildkit.v1.Control/Info"). */
  call(path: string, metadata: Metadata, options: CallOptions = {}): ClientCall {
    if (this.#closed) throw new GrpcStatusError(Status.UNAVAILABLE, "the connection is closed");
    const conn = this.#connection();
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "bk-build",
      ...metadata,
    };
    if (options.deadline) headers["grpc-timeout"] = `${Math.max(1, options.deadline.getTime() - Date.now())}m`;
    const stream = conn.session.request(headers, { endStream: false });
    const call = new ClientCall(stream, () => conn.error, options);
    // An idle connection does not keep the process alive (as grpc-js and
    // Node's HTTP agents): only open calls do.
    if (this.#active++ === 0) conn.session.ref();
    const done = (): void => {
      if (--this.#active === 0 && !conn.session.destroyed) conn.session.unref();
    };
    call.status.then(done, done);
    if (options.signal?.aborted) call.cancel();
    return call;
  }

  /** Closes the connection; calls still open are cut after a short grace. */
  close(): void {
    this.#closed = true;
    const s = this.#conn?.session;
    if (!s || s.destroyed) return;
    s.close();
    const timer = setTimeout(() => s.destroy(), 2000);
    timer.unref();
    s.once("close", () => clearTimeout(timer));
  }
}
