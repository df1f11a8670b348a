/**
 * The gRPC server a session runs for buildkitd, on our own HTTP/2 server
 * connection (h2-server.ts) over the Control.Session byte pipe or an
 * Engine's session socket (buildkitd is the HTTP/2 client there).
 *
 * Why not grpc-js' server: it hands each outgoing message to HTTP/2 as its own
 * write and waits for that write to finish before taking the next one, so a
 * file sync of 10,000 tiny STAT packets costs 10,000 trips through the event
 * loop. Here a handler's messages are queued on the stream as they come and
 * leave together, by reference, in one write per event loop turn.
 *
 * Only what buildkitd's session client uses is implemented: unary and
 * streaming calls, identity encoding (no compression), trailers with
 * grpc-status and grpc-message.
 */
import type { Duplex } from "node:stream";
import { Socket } from "node:net";
import { codec, type Codec } from "./codec.js";
import { methodTypes } from "./codec.js";
import type { MethodKind, SessionMethods } from "../gen/methods.js";
import { Queue } from "../queue.js";
import { H2ServerConnection, type FrameSink, type H2Stream } from "./h2-server.js";
import { setMaxListeners } from "node:events";
import { debuglog } from "node:util";
import { GrpcStatusError, MessageReader, Status, encodeGrpcMessage, frame, prefix, statusName } from "./frame.js";

/** NODE_DEBUG=bk-build: calls the daemon makes on the session and how they end (paths and codes, never payloads). */
const debug = debuglog("bk-build");

export { GrpcStatusError, Status, encodeGrpcMessage } from "./frame.js";

/** What every call offers its handler. */
export interface CallContext {
  /** Request header values; repeated fields are returned in order. */
  metadata(key: string): string[];
  /** The request header names present, lower-case, each once, in order. */
  metadataKeys(): string[];
  /** Aborted when buildkitd cancels the call or the session ends. */
  readonly signal: AbortSignal;
}

/**
 * A streaming call (client, server or both directions): `In` is what the
 * handler receives, `Out` what it sends.
 */
export interface StreamCall<In, Out> extends CallContext, AsyncIterable<In> {
  /**
   * Sends one message. Resolves at once unless much is still queued, so a
   * producer may loop without waiting on every message.
   */
  send(message: Out): Promise<void>;
  /**
   * Sends one message given as encoded parts, concatenated on the wire but
   * never copied here (for large payloads). `released`, if given, is called
   * once the call holds none of the parts any more (written, copied, or the
   * stream gone), so their memory may be used again.
   */
  sendEncoded(parts: readonly Buffer[], released?: () => void): Promise<void>;
  /** Sends the messages a FrameBatch framed (its take()), in a single write. */
  sendFrames(framed: Buffer): Promise<void>;
}

/** A service buildkitd may call on a session, by full name. */
export type SessionServiceName = keyof SessionMethods;
type MethodsOf<S extends SessionServiceName> = SessionMethods[S];
/** The names of a service's methods of the given kinds. */
export type MethodName<S extends SessionServiceName, K extends MethodKind> = {
  [M in keyof MethodsOf<S>]: MethodsOf<S>[M] extends { kind: K } ? M : never;
}[keyof MethodsOf<S>];
type Method<S extends SessionServiceName, M> = MethodsOf<S>[M & keyof MethodsOf<S>] & { req: unknown; res: unknown };
type StreamingKind = Exclude<MethodKind, "unary">;

export type UnaryHandler<Req, Res> = (request: Req, call: CallContext) => Promise<Res>;
export type StreamHandler<In, Out> = (call: StreamCall<In, Out>) => Promise<void>;
/** The call a streaming method's handler gets, e.g. ServiceCall<"moby.sshforward.v1.SSH", "ForwardAgent">. */
export type ServiceCall<S extends SessionServiceName, M extends MethodName<S, StreamingKind>> = StreamCall<Method<S, M>["req"], Method<S, M>["res"]>;

type UnaryHandlers<S extends SessionServiceName> = {
  [M in MethodName<S, "unary">]?: UnaryHandler<Method<S, M>["req"], Method<S, M>["res"]>;
};
type StreamHandlers<S extends SessionServiceName> = {
  [M in MethodName<S, StreamingKind>]?: StreamHandler<Method<S, M>["req"], Method<S, M>["res"]>;
};

/**
 * Handlers for some of a service's methods, typed from the proto: a request
 * is the decoded message (`X__Output`), a unary handler returns the response
 * message (`X`). Methods left out answer UNIMPLEMENTED. A service without
 * methods of a kind takes no handlers of that kind.
 */
export interface ServiceHandlers<S extends SessionServiceName> {
  unary?: [MethodName<S, "unary">] extends [never] ? never : UnaryHandlers<S>;
  streams?: [MethodName<S, StreamingKind>] extends [never] ? never : StreamHandlers<S>;
  /**
   * Streaming methods whose messages the handler takes and sends as raw
   * bodies, undecoded: for a method whose declared type is not what travels
   * (FileSend/DiffCopy carries fsutil packets for the local exporter).
   */
  raw?: [MethodName<S, StreamingKind>] extends [never] ? never : { [M in MethodName<S, StreamingKind>]?: StreamHandler<Buffer, Buffer> };
}

/** Keys of any member of T that Shape does not have. */
type ExcessKeys<T, Shape> = T extends unknown ? Exclude<keyof T, keyof Shape> : never;
/**
 * TypeScript does not check a returned object literal for properties its
 * declared return type lacks, so `{ Username, Secrett }` would pass as a
 * CredentialsResponse (and the secret be dropped by the encoder). This turns
 * such a property's type into never, so it fails to compile.
 */
type ExactReturns<S extends SessionServiceName, H> = H extends { unary?: infer U }
  ? {
      unary?: {
        [M in keyof U]: M extends MethodName<S, "unary">
          ? U[M] extends (...args: infer A) => Promise<infer R>
            ? [ExcessKeys<R, Method<S, M>["res"]>] extends [never]
              ? U[M]
              : (...args: A) => Promise<{ [K in ExcessKeys<R, Method<S, M>["res"]>]: never }>
            : U[M]
          : U[M];
      };
    }
  : unknown;

type AnyUnary = UnaryHandler<unknown, object>;
type AnyStream = StreamHandler<unknown, object>;

/** One service: its full proto name and a handler per method it implements. Made by defineService. */
export class SessionService {
  readonly name: SessionServiceName;
  /** Handlers by method name, their types erased (defineService checked them). */
  readonly unary: ReadonlyMap<string, AnyUnary>;
  readonly streams: ReadonlyMap<string, AnyStream>;
  /** Streaming handlers that see raw message bodies. */
  readonly raw: ReadonlyMap<string, StreamHandler<Buffer, Buffer>>;

  private constructor(
    name: SessionServiceName,
    unary: ReadonlyMap<string, AnyUnary>,
    streams: ReadonlyMap<string, AnyStream>,
    raw: ReadonlyMap<string, StreamHandler<Buffer, Buffer>>,
  ) {
    this.name = name;
    this.unary = unary;
    this.streams = streams;
    this.raw = raw;
  }

  /** See defineService. */
  static define<S extends SessionServiceName, H extends ServiceHandlers<S>>(name: S, handlers: H & NoInfer<ExactReturns<S, H>>): SessionService {
    // The one place the handlers' types are erased: the server decodes each
    // request with the method's own message type (the matching __Output
    // shape) and encodes what the handler returns with the response type.
    const entries = (o: object | undefined): Array<[string, unknown]> => Object.entries(o ?? {}).filter(([, h]) => h !== undefined);
    return new SessionService(
      name,
      new Map(entries(handlers.unary) as Array<[string, AnyUnary]>),
      new Map(entries(handlers.streams) as Array<[string, AnyStream]>),
      new Map(entries(handlers.raw) as Array<[string, StreamHandler<Buffer, Buffer>]>),
    );
  }
}

/**
 * A session service with handlers checked against the proto
 * (SessionMethods): a method that does not exist, or is under the wrong
 * kind, does not compile, nor does a handler taking or returning the wrong
 * messages.
 *
 * ```ts
 * defineService("moby.buildkit.secrets.v1.Secrets", {
 *   unary: { GetSecret: async (req) => ({ data: await read(req.ID) }) },
 * });
 * ```
 */
export const defineService: typeof SessionService.define = (name, handlers) => SessionService.define(name, handlers);

/** Message bodies as they are (raw handlers). */
const rawCodec: Codec = {
  encode: (value) => value as Buffer,
  decode: (bytes) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
};

/** Bytes of received messages a handler may leave unread before the stream is paused, and the level at which it resumes. */
const INBOX_HIGH_BYTES = 4 << 20;
const INBOX_LOW_BYTES = 1 << 20;

/** Messages up to this size are copied into one buffer with their prefix. */
const SMALL_MESSAGE = 4096;
/** Past this many queued bytes, send() waits for HTTP/2 to take them. */
const QUEUE_LIMIT = 1 << 20;

// Reasons for the aborts that end every call. Made once: an argument-less
// abort() builds a DOMException with a stack each time, a measurable cost
// on the warm build path (several streams close per build).
const STREAM_CLOSED = new Error("the stream closed");
const SERVER_CLOSED = new Error("the session server closed");

interface Route {
  request: Codec;
  response: Codec;
  unary?: AnyUnary;
  stream?: AnyStream;
}

/**
 * A request header's values, in order, from the raw header list
 * ([name, value, name, value, ...]). buildkitd sends one header field per
 * value, and a value may itself contain ", " (an ASCII .dockerignore pattern
 * is sent as it is), so Node's joined `headers` object cannot be used.
 */
export function headerValues(rawHeaders: readonly string[], key: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === key && rawHeaders[i + 1] !== "") out.push(rawHeaders[i + 1]!);
  }
  return out;
}

export class SessionServer {
  /** The advertised method paths, derived from the registered handlers. */
  readonly methods: string[] = [];
  readonly #routes = new Map<string, Route>();
  readonly #connections = new Set<H2ServerConnection>();
  readonly #closed = new AbortController();

  constructor(services: readonly SessionService[]) {
    // One listener per open call: a file sync opens many at once.
    setMaxListeners(0, this.#closed.signal);
    for (const svc of services) {
      const add = (method: string, handler: { unary: AnyUnary } | { stream: AnyStream }, raw = false): void => {
        const types = methodTypes(svc.name, method);
        if ("unary" in handler && (types.requestStream || types.responseStream)) {
          throw new Error(`${svc.name}/${method} is a streaming method`);
        }
        const path = `/${svc.name}/${method}`;
        const request = raw ? rawCodec : codec(types.requestType);
        const response = raw ? rawCodec : codec(types.responseType);
        if (this.#routes.has(path)) throw new Error(`${path} has two handlers`);
        this.#routes.set(path, { request, response, ...handler });
        this.methods.push(path);
      };
      for (const [method, unary] of svc.unary) add(method, { unary });
      for (const [method, stream] of svc.streams) add(method, { stream });
      for (const [method, stream] of svc.raw) add(method, { stream: stream as AnyStream }, true);
    }
  }

  /**
   * A new HTTP/2 connection writing to `sink`; the caller feeds it what
   * arrives (receive, receiveEnd). The Control.Session tunnel uses this.
   */
  connection(sink: FrameSink): H2ServerConnection {
    let conn: H2ServerConnection | undefined = undefined;
    const tracked: FrameSink = {
      write: (parts, size, written) => sink.write(parts, size, written),
      onceDrained: (cb) => sink.onceDrained(cb),
      end: () => {
        if (conn) this.#connections.delete(conn);
        sink.end();
      },
    };
    conn = new H2ServerConnection(
      tracked,
      (stream) => this.#dispatch(stream),
      (message) => debug("session server: connection error: %s", message),
    );
    this.#connections.add(conn);
    if (this.#closed.signal.aborted) conn.goaway();
    return conn;
  }

  /** Serves one HTTP/2 connection arriving over a socket (an Engine's /session, tests). */
  serve(socket: Duplex): void {
    // As Node's HTTP/2 does: with Nagle on, a write waiting on a window
    // update waits for the peer's delayed ACK too (40 ms on Linux).
    if (socket instanceof Socket) socket.setNoDelay(true);
    const conn = this.connection({
      write(parts, _size, written) {
        if (socket.destroyed || socket.writableEnded) {
          written?.();
          return true;
        }
        socket.cork();
        for (let i = 0; i < parts.length; i++) socket.write(parts[i]!, i === parts.length - 1 && written ? () => written() : undefined);
        socket.uncork();
        return !socket.writableNeedDrain;
      },
      onceDrained: (cb) => socket.once("drain", cb),
      end() {
        if (!socket.destroyed && !socket.writableEnded) socket.end();
      },
    });
    socket.on("data", (chunk: Buffer) => conn.receive(chunk));
    socket.on("end", () => conn.receiveEnd());
    socket.on("close", () => conn.receiveEnd());
    socket.on("error", (e: Error) => debug("session server: socket error: %s", e.message));
  }

  /** Cancels running calls and tells the connections to open no more (GOAWAY). */
  close(): void {
    this.#closed.abort(SERVER_CLOSED);
    for (const c of this.#connections) c.goaway();
  }

  #dispatch(stream: H2Stream): void {
    const rawHeaders = stream.rawHeaders;
    const path = headerValues(rawHeaders, ":path")[0] ?? "";
    const route = this.#routes.get(path);
    debug("session server: %s", path);
    if (!route) {
      this.#trailersOnly(stream, Status.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const ac = new AbortController();
    const onClosed = (): void => ac.abort(SERVER_CLOSED);
    this.#closed.signal.addEventListener("abort", onClosed, { once: true });
    const metadata = (key: string): string[] => headerValues(rawHeaders, key);
    const metadataKeys = (): string[] => [...new Set(rawHeaders.filter((_, i) => i % 2 === 0).map((k) => k.toLowerCase()))];

    const sendHeaders = (): void => {
      if (stream.responded) return;
      stream.respond([
        [":status", "200"],
        ["content-type", "application/grpc"],
      ]);
    };
    const finish = (code: number, message: string): void => {
      if (code !== Status.OK) debug("session server: %s ended %s: %s", path, statusName(code), message);
      if (stream.closed) return;
      if (!stream.responded) {
        this.#trailersOnly(stream, code, message);
        return;
      }
      const trailers: Array<[string, string]> = [["grpc-status", String(code)]];
      if (message) trailers.push(["grpc-message", encodeGrpcMessage(message)]);
      stream.end(trailers);
    };
    const fail = (e: unknown): void => {
      if (e instanceof GrpcStatusError) finish(e.code, e.message);
      else finish(ac.signal.aborted ? Status.CANCELLED : Status.UNKNOWN, e instanceof Error ? e.message : String(e));
    };

    // Inbound messages, decoded, as an async queue. A handler that falls
    // behind (a slow disk under an export) pauses the stream, so HTTP/2 flow
    // control holds the daemon back instead of the queue growing.
    const reader = new MessageReader();
    const inbox = new Queue<{ message: unknown; size: number }>();
    let queuedBytes = 0;
    let paused = false;
    stream.onData = (chunk: Buffer) => {
      try {
        for (const m of reader.push(chunk)) {
          queuedBytes += m.length;
          inbox.push({ message: route.request.decode(m), size: m.length });
        }
        if (queuedBytes > INBOX_HIGH_BYTES && !paused) {
          paused = true;
          stream.pause();
        }
      } catch (e) {
        inbox.close(e);
        stream.pause();
      }
    };
    async function* messages(): AsyncGenerator {
      for await (const { message, size } of inbox) {
        queuedBytes -= size;
        if (paused && queuedBytes <= INBOX_LOW_BYTES) {
          paused = false;
          stream.resume();
        }
        yield message;
      }
    }
    stream.onEnd = () => inbox.close();
    stream.onClose = () => {
      this.#closed.signal.removeEventListener("abort", onClosed);
      ac.abort(STREAM_CLOSED);
      inbox.close();
    };
    if (route.unary) {
      const handler = route.unary;
      void (async () => {
        let request: unknown;
        for await (const m of messages()) {
          if (request === undefined) request = m;
        }
        if (request === undefined) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "no request message");
        const response = await handler(request, { metadata, metadataKeys, signal: ac.signal });
        sendHeaders();
        const body = route.response.encode(response);
        stream.write([frame([body], body.length)]);
        finish(Status.OK, "");
      })().catch(fail);
      return;
    }

    // Streaming: messages are queued on the stream, which sends what one
    // event loop turn queued together; past the queue limit, a sender waits.
    const ready = (): void => {
      if (ac.signal.aborted || stream.closed) throw new GrpcStatusError(Status.CANCELLED, "call ended");
      sendHeaders();
    };
    const backpressure = async (): Promise<void> => {
      if (stream.queued <= QUEUE_LIMIT) return;
      await new Promise<void>((resolve) => stream.onceBelow(QUEUE_LIMIT / 2, resolve));
    };
    const sendEncoded = async (parts: readonly Buffer[], released?: () => void): Promise<void> => {
      ready();
      let size = 0;
      for (const p of parts) size += p.length;
      if (size <= SMALL_MESSAGE) {
        // One buffer per small message.
        stream.write([frame(parts, size)]);
        released?.();
      } else stream.write([prefix(size), ...parts], released);
      await backpressure();
    };
    const sendFrames = async (framed: Buffer): Promise<void> => {
      if (framed.length === 0) return;
      ready();
      stream.write([framed]);
      await backpressure();
    };
    const call: StreamCall<unknown, object> = {
      metadata,
      metadataKeys,
      signal: ac.signal,
      [Symbol.asyncIterator]: () => messages(),
      sendEncoded,
      sendFrames,
      send: (message) => sendEncoded([route.response.encode(message)]),
    };
    void route.stream!(call).then(
      () => finish(Status.OK, ""),
      (e: unknown) => fail(e),
    );
  }

  #trailersOnly(stream: H2Stream, code: number, message: string): void {
    if (stream.closed || stream.responded) return;
    const headers: Array<[string, string]> = [
      [":status", "200"],
      ["content-type", "application/grpc"],
      ["grpc-status", String(code)],
    ];
    if (message) headers.push(["grpc-message", encodeGrpcMessage(message)]);
    stream.respond(headers, true);
  }
}
