import * as net from "node:net";
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import { BuildKitError, ConnectionError, SolveError } from "../errors.js";
import { decodeErrorDetails } from "./error-details.js";
import type { ParsedAddress, ResolvedTls } from "./address.js";
import { codec, methodTypes, type Codec } from "../grpc/codec.js";
import { GrpcStatusError, Status, statusName } from "../grpc/frame.js";
import { Queue } from "../queue.js";
import { H2Channel, type CallOptions, type ClientCall, type Metadata } from "../grpc/client.js";
import type { ControlMethods, MethodKind } from "../gen/methods.js";

export type { CallOptions } from "../grpc/client.js";
export { statusName } from "../grpc/frame.js";

const CONTROL = "moby.buildkit.v1.Control";

/** A Control method of the given kinds, named "Control.Info" style. */
export type ControlMethod<K extends MethodKind = MethodKind> = {
  [N in keyof ControlMethods]: ControlMethods[N]["kind"] extends K ? `Control.${N}` : never;
}[keyof ControlMethods];
type ControlSpec<M extends ControlMethod> = ControlMethods[M extends `Control.${infer N extends keyof ControlMethods}` ? N : never];
/** What a Control method is sent (the generated input type). */
export type ControlRequest<M extends ControlMethod> = ControlSpec<M>["req"];
/** What a Control method answers (the generated __Output type). */
export type ControlResponse<M extends ControlMethod> = ControlSpec<M>["res"];

/** Opens the byte stream to buildkitd for an address (unix socket, TCP, TLS). */
export function dialer(addr: ParsedAddress, tlsOptions: ResolvedTls | undefined): () => Duplex {
  if (addr.kind === "unix") return () => net.connect(addr.path);
  if (addr.kind === "ssh") throw new Error("internal: ssh:// addresses dial through sshDialer");
  const host = addr.host.replace(/^\[|\]$/g, "");
  if (!tlsOptions) return () => net.connect(addr.port, host);
  const serverName = tlsOptions.serverName;
  return () =>
    tls.connect({
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
    });
}

/** A connection to one buildkitd and typed helpers to call its Control service. */
export class Connection {
  readonly address: string;
  readonly #channel: H2Channel;
  readonly #methods = new Map<ControlMethod, { path: string; request: Codec; response: Codec }>();

  readonly #onClose: (() => void) | undefined;

  constructor(addr: ParsedAddress, tlsOptions: ResolvedTls | undefined, dial?: () => Duplex, onClose?: () => void) {
    this.address = addr.address;
    this.#onClose = onClose;
    dial ??= dialer(addr, tlsOptions);
    const authority = addr.kind === "tcp" ? (tlsOptions ? tlsOptions.serverName : `${addr.host}:${addr.port}`) : "localhost";
    this.#channel = new H2Channel(dial, authority);
  }

  /** Path and codecs of a Control method named "Control.Info" style. */
  #method(method: ControlMethod): { path: string; request: Codec; response: Codec } {
    let m = this.#methods.get(method);
    if (!m) {
      const name = method.replace(/^Control\./, "");
      const t = methodTypes(CONTROL, name);
      m = { path: `/${CONTROL}/${name}`, request: codec(t.requestType), response: codec(t.responseType) };
      this.#methods.set(method, m);
    }
    return m;
  }

  #start(method: ControlMethod, request: object | undefined, metadata: Metadata, options: CallOptions): ClientCall {
    if (options.signal?.aborted) throw abortError(options.signal);
    const m = this.#method(method);
    const call = this.#channel.call(m.path, metadata, options);
    if (request !== undefined) {
      call.write(m.request.encode(request));
      call.end();
    }
    return call;
  }

  #error(e: unknown, method: string, signal: AbortSignal | undefined): BuildKitError {
    if (signal?.aborted) return abortError(signal);
    return translateError(e, this.address, method);
  }

  /** Calls a unary Control method. */
  async unary<M extends ControlMethod<"unary">>(method: M, request: ControlRequest<M>, options: CallOptions = {}): Promise<ControlResponse<M>> {
    const call = this.#start(method, request, {}, options);
    let response: Buffer | undefined;
    call.onMessage((m) => {
      response ??= m;
    });
    try {
      await call.status;
    } catch (e) {
      throw this.#error(e, method, options.signal);
    }
    if (!response) throw new BuildKitError(`${method}: buildkitd sent no response message`);
    return this.#method(method).response.decode(response) as ControlResponse<M>;
  }

  /** Calls a server-streaming Control method. */
  async *serverStream<M extends ControlMethod<"server">>(method: M, request: ControlRequest<M>, options: CallOptions = {}): AsyncGenerator<ControlResponse<M>> {
    const call = this.#start(method, request, {}, options);
    const { response } = this.#method(method);
    const queue = new Queue<Buffer>();
    call.onMessage((m) => {
      queue.push(m);
      if (queue.length > 64) call.pause();
    });
    call.status.then(
      () => queue.close(),
      () => queue.close(),
    );
    try {
      for await (const m of queue) {
        if (queue.length < 16) call.resume();
        yield response.decode(m) as ControlResponse<M>;
      }
      await call.status;
    } catch (e) {
      throw this.#error(e, method, options.signal);
    } finally {
      call.cancel();
    }
  }

  /** Opens a bidi-streaming Control method with raw messages (the session pipe). */
  bidi(method: ControlMethod<"bidi">, metadata: Metadata): ClientCall {
    return this.#start(method, undefined, metadata, {});
  }

  close(): void {
    this.#channel.close();
    this.#onClose?.();
  }
}

function abortError(signal: AbortSignal): BuildKitError {
  const reason: unknown = signal.reason;
  if (reason instanceof BuildKitError) return reason;
  return new BuildKitError("the operation was aborted", { code: "CANCELLED", cause: reason });
}

/**
 * Turns a failed call into a BuildKitError with one clear line. Transport
 * failures (nothing listening, TLS trouble, not buildkitd) become
 * ConnectionErrors that name the address and the likely fix.
 */
export function translateError(e: unknown, address: string, method: string): BuildKitError {
  if (e instanceof BuildKitError) return e;
  // A dialer's own error (ssh://) already says what went wrong.
  if (e instanceof GrpcStatusError && e.cause instanceof BuildKitError) return e.cause;
  if (!(e instanceof GrpcStatusError)) {
    return new BuildKitError(`${method}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const details = e.message;
  const conn = describeConnectionFailure(e.code, details, address, e.remote);
  if (conn) return new ConnectionError(conn, address, { cause: e });
  if (method === "Control.Solve") {
    const d = decodeErrorDetails(e.statusDetails);
    return new SolveError(`failed to solve: ${details || statusName(e.code)}`, { code: statusName(e.code), cause: e, ...d });
  }
  return new BuildKitError(details || statusName(e.code), { code: statusName(e.code), cause: e });
}

/** A short, actionable reason for a TLS failure reported by Node/OpenSSL, if it is one. */
export function tlsReason(details: string): string | undefined {
  if (/certificate required/i.test(details)) {
    return "buildkitd requires a client certificate; pass --tlscert and --tlskey (or --tlsdir)";
  }
  if (/unable to verify|self[- ]signed|unable to get (local )?issuer|UNABLE_TO_VERIFY|CERT_UNTRUSTED/i.test(details)) {
    return "buildkitd's certificate is not signed by the trusted CA; check --tlscacert (or --tlsdir)";
  }
  if (/does not match|altnames|ERR_TLS_CERT_ALTNAME/i.test(details)) {
    return "buildkitd's certificate is not valid for this host name; check the address or set --tlsservername";
  }
  if (/unknown ca|bad certificate|certificate unknown|decrypt error/i.test(details)) {
    return "buildkitd rejected the client certificate (not signed by a CA it trusts); check --tlscert and --tlskey";
  }
  if (/certificate has expired|CERT_HAS_EXPIRED|not yet valid/i.test(details)) {
    return "a certificate has expired or is not yet valid; check the certificates and the clock";
  }
  if (/wrong version number|SSL routines|ERR_SSL|handshake|alert/i.test(details)) {
    return "the TLS handshake failed (is TLS enabled on buildkitd at this address?); check the TLS options";
  }
  return undefined;
}

function describeConnectionFailure(code: number, details: string, address: string, remote: boolean): string | undefined {
  const isUnix = address.startsWith("unix://");
  const hint = "set --addr or BUILDKIT_HOST to buildkitd's address";
  // An UNAVAILABLE the daemon itself sent (a build step's failure) is not
  // about the connection.
  if (code === Status.UNAVAILABLE && !remote) {
    if (/ENOENT/.test(details)) {
      return `cannot connect to buildkitd at ${address}: no such socket; is buildkitd running? (${hint})`;
    }
    if (/EACCES|EPERM/.test(details)) {
      return `cannot connect to buildkitd at ${address}: permission denied on the socket; run as a user who may use it`;
    }
    if (/ECONNREFUSED/.test(details)) {
      return `cannot connect to buildkitd at ${address}: connection refused; is buildkitd running and listening there? (${hint})`;
    }
    if (/ENOTSOCK|ENOTDIR/.test(details)) {
      return `cannot connect to buildkitd at ${address}: not a socket (${hint})`;
    }
    if (/ENOTFOUND|EAI_AGAIN/.test(details)) {
      return `cannot connect to buildkitd at ${address}: host name not found (${hint})`;
    }
    if (/EHOSTUNREACH|ENETUNREACH/.test(details)) {
      return `cannot connect to buildkitd at ${address}: host unreachable (${hint})`;
    }
    const tls = tlsReason(details);
    if (tls) return `TLS connection to buildkitd at ${address} failed: ${tls}`;
    if (/Protocol error|PROTOCOL_ERROR|ERR_HTTP2|preface|socket hang up/i.test(details)) {
      return `${address} did not answer as buildkitd (it spoke another protocol); check the address`;
    }
    if (/ECONNRESET|Failed to connect|closed/i.test(details)) {
      return `${address} closed the connection before answering as buildkitd; ${isUnix ? "check the address" : "if buildkitd there uses TLS, pass --tlscacert (or --tlsdir); otherwise check the address"}`;
    }
    return `cannot connect to buildkitd at ${address}: ${details} (${hint})`;
  }
  if (code === Status.DEADLINE_EXCEEDED) {
    return `no answer from buildkitd at ${address} before the timeout; is it buildkitd, and is it up? (--timeout raises the limit)`;
  }
  // A buildkitd older than v0.11 has the Control service but not Info; grpc-go
  // words that "unknown method Info for service moby.buildkit.v1.Control".
  // Any other UNIMPLEMENTED means the service itself is missing.
  if (code === Status.UNIMPLEMENTED && !/unknown method \w+ for service moby\.buildkit\.v1\.Control/i.test(details)) {
    return `${address} is a gRPC server but not buildkitd (it has no moby.buildkit.v1.Control service); check the address`;
  }
  if (code === Status.INTERNAL && /Received RST_STREAM|HTTP status code|content-type/i.test(details)) {
    return `${address} did not answer as buildkitd (${details}); check the address`;
  }
  return undefined;
}
