/**
 * A BuildKit session: the client's gRPC server, served to buildkitd over the
 * Control.Session byte pipe (buildkitd is the HTTP/2 client on that pipe).
 */
import { randomBytes } from "node:crypto";
import { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import type { Connection } from "../transport/connection.js";
import { MAX_MESSAGE_BYTES } from "../transport/connection.js";
import { serviceDefinition } from "../transport/proto.js";

/** One service the session serves: its full proto name and handlers. */
export interface SessionService {
  name: string;
  handlers: grpc.UntypedServiceImplementation;
}

/** Pipe writes are sent as one BytesMessage once this much is buffered... */
const FLUSH_BYTES = 64 * 1024;
/** ...or this many milliseconds after the first buffered write. */
const FLUSH_DELAY_MS = 1;

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
    handlers: {
      Check: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: "SERVING" }),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.write({ status: "SERVING" });
      },
    },
  };
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
  readonly #server: grpc.Server;
  #call: grpc.ClientDuplexStream<unknown, unknown> | undefined;
  #injector: ReturnType<grpc.Server["createConnectionInjector"]> | undefined;
  #done: Promise<void> | undefined;
  #closing = false;
  /** Sends what the pipe has buffered but not yet written to the call. */
  #flush: () => void = () => undefined;

  constructor(options: SessionOptions) {
    this.sharedKey = options.sharedKey;
    this.#server = new grpc.Server({
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    });
    const methods: string[] = [];
    for (const svc of [healthService(), ...options.services]) {
      const def = serviceDefinition(svc.name);
      this.#server.addService(def, svc.handlers);
      for (const m of Object.values(def)) methods.push(m.path);
    }
    this.methods = methods;
  }

  /**
   * Opens the session on the daemon and serves it. Resolves once the pipe is
   * established; `done` settles when the daemon or close() ends it.
   */
  start(conn: Connection): void {
    const md = new grpc.Metadata();
    md.set(HEADER_UUID, this.id);
    md.set(HEADER_SHARED_KEY, this.sharedKey);
    for (const m of this.methods) md.add(HEADER_METHOD, m);
    const call = conn.bidi("Control.Session", md);
    this.#call = call;
    // HTTP/2 writes many small frames; sending each as its own BytesMessage
    // costs a gRPC message apiece on both sides (10,100 STAT packets became
    // 10,120 messages). Writes are coalesced for up to 1 ms or 64 KiB, as
    // Go's buffered HTTP/2 writer effectively does.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let scheduled = false;
    // Write callbacks held while the Control.Session call is congested.
    let waiting: Array<() => void> = [];
    let congested = false;
    call.on("drain", () => {
      congested = false;
      const cbs = waiting;
      waiting = [];
      for (const cb of cbs) cb();
    });
    const flush = (): void => {
      scheduled = false;
      if (!batch.length) return;
      const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      if (!call.write({ data })) congested = true;
    };
    this.#flush = flush;
    const pipe = new Duplex({
      read() {
        call.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= FLUSH_BYTES) flush();
        else if (!scheduled) {
          scheduled = true;
          setTimeout(flush, FLUSH_DELAY_MS);
        }
        if (congested) waiting.push(() => cb());
        else cb();
      },
      final(cb) {
        flush();
        call.end();
        cb();
      },
    });
    call.on("data", (m: { data: Buffer }) => {
      if (m.data.length && !pipe.push(m.data)) call.pause();
    });
    this.#done = new Promise<void>((resolve) => {
      const finish = (): void => {
        pipe.push(null);
        resolve();
      };
      call.on("end", finish);
      call.on("error", finish);
      call.on("status", finish);
    });
    // grpc-js' http2 server reads a few socket properties.
    Object.assign(pipe, { remoteAddress: "buildkitd", remotePort: 0, setNoDelay: () => pipe, setKeepAlive: () => pipe, setTimeout: () => pipe });
    this.#injector = this.#server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.#injector.injectConnection(pipe);
  }

  /**
   * Settles when the pipe ends; `unexpected` is true when that happened
   * without close() (the daemon dropped the session, or the connection broke).
   */
  get ended(): Promise<{ unexpected: boolean }> {
    return (this.#done ?? Promise.resolve()).then(() => ({ unexpected: !this.#closing }));
  }

  /** Ends the session: half-closes the pipe, stops serving. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    const call = this.#call;
    if (!call) return;
    this.#call = undefined;
    this.#injector?.drain(1000);
    this.#flush();
    call.end();
    const timer = setTimeout(() => call.cancel(), 2000);
    await this.#done;
    clearTimeout(timer);
    this.#injector?.destroy();
    this.#server.forceShutdown();
  }
}
