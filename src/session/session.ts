/**
 * A BuildKit session: the client's gRPC server, served to buildkitd over the
 * Control.Session byte pipe (buildkitd is the HTTP/2 client on that pipe).
 */
import { randomBytes } from "node:crypto";
import { Duplex } from "node:stream";
import type { Connection } from "../transport/connection.js";
import type { ClientCall } from "../transport/h2-client.js";
import { codec } from "../transport/proto.js";
import { SessionServer, type SessionService } from "./grpc-server.js";
import { Writer, varintSize } from "./protobuf-writer.js";

export type { SessionService } from "./grpc-server.js";

/** Pipe bytes are sent as one BytesMessage per event loop turn, or sooner past this size. */
const FLUSH_BYTES = 256 * 1024;

const HEADER_UUID = "x-docker-expose-session-uuid";
const HEADER_SHARED_KEY = "x-docker-expose-session-sharedkey";
const HEADER_METHOD = "x-docker-expose-session-grpc-method";

/** A random id in the style of buildkit's identity.NewID (25 base36 chars). */
export function newId(): string {
  const bytes = randomBytes(17);
  let n = BigInt("0x" + bytes.toString("hex"));
  let s = "";
  while (s.length < 25) {
    s += (n % 36n).toString(36);
    n /= 36n;
  }
  return s;
}

function healthService(): SessionService {
  return {
    name: "grpc.health.v1.Health",
    unary: {
      Check: () => Promise.resolve({ status: "SERVING" }),
    },
    streams: {
      Watch: async (call) => {
        await call.send({ status: "SERVING" });
        await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve(), { once: true }));
      },
    },
  };
}

/** Encodes a BytesMessage (field 1, bytes) holding `chunks` back to back. */
function bytesMessage(chunks: readonly Buffer[], size: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(size) + size));
  w.buf[w.pos++] = 0x0a;
  w.varint(size);
  for (const c of chunks) w.raw(c);
  return w.buf;
}

export interface SessionOptions {
  /** Services besides Health, which is always served. */
  services: SessionService[];
  /**
   * Key under which buildkitd caches what this session's local directories
   * sent; a stable key per directory makes the next build send only changes.
   */
  sharedKey: string;
}

export class Session {
  readonly id = newId();
  readonly sharedKey: string;
  /** Advertised methods, derived from the registered services. */
  readonly methods: string[];
  readonly #server: SessionServer;
  #call: ClientCall | undefined;
  #done: Promise<void> | undefined;
  #closing = false;
  /** Sends what the pipe has buffered but not yet written to the call. */
  #flush: () => void = () => undefined;

  constructor(options: SessionOptions) {
    this.sharedKey = options.sharedKey;
    this.#server = new SessionServer([healthService(), ...options.services]);
    this.methods = this.#server.methods;
  }

  /**
   * Opens the session on the daemon and serves it; `ended` settles when the
   * daemon or close() ends it.
   */
  start(conn: Connection): void {
    const call = conn.bidi("Control.Session", {
      [HEADER_UUID]: this.id,
      [HEADER_SHARED_KEY]: this.sharedKey,
      [HEADER_METHOD]: this.methods,
    });
    this.#call = call;
    // HTTP/2 writes many frames; sending each as its own BytesMessage costs a
    // gRPC message apiece on both sides. What one event loop turn writes
    // leaves as one message (sooner past FLUSH_BYTES), encoded here in a
    // single copy.
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
      const bytes = bytesMessage(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      if (!call.write(bytes) && !congested) {
        congested = true;
        call.onceDrained(drained);
      }
    };
    this.#flush = flush;
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
    const bytesCodec = codec<{ data: Buffer }>("moby.buildkit.v1.BytesMessage");
    call.onMessage((m) => {
      const { data } = bytesCodec.decode(m);
      if (data.length && !pipe.push(data)) call.pause();
    });
    this.#done = call.status.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      pipe.push(null);
    });
    // Node's HTTP/2 reads a few socket properties of the connection.
    Object.assign(pipe, { remoteAddress: "buildkitd", remotePort: 0, setNoDelay: () => pipe, setKeepAlive: () => pipe, setTimeout: () => pipe });
    this.#server.serve(pipe);
  }

  /**
   * Settles when the pipe ends; `unexpected` is true when that happened
   * without close() (the daemon dropped the session, or the connection broke).
   */
  get ended(): Promise<{ unexpected: boolean }> {
    return (this.#done ?? Promise.resolve()).then(() => ({ unexpected: !this.#closing }));
  }

  /** Ends the session: stops serving, sends what is buffered, half-closes the pipe. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    const call = this.#call;
    if (!call) return;
    this.#call = undefined;
    this.#server.close();
    this.#flush();
    call.end();
    const timer = setTimeout(() => call.cancel(), 2000);
    await this.#done;
    clearTimeout(timer);
  }
}
