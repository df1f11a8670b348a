/**
 * The Docker config's `proxies` as build args, as buildx adds them
 * (store/storeutil.GetProxyConfig, build/opt.go toSolveOpt): the entry for
 * the daemon host the docker CLI would talk to, else "default"; its
 * httpProxy, httpsProxy, noProxy and ftpProxy become HTTP_PROXY,
 * HTTPS_PROXY, NO_PROXY and FTP_PROXY (upper case only, and no allProxy:
 * buildx's rule, not docker/cli's ParseProxyConfig), each unless a build
 * arg of that name in any case is already given.
 */
import { resolveEngine, type DockerEndpoint } from "../docker/host.js";
import { dockerConfigPath, readDockerConfig } from "./registry-auth.js";

type Env = Record<string, string | undefined>;

/** docker/cli's ProxyConfig fields and the build args buildx makes of them. */
const PROXY_ARGS: ReadonlyArray<[field: string, arg: string]> = [
  ["httpProxy", "HTTP_PROXY"],
  ["httpsProxy", "HTTPS_PROXY"],
  ["noProxy", "NO_PROXY"],
  ["ftpProxy", "FTP_PROXY"],
];

/** A field as Go's encoding/json finds a struct field: the key compared without case, the last match winning. */
function field(obj: Record<string, unknown>, name: string): unknown {
  let value: unknown;
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === name.toLowerCase()) value = v;
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The Go client's DaemonHost() for an endpoint: what config.json keys `proxies` by. */
export function daemonHost(endpoint: DockerEndpoint): string {
  switch (endpoint.kind) {
    case "unix":
      return `unix://${endpoint.path}`;
    case "tcp":
      return `tcp://${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}${endpoint.basePath}`;
    case "ssh":
      return "http://docker.example.com"; // the placeholder docker/cli's ssh connection helper gives the client
  }
}

/**
 * The proxy build args of a parsed config.json for `host` (the daemon
 * host, or undefined when none could be found).
 */
export function proxyArgsFromConfig(config: unknown, host: string | undefined, style: "buildx" | "compose" = "buildx"): Record<string, string> {
  const proxies = isObject(config) ? field(config, "proxies") : undefined;
  if (!isObject(proxies)) return {};
  const entry = host !== undefined && Object.hasOwn(proxies, host) ? proxies[host] : proxies["default"];
  if (!isObject(entry)) return {};
  const out: Record<string, string> = {};
  for (const [name, arg] of style === "buildx" ? PROXY_ARGS : [...PROXY_ARGS, ["allProxy", "ALL_PROXY"] as const]) {
    const v = field(entry, name);
    if (typeof v !== "string" || v === "") continue;
    out[arg] = v;
    // docker/cli's ParseProxyConfig, which docker compose uses: both cases, and ALL_PROXY.
    if (style === "compose") out[arg.toLowerCase()] = v;
  }
  return out;
}

/**
 * The proxy build args of config.json ($DOCKER_CONFIG, else ~/.docker,
 * from `env`; `configDir` as RegistryAuthOptions.configDir) for the daemon
 * host, by `style`'s rule. A config file that is missing, unreadable or not
 * JSON, or has no proxies, gives none (the docker CLI warns and goes on
 * without it; registry auth reports a broken file); the daemon host is
 * only looked up when there are proxies.
 */
function configProxyArgs(env: Env, configDir: string | false | undefined, style: "buildx" | "compose"): Record<string, string> {
  let config: unknown;
  try {
    config = readDockerConfig(dockerConfigPath(configDir, env));
  } catch {
    return {};
  }
  if (!isObject(config) || !isObject(field(config, "proxies"))) return {};
  return proxyArgsFromConfig(config, dockerHostOf(env), style);
}

/**
 * The proxy build args docker compose gives every service (docker/cli's
 * ParseProxyConfig for the daemon host: upper and lower case, ALL_PROXY
 * too); a service's own arg of the same exact name wins.
 */
export function composeProxyArgs(env: Env, configDir?: string | false): Record<string, string> {
  return configProxyArgs(env, configDir, "compose");
}

/** The daemon host the docker CLI would use, or undefined when there is no usable one (then only "default" applies). */
function dockerHostOf(env: Env): string | undefined {
  try {
    return daemonHost(resolveEngine("docker://", { env }).endpoint);
  } catch {
    return undefined;
  }
}

/** `buildArgs` with buildx's proxy args of config.json added where no build arg has that name in any case. */
export function withDockerProxyArgs(buildArgs: Record<string, string>, env: Env, configDir?: string | false): Record<string, string> {
  const given = new Set(Object.keys(buildArgs).map((k) => k.toLowerCase()));
  const out = { ...buildArgs };
  for (const [k, v] of Object.entries(configProxyArgs(env, configDir, "buildx"))) if (!given.has(k.toLowerCase())) out[k] = v;
  return out;
}
