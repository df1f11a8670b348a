/**
 * A BuildKit session: the client's gRPC server, served to buildkitd over the
 * Control.Session byte pipe (buildkitd is the HTTP/2 client on that pipe),
 * or, through a Docker Engine, over the socket its `/session` endpoint
 * hands over (the Engine's BuildKit is the HTTP/2 client there too).
 */
import type { Duplex } from "node:stream";
import { BuildKitError } from "../errors.js";
import type { Connection, SessionOpener } from "../transport/connection.js";
import type { ClientCall } from "../grpc/client.js";
import { SessionServer, type SessionService } from "../grpc/server.js";
import { hijack } from "../transport/hijack.js";
import { healthService } from "./health.js";
import { newId } from "./id.js";

export { newId, sessionSharedKey } from "./id.js";

export type { SessionService } from "../grpc/server.js";

const HEADER_UUID = "x-docker-expose-session-uuid";
const HEADER_SHARED_KEY = "x-docker-expose-session-sharedkey";
const HEADER_METHOD = "x-docker-expose-session-grpc-method";
/** Made once: an argument-less abort() builds a DOMException each time. */
const SESSION_CLOSED = new Error("the session closed");

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
  /** Why the Control.Session call failed, as the connection words it. */
  #error: BuildKitError | undefined;
  /** Half-closes the Control.Session call. */
  #endCall: () => void = () => undefined;
  /** For an opened socket: stops an open still under way. */
  #abortOpen: (() => void) | undefined;
  /** For an opened socket: half-closes it, destroying it after `graceMs`. */
  #endSocket: ((graceMs: number) => void) | undefined;

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
    if (conn.openSession) {
      this.#startOn(conn.openSession);
      return;
    }
    const call = conn.bidi("Control.Session", {
      [HEADER_UUID]: this.id,
      [HEADER_SHARED_KEY]: this.sharedKey,
      [HEADER_METHOD]: this.methods,
    });
    this.#call = call;
    call.status.catch((e: unknown) => {
      this.#error = conn.translate(e, "Control.Session");
    });
    const { end, done } = hijack(call, (sink) => this.#server.connection(sink));
    this.#endCall = end;
    this.#done = done;
  }

  /** Serves the session on a socket the opener hands over. */
  #startOn(open: SessionOpener): void {
    const ac = new AbortController();
    const headers: Array<[string, string]> = [
      [HEADER_UUID, this.id],
      [HEADER_SHARED_KEY, this.sharedKey],
      ...this.methods.map((m): [string, string] => [HEADER_METHOD, m]),
    ];
    let socket: Duplex | undefined;
    this.#abortOpen = () => ac.abort(SESSION_CLOSED);
    this.#endSocket = (graceMs) => {
      if (!socket || socket.destroyed) return;
      socket.end();
      const s = socket;
      const timer = setTimeout(() => s.destroy(), graceMs);
      s.once("close", () => clearTimeout(timer));
    };
    this.#done = open(headers, ac.signal).then(
      (s) => {
        socket = s;
        if (this.#closing) s.destroy();
        const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
        s.on("error", (e: Error) => {
          this.#error ??= new BuildKitError(`the session socket failed: ${e.message}`, { code: "UNAVAILABLE", cause: e });
        });
        if (!this.#closing) this.#server.serve(s);
        return closed;
      },
      (e: unknown) => {
        if (!this.#closing)
          this.#error = e instanceof BuildKitError ? e : new BuildKitError(`cannot open the session: ${String(e)}`, { code: "UNAVAILABLE", cause: e });
      },
    );
  }

  /**
   * Settles when the pipe ends; `unexpected` is true when that happened
   * without close() (the daemon dropped the session, or the connection
   * broke: then `error` says how).
   */
  get ended(): Promise<{ unexpected: boolean; error: BuildKitError | undefined }> {
    return (this.#done ?? Promise.resolve()).then(() => ({ unexpected: !this.#closing, error: this.#error }));
  }

  /**
   * Ends the session: stops serving, sends GOAWAY and what is gathered,
   * half-closes the pipe, and waits up to `graceMs` for buildkitd to end it too before
   * cancelling the call. Idempotent.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#endSocket) {
      this.#abortOpen?.();
      this.#server.close();
      this.#endSocket(graceMs);
      await this.#done;
      return;
    }
    const call = this.#call;
    if (!call) return;
    this.#call = undefined;
    this.#server.close();
    this.#endCall();
    const timer = setTimeout(() => call.cancel(), graceMs);
    await this.#done;
    clearTimeout(timer);
  }
}
