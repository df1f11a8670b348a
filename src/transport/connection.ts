import * as net from "node:net";
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import { BuildKitError, ConnectionError, SolveError, UsageError } from "../errors.js";
import { decodeErrorDetails } from "./error-details.js";
import { bareHost, type ParsedAddress, type ResolvedTls } from "./address.js";
import { codec, methodTypes, type Codec } from "../grpc/codec.js";
import { GrpcStatusError, MAX_MESSAGE_BYTES, Status, statusName } from "../grpc/frame.js";
import { Queue } from "../queue.js";
import { H2Channel, TransportError, type CallOptions, type ClientCall, type KeepaliveOptions, type Metadata } from "../grpc/client.js";
import type { ContentMethods, ControlMethods, LLBBridgeMethods, MethodKind } from "../gen/methods.js";
import type { EngineHandle } from "./engine-handle.js";
import { withDeferredCa } from "./extra-ca.js";

const CONTROL = "moby.buildkit.v1.Control";
/** The daemon's read-only content store (history blobs), served on the same connection as Control. */
const CONTENT = "containerd.services.content.v1.Content";
const BRIDGE = "moby.buildkit.v1.frontend.LLBBridge";
/** The header that ties a gateway call to the build (Control.Solve's Ref) it serves. */
export const BUILD_ID_HEADER = "buildkit-controlapi-buildid";

/**
 * A method of the daemon's Control service (or of its content store,
 * "Content.Read" style) of the given kinds, named "Control.Info" style.
 */
export type ControlMethod<K extends MethodKind = MethodKind> =
  | {
      [N in keyof ControlMethods]: ControlMethods[N]["kind"] extends K ? `Control.${N}` : never;
    }[keyof ControlMethods]
  | {
      [N in keyof ContentMethods]: ContentMethods[N]["kind"] extends K ? `Content.${N}` : never;
    }[keyof ContentMethods];
type ControlSpec<M extends ControlMethod> = M extends `Control.${infer N extends keyof ControlMethods}`
  ? ControlMethods[N]
  : M extends `Content.${infer N extends keyof ContentMethods}`
    ? ContentMethods[N]
    : never;
/** What a Control method is sent (the generated input type). */
export type ControlRequest<M extends ControlMethod> = ControlSpec<M>["req"];
/** What a Control method answers (the generated __Output type). */
export type ControlResponse<M extends ControlMethod> = ControlSpec<M>["res"];

/** A gateway (LLBBridge) method, named "LLBBridge.Ping" style. */
export type BridgeMethod = `LLBBridge.${keyof LLBBridgeMethods}`;
type BridgeSpec<M extends BridgeMethod> = LLBBridgeMethods[M extends `LLBBridge.${infer N extends keyof LLBBridgeMethods}` ? N : never];
export type BridgeRequest<M extends BridgeMethod> = BridgeSpec<M>["req"];
export type BridgeResponse<M extends BridgeMethod> = BridgeSpec<M>["res"];

/** How often a refused call (the server going away) is tried again on a new connection. */
const REFUSED_RETRIES = 2;

/**
 * Calls that change nothing on the daemon: one that was lost before any
 * answer (a connection the daemon had already closed, noticed too late) is
 * tried once more on a new connection, as HTTP clients do for idempotent
 * requests on a reused connection.
 */
const IDEMPOTENT = new Set(["Control.Info", "Control.ListWorkers", "Control.DiskUsage", "Control.ListenBuildHistory", "Content.Read"]);

function retryable(e: unknown, method: string, attempt: number): boolean {
  if (!(e instanceof TransportError)) return false;
  if (e.kind === "refused") return attempt < REFUSED_RETRIES;
  return e.kind === "lost" && !e.facts.answered && IDEMPOTENT.has(method) && attempt === 0;
}

/** Opens the byte stream to buildkitd for an address (unix socket, TCP, TLS). */
export function dialer(addr: ParsedAddress, tlsOptions: ResolvedTls | undefined): () => Duplex {
  if (addr.kind === "unix") return () => net.connect(addr.path);
  if (addr.kind === "ssh") throw new Error("internal: ssh:// addresses dial through sshDialer");
  if (addr.kind === "container") throw new Error("internal: container addresses dial through the Engine API (docker/container.ts)");
  const host = bareHost(addr.host);
  if (!tlsOptions) return () => net.connect(addr.port, host);
  const serverName = tlsOptions.serverName;
  return () =>
    tls.connect(
      withDeferredCa({
        host,
        port: addr.port,
        ...(tlsOptions.ca ? { ca: tlsOptions.ca } : {}),
        ...(tlsOptions.cert ? { cert: tlsOptions.cert } : {}),
        ...(tlsOptions.key ? { key: tlsOptions.key } : {}),
        ALPNProtocols: ["h2"],
        // SNI only for names (RFC 6066 forbids addresses); the certificate is
        // always checked against the expected server name.
        ...(net.isIP(serverName) ? {} : { servername: serverName }),
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
      }),
    );
}

/**
 * Opens a session's byte stream some other way than Control.Session: the
 * Docker Engine's `POST /session` upgrade, sent with these headers.
 */
export type SessionOpener = (headers: Array<[string, string]>, signal: AbortSignal) => Promise<Duplex>;

export interface ConnectionOptions {
  /** Replaces the address's own dialer (ssh:// uses this). */
  dial?: (() => Duplex) | undefined;
  /** Called once the connection is closed (ssh:// closes its SSH client). */
  onClose?: (() => void) | undefined;
  /** HTTP/2 keepalive pings; off when undefined. */
  keepalive?: KeepaliveOptions | undefined;
  /** HTTP/2 :authority; default from the address. */
  authority?: string | undefined;
  /** What errors call the daemon; default "buildkitd" (a Docker Engine: "the Docker Engine"). */
  daemon?: string | undefined;
  /** Sessions open their own socket this way instead of Control.Session (a Docker Engine's /session). */
  openSession?: SessionOpener | undefined;
  /** Set when the daemon is a Docker Engine: builds adapt their exporters to it. */
  engine?: EngineHandle | undefined;
}

interface Method {
  path: string;
  request: Codec;
  response: Codec;
}

/** A connection to one buildkitd and typed helpers to call its Control service. */
export class Connection {
  readonly address: string;
  /** Set when sessions do not run over Control.Session (see ConnectionOptions). */
  readonly openSession: SessionOpener | undefined;
  /** The Docker Engine this connection reaches, if it is one. */
  engine: EngineHandle | undefined;
  readonly #channel: H2Channel;
  readonly #methods = new Map<ControlMethod | BridgeMethod, Method>();
  readonly #onClose: (() => void) | undefined;
  /** Teardowns that outlive their build; close() lets them finish first. */
  readonly #ending = new Set<Promise<void>>();
  readonly #daemon: string;

  /** What messages call the daemon: "buildkitd" or "the Docker Engine". */
  get daemon(): string {
    return this.#daemon;
  }

  constructor(addr: ParsedAddress, tlsOptions: ResolvedTls | undefined, options: ConnectionOptions = {}) {
    this.address = addr.address;
    this.#onClose = options.onClose;
    this.openSession = options.openSession;
    this.engine = options.engine;
    this.#daemon = options.daemon ?? "buildkitd";
    const dial = options.dial ?? dialer(addr, tlsOptions);
    const authority = options.authority ?? (addr.kind === "tcp" ? (tlsOptions ? tlsOptions.serverName : `${addr.host}:${addr.port}`) : "localhost");
    this.#channel = new H2Channel(dial, authority, options.keepalive);
  }

  /** Path and codecs of a method named "Control.Info" (or "LLBBridge.Ping") style. */
  #method(method: ControlMethod | BridgeMethod): Method {
    let m = this.#methods.get(method);
    if (!m) {
      const [prefix, name] = method.split(".") as [string, string];
      const service = prefix === "Content" ? CONTENT : prefix === "LLBBridge" ? BRIDGE : CONTROL;
      const t = methodTypes(service, name);
      m = { path: `/${service}/${name}`, request: codec(t.requestType), response: codec(t.responseType) };
      this.#methods.set(method, m);
    }
    return m;
  }

  /** Encodes a request, refusing one over the message limit before anything is sent. */
  #encode(method: ControlMethod | BridgeMethod, request: object): Buffer {
    const bytes = this.#method(method).request.encode(request);
    if (bytes.length > MAX_MESSAGE_BYTES) {
      throw new BuildKitError(
        `the ${method.replace(/^(Control|LLBBridge)\./, "")} request is ${bytes.length} bytes, over buildkitd's ${MAX_MESSAGE_BYTES >> 20} MiB message limit (large build arguments, labels or attributes?)`,
        { code: "RESOURCE_EXHAUSTED" },
      );
    }
    return bytes;
  }

  #start(method: ControlMethod | BridgeMethod, body: Buffer | undefined, metadata: Metadata, options: CallOptions): ClientCall {
    if (options.signal?.aborted) throw abortError(options.signal);
    const call = this.#channel.call(this.#method(method).path, metadata, options);
    if (body !== undefined) {
      call.write(body);
      call.end();
    }
    return call;
  }

  /** The error to throw for a failed call. */
  translate(e: unknown, method: string, signal?: AbortSignal): BuildKitError {
    if (signal?.aborted) return abortError(signal);
    return translateError(e, this.address, method, this.#daemon);
  }

  /** Calls a unary Control method; a refused call is tried again on a new connection. */
  async unary<M extends ControlMethod<"unary">>(method: M, request: ControlRequest<M>, options: CallOptions = {}): Promise<ControlResponse<M>> {
    return (await this.#unary(method, request, {}, options)) as ControlResponse<M>;
  }

  /**
   * Calls a gateway (LLBBridge) method for the build whose Control.Solve
   * has `buildId` as its Ref (sent in the buildkit-controlapi-buildid header).
   */
  async bridge<M extends BridgeMethod>(method: M, request: BridgeRequest<M>, buildId: string, options: CallOptions = {}): Promise<BridgeResponse<M>> {
    return (await this.#unary(method, request, { [BUILD_ID_HEADER]: buildId }, options)) as BridgeResponse<M>;
  }

  async #unary(method: ControlMethod | BridgeMethod, request: object, metadata: Metadata, options: CallOptions): Promise<unknown> {
    const body = this.#encode(method, request);
    for (let attempt = 0; ; attempt++) {
      let response: Buffer | undefined;
      try {
        const call = this.#start(method, body, metadata, options);
        call.onMessage((m) => {
          response ??= m;
        });
        await call.status;
      } catch (e) {
        if (retryable(e, method, attempt) && !options.signal?.aborted) continue;
        throw this.translate(e, method, options.signal);
      }
      if (!response) throw new BuildKitError(`${method}: buildkitd sent no response message`, { code: "INTERNAL" });
      return this.#method(method).response.decode(response);
    }
  }

  /** Calls a server-streaming Control method. */
  async *serverStream<M extends ControlMethod<"server">>(
    method: M,
    request: ControlRequest<M>,
    options: CallOptions = {},
  ): AsyncGenerator<ControlResponse<M>, void, undefined> {
    const body = this.#encode(method, request);
    const { response } = this.#method(method);
    for (let attempt = 0; ; attempt++) {
      let received = 0;
      let call: ClientCall | undefined;
      try {
        const c = this.#start(method, body, {}, options);
        call = c;
        const queue = new Queue<Buffer>();
        c.onMessage((m) => {
          queue.push(m);
          if (queue.length > 64) c.pause();
        });
        c.status.then(
          () => queue.close(),
          () => queue.close(),
        );
        for await (const m of queue) {
          if (queue.length < 16) c.resume();
          received++;
          yield response.decode(m) as ControlResponse<M>;
        }
        await c.status;
        return;
      } catch (e) {
        // Only before the first message: a retry would repeat what was yielded.
        if (received === 0 && retryable(e, method, attempt) && !options.signal?.aborted) continue;
        throw this.translate(e, method, options.signal);
      } finally {
        call?.cancel();
      }
    }
  }

  /** Opens a bidi-streaming Control method with raw messages (the session pipe). */
  bidi(method: ControlMethod<"bidi">, metadata: Metadata): ClientCall {
    try {
      return this.#start(method, undefined, metadata, {});
    } catch (e) {
      throw this.translate(e, method);
    }
  }

  /**
   * Keeps a teardown that goes on after its build has settled (a session
   * ending after the daemon answered the solve) until it settles; close()
   * waits for it. Its failure is nobody's: it is dropped.
   */
  ending(work: Promise<void>): void {
    const settled: Promise<void> = work.catch(() => undefined).finally(() => this.#ending.delete(settled));
    this.#ending.add(settled);
  }

  /** Closes the connection; resolves when the socket is closed (calls still open are cut after `graceMs`). */
  async close(graceMs?: number): Promise<void> {
    try {
      if (this.#ending.size) await Promise.all(this.#ending);
      await this.#channel.close(graceMs);
    } finally {
      this.#onClose?.();
    }
  }
}

function abortError(signal: AbortSignal): BuildKitError {
  const reason: unknown = signal.reason;
  if (reason instanceof BuildKitError) return reason;
  return new BuildKitError("the operation was aborted", { code: "CANCELLED", cause: reason });
}

/**
 * Turns a failed call into a BuildKitError with one clear line, from the
 * facts of the failure: a dial that failed or reached something that is not
 * buildkitd is a ConnectionError naming the address and the likely fix; a
 * connection lost later says so; statuses the daemon sent keep its message.
 */
export function translateError(e: unknown, address: string, method: string, daemon = "buildkitd"): BuildKitError {
  if (e instanceof BuildKitError) return e;
  if (e instanceof TransportError) return transportFailure(e, address, method, daemon);
  if (!(e instanceof GrpcStatusError)) {
    return new BuildKitError(`${method}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const details = e.message;
  const code = statusName(e.code);
  if (!e.remote) {
    if (e.code === Status.DEADLINE_EXCEEDED) {
      return new ConnectionError(
        `no answer from ${daemon} at ${address} before the timeout; is it ${daemon}, and is it up? (--timeout raises the limit)`,
        address,
        {
          code,
          cause: e,
        },
      );
    }
    return new BuildKitError(details || code, { code, cause: e });
  }
  // A buildkitd older than v0.11 has the Control service but not Info; grpc-go
  // words that "unknown method Info for service moby.buildkit.v1.Control".
  // Any other UNIMPLEMENTED from the server means the service itself is missing.
  if (e.code === Status.UNIMPLEMENTED && method.startsWith("LLBBridge.")) {
    return new BuildKitError(`${daemon} at ${address} has no frontend gateway (${method}: ${details || code}); it is too old for this call`, {
      code,
      cause: e,
    });
  }
  if (e.code === Status.UNIMPLEMENTED && !/unknown method \w+ for service moby\.buildkit\.v1\.Control/i.test(details)) {
    return new ConnectionError(`${address} is a gRPC server but not buildkitd (it has no moby.buildkit.v1.Control service); check the address`, address, {
      code,
      cause: e,
    });
  }
  if (method === "Control.Solve" || method === "LLBBridge.Solve") {
    const d = decodeErrorDetails(e.statusDetails);
    return new SolveError(`failed to solve: ${details || code}`, { code, cause: e, ...d });
  }
  return new BuildKitError(details || code, { code, cause: e });
}

function transportFailure(e: TransportError, address: string, method: string, daemon: string): BuildKitError {
  const cause = e.facts.cause;
  const code = statusName(e.code);
  const hint = daemon === "buildkitd" ? "set --addr or BUILDKIT_HOST to buildkitd's address" : "set --addr or DOCKER_HOST to the Engine's address";
  const fail = (message: string): ConnectionError => new ConnectionError(message, address, { code, cause: e });
  switch (e.kind) {
    case "connect": {
      // A dialer's own error (ssh://) already says what went wrong.
      if (cause instanceof BuildKitError) return cause;
      const why = dialReason(e.facts.nodeCode);
      if (why)
        return fail(
          `cannot connect to ${daemon} at ${address}: ${why}${/refused|no such socket|not a socket|not found|unreachable|timed out/.test(why) ? ` (${hint})` : ""}`,
        );
      const tlsWhy = tlsReason(`${e.facts.nodeCode ?? ""} ${e.message}`);
      if (tlsWhy) return fail(`TLS connection to ${daemon} at ${address} failed: ${tlsWhy}`);
      if (e.facts.nodeCode === "ECONNRESET" || e.facts.nodeCode === "EPIPE") return closedEarly(address, code, e);
      return fail(`cannot connect to ${daemon} at ${address}: ${e.message} (${hint})`);
    }
    case "protocol": {
      const tlsWhy = e.facts.nodeCode ? tlsReason(`${e.facts.nodeCode} ${e.message}`) : undefined;
      if (tlsWhy) return fail(`TLS connection to ${daemon} at ${address} failed: ${tlsWhy}`);
      if (e.facts.cause === undefined && /closed (the (connection|call) )?before/.test(e.message)) return closedEarly(address, code, e);
      return fail(`${address} did not answer as ${daemon} (${e.message}); check the address`);
    }
    case "lost":
      return fail(`connection to ${daemon} at ${address} lost${during(method)}: ${e.message}`);
    case "refused":
      return fail(`${daemon} at ${address} refused the call${during(method)}: it is shutting down or restarting; try again`);
    case "reset":
      return new BuildKitError(`${daemon} at ${address} reset the call${during(method)} (${e.message})`, { code, cause: e });
    case "closed":
      return new UsageError("this BuildKitClient is closed", { cause: e });
  }
}

function during(method: string): string {
  return method === "Control.Solve" || method === "Control.Session" || method === "Control.Status" || method.startsWith("LLBBridge.")
    ? " during the build"
    : "";
}

function closedEarly(address: string, code: string, cause: unknown): ConnectionError {
  const isUnix = address.startsWith("unix://");
  return new ConnectionError(
    `${address} closed the connection before answering as buildkitd; ${isUnix ? "check the address" : "if buildkitd there uses TLS, pass --tlscacert (or --tlsdir); otherwise check the address"}`,
    address,
    { code, cause },
  );
}

/** The reason a dial failed, from Node's error code. */
function dialReason(code: string | undefined): string | undefined {
  switch (code) {
    case "ENOENT":
      return "no such socket; is buildkitd running?";
    case "EACCES":
    case "EPERM":
      return "permission denied on the socket; run as a user who may use it";
    case "ECONNREFUSED":
      return "connection refused; is buildkitd running and listening there?";
    case "ENOTSOCK":
    case "ENOTDIR":
      return "not a socket";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not found";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return "host unreachable";
    case "ETIMEDOUT":
      return "timed out";
    default:
      return undefined;
  }
}

/**
 * A short, actionable reason for a TLS failure reported by Node/OpenSSL, if
 * it is one. OpenSSL's alerts have no codes of their own in Node, so the
 * text is what there is.
 */
export function tlsReason(details: string): string | undefined {
  if (/certificate required/i.test(details)) {
    return "buildkitd requires a client certificate; pass --tlscert and --tlskey (or --tlsdir)";
  }
  if (/unable to verify|self[- ]signed|unable to get (local )?issuer|UNABLE_TO_VERIFY|CERT_UNTRUSTED|DEPTH_ZERO/i.test(details)) {
    return "buildkitd's certificate is not signed by the trusted CA; check --tlscacert (or --tlsdir)";
  }
  if (/does not match|altnames|ERR_TLS_CERT_ALTNAME/i.test(details)) {
    return "buildkitd's certificate is not valid for this host name; check the address or set --tlsservername";
  }
  if (/unknown ca|bad certificate|certificate unknown|decrypt error/i.test(details)) {
    return "buildkitd rejected the client certificate (not signed by a CA it trusts); check --tlscert and --tlskey";
  }
  if (/certificate has expired|CERT_HAS_EXPIRED|not yet valid|CERT_NOT_YET_VALID/i.test(details)) {
    return "a certificate has expired or is not yet valid; check the certificates and the clock";
  }
  if (/wrong version number|SSL routines|ERR_SSL|handshake|alert/i.test(details)) {
    return "the TLS handshake failed (is TLS enabled on buildkitd at this address?); check the TLS options";
  }
  return undefined;
}
