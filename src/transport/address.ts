import { existsSync, statSync } from "node:fs";
import { engineConfigured, isDockerAddress } from "../docker/host.js";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { MAX_PEM_BYTES, readInputFile } from "../files.js";

/** buildctl's compiled-in default on Linux. */
export const DEFAULT_ADDRESS = "unix:///run/buildkit/buildkitd.sock";

export type ParsedAddress =
  | { kind: "unix"; path: string; address: string }
  | { kind: "tcp"; host: string; port: number; address: string }
  | { kind: "ssh"; user: string | undefined; host: string; port: number; socketPath: string; address: string }
  /** buildkitd in a container, reached through `buildctl dial-stdio` run by the Engine API (docker-container://, podman-container://). */
  | { kind: "container"; runtime: "docker" | "podman"; container: string; context: string | undefined; address: string };

/** Strips the brackets of an IPv6 literal ("[::1]" -> "::1"), for dialling and names. */
export function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, "");
}

/** The socket an ssh:// address reaches when it names none (buildctl's remote default). */
export const DEFAULT_SSH_SOCKET = "/run/buildkit/buildkitd.sock";

/** Parses a buildkitd address (`unix:///path`, `tcp://host:port`, `ssh://[user@]host[:port][/socket]`). */
export function parseAddress(address: string): ParsedAddress {
  const trimmed = address.trim();
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(trimmed);
  if (!m) {
    throw new UsageError(
      `invalid buildkitd address "${address}": expected unix:///path/to/buildkitd.sock, tcp://host:port, ssh://[user@]host[:port][/path/to/buildkitd.sock] or docker-container://NAME`,
    );
  }
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === "unix") {
    if (!rest.startsWith("/")) {
      throw new UsageError(`invalid buildkitd address "${address}": a unix socket path must be absolute (unix:///path)`);
    }
    return { kind: "unix", path: rest, address: `unix://${rest}` };
  }
  if (scheme === "tcp") {
    const hp = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d+)\/?$/.exec(rest);
    if (!hp) {
      throw new UsageError(`invalid buildkitd address "${address}": expected tcp://host:port`);
    }
    const port = Number(hp[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new UsageError(`invalid buildkitd address "${address}": port must be between 1 and 65535`);
    }
    return { kind: "tcp", host: hp[1]!, port, address: `tcp://${hp[1]}:${port}` };
  }
  if (scheme === "ssh") {
    if (rest.includes("?")) throw new UsageError(`invalid buildkitd address "${address}": ssh:// addresses take no query string`);
    const m2 = /^(?:([^@/]+)@)?(\[[0-9a-fA-F:.]+\]|[^:/@[\]]+)(?::(\d+))?(\/.*)?$/.exec(rest);
    if (!m2) throw new UsageError(`invalid buildkitd address "${address}": expected ssh://[user@]host[:port][/path/to/buildkitd.sock]`);
    const port = m2[3] === undefined ? 22 : Number(m2[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new UsageError(`invalid buildkitd address "${address}": port must be between 1 and 65535`);
    }
    const socketPath = m2[4] && m2[4] !== "/" ? m2[4] : DEFAULT_SSH_SOCKET;
    const user = m2[1];
    const host = m2[2]!;
    return {
      kind: "ssh",
      user,
      host,
      port,
      socketPath,
      address: `ssh://${user ? `${user}@` : ""}${host}${m2[3] === undefined ? "" : `:${port}`}${socketPath}`,
    };
  }
  if (scheme === "docker-container" || scheme === "podman-container") return parseContainerAddress(address, scheme, rest);
  throw new UsageError(
    `unsupported buildkitd address scheme "${scheme}://" in "${address}": use unix://, tcp://, ssh://, docker-container:// or podman-container://`,
  );
}

/** Docker's container names (and IDs, which are hex): a letter or digit, then letters, digits, "_", "." or "-". */
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * `docker-container://NAME[?context=CONTEXT]` and `podman-container://NAME`,
 * buildctl's connection helpers. buildctl takes the URL's host name as the
 * container and ignores a user, port or path; here they are refused, as is
 * any query parameter other than docker-container's `context` (buildctl
 * ignores those too), so that a mistyped address is not quietly another.
 */
function parseContainerAddress(address: string, scheme: "docker-container" | "podman-container", rest: string): ParsedAddress {
  const runtime = scheme === "docker-container" ? "docker" : "podman";
  const form = runtime === "docker" ? "docker-container://NAME[?context=CONTEXT]" : "podman-container://NAME";
  const bad = (why: string): UsageError => new UsageError(`invalid buildkitd address "${address}": ${why} (expected ${form})`);
  if (rest.includes("#")) throw bad("a fragment (#...) has no meaning here");
  const q = rest.indexOf("?");
  const query = q >= 0 ? rest.slice(q + 1) : "";
  const authority = (q >= 0 ? rest.slice(0, q) : rest).replace(/\/$/, "");
  if (authority === "") throw bad("no container name");
  if (authority.includes("/")) throw bad("a path has no meaning here; the container runs buildkitd at its default socket");
  if (authority.includes("@")) throw bad("a user part has no meaning here");
  if (authority.includes(":")) throw bad("a port has no meaning here");
  if (!CONTAINER_NAME.test(authority)) throw bad(`"${authority}" is not a container name or ID`);
  let context: string | undefined;
  const params = new URLSearchParams(query);
  for (const key of new Set(params.keys())) {
    if (key !== "context" || runtime === "podman") throw bad(`unknown parameter "${key}"`);
    const values = params.getAll(key);
    if (values.length > 1) throw bad("context is given more than once");
    context = values[0] || undefined;
  }
  const normal = `${scheme}://${authority}${context === undefined ? "" : `?context=${encodeURIComponent(context)}`}`;
  return { kind: "container", runtime, container: authority, context, address: normal };
}

/**
 * Picks the address the way buildctl does: an explicit value, then
 * BUILDKIT_HOST from the given environment, then the compiled default.
 */
export function resolveAddress(explicit: string | undefined, env: Record<string, string | undefined>): string {
  if (explicit !== undefined && explicit !== "") return explicit;
  const fromEnv = env["BUILDKIT_HOST"];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return DEFAULT_ADDRESS;
}

/**
 * The address to dial: the caller's, BUILDKIT_HOST, buildkitd's default
 * socket when it exists, the Docker Engine when one is configured or its
 * default socket exists, else buildkitd's default (whose absence the
 * connection error then names).
 */
export function defaultAddress(explicit: string | undefined, env: Record<string, string | undefined>, exists: (path: string) => boolean = existsSync): string {
  const address = resolveAddress(explicit, env);
  if (address !== DEFAULT_ADDRESS || explicit === DEFAULT_ADDRESS || env["BUILDKIT_HOST"] === DEFAULT_ADDRESS) return address;
  if (exists(DEFAULT_ADDRESS.slice("unix://".length))) return address;
  return engineConfigured(env, exists) ? "docker://" : address;
}

/** Whether `explicit` (or the default pick) is a Docker Engine, decided before any connection. */
export function targetsEngine(explicit: string | undefined, env: Record<string, string | undefined>): boolean {
  return isDockerAddress(defaultAddress(explicit, env));
}

export interface TlsOptions {
  /** CA certificate (PEM) that signed buildkitd's certificate. */
  caFile?: string | undefined;
  /** Client certificate (PEM) for mutual TLS. */
  certFile?: string | undefined;
  /** Client key (PEM) for mutual TLS. */
  keyFile?: string | undefined;
  /** Name to verify buildkitd's certificate against; default: the address's host. */
  serverName?: string | undefined;
  /**
   * Directory holding `ca.pem cert.pem key.pem` or `ca.crt tls.crt tls.key`
   * (as buildctl's --tlsdir); cannot be combined with the single-file options.
   */
  dir?: string | undefined;
}

export interface ResolvedTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  serverName: string;
}

/**
 * The files of a TLS directory (as buildctl's --tlsdir): `ca.pem cert.pem
 * key.pem`, else `ca.crt tls.crt tls.key`; the client pair only when one of
 * them is there.
 */
export function tlsDirFiles(dir: string): { caFile: string; certFile?: string | undefined; keyFile?: string | undefined } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`TLS directory "${dir}" (--tlsdir) does not exist`);
  }
  const layouts: Array<[string, string, string]> = [
    ["ca.pem", "cert.pem", "key.pem"],
    ["ca.crt", "tls.crt", "tls.key"],
  ];
  const found = layouts.find(([ca]) => existsSync(join(dir, ca)));
  if (!found) {
    throw new UsageError(`TLS directory "${dir}" (--tlsdir) holds neither ca.pem nor ca.crt`);
  }
  const cert = join(dir, found[1]);
  const key = join(dir, found[2]);
  const pair = existsSync(cert) || existsSync(key);
  return { caFile: join(dir, found[0]), certFile: pair ? cert : undefined, keyFile: pair ? key : undefined };
}

/** Reads a PEM file; one that holds no PEM block is refused here, naming it (OpenSSL would say "PEM routines::no start line" at the dial). */
function readPem(path: string, what: string, flag: string): Buffer {
  const pem = readInputFile(path, { what, flag, maxBytes: MAX_PEM_BYTES });
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(pem.toString("latin1"))) {
    throw new UsageError(`${what} "${path}" (${flag}) is not a PEM file (no "-----BEGIN" line): give the ${what} in PEM form`);
  }
  return pem;
}

/**
 * Loads TLS material. Returns undefined when no TLS option is set (plain
 * connection), like buildctl. With a CA only that CA is trusted; without one
 * the system roots are used.
 */
export function resolveTls(tls: TlsOptions | undefined, addr: ParsedAddress): ResolvedTls | undefined {
  if (!tls) return undefined;
  let { caFile, certFile, keyFile } = tls;
  let fromDir = false;
  if (tls.dir !== undefined && tls.dir !== "") {
    if (caFile || certFile || keyFile) {
      throw new UsageError("--tlsdir cannot be combined with --tlscacert, --tlscert or --tlskey");
    }
    fromDir = true;
    ({ caFile, certFile, keyFile } = tlsDirFiles(tls.dir));
  }
  if (!caFile && !certFile && !keyFile) {
    if (tls.serverName) {
      throw new UsageError("--tlsservername needs --tlscacert, --tlscert/--tlskey or --tlsdir");
    }
    return undefined;
  }
  if (addr.kind !== "tcp") {
    throw new UsageError(`TLS options are only used with tcp:// addresses, not ${addr.address}`);
  }
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new UsageError("--tlscert and --tlskey must be given together");
  }
  const out: ResolvedTls = { serverName: tls.serverName || bareHost(addr.host) };
  if (caFile) out.ca = readPem(caFile, "CA certificate", fromDir ? "--tlsdir" : "--tlscacert");
  if (certFile) out.cert = readPem(certFile, "client certificate", fromDir ? "--tlsdir" : "--tlscert");
  if (keyFile) out.key = readPem(keyFile, "client key", fromDir ? "--tlsdir" : "--tlskey");
  return out;
}
