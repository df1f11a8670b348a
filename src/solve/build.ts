/**
 * A Dockerfile build: the session (file sync, secrets, health), Control.Solve
 * with the dockerfile.v0 frontend, and the Control.Status stream run side by
 * side. The first failure cancels the rest; status drains (bounded) after
 * Solve returns.
 */
import { basename, dirname, resolve } from "node:path";
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { BuildKitError, UsageError } from "../errors.js";
import type { Connection } from "../transport/connection.js";
import { Session, newId } from "../session/session.js";
import { fileSyncService, type FileSyncStats } from "../session/filesync.js";
import { secretsService } from "../session/secrets.js";
import { prepareSecrets, type SecretSource } from "./secrets.js";
import { prepareSsh, type SshAgentSource } from "./ssh.js";
import { sshService } from "../session/ssh.js";
import { authService } from "../session/auth.js";
import { credentialLookup, type RegistryAuthOptions } from "./registry-auth.js";
import type { CacheEntry } from "./cache.js";
import { Queue } from "../queue.js";
import { parseBytes } from "../units.js";
import { statusFromWire, type SolveStatus } from "../progress/status.js";
import type { StatusResponse__Output } from "../gen/types/moby/buildkit/v1/StatusResponse.js";
import type { SolveResponse__Output } from "../gen/types/moby/buildkit/v1/SolveResponse.js";

export interface ExportSpec {
  /** Exporter type: image, local, tar, oci, docker. */
  type: string;
  attrs: Record<string, string>;
}

export interface BuildOptions {
  /**
   * Build context: a directory (sent through the session), or a git/http(s)
   * URL that buildkitd fetches itself (then `dockerfile` is a path inside it).
   */
  context: string;
  /** Dockerfile path (default: <context>/Dockerfile); may lie outside the context. */
  dockerfile?: string | undefined;
  target?: string | undefined;
  buildArgs?: Record<string, string> | undefined;
  labels?: Record<string, string> | undefined;
  platforms?: string[] | undefined;
  /** true: no cache for any stage; a list: only those stages. */
  noCache?: boolean | string[] | undefined;
  /** Named contexts: a directory, or a frontend reference such as docker-image://REF. */
  buildContexts?: Record<string, string> | undefined;
  secrets?: Record<string, SecretSource> | undefined;
  /**
   * SSH agents for `RUN --mount=type=ssh[,id=ID]`, by id ("default" when the
   * mount names none): `true` for $SSH_AUTH_SOCK, `{ socket }`, or `{ keys }`.
   */
  ssh?: Record<string, SshAgentSource> | undefined;
  /**
   * Registry logins for pulls and pushes. By default the Docker config
   * (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, with its
   * credential helpers) is used, as docker does.
   */
  registryAuth?: RegistryAuthOptions | undefined;
  /** Cache sources (buildx --cache-from), e.g. { type: "registry", attrs: { ref } }. */
  cacheFrom?: CacheEntry[] | undefined;
  /** Cache exports (buildx --cache-to), e.g. { type: "inline", attrs: {} }. */
  cacheTo?: CacheEntry[] | undefined;
  /** Image names; with `push`, they are pushed. */
  tags?: string[] | undefined;
  push?: boolean | undefined;
  /** Extra exporters (buildx --output). */
  outputs?: ExportSpec[] | undefined;
  /** Entitlements such as "network.host" (the daemon must allow them). */
  entitlements?: string[] | undefined;
  /** Other frontend attributes, sent as they are. */
  frontendAttrs?: Record<string, string> | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Environment for `{ env }` secrets, bare build args, `SSH_AUTH_SOCK`,
   * `DOCKER_CONFIG`/`HOME` (the Docker config) and credential helpers'
   * PATH. Default: process.env.
   */
  env?: Record<string, string | undefined> | undefined;
}

export interface BuildResult {
  /** The exporters' response, e.g. `containerimage.digest`. */
  exporterResponse: Record<string, string>;
  /** Bytes of file content sent for each local directory. */
  bytesSent: Record<string, number>;
}

export interface Build {
  readonly ref: string;
  readonly progress: AsyncIterable<SolveStatus>;
  readonly result: Promise<BuildResult>;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function frontendAttrs(opts: BuildOptions, dockerfileName: string, namedDirs: Map<string, string>): Record<string, string> {
  const attrs: Record<string, string> = { filename: dockerfileName };
  if (opts.target) attrs["target"] = opts.target;
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) attrs[`build-arg:${k}`] = v;
  for (const [k, v] of Object.entries(opts.labels ?? {})) attrs[`label:${k}`] = v;
  if (opts.platforms?.length) attrs["platform"] = opts.platforms.join(",");
  if (opts.noCache === true) attrs["no-cache"] = "";
  else if (Array.isArray(opts.noCache) && opts.noCache.length) attrs["no-cache"] = opts.noCache.join(",");
  for (const [name, value] of Object.entries(opts.buildContexts ?? {})) {
    const local = namedDirs.get(name);
    attrs[`context:${name}`] = local !== undefined ? `local:${local}` : value;
  }
  // The frontend resolves its own cache sources from this attribute (as buildctl sends it).
  if (opts.cacheFrom?.length) attrs["cache-imports"] = JSON.stringify(opts.cacheFrom.map((c) => ({ Type: c.type, Attrs: c.attrs })));
  return { ...attrs, ...(opts.frontendAttrs ?? {}) };
}

export function exporters(opts: BuildOptions): ExportSpec[] {
  const out: ExportSpec[] = [...(opts.outputs ?? [])];
  if (opts.tags?.length || opts.push) {
    const image = out.find((o) => o.type === "image");
    if (image) {
      if (opts.tags?.length && !image.attrs["name"]) image.attrs["name"] = opts.tags.join(",");
      if (opts.push) image.attrs["push"] = "true";
    } else {
      if (opts.push && !opts.tags?.length) throw new UsageError("push needs at least one tag (--tag NAME)");
      const attrs: Record<string, string> = { name: opts.tags!.join(",") };
      if (opts.push) attrs["push"] = "true";
      out.unshift({ type: "image", attrs });
    }
  }
  return out;
}

/** The RUN-environment settings that `build` flags and compose's build section share. */
export interface RunEnvironment {
  /** HOST:IP or HOST=IP entries for /etc/hosts. */
  addHosts: string[];
  /** Size of /dev/shm, in docker's units (64MB, 2gb). */
  shmSize?: string | undefined;
  /** NAME=SOFT[:HARD] entries. */
  ulimits: string[];
  /** default, none or host. */
  network?: string | undefined;
}

/**
 * Checks the shared RUN-environment settings and turns them into frontend
 * attributes (and the network.host entitlement). `name` says how each
 * setting is spelled where the user wrote it, for error messages.
 */
export function runEnvironmentAttrs(
  env: RunEnvironment,
  name: (setting: "add-host" | "shm-size" | "ulimit" | "network") => string,
): { attrs: Record<string, string>; entitlements: string[] } {
  const attrs: Record<string, string> = {};
  const entitlements: string[] = [];
  const hosts = env.addHosts.map((h) => {
    const i = h.search(/[:=]/);
    if (i <= 0 || i === h.length - 1) throw new UsageError(`invalid ${name("add-host")} "${h}": use HOST:IP`);
    return `${h.slice(0, i)}=${h.slice(i + 1)}`;
  });
  if (hosts.length) attrs["add-hosts"] = hosts.join(",");
  if (env.shmSize !== undefined) attrs["shm-size"] = parseBytes(env.shmSize, name("shm-size")).toString();
  for (const u of env.ulimits) {
    if (!/^[a-z]+=-?\d+(:-?\d+)?$/.test(u)) throw new UsageError(`invalid ${name("ulimit")} "${u}": use NAME=SOFT[:HARD], e.g. nofile=1024:2048`);
  }
  if (env.ulimits.length) attrs["ulimit"] = env.ulimits.join(",");
  const network = env.network;
  if (network !== undefined && network !== "default") {
    if (network !== "none" && network !== "host") throw new UsageError(`invalid ${name("network")} "${network}": use default, none or host`);
    attrs["force-network-mode"] = network;
    if (network === "host") entitlements.push("network.host");
  }
  return { attrs, entitlements };
}

/** A context the frontend fetches itself: a git repository or an http(s) URL. */
export function isRemoteContext(context: string): boolean {
  return /^(https?|git|ssh):\/\//i.test(context) || /^git@[^:]+:/.test(context);
}

/**
 * Validates the options synchronously (throws UsageError before any I/O on
 * the daemon), then runs the build; failures after that reject `result`.
 */
export function startBuild(conn: Connection, opts: BuildOptions): Build {
  const env = opts.env ?? process.env;
  const remote = isRemoteContext(opts.context);
  const context = remote ? opts.context : resolve(opts.context);
  const dirs = new Map<string, string>();
  let dockerfileName: string;
  if (remote) {
    // The frontend fetches the context itself (git or an HTTP tarball) and
    // reads the Dockerfile from it: `dockerfile` is a path inside it.
    dockerfileName = opts.dockerfile ?? "Dockerfile";
  } else {
    if (!isDir(context)) throw new UsageError(`build context "${opts.context}" is not a directory`);
    const dockerfilePath = resolve(opts.dockerfile ?? `${context}/Dockerfile`);
    try {
      if (!statSync(dockerfilePath).isFile()) throw new Error("not a file");
    } catch {
      throw new UsageError(`Dockerfile "${opts.dockerfile ?? `${opts.context}/Dockerfile`}" not found; pass its path with -f/--file`);
    }
    dirs.set("context", context);
    dirs.set("dockerfile", dirname(dockerfilePath));
    dockerfileName = basename(dockerfilePath);
  }
  const namedDirs = new Map<string, string>();
  for (const [name, value] of Object.entries(opts.buildContexts ?? {})) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) continue;
    const dir = resolve(value);
    if (!isDir(dir)) throw new UsageError(`build context "${name}=${value}" is not a directory or a known reference (docker-image://, https://, ...)`);
    const local = `named-${name.replace(/[^a-zA-Z0-9_.-]/g, "_")}`;
    dirs.set(local, dir);
    namedDirs.set(name, local);
  }
  const exps = exporters(opts);
  const attrs = frontendAttrs(opts, dockerfileName, namedDirs);
  if (remote) attrs["context"] = opts.context;

  if (opts.signal?.aborted) throw new BuildKitError("the build was aborted before it started", { code: "CANCELLED" });
  const ref = newId();
  const progress = new Queue<SolveStatus>();
  const result = run(conn, opts, { ref, progress, env, context, dirs, attrs, exps });
  // The caller may read progress before awaiting result; keep an early
  // failure from counting as an unhandled rejection in the meantime.
  result.catch(() => undefined);
  return { ref, progress, result };
}

interface Prepared {
  ref: string;
  progress: Queue<SolveStatus>;
  env: Record<string, string | undefined>;
  context: string;
  dirs: Map<string, string>;
  attrs: Record<string, string>;
  exps: ExportSpec[];
}

async function run(conn: Connection, opts: BuildOptions, p: Prepared): Promise<BuildResult> {
  const { ref, progress, context, dirs, attrs, exps } = p;
  let secrets;
  let agents;
  try {
    secrets = await prepareSecrets(opts.secrets, p.env);
    agents = await prepareSsh(opts.ssh, p.env);
  } catch (e) {
    progress.close();
    throw e;
  }
  const stats: FileSyncStats = { bytesSent: new Map() };
  // Stable per context directory, so buildkitd reuses what it already has.
  const sharedKey = createHash("sha256").update(context).digest("hex").slice(0, 32);
  const session = new Session({
    sharedKey,
    services: [
      fileSyncService(dirs, stats),
      secretsService(secrets),
      authService(credentialLookup(opts.registryAuth, p.env)),
      ...(agents.size ? [sshService(agents)] : []),
    ],
  });
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  session.start(conn);
  // The first failure cancels the rest: a session that ends mid-build makes
  // the solve fail now, with a reason, instead of at the daemon's next use.
  let solving = true;
  void session.ended.then(({ unexpected }) => {
    if (unexpected && solving) {
      ac.abort(new BuildKitError("the session with buildkitd ended before the build finished", { code: "UNAVAILABLE" }));
    }
  });
  const statusAc = new AbortController();
  const statusDone = (async () => {
    try {
      for await (const r of conn.serverStream<StatusResponse__Output>("Control.Status", { Ref: ref }, { signal: statusAc.signal })) {
        progress.push(statusFromWire(r));
      }
    } catch {
      // Status is best effort; Solve's outcome decides the build.
    }
  })();

  const first = exps[0];
  const request = {
    Ref: ref,
    Session: session.id,
    Frontend: "dockerfile.v0",
    FrontendAttrs: attrs,
    Exporters: exps.map((e) => ({ Type: e.type, Attrs: e.attrs })),
    ExporterDeprecated: first?.type ?? "",
    ExporterAttrsDeprecated: first?.attrs ?? {},
    Cache: {
      Imports: (opts.cacheFrom ?? []).map((c) => ({ Type: c.type, Attrs: c.attrs })),
      Exports: (opts.cacheTo ?? []).map((c) => ({ Type: c.type, Attrs: c.attrs })),
    },
    Entitlements: opts.entitlements ?? [],
  };

  try {
    const res = await conn.unary<SolveResponse__Output>("Control.Solve", request, { signal: ac.signal });
    return { exporterResponse: { ...res.ExporterResponse }, bytesSent: Object.fromEntries(stats.bytesSent) };
  } catch (e) {
    const reason: unknown = ac.signal.reason;
    if (ac.signal.aborted && reason instanceof BuildKitError && !opts.signal?.aborted) throw reason;
    throw e;
  } finally {
    solving = false;
    opts.signal?.removeEventListener("abort", onAbort);
    await session.close();
    // Let the status stream finish on its own; cut it after 5 s.
    const timer = setTimeout(() => statusAc.abort(), 5000);
    await statusDone;
    clearTimeout(timer);
    progress.close();
  }
}
