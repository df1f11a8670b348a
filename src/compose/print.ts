/**
 * `compose build --print`: the build definitions as docker compose prints
 * them, the bake file it would hand to buildx (docker/compose
 * pkg/compose/build_bake.go: bakeConfig, bakeTarget): every service with a
 * build section is a target, the services to build are the default group.
 */
import { realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { bakeAttests, composeLabels, defaultImageName, serviceBuildArgs, type ComposeBuildOptions } from "./build.js";
import type { ComposeProject, ComposeService } from "./load.js";

/** One bake target, the fields in bakeTarget's order (empty ones left out, as Go's omitempty). */
interface BakeTarget {
  context?: string | undefined;
  contexts?: Record<string, string> | undefined;
  dockerfile?: string | undefined;
  "dockerfile-inline"?: string | undefined;
  args?: Record<string, string> | undefined;
  labels?: Record<string, string> | undefined;
  tags?: string[] | undefined;
  "cache-from"?: string[] | undefined;
  "cache-to"?: string[] | undefined;
  target?: string | undefined;
  secret?: string[] | undefined;
  ssh?: string[] | undefined;
  platforms?: string[] | undefined;
  pull?: true | undefined;
  "no-cache"?: true | undefined;
  network?: string | undefined;
  "no-cache-filter"?: string[] | undefined;
  "shm-size"?: number | undefined;
  ulimits?: string[] | undefined;
  call?: string | undefined;
  entitlements?: string[] | undefined;
  "extra-hosts"?: Record<string, string> | undefined;
  output?: string[] | undefined;
  attest?: string[] | undefined;
}

/** bake target names: dots made underscores, in sorted service order, a clash getting `_` appended (bakeTargetNames). */
function targetNames(services: readonly ComposeService[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const name of services.map((s) => s.name).sort()) {
    let t = name.replaceAll(".", "_");
    while (used.has(t)) t += "_";
    out.set(name, t);
    used.add(t);
  }
  return out;
}

/** A map with its keys sorted, as Go's encoding/json writes maps; undefined when empty (omitempty). */
function sorted(m: Record<string, string>): Record<string, string> | undefined {
  const keys = Object.keys(m).sort();
  return keys.length ? Object.fromEntries(keys.map((k) => [k, m[k]!])) : undefined;
}

/** `${` doubled, so bake does not interpolate what compose already has (a function: "$$" in a replacement string is one "$"). */
function escapeBake(v: string): string {
  return v.replaceAll("${", () => "$${");
}

function nonEmpty<T>(a: T[]): T[] | undefined {
  return a.length ? a : undefined;
}

/** docker compose's dockerFilePath: a local context's Dockerfile as an absolute path, its directory's symlinks resolved. */
function dockerFilePath(context: string, dockerfile: string | undefined): string | undefined {
  if (dockerfile === undefined || !isAbsolute(context)) return dockerfile;
  const path = isAbsolute(dockerfile) ? dockerfile : join(context, dockerfile);
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

function target(project: ComposeProject, svc: ComposeService, names: Map<string, string>, opts: ComposeBuildOptions): BakeTarget {
  const b = svc.build!;
  const contexts: Record<string, string> = {};
  for (const [k, v] of Object.entries(b.additionalContexts)) contexts[k] = v.startsWith("service:") ? `target:${names.get(v.slice(8)) ?? v.slice(8)}` : v;
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(serviceBuildArgs(b, opts))) args[k] = escapeBake(v);
  const secrets = b.secrets.map((s) => {
    const def = project.secrets[s.source];
    const id = s.target ?? s.source;
    if (def?.environment !== undefined) return `id=${id},type=env,env=${def.environment}`;
    return `id=${id},type=file,src=${def?.file ?? ""}`;
  });
  const ssh = [...Object.entries(b.ssh), ...Object.entries(opts.ssh ?? {})].map(([id, path]) => `${id}=${path ?? ""}`);
  // toBakeExtraHosts: each host's addresses joined by ",".
  const extraHosts: Record<string, string> = {};
  for (const h of b.extraHosts) {
    const i = h.indexOf("=");
    const host = h.slice(0, i);
    extraHosts[host] = extraHosts[host] === undefined ? h.slice(i + 1) : `${extraHosts[host]},${h.slice(i + 1)}`;
  }
  const image = svc.image ?? defaultImageName(project, svc.name);
  const push = opts.push === true && svc.image !== undefined;
  const output = b.platforms.length > 1 ? [`type=image,push=${push}`] : push ? ["type=registry"] : ["type=docker"];
  const shm = b.shmSize === undefined ? 0 : Number(b.shmSize);
  const t: BakeTarget = {
    context: b.context,
    contexts: sorted(contexts),
    dockerfile: dockerFilePath(b.context, b.dockerfile),
    "dockerfile-inline": b.dockerfileInline === undefined ? undefined : escapeBake(b.dockerfileInline),
    args: sorted(args),
    labels: sorted(composeLabels(project, svc)),
    tags: [...b.tags, image],
    "cache-from": nonEmpty(b.cacheFrom),
    "cache-to": nonEmpty(b.cacheTo),
    target: b.target,
    secret: nonEmpty(secrets),
    ssh: nonEmpty(ssh),
    platforms: nonEmpty(b.platforms),
    pull: b.pull || opts.pull ? true : undefined,
    "no-cache": b.noCache || opts.noCache ? true : undefined,
    network: b.network,
    "no-cache-filter": nonEmpty(b.noCacheFilter),
    "shm-size": shm || undefined,
    ulimits: nonEmpty(b.ulimits),
    entitlements: nonEmpty(b.entitlements),
    "extra-hosts": sorted(extraHosts),
    output,
    attest: nonEmpty(bakeAttests(b).map(([, spec]) => spec)),
  };
  return Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined && v !== ""));
}

/** Go's encoding/json escapes <, > and & in strings; so does this. */
function goJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

/** The bake definition docker compose prints for `build --print`, for the services in `plan`. */
export function composeBakeDefinition(project: ComposeProject, plan: readonly ComposeService[], opts: ComposeBuildOptions = {}): string {
  const withBuild = project.services.filter((s) => s.build);
  const names = targetNames(withBuild);
  const targets: Record<string, BakeTarget> = {};
  for (const s of [...withBuild].sort((a, b) => (names.get(a.name)! < names.get(b.name)! ? -1 : 1)))
    targets[names.get(s.name)!] = target(project, s, names, opts);
  return goJson({ group: { default: { targets: plan.map((s) => names.get(s.name)!) } }, target: targets });
}
