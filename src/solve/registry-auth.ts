/**
 * Registry credentials for buildkitd's pulls and pushes, answered over the
 * session's Auth service: explicit credentials first, then the Docker
 * config (`auths`, `credHelpers`, `credsStore`) the way the docker CLI
 * reads it.
 */
import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { MAX_TEXT_FILE_BYTES, readInputFile } from "../files.js";

/** What buildkitd gets for a host: a user and password, or an identity token (empty username). */
export interface Credentials {
  username: string;
  secret: string;
}

/** One registry login given directly (CI jobs without a config file). */
export type RegistryCredential = { username: string; password: string } | { token: string };

export interface RegistryAuthOptions {
  /**
   * Logins by registry host (`registry.gitlab.com`, `127.0.0.1:5000`,
   * `docker.io`); they win over the Docker config.
   */
  credentials?: Record<string, RegistryCredential> | undefined;
  /**
   * Directory holding config.json. Default: `$DOCKER_CONFIG`, else
   * `~/.docker` (as the docker CLI). `false`: do not read any.
   */
  configDir?: string | false | undefined;
  /** How long a credential helper may take, in ms. Default 10,000. */
  helperTimeoutMs?: number | undefined;
}

/** The docker config key for Docker Hub. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** The parts of config.json bk-build reads (docker/cli's configfile.ConfigFile). */
export interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  /** By daemon host, or "default": httpProxy, httpsProxy, noProxy, ftpProxy, allProxy. */
  proxies?: Record<string, Record<string, unknown>>;
}

/** Where config.json is: `configDir` (false: none), else $DOCKER_CONFIG, else ~/.docker, as the docker CLI. "" for none. */
export function dockerConfigPath(configDir: string | false | undefined, env: Record<string, string | undefined>): string {
  if (configDir === false) return "";
  return join(configDir ?? env["DOCKER_CONFIG"] ?? join(env["HOME"] ?? homedir(), ".docker"), "config.json");
}

/**
 * Reads config.json: {} when there is none or it cannot be read (docker
 * goes on anonymous); a file that is not JSON throws.
 */
export function readDockerConfig(configPath: string): DockerConfig {
  if (!configPath) return {};
  let text: string;
  try {
    text = readInputFile(configPath, { what: "Docker config", maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
  } catch {
    return {}; // no (readable) config file: anonymous, as docker; a FIFO is never opened
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (e) {
    throw new Error(`${configPath} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The host part of a config key ("https://index.docker.io/v1/" -> "index.docker.io"). */
function keyHost(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, "")
    .split("/")[0]!
    .toLowerCase();
}

/** Docker Hub's hosts all map to its one config key; others are themselves. */
export function configKey(host: string): string {
  return DOCKER_HUB_HOSTS.has(host.toLowerCase()) ? DOCKER_HUB_KEY : host;
}

function sameRegistry(a: string, b: string): boolean {
  const ha = keyHost(configKey(a));
  const hb = keyHost(configKey(b));
  return ha === hb;
}

function fromEntry(entry: AuthEntry, where: string): Credentials | undefined {
  if (entry.identitytoken) return { username: "", secret: entry.identitytoken };
  if (entry.auth) {
    const text = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = text.indexOf(":");
    if (i < 0) throw new UsageError(`${where}: the "auth" value is not base64 of USER:PASSWORD`);
    return { username: text.slice(0, i), secret: text.slice(i + 1) };
  }
  if (entry.username || entry.password) return { username: entry.username ?? "", secret: entry.password ?? "" };
  return undefined;
}

/**
 * Asks `docker-credential-NAME get` for a host. Resolves undefined when the
 * helper knows no credentials for it.
 */
export function runCredentialHelper(
  name: string,
  serverUrl: string,
  options: { timeoutMs: number; env: Record<string, string | undefined>; configPath: string },
): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ["get"], { env: options.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      // A helper's own children (a shell script's sleep) may hold the pipes
      // open; close our ends so nothing outlives the timeout.
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      done(() =>
        reject(new Error(`credential helper ${program} gave no answer for ${serverUrl} within ${options.timeoutMs} ms (named in ${options.configPath})`)),
      );
    }, options.timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e: NodeJS.ErrnoException) => {
      done(() =>
        reject(
          new Error(
            e.code === "ENOENT"
              ? `credential helper ${program} is not installed or not on PATH (named in ${options.configPath})`
              : `credential helper ${program} could not run: ${e.message}`,
          ),
        ),
      );
    });
    child.stdin.on("error", () => undefined);
    child.on("close", (code) => {
      done(() => {
        const said = (stdout.trim() || stderr.trim()).split("\n")[0]!.slice(0, 200);
        if (code !== 0) {
          // The helpers' protocol: this text means "nothing stored for it".
          if (/credentials not found/i.test(said)) resolve(undefined);
          else reject(new Error(`credential helper ${program} failed for ${serverUrl}: ${said || `exit code ${code}`}`));
          return;
        }
        let parsed: { Username?: string; Secret?: string };
        try {
          parsed = JSON.parse(stdout) as { Username?: string; Secret?: string };
        } catch {
          reject(new Error(`credential helper ${program} answered ${serverUrl} with something other than JSON`));
          return;
        }
        if (parsed.Username === "<token>") resolve({ username: "", secret: parsed.Secret ?? "" });
        else resolve({ username: parsed.Username ?? "", secret: parsed.Secret ?? "" });
      });
    });
    child.stdin.end(serverUrl);
  });
}

/**
 * Builds the per-build credential lookup. The config file is read once, on
 * the first request; each host's answer (or failure) is cached for the
 * build, since buildkitd asks again on every token refresh.
 */
export function credentialLookup(
  options: RegistryAuthOptions | undefined,
  env: Record<string, string | undefined>,
): (host: string) => Promise<Credentials | undefined> {
  const explicit = Object.entries(options?.credentials ?? {});
  const timeoutMs = options?.helperTimeoutMs ?? 10_000;
  const configPath = dockerConfigPath(options?.configDir, env);
  let config: DockerConfig | undefined;
  const readConfig = (): DockerConfig => {
    if (config) return config;
    config = {}; // a file that is not JSON fails the first lookup only
    config = readDockerConfig(configPath);
    return config;
  };
  const cache = new Map<string, Promise<Credentials | undefined>>();
  const find = async (host: string): Promise<Credentials | undefined> => {
    for (const [h, c] of explicit) {
      if (sameRegistry(h, host)) return "token" in c ? { username: "", secret: c.token } : { username: c.username, secret: c.password };
    }
    const cfg = readConfig();
    const key = configKey(host);
    const helperFor = Object.entries(cfg.credHelpers ?? {}).find(([k]) => sameRegistry(k, host))?.[1];
    const helper = helperFor ?? cfg.credsStore;
    if (helper) {
      const got = await runCredentialHelper(helper, key, { timeoutMs, env, configPath });
      if (got) return got;
    }
    const entry = Object.entries(cfg.auths ?? {}).find(([k]) => sameRegistry(k, host));
    return entry ? fromEntry(entry[1], `${configPath}: auths["${entry[0]}"]`) : undefined;
  };
  return (host) => {
    let p = cache.get(host);
    if (!p) {
      p = find(host);
      cache.set(host, p);
    }
    return p;
  };
}
