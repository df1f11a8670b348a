/**
 * A small client for the Docker Engine API (HTTP/1.1), over a byte stream
 * the caller dials: ping and version negotiation, /version and /info, the
 * hijack (HTTP Upgrade) that reaches the Engine's BuildKit (/grpc,
 * /session), image load and push, and exec for docker-container://.
 *
 * HTTP/1.1 is node:http's (llhttp) with `createConnection` returning the
 * caller's stream: chunked bodies, HEAD, 101 handling and header parsing
 * are done by a parser that is fuzzed and maintained, and its 'upgrade'
 * event hands over the socket with the bytes that came with the 101
 * (`head`), which go back into the socket before anyone reads it. Each
 * request dials its own stream (`Connection: close`): there are few
 * requests, and a hijacked stream cannot go back to a pool anyway.
 *
 * Every failure is one line naming the Engine's address. Credentials
 * (X-Registry-Auth) are never put in an error or a message: whatever the
 * Engine answers during a push has them blanked out.
 */
import * as http from "node:http";
import * as net from "node:net";
import { Duplex, type Readable } from "node:stream";
import { BuildKitError, ConnectionError, UsageError, toBuildKitError } from "../errors.js";
import { JsonMessageParser, JsonMessageSyntaxError, messageError, type JsonMessage } from "./json-message.js";
import { encodeRegistryAuth, REGISTRY_AUTH_HEADER, registryAuthSecrets, type RegistryAuth } from "./registry-auth.js";
import { StdcopyDemuxer } from "./stdcopy.js";

export { JsonMessageParser, type JsonMessage } from "./json-message.js";
export { encodeRegistryAuth, type RegistryAuth } from "./registry-auth.js";
export { StdcopyDemuxer, stdcopyFrame } from "./stdcopy.js";

/** The highest Engine API version we speak. */
export const MAX_API_VERSION = "1.51";
/** What an Engine that does not say its version (no Api-Version header) is taken to speak. */
export const FALLBACK_API_VERSION = "1.24";

/** Limits on what is read into memory. */
const MAX_JSON_BYTES = 8 << 20;
const MAX_ERROR_BODY_BYTES = 64 << 10;
const MAX_STDERR_BYTES = 64 << 10;
const KEEPALIVE_MS = 30_000;

export interface EngineApiOptions {
  /** Opens a new byte stream to the Engine (one per request). */
  dial: () => Duplex;
  /** Host header: "api.moby.localhost" for unix/ssh, host:port for tcp. */
  host: string;
  /** The Engine's address, for messages (e.g. "unix:///var/run/docker.sock"). */
  address: string;
  /** Default "bk-build". */
  userAgent?: string | undefined;
  /** What messages call the daemon; default "the Docker Engine" (podman: "the podman service"). */
  name?: string | undefined;
  /** The daemon's process, for hints; default "dockerd". */
  process?: string | undefined;
}

export interface EnginePing {
  apiVersion: string | undefined;
  builderVersion: string | undefined;
  osType: string | undefined;
  server: string | undefined;
  experimental: boolean;
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
  minApiVersion?: string;
  os?: string;
  arch?: string;
  kernelVersion?: string;
  components: Array<{ name: string; version: string }>;
}

export interface EngineInfo {
  /** DriverStatus pairs, e.g. ["driver-type", "io.containerd.snapshotter.v1"]. */
  driverStatus: Array<[string, string]>;
  /** The Engine uses the containerd image store (DriverStatus has driver-type io.containerd.snapshotter.v1). */
  containerdStore: boolean;
  serverVersion?: string;
  driver?: string;
  osType?: string;
  architecture?: string;
  name?: string;
}

export interface MessageOptions {
  signal?: AbortSignal | undefined;
  /** Each message of the Engine's progress stream, as it arrives. */
  onMessage?: ((m: JsonMessage) => void) | undefined;
}

export interface ExecOptions {
  signal?: AbortSignal | undefined;
  /** The exec's stderr, as it arrives (it is also collected: `stderr()`). */
  onStderr?: ((chunk: Buffer) => void) | undefined;
  env?: string[] | undefined;
  workingDir?: string | undefined;
  user?: string | undefined;
  /** The CLI named in hints ("docker ps", "docker start NAME"); default "docker". */
  cli?: string | undefined;
}

export interface ExecSession {
  /** Readable: the exec's stdout (demultiplexed); writable: its stdin. */
  stream: Duplex;
  /** What the exec wrote to stderr so far (the last 64 KiB). */
  stderr: () => string;
  /** The exec's exit code once it has ended (undefined while it runs). */
  exitCode: (signal?: AbortSignal) => Promise<number | undefined>;
}

/** An Engine API request the Engine answered with an error status. */
export class EngineApiError extends BuildKitError {
  /** HTTP status. */
  readonly status: number;
  /** The Engine's address. */
  readonly address: string;
  /** "POST /images/load" (without the version prefix). */
  readonly request: string;
  /** The Engine's own error text (its JSON `message`, or the trimmed body). */
  readonly engineMessage: string;

  constructor(message: string, details: { status: number; address: string; request: string; engineMessage: string; code?: string | undefined }) {
    super(message, { code: details.code ?? statusCode(details.status) });
    this.status = details.status;
    this.address = details.address;
    this.request = details.request;
    this.engineMessage = details.engineMessage;
  }

  override get name(): string {
    return "EngineApiError";
  }
}

/** A BuildKitError code (gRPC status name) for an HTTP status. */
function statusCode(status: number): string {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "FAILED_PRECONDITION";
    case 501:
      return "UNIMPLEMENTED";
    case 502:
    case 503:
    case 504:
      return "UNAVAILABLE";
    default:
      return status >= 500 ? "INTERNAL" : "UNKNOWN";
  }
}

/** Compares dotted API versions numerically ("1.9" < "1.41"); non-numbers count as 0, as Go's versions.LessThan. */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split(".");
  const pb = b.split(".");
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = parseInt(pa[i] ?? "0", 10) || 0;
    const y = parseInt(pb[i] ?? "0", 10) || 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The version to use with an Engine whose /_ping said `engine`: min(ours, its), 1.24 when it said nothing. */
export function negotiateApiVersion(engine: string | undefined): string {
  if (!engine) return FALLBACK_API_VERSION;
  return compareApiVersions(engine, MAX_API_VERSION) < 0 ? engine : MAX_API_VERSION;
}

function abortError(signal: AbortSignal): BuildKitError {
  const reason: unknown = signal.reason;
  if (reason instanceof BuildKitError) return reason;
  return new BuildKitError("the operation was aborted", { code: "CANCELLED", cause: reason });
}

/** Whitespace collapsed to one line and long text cut. */
function oneLine(text: string, max = 300): string {
  const s = text.replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function optionalString(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Sets `k` on `o` when `v` is defined (exactOptionalPropertyTypes). */
function put<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

function nodeCode(e: unknown): string | undefined {
  const code: unknown = record(e)?.["code"];
  return typeof code === "string" ? code : undefined;
}

/** Path segments escaped as Go's url.URL does for a path (keeps / : @ and the sub-delimiters). */
function escapePath(s: string): string {
  return encodeURIComponent(s).replace(/%(2F|3A|40|24|26|2B|2C|3B|3D)/gi, (m) => decodeURIComponent(m));
}

/** The reason a dial failed, from Node's error code; `daemon` is the process named in hints ("dockerd"). */
function dialReason(code: string | undefined, daemon: string): string | undefined {
  switch (code) {
    case "ENOENT":
      return `no such socket; is ${daemon} running?`;
    case "ECONNREFUSED":
      return `connection refused; is ${daemon} running?`;
    case "EACCES":
    case "EPERM":
      return `permission denied on the socket; run as a user who may use it${daemon === "dockerd" ? " (e.g. in the docker group)" : ""}`;
    case "ENOTSOCK":
    case "ENOTDIR":
      return "not a socket; check the address";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not found; check the address";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return "host unreachable; check the address";
    case "ETIMEDOUT":
      return `timed out; is ${daemon} running and reachable there?`;
    default:
      return undefined;
  }
}

/** The container an exec is for, and the CLI named in hints. */
interface ContainerRef {
  name: string;
  cli: string;
}

interface Spec {
  method: "GET" | "HEAD" | "POST";
  /** Path and query, versioned or not. */
  path: string;
  headers?: Array<[string, string]> | undefined;
  body?: Buffer | Readable | undefined;
  signal?: AbortSignal | undefined;
  /** Protocol for Connection: Upgrade. */
  upgrade?: string | undefined;
  /** Texts to blank out of anything shown (credentials). */
  secrets?: string[] | undefined;
}

interface Head {
  res: http.IncomingMessage;
  /** The socket after a 101, with the bytes that came with it put back. */
  socket?: Duplex;
}

/** One request in flight. */
interface Exchange {
  /** "POST /images/load": the method and the path without the version prefix and query. */
  what: string;
  req: http.ClientRequest;
  /** Settles with the response head; rejects (translated) if the request fails before one. */
  head: Promise<Head>;
  /** Rejects (translated) when the exchange fails at any point; never resolves. */
  failed: Promise<never>;
  /** Stops watching the signal and closes the connection unless it was handed over. */
  finish: () => void;
  redact: (text: string) => string;
}

export class EngineApi {
  readonly address: string;
  readonly #dial: () => Duplex;
  readonly #host: string;
  readonly #userAgent: string;
  /** "the Docker Engine at unix:///var/run/docker.sock", for messages. */
  readonly #at: string;
  readonly #process: string;
  #version: Promise<string> | undefined;

  constructor(o: EngineApiOptions) {
    this.#dial = o.dial;
    this.#host = o.host;
    this.address = o.address;
    this.#userAgent = o.userAgent ?? "bk-build";
    this.#at = `${o.name ?? "the Docker Engine"} at ${o.address}`;
    this.#process = o.process ?? "dockerd";
  }

  /** HEAD /_ping, and GET /_ping if HEAD got no 200 (as the Go client); the headers say what the Engine is. */
  async ping(signal?: AbortSignal): Promise<EnginePing> {
    let res: http.IncomingMessage | undefined;
    try {
      res = await this.#simple({ method: "HEAD", path: "/_ping", signal });
    } catch (e) {
      // A dial that failed fails again; an abort is an abort.
      if (signal?.aborted || (e instanceof ConnectionError && e.message.startsWith("cannot connect"))) throw e;
    }
    if (res?.statusCode !== 200) {
      const ex = this.#start({ method: "GET", path: "/_ping", signal });
      try {
        res = (await ex.head).res;
        if (res.statusCode !== 200) throw await this.#statusError(ex, res);
        await this.#readBody(ex, res, MAX_ERROR_BODY_BYTES);
      } finally {
        ex.finish();
      }
    }
    const h = (name: string): string | undefined => {
      const v = res.headers[name];
      return optionalString(Array.isArray(v) ? v[0] : v);
    };
    const ping: EnginePing = {
      apiVersion: h("api-version"),
      builderVersion: h("builder-version"),
      osType: h("ostype"),
      server: h("server"),
      experimental: h("docker-experimental") === "true",
    };
    this.#version ??= Promise.resolve(negotiateApiVersion(ping.apiVersion));
    return ping;
  }

  /** Negotiated: min(our max "1.51", the Engine's Api-Version), 1.24 when the header is missing; cached. */
  apiVersion(signal?: AbortSignal): Promise<string> {
    if (!this.#version) {
      const v = this.ping(signal).then((p) => negotiateApiVersion(p.apiVersion));
      this.#version = v;
      v.catch(() => {
        if (this.#version === v) this.#version = undefined;
      });
    }
    return this.#version;
  }

  /** GET /version (unversioned: answered at the Engine's own version). */
  async version(signal?: AbortSignal): Promise<EngineVersion> {
    const o = record(await this.#getJson("/version", signal)) ?? {};
    const v: EngineVersion = { version: optionalString(o["Version"]) ?? "", apiVersion: optionalString(o["ApiVersion"]) ?? "", components: [] };
    put(v, "minApiVersion", optionalString(o["MinAPIVersion"]));
    put(v, "os", optionalString(o["Os"]));
    put(v, "arch", optionalString(o["Arch"]));
    put(v, "kernelVersion", optionalString(o["KernelVersion"]));
    const components = o["Components"];
    if (Array.isArray(components)) {
      for (const c of components) {
        const r = record(c);
        const name = optionalString(r?.["Name"]);
        if (name) v.components.push({ name, version: optionalString(r?.["Version"]) ?? "" });
      }
    }
    return v;
  }

  /** GET /v{ver}/info: the storage driver's status, hence the image store. */
  async info(signal?: AbortSignal): Promise<EngineInfo> {
    const ver = await this.apiVersion(signal);
    const o = record(await this.#getJson(`/v${ver}/info`, signal)) ?? {};
    const driverStatus: Array<[string, string]> = [];
    const ds = o["DriverStatus"];
    if (Array.isArray(ds)) {
      for (const pair of ds) {
        if (Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string") driverStatus.push([pair[0], pair[1]]);
      }
    }
    const info: EngineInfo = {
      driverStatus,
      containerdStore: driverStatus.some(([k, v]) => k === "driver-type" && v === "io.containerd.snapshotter.v1"),
    };
    put(info, "serverVersion", optionalString(o["ServerVersion"]));
    put(info, "driver", optionalString(o["Driver"]));
    put(info, "osType", optionalString(o["OSType"]));
    put(info, "architecture", optionalString(o["Architecture"]));
    put(info, "name", optionalString(o["Name"]));
    return info;
  }

  /**
   * POST `path` with Connection: Upgrade, Upgrade: h2c, the given headers
   * (a name may repeat) and an empty body. Resolves with the raw socket
   * after "101 Switching Protocols", the bytes that came with the 101 put
   * back so that the next reader sees them. Any other answer is an
   * EngineApiError. `signal` covers the exchange up to the 101 only.
   */
  async hijack(path: string, headers: Array<[string, string]>, signal?: AbortSignal): Promise<Duplex> {
    return this.#upgrade({ method: "POST", path, headers, upgrade: "h2c", signal });
  }

  /**
   * POST /v{ver}/images/load?quiet=0 with the tarball streamed from `tar`
   * (chunked, with backpressure: nothing is buffered beyond what the
   * connection holds). Resolves with the names and ids the Engine says it
   * loaded. An error message in the answer rejects with its text. When the
   * load fails or is aborted, `tar` is destroyed.
   */
  async loadImage(tar: Readable, o: MessageOptions = {}): Promise<{ images: string[] }> {
    let ex: Exchange | undefined;
    try {
      const ver = await this.apiVersion(o.signal);
      const e = this.#start({
        method: "POST",
        path: `/v${ver}/images/load?quiet=0`,
        headers: [["Content-Type", "application/x-tar"]],
        body: tar,
        signal: o.signal,
      });
      ex = e;
      const { res } = await e.head;
      if (res.statusCode !== 200) throw await this.#statusError(e, res);
      const images: string[] = [];
      await this.#messages(e, res, "loading the image", (m) => {
        for (const text of [m.stream, m.status]) {
          for (const line of (text ?? "").split("\n")) {
            const loaded = /^Loaded image(?: ID)?: (\S+)/.exec(line.trim());
            if (loaded && !images.includes(loaded[1]!)) images.push(loaded[1]!);
          }
        }
        o.onMessage?.(m);
      });
      return { images };
    } catch (e) {
      if (!tar.destroyed) tar.destroy();
      throw e;
    } finally {
      ex?.finish();
    }
  }

  /**
   * POST /v{ver}/images/{name}/push?tag=TAG with X-Registry-Auth. The
   * answer is a JSON-message stream; an error message in it is a failure
   * although the HTTP status is 200. Resolves with the last aux
   * {Tag, Digest, Size}. `name` is the reference without its tag; an empty
   * `tag` pushes every tag.
   */
  async pushImage(name: string, tag: string, auth: RegistryAuth | undefined, o: MessageOptions = {}): Promise<{ digest?: string; size?: number }> {
    const secrets = registryAuthSecrets(auth);
    const ver = await this.apiVersion(o.signal);
    const ex = this.#start({
      method: "POST",
      path: `/v${ver}/images/${escapePath(name)}/push${tag ? `?tag=${encodeURIComponent(tag)}` : ""}`,
      headers: [[REGISTRY_AUTH_HEADER, encodeRegistryAuth(auth)]],
      body: Buffer.alloc(0),
      signal: o.signal,
      secrets,
    });
    try {
      const { res } = await ex.head;
      if (res.statusCode !== 200) throw await this.#statusError(ex, res);
      const result: { digest?: string; size?: number } = {};
      await this.#messages(ex, res, `pushing ${name}${tag ? `:${tag}` : ""}`, (m) => {
        const aux = record(m.aux);
        if (aux) {
          const digest = optionalString(aux["Digest"]);
          const size = aux["Size"];
          if (digest) result.digest = digest;
          if (typeof size === "number") result.size = size;
        }
        o.onMessage?.(m);
      });
      return result;
    } finally {
      ex.finish();
    }
  }

  /**
   * Runs `cmd` in a running container (docker-container://): checks the
   * container (GET /containers/{id}/json), creates the exec, and starts it
   * hijacked. The stream's readable side is the exec's stdout, its
   * writable side the exec's stdin; stderr is collected apart.
   */
  async exec(container: string, cmd: string[], o: ExecOptions = {}): Promise<ExecSession> {
    const ver = await this.apiVersion(o.signal);
    const id = escapePath(container);
    const cli = o.cli ?? "docker";
    const target = { name: container, cli };
    const inspect = record(await this.#getJson(`/v${ver}/containers/${id}/json`, o.signal, target)) ?? {};
    const state = record(inspect["State"]);
    if (state?.["Running"] !== true) {
      const status = optionalString(state?.["Status"]);
      throw new BuildKitError(`container ${container} on ${this.#at} is not running${status ? ` (${status})` : ""}; start it (${cli} start ${container})`, {
        code: "FAILED_PRECONDITION",
      });
    }
    const config: Record<string, unknown> = { AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: cmd };
    if (o.env) config["Env"] = o.env;
    if (o.workingDir !== undefined) config["WorkingDir"] = o.workingDir;
    if (o.user !== undefined) config["User"] = o.user;
    const created = record(await this.#postJson(`/v${ver}/containers/${id}/exec`, config, o.signal, target));
    const execId = optionalString(created?.["Id"]);
    if (!execId) throw new BuildKitError(`${this.#at} created an exec in ${container} but sent no id`, { code: "INTERNAL" });
    const socket = await this.#upgrade({
      method: "POST",
      path: `/v${ver}/exec/${escapePath(execId)}/start`,
      headers: [["Content-Type", "application/json"]],
      body: Buffer.from(JSON.stringify({ Detach: false, Tty: false })),
      upgrade: "tcp",
      signal: o.signal,
    });
    const stream = new ExecStream(socket, this.address, this.#at, o.onStderr);
    return {
      stream,
      stderr: () => stream.stderrText(),
      exitCode: async (signal?: AbortSignal) => {
        const r = record(await this.#getJson(`/v${ver}/exec/${escapePath(execId)}/json`, signal));
        if (r?.["Running"] === true) return undefined;
        const code = r?.["ExitCode"];
        return typeof code === "number" ? code : undefined;
      },
    };
  }

  /** A request whose answer head is all that matters (the body is drained). */
  async #simple(spec: Spec): Promise<http.IncomingMessage> {
    const ex = this.#start(spec);
    try {
      const { res } = await ex.head;
      await this.#readBody(ex, res, MAX_ERROR_BODY_BYTES);
      return res;
    } finally {
      ex.finish();
    }
  }

  async #getJson(path: string, signal: AbortSignal | undefined, container?: ContainerRef): Promise<unknown> {
    return this.#json({ method: "GET", path, signal }, container);
  }

  async #postJson(path: string, body: unknown, signal: AbortSignal | undefined, container?: ContainerRef): Promise<unknown> {
    return this.#json({ method: "POST", path, headers: [["Content-Type", "application/json"]], body: Buffer.from(JSON.stringify(body)), signal }, container);
  }

  /** A request answered with a JSON document. */
  async #json(spec: Spec, container?: ContainerRef): Promise<unknown> {
    const ex = this.#start(spec);
    try {
      const { res } = await ex.head;
      if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) throw await this.#statusError(ex, res, container);
      const body = await this.#readBody(ex, res, MAX_JSON_BYTES);
      try {
        return JSON.parse(body.toString("utf8")) as unknown;
      } catch {
        throw new ConnectionError(
          `${this.#at} answered ${ex.what} with a body that is not JSON (${oneLine(ex.redact(body.toString("utf8")), 120)}); is it a Docker Engine?`,
          this.address,
        );
      }
    } finally {
      ex.finish();
    }
  }

  async #upgrade(spec: Spec): Promise<Duplex> {
    const ex = this.#start(spec);
    try {
      const { res, socket } = await ex.head;
      if (!socket) throw await this.#statusError(ex, res);
      if (socket instanceof net.Socket) socket.setKeepAlive(true, KEEPALIVE_MS);
      return socket;
    } finally {
      // Closes the connection unless it was handed over.
      ex.finish();
    }
  }

  /** Reads a body into memory, up to `max` bytes (an answer over it is an error). */
  async #readBody(ex: Exchange, res: http.IncomingMessage, max: number): Promise<Buffer> {
    const read = new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > max) {
          reject(new ConnectionError(`${this.#at} answered ${ex.what} with more than ${max >> 10} KiB; is it a Docker Engine?`, this.address));
          res.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on("end", () => resolve(Buffer.concat(chunks)));
    });
    return Promise.race([read, ex.failed]);
  }

  /** The error for a non-success answer, from its body (the Engine's JSON {"message"} or the text). */
  async #statusError(ex: Exchange, res: http.IncomingMessage, container?: ContainerRef): Promise<BuildKitError> {
    const status = res.statusCode ?? 0;
    let body: Buffer = Buffer.alloc(0);
    try {
      body = await this.#readPrefix(res, MAX_ERROR_BODY_BYTES, ex);
    } catch {
      // The status alone says enough.
    }
    const text = body.toString("utf8");
    let engineMessage: string | undefined;
    try {
      const m = record(JSON.parse(text))?.["message"];
      if (typeof m === "string") engineMessage = m;
    } catch {
      // not JSON
    }
    const json = engineMessage !== undefined;
    engineMessage = oneLine(ex.redact(engineMessage ?? text));
    const details = { status, address: this.address, request: ex.what, engineMessage };
    const at = this.#at;
    if (status === 400 && /HTTP request to an HTTPS server/i.test(engineMessage)) {
      // Go's TLS server answers plain HTTP so (GitLab's dind on port 2376 without TLS settings).
      return new EngineApiError(`${at} expects TLS; connect with TLS (DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH) or use its plain port`, details);
    }
    const bare = ex.what.split(" ")[1];
    if (status === 404 && (bare === "/grpc" || bare === "/session")) {
      return new EngineApiError(`${at} does not serve BuildKit (${ex.what} answered 404)`, details);
    }
    if (status === 404 && container !== undefined && /no such container/i.test(engineMessage)) {
      return new EngineApiError(
        `${at} has no container ${container.name}${engineMessage ? ` (${engineMessage})` : ""}; check the name (${container.cli} ps)`,
        details,
      );
    }
    if (status === 400 && /\bAPI version\b|client version .* too (old|new)/i.test(engineMessage)) {
      const ver = /^\/v(\d+\.\d+)\//.exec(ex.req.path)?.[1];
      return new EngineApiError(`${at} refused ${ver ? `API version ${ver}` : "the API version"} for ${ex.what}: ${engineMessage}`, details);
    }
    if (json) return new EngineApiError(`${at} answered ${ex.what} with ${status}: ${engineMessage || res.statusMessage || "(no message)"}`, details);
    return new EngineApiError(
      `${at} answered ${ex.what} with ${status} ${res.statusMessage ?? ""}`.trimEnd() +
        (engineMessage ? `: ${engineMessage}` : " and no message") +
        "; is it a Docker Engine?",
      details,
    );
  }

  /** Up to `max` bytes of a body; the rest is not waited for. */
  async #readPrefix(res: http.IncomingMessage, max: number, ex: Exchange): Promise<Buffer> {
    const read = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (): void => resolve(Buffer.concat(chunks));
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= max) {
          res.destroy();
          done();
        }
      });
      res.on("end", done);
      res.on("close", done);
    });
    return Promise.race([read, ex.failed]);
  }

  /** Reads a JSON-message stream to its end; the first error message rejects with its text. */
  async #messages(ex: Exchange, res: http.IncomingMessage, doing: string, onMessage: (m: JsonMessage) => void): Promise<void> {
    const parser = new JsonMessageParser();
    const read = new Promise<void>((resolve, reject) => {
      const fail = (e: BuildKitError): void => {
        reject(e);
        res.destroy();
      };
      res.on("data", (chunk: Buffer) => {
        let messages: JsonMessage[];
        try {
          messages = parser.push(chunk);
        } catch (e) {
          const why = e instanceof JsonMessageSyntaxError ? e.message : String(e);
          fail(new ConnectionError(`${this.#at} sent a bad progress stream while ${doing}: ${why}`, this.address));
          return;
        }
        for (const raw of messages) {
          const m = redactMessage(raw, ex.redact);
          const error = messageError(m);
          if (error !== undefined) {
            fail(new BuildKitError(`${doing} on ${this.#at} failed: ${oneLine(error, 2000)}`, { code: "UNKNOWN" }));
            return;
          }
          try {
            onMessage(m);
          } catch (e) {
            fail(toBuildKitError(e));
            return;
          }
        }
      });
      res.on("end", () => {
        if (parser.idle) resolve();
        else fail(new ConnectionError(`connection to ${this.#at} lost while ${doing}: the answer ended inside a message`, this.address));
      });
    });
    return Promise.race([read, ex.failed]);
  }

  /** Sends a request on a new stream. */
  #start(spec: Spec): Exchange {
    const what = `${spec.method} ${spec.path.replace(/^\/v\d+\.\d+(?=\/)/, "").replace(/\?.*$/, "")}`;
    const secrets = spec.secrets ?? [];
    const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join("<redacted>"), text);
    const headers: http.OutgoingHttpHeaders = { Host: this.#host, "User-Agent": this.#userAgent };
    const add = (k: string, v: string): void => {
      const existing = Object.keys(headers).find((h) => h.toLowerCase() === k.toLowerCase());
      if (existing === undefined) headers[k] = v;
      else {
        const prev = headers[existing];
        headers[existing] = [...(Array.isArray(prev) ? prev : [String(prev)]), v];
      }
    };
    if (spec.upgrade) {
      add("Connection", "Upgrade");
      add("Upgrade", spec.upgrade);
    }
    for (const [k, v] of spec.headers ?? []) add(k, v);
    const body = spec.body;
    if (spec.method === "POST" && (body === undefined || Buffer.isBuffer(body))) add("Content-Length", String(body?.length ?? 0));

    let answered = false;
    let finished = false;
    let handedOver = false;
    let rejectFailed: (e: BuildKitError) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
    failed.catch(() => undefined);
    let firstError: BuildKitError | undefined;
    const failWith = (e: unknown): BuildKitError => {
      firstError ??= this.#translate(e, what, answered, spec.signal, redact);
      rejectFailed(firstError);
      return firstError;
    };

    let req: http.ClientRequest;
    try {
      req = this.#request(spec, headers);
    } catch (e) {
      // Node refuses a header with CR/LF or a bad name before anything is sent.
      throw new UsageError(`invalid request to the Docker Engine (${what}): ${redact(e instanceof Error ? e.message : String(e))}`, { cause: e });
    }

    const onAbort = (): void => {
      req.destroy(spec.signal ? abortError(spec.signal) : undefined);
    };
    spec.signal?.addEventListener("abort", onAbort, { once: true });

    const head = new Promise<Head>((resolve, reject) => {
      req.on("error", (e) => {
        const err = failWith(e);
        if (!answered) reject(err);
      });
      req.on("response", (res) => {
        answered = true;
        res.on("error", (e) => failWith(e));
        res.on("aborted", () => failWith(Object.assign(new Error("the connection closed before the answer was complete"), { code: "ECONNRESET" })));
        resolve({ res });
      });
      if (spec.upgrade) {
        req.on("upgrade", (res, socket, bodyHead) => {
          answered = true;
          if (res.statusCode !== 101) {
            // llhttp only upgrades on 101; keep the guard for odd servers.
            socket.destroy();
            reject(failWith(new Error(`unexpected upgrade with status ${res.statusCode}`)));
            return;
          }
          if (bodyHead.length) socket.unshift(bodyHead);
          handedOver = true;
          resolve({ res, socket });
        });
      }
    });
    head.catch(() => undefined);

    if (spec.signal?.aborted) onAbort();
    else if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on("error", (e) => {
        if (finished) return;
        failWith(new BuildKitError(`${what} to ${this.#at} failed: reading what to send failed: ${e.message}`, { cause: e }));
        req.destroy();
      });
      body.pipe(req);
    }

    return {
      what,
      req,
      head,
      failed,
      redact,
      finish: () => {
        if (finished) return;
        finished = true;
        spec.signal?.removeEventListener("abort", onAbort);
        if (!handedOver) req.destroy();
        if (!Buffer.isBuffer(body) && body !== undefined) body.unpipe(req);
      },
    };
  }

  #request(spec: Spec, headers: http.OutgoingHttpHeaders): http.ClientRequest {
    return http.request({
      method: spec.method,
      path: spec.path,
      headers,
      setHost: false,
      createConnection: () => {
        try {
          return this.#dial();
        } catch (e) {
          // A dialer that throws: its error arrives as the stream's, like any dial failure.
          const failing = new Duplex({ read: () => undefined, write: (_c, _e, cb) => cb() });
          process.nextTick(() => failing.destroy(e instanceof Error ? e : new Error(String(e))));
          return failing;
        }
      },
    });
  }

  /** One clear line for a failed exchange. */
  #translate(e: unknown, what: string, answered: boolean, signal: AbortSignal | undefined, redact: (s: string) => string): BuildKitError {
    if (signal?.aborted) return abortError(signal);
    if (e instanceof BuildKitError) return e;
    const code = nodeCode(e);
    const msg = redact(e instanceof Error ? e.message : String(e));
    const at = this.#at;
    const why = dialReason(code, this.#process);
    if (why) return new ConnectionError(`cannot connect to ${at}: ${why}`, this.address, { cause: e });
    if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/i.test(msg)) {
      return new ConnectionError(`TLS connection to ${at} failed: it does not speak TLS there; connect without TLS or use its TLS port`, this.address, {
        cause: e,
      });
    }
    if (code !== undefined && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME|ALTNAME/.test(code)) {
      return new ConnectionError(`TLS connection to ${at} failed: ${msg}; check the CA and client certificate (DOCKER_CERT_PATH)`, this.address, { cause: e });
    }
    if (code?.startsWith("HPE_"))
      return new ConnectionError(`${this.address} did not answer ${what} as a Docker Engine (${msg}); check the address`, this.address, { cause: e });
    if (!answered && (code === "ECONNRESET" || code === "EPIPE")) {
      return new ConnectionError(`${at} closed the connection before answering ${what}; check the address`, this.address, { cause: e });
    }
    if (answered) return new ConnectionError(`connection to ${at} lost during ${what}: ${msg}`, this.address, { cause: e });
    return new ConnectionError(`${what} to ${at} failed: ${msg}`, this.address, { cause: e });
  }
}

function redactMessage(m: JsonMessage, redact: (s: string) => string): JsonMessage {
  const out: JsonMessage = { ...m };
  for (const k of ["status", "id", "progress", "stream", "error"] as const) {
    const v = out[k];
    if (v !== undefined) out[k] = redact(v);
  }
  if (out.errorDetail?.message !== undefined) out.errorDetail = { ...out.errorDetail, message: redact(out.errorDetail.message) };
  if (out.aux !== undefined) out.aux = JSON.parse(redact(JSON.stringify(out.aux))) as unknown;
  return out;
}

/**
 * The hijacked exec stream: reads come from the demultiplexed stdout,
 * writes go to the exec's stdin, stderr is collected (and reported).
 * Backpressure holds on both sides.
 */
class ExecStream extends Duplex {
  readonly #socket: Duplex;
  #stderr: Buffer[] = [];
  #stderrBytes = 0;
  #ended = false;

  constructor(socket: Duplex, address: string, at: string, onStderr: ((chunk: Buffer) => void) | undefined) {
    super();
    this.#socket = socket;
    const demux = new StdcopyDemuxer((stream, payload) => {
      if (stream === "stdout") {
        if (!this.push(payload)) socket.pause();
      } else if (stream === "stderr") {
        this.#keepStderr(payload);
        onStderr?.(payload);
      } else {
        this.destroy(new BuildKitError(`${at} reported an error in the exec stream: ${oneLine(payload.toString("utf8"))}`));
      }
    });
    socket.on("data", (d: Buffer) => {
      try {
        demux.push(d);
      } catch (e) {
        this.destroy(new BuildKitError(`${at} sent a bad exec stream: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
    const endRead = (): void => {
      if (this.#ended) return;
      this.#ended = true;
      this.push(null);
    };
    socket.on("end", endRead);
    socket.on("error", (e: Error) => this.destroy(new ConnectionError(`connection to ${at} lost during the exec: ${e.message}`, address, { cause: e })));
    socket.on("close", () => {
      endRead();
      if (!this.writableEnded) this.end();
    });
  }

  stderrText(): string {
    return Buffer.concat(this.#stderr).toString("utf8");
  }

  #keepStderr(chunk: Buffer): void {
    this.#stderr.push(chunk);
    this.#stderrBytes += chunk.length;
    while (this.#stderrBytes > MAX_STDERR_BYTES && this.#stderr.length > 1) this.#stderrBytes -= this.#stderr.shift()!.length;
    if (this.#stderrBytes > MAX_STDERR_BYTES) {
      this.#stderr = [this.#stderr[0]!.subarray(this.#stderrBytes - MAX_STDERR_BYTES)];
      this.#stderrBytes = MAX_STDERR_BYTES;
    }
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#socket.destroyed) cb(new Error("the exec stream is closed"));
    else this.#socket.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.#socket.destroyed) this.#socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#socket.destroy();
    cb(err);
  }
}
