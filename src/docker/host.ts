/**
 * Finding the Docker Engine the docker CLI would talk to: DOCKER_HOST, the
 * TLS environment (DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH) and
 * docker contexts (DOCKER_CONTEXT, `currentContext` in config.json, the
 * context store under $DOCKER_CONFIG/contexts). Only parses and reads
 * files; it never connects anywhere, never writes, and reads only the
 * environment it is given.
 *
 * The rules follow docker/cli (opts/hosts.go, cli/flags/options.go,
 * cli/command/cli.go, cli/context/docker/load.go, cli/context/store/*,
 * cli/config/config.go) and the Go client it uses (moby client.ParseHostURL).
 * Where the CLI would accept a value only to fail when it dials (a port
 * above 65535, an unbracketed name with colons), this refuses it up front.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { isIPv6 } from "node:net";
import { userInfo } from "node:os";
import { join, posix } from "node:path";
import { UsageError } from "../errors.js";
import { MAX_PEM_BYTES, MAX_TEXT_FILE_BYTES, readInputFile } from "../files.js";

export interface DockerTlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export interface DockerTls {
  /** The only CA trusted when set; without it the system roots are used. */
  ca?: Buffer;
  /** Client certificate and key; both or neither. */
  cert?: Buffer;
  key?: Buffer;
  /** false = TLS without verifying the server (DOCKER_TLS or skip-verify context) */
  verify: boolean;
  /** Name the server certificate is checked against (and sent as SNI): the host, without brackets. */
  serverName: string;
}

export type DockerEndpoint =
  | { kind: "unix"; path: string }
  /** `host` has no brackets; `basePath` is "" or "/prefix" (no trailing slash), put before the API paths. */
  | { kind: "tcp"; host: string; port: number; basePath: string; tls: DockerTls | undefined }
  /** `host` has no brackets; no port = ssh's own default; no socketPath = the remote docker's default. */
  | { kind: "ssh"; user: string | undefined; host: string; port: number | undefined; socketPath: string | undefined };

export interface ResolvedEngine {
  endpoint: DockerEndpoint;
  /** Display form used in messages, e.g. "docker+unix:///var/run/docker.sock", "docker+tcp://127.0.0.1:2376", "docker+ssh://user@host". */
  address: string;
  /** Where it came from, for messages: "DOCKER_HOST", `context "NAME"`, "--addr", "default". */
  source: string;
}

/** The socket the docker CLI uses when nothing is configured (Linux and macOS). */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
/** The host ParseHost falls back to when TLS is on and no host is given. */
const DEFAULT_TLS_HOST = "tcp://localhost:2376";
/** Port of a tcp:// DOCKER_HOST that names none, with or without TLS. */
const DEFAULT_TCP_PORT = 2375;
const DEFAULT_CONTEXT = "default";
/** `docker context create` accepts only these names (store.ValidateContextName). */
const CONTEXT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$/;

type Env = Record<string, string | undefined>;

/* ------------------------------------------------------------------ */
/* Host strings                                                        */
/* ------------------------------------------------------------------ */

/** A URL's parts the way Go's net/url splits "scheme://" + rest. */
interface UrlParts {
  /** Everything before the last "@" of the authority, when there is one. */
  userinfo: string | undefined;
  /** host[:port] with brackets, as written. */
  hostport: string;
  path: string;
  query: string;
  fragment: string;
}

function splitUrl(rest: string): UrlParts {
  let fragment = "";
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf("/");
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash) : "";
  const at = authority.lastIndexOf("@");
  return {
    userinfo: at >= 0 ? authority.slice(0, at) : undefined,
    hostport: at >= 0 ? authority.slice(at + 1) : authority,
    path,
    query,
    fragment,
  };
}

/** Characters Go's URL parser lets into a host name (ASCII only here). */
const HOST_CHARS = /^[A-Za-z0-9._~!$&'()*+,;=-]*$/;

interface HostPort {
  /** Without brackets. */
  host: string;
  /** Digits as written, or "" when there is no port (or only a colon). */
  port: string;
  bracketed: boolean;
}

/**
 * Splits host[:port] as Go's url.Parse and Hostname()/Port() would, and
 * checks what they check (a port is digits only, brackets are balanced);
 * returns a reason on failure. An unbracketed host with several colons
 * is returned whole (as an IPv6 address without a port) for the caller
 * to judge.
 */
function splitHostPort(hostport: string): HostPort | string {
  if (hostport.startsWith("[")) {
    const end = hostport.lastIndexOf("]");
    if (end < 0) return "missing ']' after an IPv6 address";
    const after = hostport.slice(end + 1);
    if (!/^(?::\d*)?$/.test(after)) return `invalid port "${after}" after the host`;
    let inner = hostport.slice(1, end);
    // A zone is written %25zone in a URL (RFC 6874).
    const zone = /^([^%]*)%25(.+)$/.exec(inner);
    if (zone) inner = `${zone[1]}%${zone[2]}`;
    const ip = zone ? zone[1]! : inner;
    if (!isIPv6(ip) || (zone && !/^[A-Za-z0-9._~-]+$/.test(zone[2]!))) return `"[${hostport.slice(1, end)}]" is not an IPv6 address`;
    return { host: inner, port: after.slice(1), bracketed: true };
  }
  const colon = hostport.lastIndexOf(":");
  if (colon >= 0 && !/^:\d*$/.test(hostport.slice(colon))) return `invalid port "${hostport.slice(colon + 1)}" (a port is a number)`;
  const name = colon >= 0 ? hostport.slice(0, colon) : hostport;
  if (name.includes(":")) return { host: hostport, port: "", bracketed: false };
  if (!HOST_CHARS.test(name)) return `invalid host name "${name}"`;
  return { host: name, port: colon >= 0 ? hostport.slice(colon + 1) : "", bracketed: false };
}

function portNumber(port: string): number | string {
  const n = Number(port);
  if (!/^\d+$/.test(port) || !Number.isInteger(n) || n < 1 || n > 65535) return `port ${port} is not between 1 and 65535`;
  return n;
}

/** "[::1]" for an IPv6 address, the name otherwise. */
function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** "" for no path or "/"; otherwise cleaned as Go's path.Join would, without a trailing slash. */
function cleanBasePath(path: string): string {
  return path === "" ? "" : posix.normalize(path).replace(/\/+$/, "");
}

type RawEndpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number; basePath: string }
  | { kind: "ssh"; user: string | undefined; host: string; port: number | undefined; socketPath: string | undefined };

/** Thrown from the parsers with the reason only; the caller adds what was being parsed. */
class HostProblem extends Error {}

const USE = "use unix://, tcp:// or ssh://";

function refuseScheme(scheme: string): never {
  if (scheme === "npipe") throw new HostProblem(`npipe:// (a Windows named pipe) is not supported by bk-build; ${USE}`);
  if (scheme === "fd") throw new HostProblem(`fd:// is a dockerd listen address (socket activation), not one a client can connect to; ${USE}`);
  if (scheme !== scheme.toLowerCase() && ["unix", "tcp", "ssh"].includes(scheme.toLowerCase())) {
    throw new HostProblem(`unsupported scheme "${scheme}://" (docker host schemes are lower case); ${USE}`);
  }
  throw new HostProblem(`unsupported scheme "${scheme}://"; ${USE}`);
}

/**
 * tcp:// by opts.ParseTCPAddr: no host = localhost, no port = 2375 (even
 * with TLS), a path is the API base path, a user part, query and fragment
 * are dropped.
 */
function parseTcpHost(rest: string): RawEndpoint {
  if (rest === "") return { kind: "tcp", host: "localhost", port: DEFAULT_TCP_PORT, basePath: "" };
  if (rest.includes("://")) throw new HostProblem("expected tcp://host[:port][/path]");
  const u = splitUrl(rest);
  const hp = splitHostPort(u.hostport);
  if (typeof hp === "string") throw new HostProblem(hp);
  if (hp.bracketed && !u.hostport.includes("]:")) {
    throw new HostProblem(`an IPv6 address needs a port here: tcp://${u.hostport}:${DEFAULT_TCP_PORT}`);
  }
  if (!hp.bracketed && hp.host.includes(":") && !isIPv6(hp.host)) throw new HostProblem(`invalid host "${hp.host}"`);
  const port = portNumber(hp.port === "" ? String(DEFAULT_TCP_PORT) : hp.port);
  if (typeof port === "string") throw new HostProblem(port);
  return { kind: "tcp", host: hp.host === "" ? "localhost" : hp.host, port, basePath: cleanBasePath(u.path) };
}

/**
 * ssh://[user@]host[:port][/socket] as the CLI's connection helper reads
 * it: no password, no query or fragment; a path other than "/" is the
 * remote socket (`docker --host=unix://PATH system dial-stdio`).
 */
function parseSshHost(rest: string): RawEndpoint {
  const u = splitUrl(rest);
  if (u.query !== "") throw new HostProblem(`query parameters are not allowed in an ssh:// address ("?${u.query}")`);
  if (u.fragment !== "") throw new HostProblem(`fragments are not allowed in an ssh:// address ("#${u.fragment}")`);
  let user: string | undefined;
  if (u.userinfo !== undefined) {
    if (u.userinfo.includes(":")) throw new HostProblem("a password in an ssh:// address is not supported; use an SSH key or agent");
    try {
      user = decodeURIComponent(u.userinfo);
    } catch {
      throw new HostProblem(`invalid user "${u.userinfo}"`);
    }
    if (user === "") user = undefined;
  }
  const hp = splitHostPort(u.hostport);
  if (typeof hp === "string") throw new HostProblem(hp);
  if (!hp.bracketed && hp.host.includes(":")) throw new HostProblem(`an IPv6 address needs brackets: ssh://[${hp.host}]`);
  if (hp.host === "") throw new HostProblem("no host name (expected ssh://[user@]host[:port][/path/to/docker.sock])");
  let port: number | undefined;
  if (hp.port !== "") {
    const p = portNumber(hp.port);
    if (typeof p === "string") throw new HostProblem(p);
    port = p;
  }
  const socketPath = u.path.replace(/^\/+|\/+$/g, "") === "" ? undefined : u.path;
  return { kind: "ssh", user, host: hp.host, port, socketPath };
}

/**
 * A host as DOCKER_HOST, -H or a docker+SCHEME:// address gives it:
 * opts.ParseHost (trimmed; empty = the default socket, or
 * tcp://localhost:2376 when TLS is on; no scheme = tcp), then the Go
 * client's reading of the result.
 */
function parseFlagHost(value: string, tlsOn: boolean): RawEndpoint {
  let host = value.trim();
  if (host === "") host = tlsOn ? DEFAULT_TLS_HOST : `unix://${DEFAULT_DOCKER_SOCKET}`;
  const sep = host.indexOf("://");
  // No "://" at all: the whole value is a tcp address ("host:2375").
  const scheme = sep >= 0 ? host.slice(0, sep) : "tcp";
  const rest = sep >= 0 ? host.slice(sep + 3) : host;
  switch (scheme) {
    case "tcp":
      return parseTcpHost(rest);
    case "unix": {
      // parseSimpleProtoAddr strips a repeated "unix://" once.
      const path = rest.startsWith("unix://") ? rest.slice(7) : rest;
      if (path.includes("://")) throw new HostProblem("expected unix:///path/to/docker.sock");
      return { kind: "unix", path: path === "" ? DEFAULT_DOCKER_SOCKET : path };
    }
    case "ssh":
      return parseSshHost(rest);
    default:
      return refuseScheme(scheme);
  }
}

/**
 * A context's Host, which the CLI hands to the Go client unparsed by
 * ParseHost: a scheme is required, an empty host is the client's default
 * socket, and a tcp:// host without a port gets the HTTP default (80, or
 * 443 with TLS), not 2375.
 */
function parseContextHost(value: string, tlsOn: boolean): RawEndpoint {
  if (value === "") return { kind: "unix", path: DEFAULT_DOCKER_SOCKET };
  const sep = value.indexOf("://");
  if (sep < 0 || sep + 3 === value.length) {
    throw new HostProblem("expected unix:///path/to/docker.sock, tcp://host:port or ssh://[user@]host[:port]");
  }
  const scheme = value.slice(0, sep).toLowerCase();
  const rest = value.slice(sep + 3);
  switch (scheme) {
    case "tcp": {
      const u = splitUrl(rest);
      const hp = splitHostPort(u.hostport);
      if (typeof hp === "string") throw new HostProblem(hp);
      if (!hp.bracketed && hp.host.includes(":")) throw new HostProblem(`an IPv6 address needs brackets: tcp://[${hp.host}]:2376`);
      const port = hp.port === "" ? (tlsOn ? 443 : 80) : portNumber(hp.port);
      if (typeof port === "string") throw new HostProblem(port);
      return { kind: "tcp", host: hp.host === "" ? "localhost" : hp.host, port, basePath: cleanBasePath(u.path) };
    }
    case "unix":
      return { kind: "unix", path: rest };
    case "ssh":
      return parseSshHost(rest);
    default:
      return refuseScheme(value.slice(0, sep));
  }
}

function withTls(raw: RawEndpoint, tls: DockerTls | undefined): DockerEndpoint {
  if (raw.kind !== "tcp") return raw;
  return { ...raw, tls };
}

/** Parses one docker host string (DOCKER_HOST / context Host / -H value) by docker/cli rules. */
export function parseDockerHost(value: string, tls?: DockerTls): DockerEndpoint {
  let raw: RawEndpoint;
  try {
    raw = parseFlagHost(value, tls !== undefined);
  } catch (e) {
    if (e instanceof HostProblem) throw new UsageError(`invalid docker host "${value}": ${e.message}`);
    throw e;
  }
  // TLS only applies to tcp (the CLI skips it for sockets and ssh); an empty serverName means the host.
  return withTls(raw, tls && raw.kind === "tcp" ? { ...tls, serverName: tls.serverName || raw.host } : undefined);
}

/** The display form: "docker+unix:///var/run/docker.sock", "docker+tcp://[::1]:2376/base", "docker+ssh://me@host:22/run/docker.sock". */
export function engineAddress(endpoint: DockerEndpoint): string {
  switch (endpoint.kind) {
    case "unix":
      return `docker+unix://${endpoint.path}`;
    case "tcp":
      return `docker+tcp://${bracket(endpoint.host)}:${endpoint.port}${endpoint.basePath}`;
    case "ssh":
      return `docker+ssh://${endpoint.user === undefined ? "" : `${endpoint.user}@`}${bracket(endpoint.host)}${endpoint.port === undefined ? "" : `:${endpoint.port}`}${endpoint.socketPath ?? ""}`;
  }
}

/* ------------------------------------------------------------------ */
/* Config directory, config.json, context store                        */
/* ------------------------------------------------------------------ */

/** config.Dir(): $DOCKER_CONFIG, else ~/.docker (HOME, else the user database, as Go's fallback). */
function configDir(env: Env): string {
  const fromEnv = env["DOCKER_CONFIG"];
  if (fromEnv) return fromEnv;
  let home = env["HOME"] ?? "";
  if (home === "") {
    try {
      home = userInfo().homedir;
    } catch {
      home = "";
    }
  }
  return join(home, ".docker");
}

/** True when stat says ENOENT; other failures are left to the read that follows. */
function isMissing(path: string): boolean {
  try {
    statSync(path);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT";
  }
}

/**
 * A field of a JSON object as Go's encoding/json finds a struct field:
 * the key compared without case, the last match winning.
 */
function field(obj: Record<string, unknown>, name: string): unknown {
  let value: unknown;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) value = v;
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readJson(path: string, what: string, subject: string | undefined, emptyIsNull = false): unknown {
  const text = readInputFile(path, { what, subject, maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
  // Go's json.Decoder (config.json) takes an empty file as no settings; json.Unmarshal (meta.json) does not.
  if (emptyIsNull && text.trim() === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new UsageError(`${subject ? `${subject}: ` : ""}${what} "${path}" is not valid JSON (${reason}); fix or remove it`);
  }
}

/**
 * `currentContext` from $DOCKER_CONFIG/config.json; "" when the file or
 * the field is missing. (The CLI only warns about a broken config file
 * and goes on with the default context; refusing is safer than quietly
 * using another Engine, so `strict` throws.)
 */
function currentContext(env: Env, strict: boolean): { name: string; file: string } {
  const file = join(configDir(env), "config.json");
  if (isMissing(file)) return { name: "", file };
  let json: unknown;
  try {
    json = readJson(file, "docker config file", undefined, true);
  } catch (e) {
    if (strict) throw e;
    return { name: "", file };
  }
  if (json !== null && !isObject(json)) {
    if (strict) throw new UsageError(`docker config file "${file}" is not a JSON object; fix or remove it`);
    return { name: "", file };
  }
  const value = isObject(json) ? field(json, "currentContext") : undefined;
  if (value === undefined || value === null) return { name: "", file };
  if (typeof value !== "string") {
    if (strict) throw new UsageError(`docker config file "${file}": currentContext must be a string`);
    return { name: "", file };
  }
  return { name: value, file };
}

/** The context store's directory name for a context: the sha256 of its name, in hex. */
export function contextDirName(name: string): string {
  return createHash("sha256").update(name, "utf8").digest("hex");
}

/** Files of the context's docker TLS bundle, when `tls/<id>/docker` exists (even empty: that alone turns TLS on). */
function contextTlsFiles(dir: string): Map<string, string> | undefined {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new UsageError(`cannot list the docker context TLS directory "${dir}": ${(e as Error).message}`);
  }
  const files = new Map<string, string>();
  for (const entry of entries) if (!entry.isDirectory()) files.set(entry.name, join(dir, entry.name));
  return files;
}

function resolveContext(name: string, env: Env): ResolvedEngine {
  const root = join(configDir(env), "contexts");
  const id = contextDirName(name);
  const metaFile = join(root, "meta", id, "meta.json");
  const subject = `docker context "${name}"`;
  if (isMissing(metaFile)) {
    throw new UsageError(`docker context "${name}" not found (no ${metaFile}); run "docker context ls"`);
  }
  const meta = readJson(metaFile, "context metadata", subject);
  const endpoints = isObject(meta) ? field(meta, "Endpoints") : undefined;
  if (meta !== null && !isObject(meta)) throw new UsageError(`${subject}: "${metaFile}" is not a JSON object`);
  if (endpoints !== undefined && endpoints !== null && !isObject(endpoints)) {
    throw new UsageError(`${subject}: Endpoints in "${metaFile}" is not a JSON object`);
  }
  // Endpoints is a map: its keys are matched exactly.
  const docker = isObject(endpoints) && Object.hasOwn(endpoints, "docker") ? endpoints["docker"] : undefined;
  if (!isObject(docker)) throw new UsageError(`${subject} has no docker endpoint (Endpoints.docker in "${metaFile}")`);
  const host = field(docker, "Host") ?? "";
  const skip = field(docker, "SkipTLSVerify") ?? false;
  if (typeof host !== "string") throw new UsageError(`${subject}: Endpoints.docker.Host in "${metaFile}" must be a string`);
  if (typeof skip !== "boolean") throw new UsageError(`${subject}: Endpoints.docker.SkipTLSVerify in "${metaFile}" must be true or false`);

  const tlsDir = join(root, "tls", id, "docker");
  const files = contextTlsFiles(tlsDir);
  // load.go: TLS when the context has TLS data or skips verification; never for sockets, ssh or an empty Host.
  const tlsOn = host !== "" && (files !== undefined || skip);
  let raw: RawEndpoint;
  try {
    raw = parseContextHost(host, tlsOn);
  } catch (e) {
    if (e instanceof HostProblem) throw new UsageError(`${subject}: invalid host "${host}" (${metaFile}): ${e.message}`);
    throw e;
  }
  let tls: DockerTls | undefined;
  if (raw.kind === "tcp" && tlsOn) {
    const read = (file: string, what: string): Buffer | undefined => {
      const path = files?.get(file);
      return path === undefined ? undefined : readInputFile(path, { what, subject, maxBytes: MAX_PEM_BYTES });
    };
    tls = { verify: !skip, serverName: raw.host };
    const ca = read("ca.pem", "CA certificate");
    const cert = read("cert.pem", "client certificate");
    const key = read("key.pem", "client key");
    if (ca) tls.ca = ca;
    // The CLI uses a client certificate only when both halves are there.
    if (cert && key) {
      tls.cert = cert;
      tls.key = key;
    }
  }
  const endpoint = withTls(raw, tls);
  return { endpoint, address: engineAddress(endpoint), source: `context "${name}"` };
}

/* ------------------------------------------------------------------ */
/* TLS for DOCKER_HOST and docker+tcp://                               */
/* ------------------------------------------------------------------ */

interface ExplicitTls {
  caFile: string | undefined;
  certFile: string | undefined;
  keyFile: string | undefined;
  serverName: string | undefined;
  /** Any of the files given. */
  files: boolean;
  /** Anything given at all. */
  any: boolean;
}

function explicitTls(tls: (DockerTlsFiles & { serverName?: string | undefined }) | undefined): ExplicitTls {
  const caFile = tls?.caFile || undefined;
  const certFile = tls?.certFile || undefined;
  const keyFile = tls?.keyFile || undefined;
  const serverName = tls?.serverName || undefined;
  const files = Boolean(caFile || certFile || keyFile);
  return { caFile, certFile, keyFile, serverName, files, any: files || serverName !== undefined };
}

/** TLS as the CLI turns it on: DOCKER_TLS_VERIFY set to anything (even "0"), or DOCKER_TLS set. */
function envTlsOn(env: Env): boolean {
  return (env["DOCKER_TLS_VERIFY"] ?? "") !== "" || (env["DOCKER_TLS"] ?? "") !== "";
}

function readPem(path: string, what: string, flag: string): Buffer {
  return readInputFile(path, { what, flag, maxBytes: MAX_PEM_BYTES });
}

/**
 * The TLS of a tcp endpoint from DOCKER_HOST or docker+tcp://: the files
 * given explicitly (verified), else, when the environment turns TLS on,
 * ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH (default: the docker
 * config dir), each only if it exists.
 */
function flagTls(raw: RawEndpoint & { kind: "tcp" }, env: Env, explicit: ExplicitTls): DockerTls | undefined {
  const serverName = explicit.serverName ?? raw.host;
  if (explicit.files) {
    if (Boolean(explicit.certFile) !== Boolean(explicit.keyFile)) throw new UsageError("--tlscert and --tlskey must be given together");
    const tls: DockerTls = { verify: true, serverName };
    if (explicit.caFile) tls.ca = readPem(explicit.caFile, "CA certificate", "--tlscacert");
    if (explicit.certFile && explicit.keyFile) {
      tls.cert = readPem(explicit.certFile, "client certificate", "--tlscert");
      tls.key = readPem(explicit.keyFile, "client key", "--tlskey");
    }
    return tls;
  }
  if (!envTlsOn(env)) {
    if (explicit.serverName !== undefined) {
      throw new UsageError("--tlsservername needs TLS: --tlscacert, --tlscert/--tlskey, DOCKER_TLS_VERIFY or DOCKER_TLS");
    }
    return undefined;
  }
  const certPath = env["DOCKER_CERT_PATH"] ?? "";
  const dir = certPath !== "" ? certPath : configDir(env);
  const flag = certPath !== "" ? "DOCKER_CERT_PATH" : "the docker config dir, as DOCKER_CERT_PATH is unset";
  if (certPath !== "") {
    let isDir = false;
    try {
      isDir = statSync(certPath).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new UsageError(`DOCKER_CERT_PATH "${certPath}" is not a directory; it should hold ca.pem, cert.pem and key.pem`);
  }
  const tls: DockerTls = { verify: (env["DOCKER_TLS_VERIFY"] ?? "") !== "", serverName };
  const caFile = join(dir, "ca.pem");
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (!isMissing(caFile)) tls.ca = readPem(caFile, "CA certificate", flag);
  const cert = isMissing(certFile) ? undefined : readPem(certFile, "client certificate", flag);
  const key = isMissing(keyFile) ? undefined : readPem(keyFile, "client key", flag);
  if (cert && key) {
    tls.cert = cert;
    tls.key = key;
  }
  return tls;
}

function resolveFlagHost(value: string, label: string, source: string, env: Env, explicit: ExplicitTls): ResolvedEngine {
  let raw: RawEndpoint;
  try {
    raw = parseFlagHost(value, explicit.files || envTlsOn(env));
  } catch (e) {
    if (e instanceof HostProblem) throw new UsageError(`invalid ${label}: ${e.message}`);
    throw e;
  }
  if (raw.kind !== "tcp") {
    // The CLI ignores the TLS environment for sockets and ssh; options given on purpose are an error.
    if (explicit.any) {
      throw new UsageError(`TLS options are only used with a tcp:// Docker Engine, not ${engineAddress(raw)} (${source})`);
    }
    return { endpoint: raw, address: engineAddress(raw), source };
  }
  const endpoint = withTls(raw, flagTls(raw, env, explicit));
  return { endpoint, address: engineAddress(endpoint), source };
}

/** The "default" context: DOCKER_HOST (or the default socket) with the TLS environment. */
function resolveDefault(env: Env, explicit: ExplicitTls): ResolvedEngine {
  const host = env["DOCKER_HOST"] ?? "";
  return resolveFlagHost(host, `DOCKER_HOST "${host}"`, host !== "" ? "DOCKER_HOST" : DEFAULT_CONTEXT, env, explicit);
}

function resolveNamed(name: string, env: Env, explicit: ExplicitTls): ResolvedEngine {
  if (name === DEFAULT_CONTEXT) return resolveDefault(env, explicit);
  if (explicit.any) {
    throw new UsageError(
      `TLS options (--tlscacert, --tlscert, --tlskey, --tlsservername) cannot be used with docker context "${name}": it has TLS settings of its own`,
    );
  }
  return resolveContext(name, env);
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

const DOCKER_ADDRESS = /^docker(?:\+([^:/]*))?:\/\/(.*)$/is;

/** bk-build --addr forms: "docker://" (the Engine the docker CLI would use), "docker://NAME" (docker context NAME), "docker+unix:///path", "docker+tcp://host[:port][/base]", "docker+ssh://[user@]host[:port][/socket]". True for any docker:// or docker+SCHEME:// address (resolveEngine judges the rest). */
export function isDockerAddress(address: string): boolean {
  return DOCKER_ADDRESS.test(address.trim());
}

/**
 * Resolves a docker address to an endpoint. For "docker://" the order is
 * the CLI's: DOCKER_HOST (non-empty; it forces the default context), then
 * DOCKER_CONTEXT, then `currentContext` in $DOCKER_CONFIG/config.json,
 * then the default socket. `tls` holds the --tls* options, if any.
 */
export function resolveEngine(
  address: string,
  options: { env: Record<string, string | undefined>; tls?: (DockerTlsFiles & { serverName?: string | undefined }) | undefined },
): ResolvedEngine {
  const { env } = options;
  const explicit = explicitTls(options.tls);
  const m = DOCKER_ADDRESS.exec(address.trim());
  if (!m) {
    throw new UsageError(
      `not a docker address "${address}": expected docker://, docker://CONTEXT, docker+unix:///path, docker+tcp://host:port or docker+ssh://[user@]host`,
    );
  }
  const scheme = m[1];
  const rest = m[2]!;
  if (scheme !== undefined) {
    return resolveFlagHost(`${scheme.toLowerCase()}://${rest}`, `docker address "${address}"`, "--addr", env, explicit);
  }
  if (rest !== "") {
    if (rest !== DEFAULT_CONTEXT && !CONTEXT_NAME.test(rest)) {
      throw new UsageError(
        `invalid docker context name "${rest}" in "${address}": names match ${CONTEXT_NAME.source}; for an Engine address use docker+unix://, docker+tcp:// or docker+ssh://`,
      );
    }
    return resolveNamed(rest, env, explicit);
  }
  if ((env["DOCKER_HOST"] ?? "") !== "") return resolveDefault(env, explicit);
  const fromEnv = env["DOCKER_CONTEXT"] ?? "";
  if (fromEnv !== "") return resolveNamed(fromEnv, env, explicit);
  const current = currentContext(env, true);
  if (current.name !== "") return resolveNamed(current.name, env, explicit);
  return resolveDefault(env, explicit);
}

/** True when, with nothing configured, a Docker Engine is a candidate: DOCKER_HOST set non-empty, or DOCKER_CONTEXT / currentContext names a non-default context, or the default socket /var/run/docker.sock exists. */
export function engineConfigured(env: Record<string, string | undefined>, exists: (path: string) => boolean = existsSync): boolean {
  const host = env["DOCKER_HOST"] ?? "";
  if (host.trim() !== "") return true;
  if (host === "") {
    // A blank DOCKER_HOST still forces the default context (the default socket).
    const fromEnv = env["DOCKER_CONTEXT"] ?? "";
    const name = fromEnv !== "" ? fromEnv : currentContext(env, false).name;
    if (name !== "" && name !== DEFAULT_CONTEXT) return true;
  }
  return exists(DEFAULT_DOCKER_SOCKET);
}

/* ------------------------------------------------------------------ */
/* podman's Docker-compatible API service                              */
/* ------------------------------------------------------------------ */

/** `podman system service`'s default socket when run as root. */
export const PODMAN_ROOTFUL_SOCKET = "/run/podman/podman.sock";

/**
 * The podman API service a `podman-container://` address reaches, as
 * podman's remote client finds it: `CONTAINER_HOST` (unix://, tcp:// or
 * ssh://), else the socket `podman system service` (podman.socket) listens
 * on by default: `/run/podman/podman.sock` for root,
 * `$XDG_RUNTIME_DIR/podman/podman.sock` (or `/run/user/UID/...` without
 * XDG_RUNTIME_DIR) for other users, whose containers are rootless.
 * containers.conf service destinations and CONTAINER_CONNECTION are not read.
 */
export function resolvePodman(env: Record<string, string | undefined>, euid: number): ResolvedEngine {
  const fromEnv = (env["CONTAINER_HOST"] ?? "").trim();
  if (fromEnv !== "") {
    const what = `CONTAINER_HOST "${fromEnv}"`;
    const sep = fromEnv.indexOf("://");
    const scheme = sep >= 0 ? fromEnv.slice(0, sep) : "";
    if (!["unix", "tcp", "ssh"].includes(scheme)) {
      throw new UsageError(`invalid ${what}: expected unix:///path/to/podman.sock, tcp://host:port or ssh://[user@]host[:port]/path/to/podman.sock`);
    }
    let raw: RawEndpoint;
    try {
      raw = parseFlagHost(fromEnv, false);
    } catch (e) {
      if (e instanceof HostProblem) throw new UsageError(`invalid ${what}: ${e.message}`);
      throw e;
    }
    if (raw.kind === "ssh" && raw.socketPath === undefined) {
      throw new UsageError(`invalid ${what}: name the podman socket on the remote host, e.g. ssh://user@host/run/user/1000/podman/podman.sock`);
    }
    const endpoint = withTls(raw, undefined);
    return { endpoint, address: podmanAddress(endpoint), source: "CONTAINER_HOST" };
  }
  if (euid === 0)
    return { endpoint: { kind: "unix", path: PODMAN_ROOTFUL_SOCKET }, address: `unix://${PODMAN_ROOTFUL_SOCKET}`, source: "podman's rootful socket" };
  const runtimeDir = env["XDG_RUNTIME_DIR"] || `/run/user/${euid}`;
  const path = posix.join(runtimeDir, "podman", "podman.sock");
  return { endpoint: { kind: "unix", path }, address: `unix://${path}`, source: "podman's rootless socket" };
}

/** podman's own URL form (no docker+ prefix), for messages. */
function podmanAddress(endpoint: DockerEndpoint): string {
  return engineAddress(endpoint).replace(/^docker\+/, "");
}
