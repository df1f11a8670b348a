import * as grpc from "@grpc/grpc-js";
import { BuildKitError, ConnectionError, SolveError } from "../errors.js";
import { decodeErrorDetails } from "./error-details.js";
import type { ParsedAddress, ResolvedTls } from "./address.js";
import { serviceDefinition } from "./proto.js";

/** Message size limit both ways, as buildctl and buildkitd (containerd's default). */
export const MAX_MESSAGE_BYTES = 16 << 20;

export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
  /** Absolute deadline for the call. */
  deadline?: Date | undefined;
}

type MethodDef = grpc.MethodDefinition<unknown, unknown>;

/** A grpc-js channel to one buildkitd and typed helpers to call it. */
export class Connection {
  readonly address: string;
  readonly #client: grpc.Client;
  readonly #methods: Map<string, MethodDef>;

  constructor(addr: ParsedAddress, tls: ResolvedTls | undefined) {
    this.address = addr.address;
    const target = addr.kind === "unix" ? `unix://${addr.path}` : `${addr.host}:${addr.port}`;
    const options: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      // Fail calls quickly instead of retrying hidden behind the caller's back.
      "grpc.enable_retries": 0,
    };
    let creds: grpc.ChannelCredentials;
    if (tls) {
      creds = grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
      options["grpc.ssl_target_name_override"] = tls.serverName;
      options["grpc.default_authority"] = tls.serverName;
    } else {
      creds = grpc.credentials.createInsecure();
    }
    this.#client = new grpc.Client(target, creds, options);
    this.#methods = new Map();
    const control = serviceDefinition("moby.buildkit.v1.Control");
    for (const [name, def] of Object.entries(control)) {
      this.#methods.set(`Control.${name}`, def as MethodDef);
    }
  }

  #method(name: string): MethodDef {
    const m = this.#methods.get(name);
    if (!m) throw new Error(`internal: unknown method ${name}`);
    return m;
  }

  /** Calls a unary Control method. */
  unary<Res>(method: string, request: object, options: CallOptions = {}): Promise<Res> {
    const def = this.#method(method);
    return new Promise<Res>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(abortError(options.signal));
        return;
      }
      let release = (): void => undefined;
      const call = this.#client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new grpc.Metadata(),
        grpcCallOptions(options),
        (err, value) => {
          release();
          if (err) reject(translateError(err, this.address, method));
          else resolve(value as Res);
        },
      );
      release = cancelOnAbort(call, options.signal);
    });
  }

  /** Calls a server-streaming Control method. */
  async *serverStream<Res>(method: string, request: object, options: CallOptions = {}): AsyncGenerator<Res> {
    const def = this.#method(method);
    if (options.signal?.aborted) throw abortError(options.signal);
    const call = this.#client.makeServerStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      request,
      new grpc.Metadata(),
      grpcCallOptions(options),
    );
    const release = cancelOnAbort(call, options.signal);
    try {
      for await (const item of call) yield item as Res;
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal);
      throw translateError(e, this.address, method);
    } finally {
      release();
      call.cancel();
    }
  }

  /** Opens a bidi-streaming Control method (the session pipe). */
  bidi(method: string, metadata: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> {
    const def = this.#method(method);
    return this.#client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, metadata, {});
  }

  close(): void {
    this.#client.close();
  }
}

function grpcCallOptions(options: CallOptions): grpc.CallOptions {
  return options.deadline ? { deadline: options.deadline } : {};
}

/** Cancels `call` when `signal` aborts; returns the function that stops watching. */
function cancelOnAbort(call: { cancel(): void }, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const onAbort = (): void => call.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

function abortError(signal: AbortSignal): BuildKitError {
  const reason: unknown = signal.reason;
  if (reason instanceof BuildKitError) return reason;
  return new BuildKitError("the operation was aborted", { code: "CANCELLED", cause: reason });
}

function isServiceError(e: unknown): e is grpc.ServiceError {
  return typeof e === "object" && e !== null && "code" in e && typeof (e as { code: unknown }).code === "number" && "details" in e;
}

/** The gRPC status name of a numeric code ("UNAVAILABLE"). */
export function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/**
 * Turns a grpc-js error into a BuildKitError with one clear line. Transport
 * failures (nothing listening, TLS trouble, not buildkitd) become
 * ConnectionErrors that name the address and the likely fix.
 */
export function translateError(e: unknown, address: string, method: string): BuildKitError {
  if (e instanceof BuildKitError) return e;
  if (!isServiceError(e)) {
    return new BuildKitError(`${method}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const details = e.details ?? "";
  const conn = describeConnectionFailure(e.code, details, address);
  if (conn) return new ConnectionError(conn, address, { cause: e });
  if (method === "Control.Solve") {
    const d = decodeErrorDetails(e.metadata);
    return new SolveError(`failed to solve: ${details || statusName(e.code)}`, { code: statusName(e.code), cause: e, ...d });
  }
  return new BuildKitError(details || statusName(e.code), { code: statusName(e.code), cause: e });
}

/** A short, actionable reason for a TLS failure reported by grpc-js/OpenSSL, if it is one. */
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

function describeConnectionFailure(code: number, details: string, address: string): string | undefined {
  const isUnix = address.startsWith("unix://");
  const hint = "set --addr or BUILDKIT_HOST to buildkitd's address";
  if (code === grpc.status.UNAVAILABLE) {
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
  if (code === grpc.status.DEADLINE_EXCEEDED) {
    return `no answer from buildkitd at ${address} before the timeout; is it buildkitd, and is it up? (--timeout raises the limit)`;
  }
  // A buildkitd older than v0.11 has the Control service but not Info; grpc-go
  // words that "unknown method Info for service moby.buildkit.v1.Control".
  // Any other UNIMPLEMENTED means the service itself is missing.
  if (code === grpc.status.UNIMPLEMENTED && !/unknown method \w+ for service moby\.buildkit\.v1\.Control/i.test(details)) {
    return `${address} is a gRPC server but not buildkitd (it has no moby.buildkit.v1.Control service); check the address`;
  }
  if (code === grpc.status.INTERNAL && /Received RST_STREAM|HTTP status code|content-type/i.test(details)) {
    return `${address} did not answer as buildkitd (${details}); check the address`;
  }
  return undefined;
}
