/**
 * Builds a compose project's services on one connection: independent
 * services in parallel (bounded), services used as `service:NAME` contexts
 * first, a failure stopping only the services that depend on it.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { BuildKitError, UsageError, toBuildKitError } from "../errors.js";
import { checkPlatform, runEnvironmentAttrs, type BuildOptions } from "../solve/options.js";
import type { Build, BuildResult } from "../solve/solve.js";
import { parseCacheEntries, type CacheEntry } from "../solve/cache.js";
import type { SecretSource } from "../solve/secrets.js";
import { parseSsh, type SshAgentSource } from "../solve/ssh.js";
import { checkImageName } from "../solve/reference.js";
import type { RegistryAuthOptions } from "../solve/registry-auth.js";
import type { SolveStatus } from "../progress/status.js";
import type { ComposeBuild, ComposeProject, ComposeService } from "./load.js";
import { parseAttestation, shorthandAttestation, type AttestationSpec } from "../solve/attest.js";
import type { CheckResult } from "../gateway/results.js";

export interface ComposeBuildOptions {
  /** Services to build (named ones are built even when their profile is off). Default: every active service with a build section. */
  services?: string[] | undefined;
  /** Push every built image that has a name. */
  push?: boolean | undefined;
  /**
   * Built images stay in the daemon's image store, where the project's
   * later builds find them by name (a Docker Engine): services used as
   * `service:` contexts are not pushed. BuildKitClient.composeBuild sets
   * this when it talks to an Engine.
   */
  localImages?: boolean | undefined;
  /** Build without cache, for every service. */
  noCache?: boolean | undefined;
  /** Always pull base images. */
  pull?: boolean | undefined;
  /** Build args for every service, over each service's own (compose build --build-arg). */
  buildArgs?: Record<string, string> | undefined;
  /**
   * Build args every service gets unless it (or `buildArgs`) sets that exact
   * name: the CLI passes the Docker config's proxies here, as docker compose.
   */
  fallbackBuildArgs?: Record<string, string> | undefined;
  /** An SSH agent for every service (compose build --ssh): id -> key or socket path, null for $SSH_AUTH_SOCK. */
  ssh?: Record<string, string | null> | undefined;
  /**
   * compose build --provenance / --sbom: `true`, `false` or attributes
   * (mode=max, generator=IMAGE); over each service's provenance:/sbom:.
   */
  provenance?: string | undefined;
  sbom?: string | undefined;
  /** buildx's default provenance (see BuildOptions.defaultProvenance); the CLI sets it as `build` does. */
  defaultProvenance?: boolean | undefined;
  /** How many builds run at once. Default 4. */
  parallel?: number | undefined;
  signal?: AbortSignal | undefined;
  registryAuth?: RegistryAuthOptions | undefined;
  /** Each service's progress, as it arrives. */
  onStatus?: ((service: string, status: SolveStatus) => void) | undefined;
  /** Called when a service starts building. */
  onStart?: ((service: string) => void) | undefined;
}

export interface ComposeServiceResult {
  service: string;
  /** built; failed (its own build failed); skipped (a service it needs failed). */
  outcome: "built" | "failed" | "skipped";
  /** Image names it was built as (`image` first, then `build.tags`). */
  images: string[];
  /** containerimage.digest, when the exporter reported one. */
  digest?: string | undefined;
  error?: BuildKitError | undefined;
  result?: BuildResult | undefined;
}

type StartBuild = (options: BuildOptions) => Build;

/**
 * For builds through a Docker Engine: every built service without an
 * `image:` is named `PROJECT-SERVICE`, as docker compose names it, so that
 * it lands in the Engine's store under that name (and service: contexts
 * can use it from there). Returns a copy.
 */
export function withEngineImageNames(project: ComposeProject): ComposeProject {
  return {
    ...project,
    services: project.services.map((s) => (s.build && s.image === undefined ? { ...s, image: defaultImageName(project, s.name) } : s)),
  };
}

/** compose's image name for a service without `image:` (GetImageNameOrDefault): PROJECT-SERVICE. */
export function defaultImageName(project: ComposeProject, service: string): string {
  return `${project.name}-${service}`;
}

function imagesOf(svc: ComposeService): string[] {
  const names = [svc.image, ...(svc.build?.tags ?? [])].filter((x): x is string => Boolean(x));
  return [...new Set(names)];
}

/** A relative type=local cache directory is the project directory's, as the context is. */
function localCacheIn(entries: CacheEntry[], dir: string): CacheEntry[] {
  return entries.map((e) => {
    if (e.type !== "local") return e;
    const attrs = { ...e.attrs };
    for (const k of ["src", "dest"]) if (attrs[k]) attrs[k] = resolve(dir, attrs[k]);
    return { type: e.type, attrs };
  });
}
/** service:NAME contexts: the services each one needs first. */
function dependencies(svc: ComposeService): string[] {
  return Object.values(svc.build?.additionalContexts ?? {})
    .filter((v) => v.startsWith("service:"))
    .map((v) => v.slice("service:".length));
}

/** Picks the services to build and checks the graph and every service's options before anything runs. */
export function planCompose(project: ComposeProject, names: string[] | undefined, o: { withDependencies?: boolean | undefined } = {}): ComposeService[] {
  const byName = new Map(project.services.map((s) => [s.name, s]));
  const wanted = new Set<string>();
  const add = (name: string, from?: string): void => {
    const svc = byName.get(name);
    if (!svc) {
      throw new UsageError(
        from
          ? `service "${from}" uses service:${name} as a context, but there is no service "${name}"`
          : `no such service: ${name} (services: ${[...byName.keys()].join(", ")})`,
      );
    }
    if (!svc.build) {
      if (from) throw new UsageError(`service "${from}" uses service:${name} as a context, but "${name}" has no build section`);
      return; // a service with only an image is not built
    }
    if (wanted.has(name)) return;
    wanted.add(name);
    // --with-dependencies: depends_on too, transitively (those without a build section are not built).
    if (o.withDependencies) for (const d of svc.dependsOn) add(d);
    for (const d of dependencies(svc)) add(d, name);
  };
  if (names?.length) for (const n of names) add(n);
  else for (const s of project.services) if (s.active && s.build) add(s.name);
  // Cycles would never start; find them now.
  const state = new Map<string, "visiting" | "done">();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "visiting") throw new UsageError(`services depend on each other through service: contexts: ${[...path, n].join(" -> ")}`);
    state.set(n, "visiting");
    for (const d of dependencies(byName.get(n)!)) visit(d, [...path, n]);
    state.set(n, "done");
  };
  for (const n of wanted) visit(n, []);
  const plan = project.services.filter((s) => wanted.has(s.name));
  // Every service's options (secrets, ssh, sizes, ...) are checked before the first build starts.
  const assumed = new Map(plan.map((s) => [s.name, { service: s.name, outcome: "built" as const, images: imagesOf(s) }]));
  for (const svc of plan) serviceBuildOptions(project, svc, {}, assumed, false).cleanup();
  return plan;
}

/** Turns one service's build section into BuildOptions. */
export function serviceBuildOptions(
  project: ComposeProject,
  svc: ComposeService,
  opts: ComposeBuildOptions,
  built: ReadonlyMap<string, ComposeServiceResult>,
  push: boolean,
  localImages = false,
  layouts: ReadonlyMap<string, string> = new Map(),
): { options: BuildOptions; cleanup: () => void } {
  const b = svc.build!;
  const where = `service "${svc.name}"`;
  if (svc.image !== undefined) checkImageName(svc.image, "image", `in ${where}`);
  for (const tag of b.tags) checkImageName(tag, "build.tags entry", `in ${where}`);
  for (const p of b.platforms) checkPlatform(p, `${where} build.platforms entry`);
  // What the files append twice, bake (Target.normalize) builds once.
  const unique = <T>(xs: T[]): T[] => [...new Map(xs.map((x) => [JSON.stringify(x), x])).values()];
  let cleanup = (): void => undefined;
  // A remote context (git, https) keeps its Dockerfile path as written: it is a path inside the context.
  let dockerfile = b.dockerfile === undefined ? undefined : isAbsolute(b.context) ? resolve(b.context, b.dockerfile) : b.dockerfile;
  if (b.dockerfileInline !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), "bk-compose-inline-"));
    dockerfile = join(dir, "Dockerfile");
    writeFileSync(dockerfile, b.dockerfileInline);
    cleanup = () => rmSync(dir, { recursive: true, force: true });
  }
  const secrets: Record<string, SecretSource> = {};
  for (const s of b.secrets) {
    const def = project.secrets[s.source];
    // The loader checks the active services; a named inactive one is checked here.
    if (!def) throw new UsageError(`${where} refers to undefined build secret ${s.source}; define it under the top-level secrets:`);
    const id = s.target ?? s.source;
    if (def.external)
      throw new UsageError(`${where}: secret "${s.source}" is external; external secrets do not exist at build time; define it with file: or environment:`);
    if (def.file !== undefined) {
      if (!existsSync(def.file)) throw new UsageError(`${where}: secret "${s.source}": file ${def.file} does not exist`);
      secrets[id] = { file: def.file };
    } else if (def.environment !== undefined) {
      if (project.environment[def.environment] === undefined) {
        throw new UsageError(`${where}: secret "${s.source}": environment variable ${def.environment} is not set; set it or put it in .env`);
      }
      secrets[id] = { env: def.environment };
    } else throw new UsageError(`${where}: secret "${s.source}" has neither file: nor environment:`);
  }
  const ssh: Record<string, SshAgentSource> = {};
  for (const [id, path] of Object.entries(b.ssh)) {
    const [sid, source] = parseSsh(path === null ? id : `${id}=${path}`, project.environment);
    ssh[sid] = source;
  }
  const buildContexts: Record<string, string> = {};
  for (const [name, value] of Object.entries(b.additionalContexts)) {
    if (value.startsWith("service:")) {
      const depName = value.slice("service:".length);
      const layout = layouts.get(depName);
      const dep = built.get(depName)!;
      // Unnamed (a lint, before anything is built): compose's default name.
      const image = dep.images[0] ?? defaultImageName(project, depName);
      if (layout !== undefined) buildContexts[name] = layout;
      // In the Engine's store the image is found by its name (the digest there is its ID, not a manifest's).
      else buildContexts[name] = `docker-image://${dep.digest && !localImages ? `${image.replace(/@.*$/, "")}@${dep.digest}` : image}`;
    } else {
      buildContexts[name] = value;
    }
  }
  const composeKey = { "add-host": "extra_hosts", "shm-size": "shm_size", ulimit: "ulimits", network: "network" } as const;
  const { attrs, entitlements } = runEnvironmentAttrs(
    { addHosts: b.extraHosts, shmSize: b.shmSize, ulimits: b.ulimits, network: b.network },
    (setting) => `${where} build.${composeKey[setting]}`,
  );
  if (b.pull || opts.pull) attrs["image-resolve-mode"] = "pull";
  for (const [id, path] of Object.entries(opts.ssh ?? {})) {
    const [sid, source] = parseSsh(path === null ? id : `${id}=${path}`, project.environment);
    ssh[sid] = source;
  }
  const options: BuildOptions = {
    context: b.context,
    dockerfile,
    target: b.target,
    buildArgs: serviceBuildArgs(b, opts),
    labels: composeLabels(project, svc),
    platforms: unique(b.platforms),
    buildContexts,
    secrets,
    ssh,
    tags: imagesOf(svc),
    push,
    cacheFrom: unique(b.cacheFrom.flatMap((c) => localCacheIn(parseCacheEntries(c, `${where} build.cache_from`), project.directory))),
    cacheTo: unique(b.cacheTo.flatMap((c) => localCacheIn(parseCacheEntries(c, `${where} build.cache_to`), project.directory))),
    env: project.environment,
    registryAuth: opts.registryAuth,
    signal: opts.signal,
    frontendAttrs: attrs,
  };
  if (b.noCache || opts.noCache) options.noCache = true;
  else if (b.noCacheFilter.length) options.noCache = unique(b.noCacheFilter);
  const allowed = [...new Set([...entitlements, ...b.entitlements])];
  if (allowed.length) options.entitlements = allowed;
  const attestations = serviceAttestations(b, opts, where);
  if (attestations.length) options.attestations = attestations;
  if (opts.defaultProvenance) options.defaultProvenance = true;
  return { options, cleanup };
}

/**
 * The image labels docker compose builds with: the service's, then the
 * project and service names (getImageBuildLabels). Its third,
 * com.docker.compose.version, names docker compose's own release and is
 * left out: bk-build is not that release.
 */
export function composeLabels(project: ComposeProject, svc: ComposeService): Record<string, string> {
  return { ...(svc.build?.labels ?? {}), "com.docker.compose.project": project.name, "com.docker.compose.service": svc.name };
}

/** A service's build args: the fallbacks (proxies), then its own, then the command line's, as docker compose merges them. */
export function serviceBuildArgs(b: ComposeBuild, opts: ComposeBuildOptions): Record<string, string> {
  return { ...(opts.fallbackBuildArgs ?? {}), ...b.args, ...(opts.buildArgs ?? {}) };
}

/**
 * A service's provenance:/sbom: as docker compose's toBakeAttest writes
 * them for bake: `true` is the type alone, any other value but `false` its
 * attributes; `false` adds nothing, so buildx's default provenance still
 * applies, as in docker compose.
 */
export function bakeAttests(b: ComposeBuild): Array<[type: "provenance" | "sbom", spec: string]> {
  const out: Array<["provenance" | "sbom", string]> = [];
  for (const [type, v] of [
    ["provenance", b.provenance],
    ["sbom", b.sbom],
  ] as const) {
    if (v === undefined || v === "" || v === "false") continue;
    out.push([type, v === "true" ? `type=${type}` : `type=${type},${v}`]);
  }
  return out;
}

/**
 * A service's attestations: its bakeAttests, then the command line's
 * --provenance/--sbom, a boolean turning the type on or off, replacing the
 * service's of the same type (bake's override merge).
 */
function serviceAttestations(b: ComposeBuild, opts: ComposeBuildOptions, where: string): AttestationSpec[] {
  const byType = new Map<string, AttestationSpec>();
  for (const [type, spec] of bakeAttests(b)) byType.set(type, parseAttestation(spec, `${where} build.${type}`));
  if (opts.provenance) byType.set("provenance", shorthandAttestation("provenance", opts.provenance, "--provenance"));
  if (opts.sbom) byType.set("sbom", shorthandAttestation("sbom", opts.sbom, "--sbom"));
  return [...byType.values()];
}

/**
 * Runs builds planned (and so checked) by planCompose. Resolves with one
 * result per planned service; never rejects for a failed build (the
 * results say which failed).
 */
/** How many builds at once (default 4); anything but a whole number of at least 1 is a UsageError. */
function parallelOf(opts: ComposeBuildOptions): number {
  const parallel = opts.parallel ?? 4;
  if (!Number.isInteger(parallel) || parallel < 1) throw new UsageError(`invalid parallel ${String(opts.parallel)}: must be a whole number of at least 1`);
  return parallel;
}

export async function runCompose(
  project: ComposeProject,
  plan: ComposeService[],
  startBuild: StartBuild,
  opts: ComposeBuildOptions,
): Promise<ComposeServiceResult[]> {
  const parallel = parallelOf(opts);
  const neededAsContext = new Set(plan.flatMap(dependencies));

  const results = new Map<string, ComposeServiceResult>();
  const pending = [...plan];
  const running = new Set<Promise<void>>();
  // service:NAME contexts with buildkitd and no push: NAME's image goes
  // into an OCI layout (the session's content store) and the next build
  // reads it as oci-layout://DIR@DIGEST; nothing needs a registry. Through
  // an Engine the image stays in its store, where the next build finds it
  // by name; with --push a named service is pushed and used by digest.
  const layoutDirs: string[] = [];
  const layouts = new Map<string, string>();
  const runOne = async (svc: ComposeService): Promise<void> => {
    const push = Boolean(opts.push) && imagesOf(svc).length > 0;
    const viaLayout = neededAsContext.has(svc.name) && !opts.localImages && !push;
    const { options, cleanup } = serviceBuildOptions(project, svc, opts, results, push, opts.localImages, layouts);
    let layoutDir: string | undefined;
    if (viaLayout) {
      layoutDir = mkdtempSync(join(tmpdir(), "bk-compose-context-"));
      layoutDirs.push(layoutDir);
      // The tags still name an image in the daemon's store, as without the layout.
      options.outputs = [...(options.tags?.length ? [{ type: "image" }] : []), { type: "oci", dest: layoutDir, attrs: { tar: "false" } }];
    }
    opts.onStart?.(svc.name);
    try {
      const build = startBuild(options);
      const consume = (async () => {
        for await (const s of build.progress) opts.onStatus?.(svc.name, s);
      })();
      const result = await build.result;
      await consume;
      const digest = result.exporterResponse["containerimage.digest"];
      if (layoutDir !== undefined) {
        const inLayout = result.exports.find((e) => e.type === "oci" && e.dest === layoutDir)?.digest ?? digest;
        if (!inLayout) throw new BuildKitError(`service "${svc.name}": the daemon reported no digest for its image, which service: contexts need`);
        layouts.set(svc.name, `oci-layout://${layoutDir}@${inLayout}`);
      }
      results.set(svc.name, { service: svc.name, outcome: "built", images: imagesOf(svc), digest, result });
    } catch (e) {
      const error = toBuildKitError(e);
      results.set(svc.name, { service: svc.name, outcome: "failed", images: imagesOf(svc), error });
    } finally {
      cleanup();
    }
  };
  try {
    while (pending.length || running.size) {
      // Skip what can no longer build; start what is ready.
      for (let i = 0; i < pending.length;) {
        const svc = pending[i]!;
        const deps = dependencies(svc);
        const broken = deps.find((d) => results.get(d) && results.get(d)!.outcome !== "built");
        if (broken) {
          results.set(svc.name, {
            service: svc.name,
            outcome: "skipped",
            images: imagesOf(svc),
            error: new BuildKitError(`not built: service "${broken}", which it uses as a context, did not build`),
          });
          pending.splice(i, 1);
          continue;
        }
        if (running.size < parallel && deps.every((d) => results.get(d)?.outcome === "built") && !opts.signal?.aborted) {
          pending.splice(i, 1);
          const p: Promise<void> = runOne(svc).finally(() => running.delete(p));
          running.add(p);
          continue;
        }
        i++;
      }
      if (opts.signal?.aborted && running.size === 0) {
        for (const svc of pending.splice(0)) {
          results.set(svc.name, {
            service: svc.name,
            outcome: "skipped",
            images: imagesOf(svc),
            error: new BuildKitError("not built: the build was aborted", { code: "CANCELLED" }),
          });
        }
        break;
      }
      if (running.size) await Promise.race(running);
      else if (pending.length) throw new Error("internal: compose services cannot start");
    }
  } finally {
    for (const d of layoutDirs) rmSync(d, { recursive: true, force: true });
  }
  return plan.map((s) => results.get(s.name)!);
}

/** One service's lint result (`compose build --check`). */
export interface ComposeCheckResult {
  service: string;
  /** The frontend's findings; absent when the check itself failed. */
  result?: CheckResult | undefined;
  error?: BuildKitError | undefined;
}

/**
 * Lints every planned service's Dockerfile with its build options (build
 * args, target, ...), `parallel` at a time; nothing is built, so a
 * service: context names the other service's image without a digest.
 * Never rejects for a failed check (its result carries the error).
 */
export async function checkCompose(
  project: ComposeProject,
  plan: ComposeService[],
  check: (options: BuildOptions) => Promise<CheckResult>,
  opts: ComposeBuildOptions,
): Promise<ComposeCheckResult[]> {
  const parallel = parallelOf(opts);
  const assumed = new Map(plan.map((s) => [s.name, { service: s.name, outcome: "built" as const, images: imagesOf(s) }]));
  const results: ComposeCheckResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plan.length) {
      const i = next++;
      const svc = plan[i]!;
      const { options, cleanup } = serviceBuildOptions(project, svc, opts, assumed, false, true);
      opts.onStart?.(svc.name);
      try {
        results[i] = { service: svc.name, result: await check(options) };
      } catch (e) {
        results[i] = { service: svc.name, error: toBuildKitError(e) };
      } finally {
        cleanup();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, plan.length) }, worker));
  return results;
}
