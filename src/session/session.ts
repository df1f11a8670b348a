/**
 * A BuildKit session: the client's gRPC server, served to buildkitd over the
 * Control.Session byte pipe (buildkitd is the HTTP/2 client on that pipe).
 */
import { randomBytes } from "node:crypto";
import type { BuildKitError } from "../errors.js";
import type { Connection } from "../transport/connection.js";
import type { ClientCall } from "../grpc/client.js";
import { SessionServer, type SessionService } from "../grpc/server.js";
import { hijack } from "../transport/hijack.js";
import { healthService } from "./health.js";

export type { SessionService } from "../grpc/server.js";

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
    call.status.catch((e: unknown) => {
      this.#error = conn.translate(e, "Control.Session");
    });
    const { pipe, flush, done } = hijack(call);
    this.#flush = flush;
    this.#done = done;
    this.#server.serve(pipe);
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
   * Ends the session: stops serving, sends what is buffered, half-closes the
   * pipe, and waits up to `graceMs` for buildkitd to end it too before
   * cancelling the call. Idempotent.
   */
  async close(graceMs = 2000): Promise<void> {
    this.#closing = true;
    const call = this.#call;
    if (!call) return;
    this.#call = undefined;
    this.#server.close();
    this.#flush();
    call.end();
    const timer = setTimeout(() => call.cancel(), graceMs);
    await this.#done;
    clearTimeout(timer);
  }
}
