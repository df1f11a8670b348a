/**
 * The gRPC server a session runs for buildkitd, on Node's own HTTP/2 over the
 * Control.Session byte pipe (buildkitd is the HTTP/2 client there).
 *
 * Why not grpc-js' server: it hands each outgoing message to HTTP/2 as its own
 * write and waits for that write to finish before taking the next one, so a
 * file sync of 10,000 tiny STAT packets costs 10,000 trips through the event
 * loop. Here a handler's messages are framed into the stream as they come and
 * leave together, in one vectored write per event loop turn.
 *
 * Only what buildkitd's session client uses is implemented: unary and
 * streaming calls, identity encoding (no compression), trailers with
 * grpc-status and grpc-message.
 */
import * as http2 from "node:http2";
import type { Duplex } from "node:stream";
import { codec, type Codec } from "./codec.js";
import { methodTypes } from "./codec.js";
import { Queue } from "../queue.js";
import { GrpcStatusError, MessageReader, Status, encodeGrpcMessage, frame, prefix } from "./frame.js";

export { GrpcStatusError, Status, encodeGrpcMessage } from "./frame.js";

/** What every call offers its handler. */
export interface CallContext {
  /** Request header values; repeated fields are returned in order. */
  metadata(key: string): string[];
  /** Aborted when buildkitd cancels the call or the session ends. */
  readonly signal: AbortSignal;
}

/** A streaming call (client, server or both directions). */
export interface StreamCall<In = unknown> extends CallContext, AsyncIterable<In> {
  /**
   * Sends one message. Resolves at once unless much is still queued, so a
   * producer may loop without waiting on every message.
   */
  send(message: object): Promise<void>;
  /**
   * Sends one message given as encoded parts, concatenated on the wire but
   * never copied here (for large payloads).
   */
  sendEncoded(parts: readonly Buffer[]): Promise<void>;
}

export type UnaryHandler = (request: unknown, call: CallContext) => Promise<object>;
export type StreamHandler = (call: StreamCall) => Promise<void>;

/** One service: its full proto name and a handler per method it implements. */
export interface SessionService {
  name: string;
  unary?: Record<string, UnaryHandler>;
  streams?: Record<string, StreamHandler>;
}

/** Messages up to this size are copied into one buffer with their prefix. */
const SMALL_MESSAGE = 4096;
/** Past this many queued bytes, send() waits for HTTP/2 to take them. */
const QUEUE_LIMIT = 1 << 20;

interface Route {
  request: Codec;
  response: Codec;
  unary?: UnaryHandler;
  stream?: StreamHandler;
}

/**
 * A request header's values. buildkitd sends one header field per value,
 * but Node's HTTP/2 joins repeated fields with ", ", so they are split there
 * again. (A value that itself contains ", " cannot be told apart; buildkitd
 * escapes commas only in its `-encoded` lists.)
 */
export function headerValues(headers: http2.IncomingHttpHeaders, key: string): string[] {
  const v = headers[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(", ")).filter((s) => s !== "");
}

export class SessionServer {
  /** The advertised method paths, derived from the registered handlers. */
  readonly methods: string[] = [];
  readonly #routes = new Map<string, Route>();
  readonly #server: http2.Http2Server;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  readonly #closed = new AbortController();

  constructor(services: readonly SessionService[]) {
    for (const svc of services) {
      const add = (method: string, handler: { unary: UnaryHandler } | { stream: StreamHandler }): void => {
        const types = methodTypes(svc.name, method);
        if ("unary" in handler && (types.requestStream || types.responseStream)) {
          throw new Error(`${svc.name}/${method} is a streaming method`);
        }
        const path = `/${svc.name}/${method}`;
        this.#routes.set(path, { request: codec(types.requestType), response: codec(types.responseType), ...handler });
        this.methods.push(path);
      };
      for (const [method, unary] of Object.entries(svc.unary ?? {})) add(method, { unary });
      for (const [method, stream] of Object.entries(svc.streams ?? {})) add(method, { stream });
    }
    this.#server = http2.createServer({
      maxSessionMemory: 64,
    });
    this.#server.on("session", (s) => {
      this.#sessions.add(s);
      s.on("close", () => this.#sessions.delete(s));
      s.on("error", () => undefined);
    });
    this.#server.on("stream", (stream, headers) => this.#dispatch(stream, headers));
  }

  /** Serves one HTTP/2 connection arriving over `pipe`. */
  serve(pipe: Duplex): void {
    this.#server.emit("connection", pipe);
  }

  /** Cancels running calls and closes the connections (GOAWAY). */
  close(): void {
    this.#closed.abort();
    for (const s of this.#sessions) s.close();
  }

  #dispatch(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const path = String(headers[":path"] ?? "");
    const route = this.#routes.get(path);
    stream.on("error", () => undefined);
    if (!route) {
      this.#trailersOnly(stream, Status.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const ac = new AbortController();
    const onClosed = (): void => ac.abort();
    this.#closed.signal.addEventListener("abort", onClosed, { once: true });
    const metadata = (key: string): string[] => headerValues(headers, key);

    let headersSent = false;
    const sendHeaders = (): void => {
      if (headersSent) return;
      headersSent = true;
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    };
    const finish = (code: number, message: string): void => {
      if (stream.closed || stream.destroyed) return;
      if (!headersSent) {
        this.#trailersOnly(stream, code, message);
        return;
      }
      stream.once("wantTrailers", () => {
        const trailers: http2.OutgoingHttpHeaders = { "grpc-status": String(code) };
        if (message) trailers["grpc-message"] = encodeGrpcMessage(message);
        stream.sendTrailers(trailers);
      });
      stream.end();
    };
    const fail = (e: unknown): void => {
      if (e instanceof GrpcStatusError) finish(e.code, e.message);
      else finish(ac.signal.aborted ? Status.CANCELLED : Status.UNKNOWN, e instanceof Error ? e.message : String(e));
    };

    // Inbound messages, decoded, as an async queue.
    const reader = new MessageReader();
    const inbox = new Queue<unknown>();
    stream.on("data", (chunk: Buffer) => {
      try {
        for (const m of reader.push(chunk)) inbox.push(route.request.decode(m));
      } catch (e) {
        inbox.close(e);
        stream.pause();
      }
    });
    stream.on("end", () => inbox.close());
    stream.on("close", () => {
      this.#closed.signal.removeEventListener("abort", onClosed);
      ac.abort();
      inbox.close();
    });
    if (route.unary) {
      const handler = route.unary;
      void (async () => {
        let request: unknown;
        for await (const m of inbox) {
          if (request === undefined) request = m;
        }
        if (request === undefined) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "no request message");
        const response = await handler(request, { metadata, signal: ac.signal });
        sendHeaders();
        const body = route.response.encode(response);
        stream.write(frame([body], body.length));
        finish(Status.OK, "");
      })().catch(fail);
      return;
    }

    // Streaming: frames are corked and leave together once per event loop
    // turn (or at once past the queue limit), in one vectored write.
    let corked = false;
    /** One wait for 'drain' shared by every sender on this call. */
    let drained: Promise<void> | undefined;
    const uncork = (): void => {
      if (!corked) return;
      corked = false;
      stream.uncork();
    };
    const sendEncoded = async (parts: readonly Buffer[]): Promise<void> => {
      if (ac.signal.aborted || stream.closed || stream.destroyed) throw new GrpcStatusError(Status.CANCELLED, "call ended");
      sendHeaders();
      if (!corked) {
        corked = true;
        stream.cork();
        setImmediate(uncork);
      }
      let size = 0;
      for (const p of parts) size += p.length;
      if (size <= SMALL_MESSAGE) {
        // One buffer per small message: fewer chunks for the vectored write.
        stream.write(frame(parts, size));
      } else {
        stream.write(prefix(size));
        for (const p of parts) if (p.length) stream.write(p);
      }
      if (stream.writableLength > QUEUE_LIMIT) {
        uncork();
        if (stream.writableLength > QUEUE_LIMIT) {
          drained ??= new Promise<void>((resolve) => {
            const done = (): void => {
              stream.off("drain", done);
              stream.off("close", done);
              drained = undefined;
              resolve();
            };
            stream.on("drain", done);
            stream.on("close", done);
          });
          await drained;
        }
      }
    };
    const call: StreamCall = {
      metadata,
      signal: ac.signal,
      [Symbol.asyncIterator]: () => inbox[Symbol.asyncIterator](),
      sendEncoded,
      send: (message) => sendEncoded([route.response.encode(message)]),
    };
    void route.stream!(call).then(() => {
      uncork();
      finish(Status.OK, "");
    }, (e: unknown) => {
      uncork();
      fail(e);
    });
  }

  #trailersOnly(stream: http2.ServerHttp2Stream, code: number, message: string): void {
    if (stream.closed || stream.destroyed || stream.headersSent) return;
    const headers: http2.OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc", "grpc-status": String(code) };
    if (message) headers["grpc-message"] = encodeGrpcMessage(message);
    stream.respond(headers, { endStream: true });
  }
}
