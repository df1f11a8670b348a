/**
 * Loads a compose project the way docker compose does, as far as builds
 * need: file discovery, .env and --env-file, interpolation, merging several
 * files, profiles, and the `build` section with `secrets` and `ssh`.
 */
import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import { UsageError } from "../errors.js";
import { parseBool } from "../units.js";
import { MAX_TEXT_FILE_BYTES, readInputFile } from "../files.js";
import { InterpolationError, interpolate } from "./interpolate.js";
import { DotenvError, parseDotenv, type DotenvLookup } from "./dotenv.js";
import { DEFAULT_SSH_ID } from "../session/ssh-id.js";
import { isEntitlement, isRemoteContext } from "../solve/options.js";

/** Names compose looks for, in its order of preference. */
export const COMPOSE_FILE_NAMES = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];
const OVERRIDE_NAMES = ["compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml", "docker-compose.override.yml"];

export interface ComposeLoadOptions {
  /** Compose files (-f), merged in order. Default: discovered from `workingDir` upwards, plus its override file. */
  files?: string[] | undefined;
  /** Where discovery starts and relative -f paths are read from. Default: process.cwd(). */
  workingDir?: string | undefined;
  /** Base for relative paths and .env. Default: the first file's directory. */
  projectDirectory?: string | undefined;
  /** -p. Default: COMPOSE_PROJECT_NAME, the top-level `name`, else the project directory's name. */
  projectName?: string | undefined;
  /** --env-file, in order (later files win). Default: `.env` in the project directory, if present. */
  envFiles?: string[] | undefined;
  /** Active profiles (--profile). Default: COMPOSE_PROFILES. */
  profiles?: string[] | undefined;
  /** The shell environment. Default: process.env. */
  env?: Record<string, string | undefined> | undefined;
}

/** A build secret reference: the id the Dockerfile mounts is `target` or `source`. */
export interface ComposeBuildSecret {
  source: string;
  target?: string | undefined;
}

export interface ComposeBuild {
  /** An absolute directory, or a URL (git, https) handed to the frontend. */
  context: string;
  dockerfile?: string | undefined;
  dockerfileInline?: string | undefined;
  args: Record<string, string>;
  target?: string | undefined;
  labels: Record<string, string>;
  tags: string[];
  platforms: string[];
  cacheFrom: string[];
  cacheTo: string[];
  /** name -> absolute directory, docker-image://REF, service:NAME, or a URL. */
  additionalContexts: Record<string, string>;
  network?: string | undefined;
  extraHosts: string[];
  shmSize?: string | undefined;
  ulimits: string[];
  noCache: boolean;
  pull: boolean;
  secrets: ComposeBuildSecret[];
  /** id -> absolute path(s) joined by ",", or null for the default agent. */
  ssh: Record<string, string | null>;
  /** Stages built without cache (no_cache_filter). */
  noCacheFilter: string[];
  /** Entitlements (entitlements, plus security.insecure for privileged: true), as docker compose maps them. */
  entitlements: string[];
  /** provenance: and sbom: as written ("true", "false", or attributes such as mode=max). */
  provenance?: string | undefined;
  sbom?: string | undefined;
}

export interface ComposeService {
  name: string;
  image?: string | undefined;
  profiles: string[];
  /** No profiles, or one of them is active. Inactive services are built only when named. */
  active: boolean;
  /** depends_on, by name (what compose build --with-dependencies follows). */
  dependsOn: string[];
  build?: ComposeBuild | undefined;
}

export interface ComposeSecret {
  file?: string | undefined;
  environment?: string | undefined;
  external: boolean;
}

export interface ComposeProject {
  name: string;
  directory: string;
  files: string[];
  /** Shell environment over the .env values: what interpolation and `environment` secrets read. */
  environment: Record<string, string>;
  /** Every service, in file order. */
  services: ComposeService[];
  secrets: Record<string, ComposeSecret>;
}

type Obj = Record<string, unknown>;

// The YAML parser is loaded on first use: `import "bk-build"` and the CLI's
// other commands do not pay for it (about 70 ms of start-up here).
let yamlModule: typeof Yaml | undefined;
function yaml(): typeof Yaml {
  yamlModule ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return yamlModule;
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads one env file in compose's dialect (see dotenv.ts) into `out`; values
 * expand from `lookup` (the shell) first, then from what `out` holds. Errors
 * name the file and line.
 */
export function parseEnvFile(text: string, file: string, lookup: DotenvLookup = () => undefined, out: Record<string, string> = {}): Record<string, string> {
  try {
    return parseDotenv(text, lookup, out);
  } catch (e) {
    if (e instanceof DotenvError) throw new UsageError(`${file}:${e.line}: ${e.message.replace(/^line \d+: /, "")}`);
    throw e;
  }
}

/** compose-go's NormalizeProjectName: lowercase, only [a-z0-9_-], no leading _ or -. */
export function normalizeProjectName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "")
    .replace(/^[_-]+/, "");
}

/** compose's default discovery: the nearest directory (upwards) holding a compose file. */
export function discoverFiles(workingDir: string): string[] {
  for (let dir = resolve(workingDir); ; dir = dirname(dir)) {
    const found = COMPOSE_FILE_NAMES.find((n) => existsSync(join(dir, n)));
    if (found) {
      const files = [join(dir, found)];
      const override = OVERRIDE_NAMES.find((n) => existsSync(join(dir, n)));
      if (override) files.push(join(dir, override));
      return files;
    }
    if (dirname(dir) === dir) break;
  }
  throw new UsageError(`no compose file found in ${resolve(workingDir)} or its parents (looked for ${COMPOSE_FILE_NAMES.join(", ")}); pass -f FILE`);
}

interface Parsed {
  file: string;
  data: Obj;
  /**
   * Key paths tagged `!reset` (left out of this file's data) or `!override`
   * (kept): what earlier files had there is dropped before this file is
   * merged, as compose-go's ResetProcessor.
   */
  resets: string[][];
  /** "line L" of a key path, when the YAML has it. */
  where: (path: Array<string | number>) => string;
}

function parseFile(file: string, flag: string | undefined): Parsed {
  const text = readInputFile(file, { what: "compose file", flag, maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, merge: true, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const pos = lines.linePos(err.pos[0]);
    throw new UsageError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`);
  }
  const resets = takeResets(doc.contents, []);
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (data === null || data === undefined) return { file, data: {}, where: () => file, resets };
  if (!isObj(data)) throw new UsageError(`${file}: the top level must be a mapping (services:, secrets:, ...)`);
  const where = (path: Array<string | number>): string => {
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return `${file}:${lines.linePos(node.range[0]).line}`;
    }
    return file;
  };
  return { file, data, where, resets };
}

/**
 * Finds mapping values tagged `!reset` or `!override` under `node`, removes
 * the `!reset` ones, and returns the key paths of both. (In a sequence the
 * tags do nothing, as in compose-go.)
 */
function takeResets(node: unknown, path: string[]): string[][] {
  const { isMap, isScalar } = yaml();
  const out: string[][] = [];
  if (!isMap(node)) return out;
  for (let i = 0; i < node.items.length; i++) {
    const pair = node.items[i]!;
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const value = pair.value as { tag?: string } | null;
    const at = [...path, key];
    if (value?.tag === "!reset" || value?.tag === "!override") {
      out.push(at);
      if (value.tag === "!reset") {
        node.items.splice(i--, 1);
        continue;
      }
      delete value.tag;
    }
    out.push(...takeResets(pair.value, at));
  }
  return out;
}

/** Deletes the value at `path` from a merged model (what a later file's !reset or !override drops). */
function dropPath(model: Obj, path: readonly string[]): void {
  let at: unknown = model;
  for (const k of path.slice(0, -1)) {
    if (!isObj(at)) return;
    at = at[k];
  }
  if (isObj(at)) Reflect.deleteProperty(at, path.at(-1)!);
}

/** Interpolates every string value (not keys), naming the file and key path on failure. */
function interpolateAll(value: unknown, lookup: (n: string) => string | undefined, p: Parsed, path: Array<string | number>): unknown {
  if (typeof value === "string") {
    try {
      return interpolate(value, lookup);
    } catch (e) {
      if (e instanceof InterpolationError) throw new UsageError(`${p.where(path)}: ${path.join(".")}: ${e.message}`);
      throw e;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateAll(v, lookup, p, [...path, i]));
  if (isObj(value)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateAll(v, lookup, p, [...path, k]);
    return out;
  }
  return value;
}

/**
 * `KEY=VALUE` lists and mappings both become mappings. A bare KEY (or a
 * null value) takes the value of `env` (null when unset): pass the project
 * environment for args, and {} where a bare key just means "no value".
 */
function toMap(v: unknown, env: Record<string, string>, what: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (v === undefined || v === null) return out;
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = scalar(item, `each ${what} entry`);
      const eq = s.indexOf("=");
      if (eq < 0) out[s] = env[s] ?? null;
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  if (isObj(v)) {
    for (const [k, val] of Object.entries(v)) out[k] = val === null || val === undefined ? (env[k] ?? null) : scalar(val, `${what} ${k}`);
    return out;
  }
  throw new UsageError(`${what} must be a list of KEY=VALUE or a mapping`);
}

const BUILD_KEYS = new Set([
  "context",
  "dockerfile",
  "dockerfile_inline",
  "args",
  "target",
  "labels",
  "tags",
  "platforms",
  "cache_from",
  "cache_to",
  "additional_contexts",
  "network",
  "extra_hosts",
  "shm_size",
  "ulimits",
  "no_cache",
  "pull",
  "no_cache_filter",
  "secrets",
  "ssh",
  "privileged",
  "isolation",
  "entitlements",
  "provenance",
  "sbom",
]);

/** Deep merge with compose's rules for the parts a build uses. */
function mergeValue(base: unknown, over: unknown, key: string): unknown {
  if (over === undefined) return base;
  if (base === undefined) return over;
  if (isObj(base) && isObj(over)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = mergeValue(base[k], v, k);
    return out;
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const bs = base as unknown[];
    const os = over as unknown[];
    if (key === "secrets") {
      // By source: a later file's entry replaces the earlier one.
      const src = (x: unknown): string => JSON.stringify(isObj(x) ? x["source"] : x);
      const out = bs.filter((b) => !os.some((o) => src(o) === src(b)));
      return [...out, ...os];
    }
    // tags, platforms, cache_from, profiles, ...: the union, in order.
    const out = [...bs];
    for (const o of os) if (!out.some((b) => JSON.stringify(b) === JSON.stringify(o))) out.push(o);
    return out;
  }
  return over;
}

/** Lists and mappings that merge by key are made mappings before merging. */
function normalizeService(svc: Obj, env: Record<string, string>, where: string): Obj {
  const out: Obj = { ...svc };
  // depends_on: a list of names or a mapping by name; a mapping, so files merge by name.
  const deps = svc["depends_on"];
  if (Array.isArray(deps)) out["depends_on"] = Object.fromEntries(deps.map((d) => [scalar(d, `${where}: each depends_on entry`), {}]));
  else if (deps !== undefined && deps !== null && !isObj(deps)) throw new UsageError(`${where}: depends_on must be a list of services or a mapping`);
  let build = svc["build"];
  if (typeof build === "string") build = { context: build };
  if (build !== undefined && build !== null) {
    if (!isObj(build)) throw new UsageError(`${where}: build must be a path or a mapping`);
    const b: Obj = { ...build };
    for (const k of Object.keys(b)) {
      if (!BUILD_KEYS.has(k) && !k.startsWith("x-")) throw new UsageError(`${where}: build has no key "${k}" (see the compose-spec build section)`);
    }
    if (b["args"] !== undefined) b["args"] = toMap(b["args"], env, `${where}: build.args`);
    if (b["labels"] !== undefined) b["labels"] = toMap(b["labels"], {}, `${where}: build.labels`);
    // A list in one file and a mapping in the next merge by key, as compose.
    if (b["additional_contexts"] !== undefined && b["additional_contexts"] !== null) {
      b["additional_contexts"] = toMap(b["additional_contexts"], {}, `${where}: build.additional_contexts`);
    }
    if (b["ssh"] !== undefined) b["ssh"] = sshMap(b["ssh"], where);
    out["build"] = b;
  }
  return out;
}

function sshMap(v: unknown, where: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = scalar(item, `${where}: each build.ssh entry`);
      const eq = s.indexOf("=");
      if (eq < 0) {
        if (s !== DEFAULT_SSH_ID) throw new UsageError(`${where}: invalid ssh entry "${s}": use default or ID=PATH`);
        out[DEFAULT_SSH_ID] = null;
      } else {
        out[s.slice(0, eq) || DEFAULT_SSH_ID] = s.slice(eq + 1) || null;
      }
    }
    return out;
  }
  if (isObj(v)) {
    for (const [k, val] of Object.entries(v)) out[k] = val === null || val === undefined || val === "" ? null : scalar(val, `${where}: build.ssh ${k}`);
    return out;
  }
  throw new UsageError(`${where}: build.ssh must be a list (default, ID=PATH) or a mapping`);
}

function expandPath(p: string, base: string, env: Record<string, string>): string {
  const home = env["HOME"] ?? homedir();
  const t = p === "~" ? home : p.startsWith("~/") ? join(home, p.slice(2)) : p;
  return isAbsolute(t) ? t : resolve(base, t);
}

/** A YAML scalar as compose reads it (numbers and booleans as written); a mapping or list is an error naming the key. */
/** A boolean as compose casts one: true/false, or a string Go's ParseBool reads ("true", "1", "f", ...). */
function boolOf(v: unknown, what: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    const b = parseBool(v);
    if (b !== undefined) return b;
  }
  throw new UsageError(`${what}: ${JSON.stringify(v)} is not a boolean (use true or false)`);
}

function scalar(v: unknown, what: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  throw new UsageError(`${what} must be a string, not ${Array.isArray(v) ? "a list" : v === null ? "null" : "a mapping"}`);
}

/** An optional scalar. */
function optScalar(v: unknown, what: string): string | undefined {
  return v === undefined ? undefined : scalar(v, what);
}

function strings(v: unknown, where: string, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new UsageError(`${where}: ${what} must be a list`);
  return v.map((x) => scalar(x, `${where}: each ${what} entry`));
}

function toBuild(b: Obj, dir: string, env: Record<string, string>, where: string): ComposeBuild {
  const ctx = optScalar(b["context"], `${where}: build.context`) ?? ".";
  const context = isRemoteContext(ctx, dir) ? ctx : expandPath(ctx, dir, env);
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries((b["args"] ?? {}) as Record<string, string | null>)) if (v !== null) args[k] = v;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries((b["labels"] ?? {}) as Record<string, string | null>)) labels[k] = v ?? "";
  const additional: Record<string, string> = {};
  const ac = b["additional_contexts"];
  if (ac !== undefined && ac !== null) {
    for (const [k, v] of Object.entries(toMap(ac, {}, `${where}: build.additional_contexts`))) {
      if (v === null) throw new UsageError(`${where}: additional context "${k}" has no value`);
      additional[k] = /^[a-z][a-z0-9+.-]*:/i.test(v) && !/^[a-z]:[\\/]/i.test(v) ? v : expandPath(v, dir, env);
    }
  }
  const secrets: ComposeBuildSecret[] = [];
  for (const s of (b["secrets"] ?? []) as unknown[]) {
    if (typeof s === "string") secrets.push({ source: s });
    else if (isObj(s) && typeof s["source"] === "string")
      secrets.push({ source: s["source"], target: optScalar(s["target"], `${where}: build.secrets target`) });
    else throw new UsageError(`${where}: each build.secrets entry is a name or { source, target }`);
  }
  const ssh: Record<string, string | null> = {};
  for (const [id, p] of Object.entries((b["ssh"] ?? {}) as Record<string, string | null>)) {
    ssh[id] =
      p === null
        ? null
        : p
            .split(",")
            .map((x) => expandPath(x, dir, env))
            .join(",");
  }
  const ulimits: string[] = [];
  const ul = b["ulimits"];
  if (isObj(ul)) {
    for (const [k, v] of Object.entries(ul)) {
      if (isObj(v)) ulimits.push(`${k}=${String(v["soft"])}:${String(v["hard"])}`);
      else ulimits.push(`${k}=${String(v)}`);
    }
  }
  const extraHosts: string[] = [];
  const eh = b["extra_hosts"];
  if (Array.isArray(eh)) extraHosts.push(...eh.map(String));
  // The mapping form may give a host several IPs (a list), as compose-go's HostsList.
  else if (isObj(eh)) {
    for (const [h, ip] of Object.entries(eh)) {
      const ips = Array.isArray(ip)
        ? ip.map((x) => scalar(x, `${where}: build.extra_hosts ${h}`))
        : [ip === null ? "" : scalar(ip, `${where}: build.extra_hosts ${h}`)];
      extraHosts.push(`${h}=${ips.join(",")}`);
    }
  }
  return {
    context,
    dockerfile: optScalar(b["dockerfile"], `${where}: build.dockerfile`),
    dockerfileInline: optScalar(b["dockerfile_inline"], `${where}: build.dockerfile_inline`),
    args,
    target: optScalar(b["target"], `${where}: build.target`),
    labels,
    tags: strings(b["tags"], where, "build.tags"),
    platforms: strings(b["platforms"], where, "build.platforms"),
    cacheFrom: strings(b["cache_from"], where, "build.cache_from"),
    cacheTo: strings(b["cache_to"], where, "build.cache_to"),
    additionalContexts: additional,
    network: optScalar(b["network"], `${where}: build.network`),
    extraHosts,
    shmSize: optScalar(b["shm_size"], `${where}: build.shm_size`),
    ulimits,
    noCache: boolOf(b["no_cache"], `${where}: build.no_cache`),
    pull: boolOf(b["pull"], `${where}: build.pull`),
    secrets,
    ssh,
    noCacheFilter: typeof b["no_cache_filter"] === "string" ? [b["no_cache_filter"]] : strings(b["no_cache_filter"], where, "build.no_cache_filter"),
    entitlements: buildEntitlements(b, where),
    provenance: optScalar(b["provenance"], `${where}: build.provenance`),
    sbom: optScalar(b["sbom"], `${where}: build.sbom`),
  };
}

/**
 * entitlements: as listed, and privileged: true adds security.insecure, as
 * docker compose's bakeEntitlements. isolation is a Windows setting that
 * docker compose does not pass to BuildKit: anything but "default" is an
 * error rather than a silent no-op.
 */
function buildEntitlements(b: Obj, where: string): string[] {
  const out = strings(b["entitlements"], where, "build.entitlements");
  for (const e of out) {
    if (!isEntitlement(e)) {
      throw new UsageError(`${where}: build.entitlements entry "${e}" is not one of network.host, security.insecure, device[=NAME]`);
    }
  }
  if (boolOf(b["privileged"], `${where}: build.privileged`) && !out.includes("security.insecure")) out.push("security.insecure");
  const isolation = optScalar(b["isolation"], `${where}: build.isolation`);
  if (isolation !== undefined && isolation !== "default") {
    throw new UsageError(`${where}: build.isolation "${isolation}" is a Windows container setting BuildKit does not apply: remove it (or use default)`);
  }
  return out;
}

/**
 * compose's `extends:`: a service starts from another one, in the same
 * file (`extends: NAME` or `{ service: NAME }`) or in another file
 * (`{ file: PATH, service: NAME }`, PATH relative to the extending file),
 * with its own keys merged over the base's as a later -f file's would be.
 * A base from another file keeps its relative build paths relative to that
 * file's directory. A cycle, a missing file or a missing service is an
 * error naming them.
 */
class Extends {
  readonly #files = new Map<string, { p: Parsed; services: Obj }>();
  constructor(
    readonly lookup: (n: string) => string | undefined,
    readonly env: Record<string, string>,
    readonly flag: string | undefined,
  ) {}

  #load(file: string): { p: Parsed; services: Obj } {
    let f = this.#files.get(file);
    if (!f) {
      if (!existsSync(file)) throw new UsageError(`extends names ${file}, which does not exist`);
      const p = parseFile(file, undefined);
      const data = interpolateAll(p.data, this.lookup, p, []) as Obj;
      const services = data["services"];
      f = { p, services: isObj(services) ? services : {} };
      this.#files.set(file, f);
    }
    return f;
  }

  resolve(p: Parsed, services: Obj, name: string, chain: string[]): Obj {
    const key = `${p.file}#${name}`;
    const where = `${p.where(["services", name])}: service "${name}"`;
    if (chain.includes(key)) {
      throw new UsageError(`${where}: extends makes a cycle: ${[...chain, key].map((k) => k.split("#")[1]).join(" -> ")}`);
    }
    const raw = services[name];
    if (raw !== null && raw !== undefined && !isObj(raw)) throw new UsageError(`${where} must be a mapping`);
    const svc: Obj = { ...(raw ?? {}) };
    const spec = svc["extends"];
    delete svc["extends"];
    const own = normalizeService(svc, this.env, where);
    if (spec === undefined || spec === null) return own;
    const base = typeof spec === "string" ? { service: spec } : isObj(spec) ? spec : undefined;
    if (!base || typeof base["service"] !== "string") throw new UsageError(`${where}: extends is a service name or { service: NAME, file: PATH }`);
    const baseName = base["service"];
    let from = { p, services };
    if (typeof base["file"] === "string") from = this.#load(resolve(dirname(p.file), base["file"]));
    if (!Object.hasOwn(from.services, baseName)) {
      throw new UsageError(`${where}: extends service "${baseName}", which ${from.p.file} does not define`);
    }
    let parent = this.resolve(from.p, from.services, baseName, [...chain, key]);
    if (from.p.file !== p.file) parent = rebaseBuild(parent, dirname(from.p.file));
    return mergeValue(parent, own, "") as Obj;
  }
}

/** A service from another file: its relative build context and additional contexts, made absolute against that file's directory. */
function rebaseBuild(svc: Obj, dir: string): Obj {
  const b = svc["build"];
  if (!isObj(b)) return svc;
  const out: Obj = { ...b };
  const abs = (v: string): string => (isRemoteContext(v, dir) || /^[a-z][a-z0-9+.-]*:/i.test(v) || isAbsolute(v) || v.startsWith("~") ? v : resolve(dir, v));
  out["context"] = abs(typeof b["context"] === "string" ? b["context"] : ".");
  if (isObj(b["additional_contexts"])) {
    const ac: Obj = {};
    for (const [k, v] of Object.entries(b["additional_contexts"])) ac[k] = typeof v === "string" ? abs(v) : v;
    out["additional_contexts"] = ac;
  }
  return { ...svc, build: out };
}

/** Loads, interpolates, merges and validates a compose project for building. */
export function loadCompose(options: ComposeLoadOptions = {}): ComposeProject {
  return loadProject(options, []);
}

/** One `include:` entry: its files, project directory and env files, absolute. */
function includeEntry(entry: unknown, baseDir: string, where: string): { files: string[]; directory: string; envFiles: string[] | undefined } {
  const spec = typeof entry === "string" ? { path: entry } : isObj(entry) ? entry : undefined;
  const paths = spec === undefined ? [] : typeof spec["path"] === "string" ? [spec["path"]] : Array.isArray(spec["path"]) ? spec["path"] : [];
  if (!paths.length || paths.some((x) => typeof x !== "string"))
    throw new UsageError(`${where}: each include entry is a path or { path, project_directory, env_file }`);
  const files = (paths as string[]).map((f) => resolve(baseDir, f));
  for (const f of files) if (!existsSync(f)) throw new UsageError(`${where}: include names ${f}, which does not exist`);
  const pd = spec!["project_directory"];
  const directory = typeof pd === "string" ? resolve(baseDir, pd) : dirname(files[0]!);
  const ef = spec!["env_file"];
  const envFiles = typeof ef === "string" ? [resolve(baseDir, ef)] : Array.isArray(ef) ? ef.map((x) => resolve(baseDir, String(x))) : undefined;
  return { files, directory, envFiles };
}

function loadProject(options: ComposeLoadOptions, includeChain: string[]): ComposeProject {
  const shell = options.env ?? process.env;
  const cwd = options.workingDir ?? process.cwd();
  // Without -f: COMPOSE_FILE (split at COMPOSE_PATH_SEPARATOR, default ":"), else discovery, as compose.
  const composeFile = shell["COMPOSE_FILE"];
  const fromVar = options.files?.length || !composeFile ? [] : composeFile.split(shell["COMPOSE_PATH_SEPARATOR"] || ":").filter(Boolean);
  for (const f of fromVar) {
    if (!existsSync(resolve(cwd, f))) throw new UsageError(`COMPOSE_FILE names ${resolve(cwd, f)}, which does not exist: fix COMPOSE_FILE or pass -f`);
  }
  const given = options.files?.length ? options.files : fromVar;
  const files = given.length ? given.map((f) => resolve(cwd, f)) : discoverFiles(cwd);
  const directory = resolve(cwd, options.projectDirectory ?? dirname(files[0]!));

  const dotenv: Record<string, string> = {};
  // Without --env-file: COMPOSE_ENV_FILES (comma-separated), else .env in the project directory.
  const envVarFiles = (shell["COMPOSE_ENV_FILES"] ?? "").split(",").filter(Boolean);
  const envFiles = options.envFiles?.length
    ? options.envFiles.map((f) => resolve(cwd, f))
    : envVarFiles.length
      ? envVarFiles.map((f) => resolve(cwd, f))
      : // A .env that is a directory is skipped, as compose-go's default env file.
        [join(directory, ".env")].filter((f) => existsSync(f) && !statSync(f).isDirectory());
  const envFlag = options.envFiles?.length ? "--env-file" : envVarFiles.length ? "COMPOSE_ENV_FILES" : undefined;
  // As compose: each file's values expand from the shell first, then from
  // earlier lines and earlier files.
  for (const f of envFiles) {
    const text = readInputFile(f, { what: "env file", flag: envFlag, maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
    parseEnvFile(text, f, (k) => shell[k], dotenv);
  }
  const environment: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(shell)) if (v !== undefined) environment[k] = v;
  const lookup = (n: string): string | undefined => environment[n];

  const fileFlag = options.files?.length ? "-f" : undefined;
  const parsed = files.map((f) => parseFile(f, fileFlag));
  // The project name, as compose settles it before interpolating (so that
  // ${COMPOSE_PROJECT_NAME} works in the files): -p, else
  // COMPOSE_PROJECT_NAME, both as given (they must be valid already); else
  // the last top-level name: (interpolated), else the directory's name,
  // both normalised.
  const explicit = options.projectName ?? (environment["COMPOSE_PROJECT_NAME"] || undefined);
  let name: string;
  if (explicit !== undefined) {
    if (normalizeProjectName(explicit) !== explicit) {
      throw new UsageError(
        `invalid project name "${explicit}"${options.projectName === undefined ? " (from COMPOSE_PROJECT_NAME)" : ""}: use lowercase letters, digits, dashes and underscores, starting with a letter or digit`,
      );
    }
    name = explicit;
  } else {
    let fromFiles = "";
    for (const p of parsed) {
      const n = isObj(p.data) ? p.data["name"] : undefined;
      if (typeof n === "string" && n !== "") fromFiles = n;
    }
    name = normalizeProjectName(interpolateAll(fromFiles, lookup, parsed.at(-1)!, ["name"]) as string) || normalizeProjectName(basename(directory));
  }
  environment["COMPOSE_PROJECT_NAME"] = name;

  let merged: Obj = {};
  const whereOf = new Map<string, string>();
  for (const p of parsed) {
    const data = interpolateAll(p.data, lookup, p, []) as Obj;
    const services = data["services"];
    if (services !== undefined && services !== null && !isObj(services)) throw new UsageError(`${p.where(["services"])}: services must be a mapping`);
    const norm: Obj = { ...data };
    if (isObj(services)) {
      const ns: Obj = {};
      const ext = new Extends(lookup, environment, fileFlag);
      for (const [name, svc] of Object.entries(services)) {
        const where = p.where(["services", name]);
        if (svc !== null && !isObj(svc)) throw new UsageError(`${where}: service "${name}" must be a mapping`);
        ns[name] = ext.resolve(p, services, name, []);
        if (!whereOf.has(name)) whereOf.set(name, where);
      }
      norm["services"] = ns;
    }
    for (const r of p.resets) dropPath(merged, r);
    merged = mergeValue(merged, norm, "") as Obj;
  }
  // As compose-go's loader: nothing at all in the files is an error, not an empty project.
  if (Object.keys(merged).length === 0) throw new UsageError(`${files.join(", ")}: empty compose file`);

  const secrets: Record<string, ComposeSecret> = {};
  for (const [name, def] of Object.entries((merged["secrets"] ?? {}) as Obj)) {
    if (!isObj(def)) throw new UsageError(`secret "${name}" must be a mapping (file:, environment: or external:)`);
    // compose-go's checks, in its words: validation's checkFileObject("file", "environment"), then validate.go's.
    const given = ["file", "environment"].filter((k) => k in def);
    if (given.length > 1) throw new UsageError(`secrets.${name}: file|environment attributes are mutually exclusive`);
    if (given.length === 0 && !("driver" in def) && !("external" in def)) throw new UsageError(`secrets.${name}: one of file|environment must be set`);
    const external = def["external"] === true || isObj(def["external"]);
    if (!external && !def["file"] && !def["environment"]) throw new UsageError(`secret "${name}" must declare either \`file\` or \`environment\``);
    secrets[name] = {
      file: typeof def["file"] === "string" ? expandPath(def["file"], directory, environment) : undefined,
      environment: typeof def["environment"] === "string" ? def["environment"] : undefined,
      external: def["external"] === true || isObj(def["external"]),
    };
  }

  const profilesOn = new Set(options.profiles ?? (environment["COMPOSE_PROFILES"] ?? "").split(",").filter(Boolean));
  const services: ComposeService[] = [];
  for (const [name, raw] of Object.entries((merged["services"] ?? {}) as Obj)) {
    const svc = raw as Obj;
    const where = `${whereOf.get(name) ?? files[0]}: service "${name}"`;
    const profiles = strings(svc["profiles"], where, "profiles");
    const build = isObj(svc["build"]) ? toBuild(svc["build"], directory, environment, where) : undefined;
    for (const s of build?.secrets ?? []) {
      if (!secrets[s.source]) throw new UsageError(`${where} refers to undefined build secret ${s.source}; define it under the top-level secrets:`);
    }
    const active = profiles.length === 0 || profiles.some((p) => profilesOn.has(p)) || profilesOn.has("*");
    const dependsOn = isObj(svc["depends_on"]) ? Object.keys(svc["depends_on"]) : [];
    services.push({ name, image: typeof svc["image"] === "string" ? svc["image"] : undefined, profiles, active, build, dependsOn });
  }

  // include: each entry is a project of its own (paths against its own
  // directory, its own .env), whose services and secrets join this one; a
  // name defined on both sides is an error, as compose says.
  for (const p of parsed) {
    const inc = isObj(p.data) ? p.data["include"] : undefined;
    if (inc === undefined || inc === null) continue;
    const where = p.where(["include"]);
    if (!Array.isArray(inc)) throw new UsageError(`${where}: include must be a list`);
    for (const entry of interpolateAll(inc, lookup, p, ["include"]) as unknown[]) {
      const e = includeEntry(entry, dirname(p.file), where);
      const key = e.files.join(",");
      if (includeChain.includes(key) || files.join(",") === key) throw new UsageError(`${where}: include makes a cycle through ${e.files.join(", ")}`);
      const sub = loadProject(
        {
          files: e.files,
          projectDirectory: e.directory,
          envFiles: e.envFiles,
          projectName: name,
          profiles: options.profiles,
          env: shell,
          workingDir: e.directory,
        },
        [...includeChain, files.join(",")],
      );
      for (const svc of sub.services) {
        if (services.some((x) => x.name === svc.name))
          throw new UsageError(`${where}: service "${svc.name}" is defined here and in the included ${e.files.join(", ")}`);
        services.push(svc);
      }
      for (const [k, v] of Object.entries(sub.secrets)) {
        if (secrets[k] && JSON.stringify(secrets[k]) !== JSON.stringify(v))
          throw new UsageError(`${where}: secret "${k}" is defined here and, differently, in the included ${e.files.join(", ")}`);
        secrets[k] = v;
      }
    }
  }
  return { name, directory, files, environment, services, secrets };
}
