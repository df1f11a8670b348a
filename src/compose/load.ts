/**
 * Loads a compose project the way compose-go (docker compose's loader)
 * does, as far as builds need.
 *
 * Each -f file, and each YAML document in it, in order: the YAML is read
 * (duplicate keys, keys that are not strings, alias cycles, and the
 * `!reset` / `!override` tags found as compose-go's ResetProcessor finds
 * them, through aliases and `<<` merges too), interpolated, checked against
 * the compose-spec types of the keys a build reads, its `include:` projects
 * imported (a service defined on both sides is merged, this file's side
 * winning), the earlier files' values under its `!reset`/`!override` keys
 * dropped, its `extends:` resolved, and the result merged over the earlier
 * files with compose-go's merge rules. Then relative paths are made
 * absolute, defaults filled in (context `.`, `Dockerfile`), implicit
 * dependencies added (links, `service:` namespaces, volumes_from), profiles
 * applied, and the project checked as compose-go's checkConsistency does.
 * A service's `platform:` and DOCKER_DEFAULT_PLATFORM apply to its build as
 * docker compose applies them (cmd/compose/options.go applyPlatforms).
 */
import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import { UsageError } from "../errors.js";
import { MAX_TEXT_FILE_BYTES, readInputFile } from "../files.js";
import { InterpolationError, interpolate } from "./interpolate.js";
import { DotenvError, parseDotenv, type DotenvLookup } from "./dotenv.js";
import { DEFAULT_SSH_ID } from "../session/ssh-id.js";
import { isEntitlement } from "../solve/options.js";

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
  /** Relative to the context (compose's default: `Dockerfile`); unset when `dockerfileInline` is given. */
  dockerfile?: string | undefined;
  dockerfileInline?: string | undefined;
  args: Record<string, string>;
  target?: string | undefined;
  labels: Record<string, string>;
  tags: string[];
  /** As the files give them: a later file's are appended (the build drops duplicates, as bake does). */
  platforms: string[];
  cacheFrom: string[];
  cacheTo: string[];
  /** name -> absolute directory, docker-image://REF, service:NAME, or a URL. */
  additionalContexts: Record<string, string>;
  network?: string | undefined;
  /** One `host=ip` entry per address, brackets taken off, as compose-go's HostsList. */
  extraHosts: string[];
  /** In bytes (compose-go's UnitBytes; -1 as written). */
  shmSize?: string | undefined;
  /** NAME=VALUE or NAME=SOFT:HARD. */
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
  /** The service's platform: (or DOCKER_DEFAULT_PLATFORM); a build without build.platforms is built for it. */
  platform?: string | undefined;
  profiles: string[];
  /** No profiles, or one of them is active. Inactive services are built only when named. */
  active: boolean;
  /** depends_on, by name, with the ones compose implies (links, service: namespaces, volumes_from): what --with-dependencies follows. */
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

/** A YAML scalar's text: a string as it is, a number or boolean as written (2.5, true). */
function scalarText(v: unknown): string {
  return typeof v === "string" ? v : `${v as number | boolean}`;
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

// ---------------------------------------------------------------------------
// YAML documents

/** A key path tagged `!reset` (its value dropped, here and in earlier files) or `!override` (kept; earlier files' dropped). */
interface Mark {
  path: string[];
  kind: "reset" | "override";
}

/** One YAML document of a compose file. */
interface Doc {
  file: string;
  data: Obj;
  marks: Mark[];
  /** "FILE:LINE" of a key path, as near as the YAML has it. */
  where: (path: Array<string | number>) => string;
}

function parseFile(file: string, flag: string | undefined): Doc[] {
  const text = readInputFile(file, { what: "compose file", flag, maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
  return parseYaml(text, file);
}

/** compose-go's wording for the YAML errors its tests pin. */
function yamlMessage(e: { code?: string; message: string }): string {
  if (e.code === "TAB_AS_INDENT") return "found a tab character that violates indentation";
  if (/^Merge sources must be/.test(e.message)) return "map merge requires map or sequence of maps as the value";
  if (/^Excessive alias count/.test(e.message)) return "excessive aliasing: an alias expands to too much data";
  return e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

/** Every document of a file, in order; empty documents are skipped. */
function parseYaml(text: string, file: string): Doc[] {
  const Y = yaml();
  const lines = new Y.LineCounter();
  const out: Doc[] = [];
  for (const doc of Y.parseAllDocuments(text, { lineCounter: lines, merge: true, prettyErrors: false, uniqueKeys: false })) {
    const err = doc.errors[0];
    if (err) {
      const pos = lines.linePos(err.pos[0]);
      throw new UsageError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${yamlMessage(err)}`);
    }
    const lineOf = (node: unknown): number => {
      const range = (node as { range?: [number, number, number] } | null)?.range;
      return range ? lines.linePos(range[0]).line : 0;
    };
    const marks = walkYaml(doc, file, lineOf);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      throw new UsageError(`${file}: invalid YAML: ${yamlMessage(e as Error)}`);
    }
    if (value === null || value === undefined) continue;
    if (!isObj(value)) throw new UsageError(`${file}: top-level object must be a mapping (services:, secrets:, ...)`);
    // Aliases are shared objects in toJS's result: each use gets its own copy.
    const data = structuredClone(value);
    dropResets(data, marks);
    const where = (path: Array<string | number>): string => {
      for (let n = path.length; n > 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node?.range) return `${file}:${lines.linePos(node.range[0]).line}`;
      }
      return file;
    };
    out.push({ file, data, marks, where });
  }
  return out;
}

/**
 * Walks a document as compose-go's ResetProcessor does: the key paths
 * tagged `!reset` or `!override`, at every place an alias or a `<<` merge
 * puts them (a merge's keys count as the mapping's own), a key given twice,
 * a key that is not a string, and an alias inside what it refers to. A
 * tagged item of a sequence is found too: `!reset` drops it from its own
 * file, but an earlier file's sequence is not touched, as in compose-go.
 */
function walkYaml(doc: Yaml.Document.Parsed, file: string, lineOf: (node: unknown) => number): Mark[] {
  const { isAlias, isMap, isSeq, isScalar } = yaml();
  const tagged = new Set<{ tag?: string | undefined }>();
  const done = new Map<unknown, Mark[]>();
  const visiting = new Map<unknown, string[]>();
  const deref = (node: unknown): unknown => (isAlias(node) ? node.resolve(doc) : node);
  const keyOf = (key: unknown, display: string): string => {
    const v = isScalar(key) ? key.value : key;
    if (typeof v === "string") return v;
    // The parser's merge key (`<<` with merge: true).
    if (typeof v === "symbol") return "<<";
    const shown = v === null || v === undefined ? "<nil>" : scalarText(v);
    throw new UsageError(`${file}:${lineOf(key)}: non-string key ${display ? `in ${display}` : "at top level"}: ${shown}`);
  };
  /** The marks under `node`, relative to it. */
  const visit = (node: unknown, path: string[], display: string): Mark[] => {
    const target = deref(node);
    const tag = (target as { tag?: string } | undefined)?.tag;
    if (tag === "!reset" || tag === "!override") {
      tagged.add(target as { tag?: string });
      return [{ path: [], kind: tag === "!reset" ? "reset" : "override" }];
    }
    if (!isMap(target) && !isSeq(target)) return [];
    const at = visiting.get(target);
    if (at) throw new UsageError(`${file}: cycle detected: node at path ${path.join(".")} references node at path ${at.join(".")}`);
    const seen = done.get(target);
    if (seen) return seen;
    visiting.set(target, path);
    const marks: Mark[] = [];
    const under = (key: string, value: unknown, shown: string): void => {
      for (const m of visit(value, [...path, key], shown)) marks.push({ path: [key, ...m.path], kind: m.kind });
    };
    /** A `<<` merge: its sources' keys (and theirs, through their own merges) as this mapping's. */
    const merged = (key: unknown, value: unknown, chain = new Set<unknown>()): void => {
      const v = deref(value);
      for (const source of isSeq(v) ? v.items : [value]) {
        const src = deref(source);
        if (!isMap(src)) throw new UsageError(`${file}:${lineOf(key)}: map merge requires map or sequence of maps as the value`);
        if (chain.has(src) || src === target) throw new UsageError(`${file}: cycle detected: node at path ${path.join(".")} merges itself`);
        chain.add(src);
        for (const p of src.items) {
          const k = keyOf(p.key, display);
          if (k === "<<") merged(p.key, p.value, chain);
          else under(k, p.value, display ? `${display}.${k}` : k);
        }
        chain.delete(src);
      }
    };
    if (isSeq(target)) {
      target.items.forEach((item, i) => under(String(i), item, `${display}[${i}]`));
    } else {
      const lineOfKey = new Map<string, number>();
      for (const pair of target.items) {
        const key = keyOf(pair.key, display);
        if (key === "<<") {
          merged(pair.key, pair.value);
          continue;
        }
        const line = lineOf(pair.key);
        const first = lineOfKey.get(key);
        if (first !== undefined) throw new UsageError(`${file}: line ${line}: mapping key ${JSON.stringify(key)} already defined at line ${first}`);
        lineOfKey.set(key, line);
        under(key, pair.value, display ? `${display}.${key}` : key);
      }
    }
    visiting.delete(target);
    done.set(target, marks);
    return marks;
  };
  const marks = visit(doc.contents, [], "");
  for (const node of tagged) delete node.tag;
  return marks;
}

/** Takes a document's own `!reset` values out of it: keys of mappings and items of sequences. */
function dropResets(data: Obj, marks: readonly Mark[]): void {
  const gone = Symbol("reset");
  for (const m of marks) {
    if (m.kind !== "reset") continue;
    let at: unknown = data;
    for (const k of m.path.slice(0, -1)) at = isObj(at) || Array.isArray(at) ? (at as Record<string, unknown>)[k] : undefined;
    if (isObj(at) || Array.isArray(at)) (at as Record<string, unknown>)[m.path.at(-1)!] = gone;
  }
  const sweep = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.filter((x) => x !== gone).map(sweep);
    if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (x === gone) Reflect.deleteProperty(v, k);
        else v[k] = sweep(x);
      }
    }
    return v;
  };
  sweep(data);
}

/** Deletes the value at `path` from a model (what a later file's !reset or !override drops). */
function dropPath(model: unknown, path: readonly string[]): void {
  if (!path.length) return;
  let at: unknown = model;
  for (const k of path.slice(0, -1)) {
    if (!isObj(at)) return;
    at = at[k];
  }
  if (isObj(at)) Reflect.deleteProperty(at, path.at(-1)!);
}

/** Drops from `target` (the value at `prefix`) what `marks` under `prefix` name. */
function applyMarks(target: unknown, marks: readonly Mark[], prefix: readonly string[]): void {
  for (const m of marks) {
    if (m.path.length > prefix.length && prefix.every((p, i) => m.path[i] === p)) dropPath(target, m.path.slice(prefix.length));
  }
}

/** Interpolates every string value (not keys), naming the file and key path on failure. */
function interpolateAll(value: unknown, lookup: (n: string) => string | undefined, doc: Doc, path: Array<string | number>): unknown {
  if (typeof value === "string") {
    try {
      return interpolate(value, lookup);
    } catch (e) {
      if (e instanceof InterpolationError) throw new UsageError(`${doc.where(path)}: ${path.join(".")}: ${e.message}`);
      throw e;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateAll(v, lookup, doc, [...path, i]));
  if (isObj(value)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateAll(v, lookup, doc, [...path, k]);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------
// Types (the compose-spec schema's, for what a build reads), in compose-go's words

const TOP_KEYS = new Set(["version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"]);

/** The top level of one document: its keys, name, and that services and secrets are mappings of mappings. */
function checkTop(cfg: Obj, doc: Doc): void {
  for (const k of Object.keys(cfg)) {
    if (!TOP_KEYS.has(k) && !k.startsWith("x-"))
      throw new UsageError(`${doc.where([k])}: additional properties '${k}' not allowed (a compose file has services:, secrets:, ... at the top level)`);
  }
  if (cfg["name"] !== undefined && typeof cfg["name"] !== "string")
    throw new UsageError(`${doc.where(["name"])}: validating ${doc.file}: name must be a string`);
  for (const section of ["services", "secrets"]) {
    const v = cfg[section];
    if (v === undefined || v === null) continue;
    if (!isObj(v)) throw new UsageError(`${doc.where([section])}: ${section} must be a mapping`);
    for (const [name, entry] of Object.entries(v)) {
      if (section === "services" && !/^[a-zA-Z0-9._-]+$/.test(name)) {
        throw new UsageError(
          `${doc.where([section, name])}: services additional properties '${name}' not allowed (a service name is letters, digits, ".", "_" and "-")`,
        );
      }
      if (entry !== null && !isObj(entry)) throw new UsageError(`${doc.where([section, name])}: ${section}.${name} must be a mapping`);
    }
  }
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

/** list_or_dict: a list of strings, or a mapping of scalars (and nulls). */
function checkListOrDict(v: unknown, path: string, at: string): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      if (typeof x !== "string") throw new UsageError(`${at}: ${path}.${i} must be a string`);
    });
    return;
  }
  if (!isObj(v)) throw new UsageError(`${at}: ${path} must be a mapping`);
  for (const [k, x] of Object.entries(v)) {
    if (x !== null && !["string", "number", "boolean"].includes(typeof x))
      throw new UsageError(`${at}: ${path}.${k} must be a boolean, null, number or string`);
  }
}

function checkStringList(v: unknown, path: string, at: string): void {
  if (!Array.isArray(v)) throw new UsageError(`${at}: ${path} must be a list`);
  v.forEach((x, i) => {
    if (typeof x !== "string") throw new UsageError(`${at}: ${path}.${i} must be a string`);
  });
}

/**
 * The shapes one file's service must have before it is merged (its lists
 * and mappings); a null is left for the merge (it keeps the earlier file's
 * value, as compose-go's) and for the checks of the merged project.
 */
function checkShapes(svc: Obj, name: string, at: string): void {
  const key = (k: string): string => `services.${name}.${k}`;
  const build = svc["build"];
  if (build !== undefined && build !== null && typeof build !== "string" && !isObj(build))
    throw new UsageError(`${at}: ${key("build")} must be a string or a mapping`);
  const deps = svc["depends_on"];
  if (deps !== undefined && deps !== null) {
    if (Array.isArray(deps)) checkStringList(deps, key("depends_on"), at);
    else if (!isObj(deps)) throw new UsageError(`${at}: ${key("depends_on")} must be a list or a mapping`);
  }
  for (const k of ["profiles", "links", "volumes_from"]) if (svc[k] !== undefined && svc[k] !== null) checkStringList(svc[k], key(k), at);
  if (!isObj(build)) return;
  for (const k of Object.keys(build)) {
    if (!BUILD_KEYS.has(k) && !k.startsWith("x-"))
      throw new UsageError(`${at}: service "${name}": build has no key "${k}" (see the compose-spec build section)`);
  }
  const b = (k: string): unknown => build[k];
  for (const k of ["args", "labels", "additional_contexts", "ssh"]) if (b(k) !== undefined && b(k) !== null) checkListOrDict(b(k), key(`build.${k}`), at);
  for (const k of ["tags", "platforms", "cache_from", "cache_to", "entitlements"])
    if (b(k) !== undefined && b(k) !== null) checkStringList(b(k), key(`build.${k}`), at);
  const nf = b("no_cache_filter");
  if (nf !== undefined && nf !== null && typeof nf !== "string") checkStringList(nf, key("build.no_cache_filter"), at);
  const eh = b("extra_hosts");
  if (eh !== undefined && eh !== null) {
    if (Array.isArray(eh)) checkStringList(eh, key("build.extra_hosts"), at);
    else if (!isObj(eh)) throw new UsageError(`${at}: ${key("build.extra_hosts")} must be a mapping or a list`);
    else
      for (const [h, ip] of Object.entries(eh)) {
        if (Array.isArray(ip)) checkStringList(ip, key(`build.extra_hosts.${h}`), at);
        else if (ip !== null && typeof ip !== "string") throw new UsageError(`${at}: ${key(`build.extra_hosts.${h}`)} must be a string or a list`);
      }
  }
  const ul = b("ulimits");
  if (ul !== undefined && ul !== null && !isObj(ul)) throw new UsageError(`${at}: ${key("build.ulimits")} must be a mapping`);
  const secrets = b("secrets");
  if (secrets !== undefined && secrets !== null && !Array.isArray(secrets)) throw new UsageError(`${at}: ${key("build.secrets")} must be a list`);
}

// ---------------------------------------------------------------------------
// Normalizing and merging

/**
 * `KEY=VALUE` lists and mappings both become mappings, so that files merge
 * by key (compose-go's mergeToSequence and unicity come to the same). A
 * bare KEY (or a null value) becomes `bare`.
 */
function keyValues(v: unknown, bare: string | null): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const s of v as string[]) {
      const eq = s.indexOf("=");
      if (eq < 0) out[s] = bare;
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  for (const [k, x] of Object.entries(v as Obj)) out[k] = x === null ? bare : scalarText(x);
  return out;
}

/** extra_hosts as compose-go merges them: a list of `host=ip`, one per address (a mapping's in file order). */
function hostsSequence(v: unknown): string[] {
  if (Array.isArray(v)) return v as string[];
  const out: string[] = [];
  for (const [h, ip] of Object.entries(v as Obj)) {
    if (Array.isArray(ip)) for (const x of ip as string[]) out.push(`${h}=${x}`);
    else out.push(`${h}=${ip === null ? "" : (ip as string)}`);
  }
  return out;
}

/** build.ssh as a mapping: `default` and `ID=PATH` entries (compose-go's transformSSH). */
function sshMap(v: unknown, at: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const s of v as string[]) {
      const eq = s.indexOf("=");
      if (eq < 0) {
        if (s !== DEFAULT_SSH_ID) throw new UsageError(`${at}: invalid ssh key "${s}": use default or ID=PATH`);
        out[DEFAULT_SSH_ID] = null;
      } else {
        out[s.slice(0, eq) || DEFAULT_SSH_ID] = s.slice(eq + 1) || null;
      }
    }
    return out;
  }
  for (const [k, x] of Object.entries(v as Obj)) out[k] = x === null || x === "" ? null : scalarText(x);
  return out;
}

/**
 * One file's service, checked and put in the forms that merge by key:
 * build as a mapping, its args, labels and additional_contexts as
 * mappings, extra_hosts as a list, ssh and depends_on as mappings. Running
 * it again on its result changes nothing.
 */
function normalizeService(raw: unknown, name: string, at: string): Obj {
  if (!isObj(raw)) throw new UsageError(`${at}: services.${name} must be a mapping`);
  checkShapes(raw, name, at);
  const out: Obj = { ...raw };
  const deps = raw["depends_on"];
  if (Array.isArray(deps)) out["depends_on"] = Object.fromEntries((deps as string[]).map((d) => [d, {}]));
  let build = raw["build"];
  if (typeof build === "string") build = { context: build };
  if (isObj(build)) {
    const b: Obj = { ...build };
    const present = (k: string): boolean => b[k] !== undefined && b[k] !== null;
    if (present("args")) b["args"] = keyValues(b["args"], null);
    if (present("labels")) b["labels"] = keyValues(b["labels"], "");
    if (present("additional_contexts")) {
      const ac = b["additional_contexts"];
      if (Array.isArray(ac)) {
        for (const s of ac as string[]) {
          if (!s.includes("=")) throw new UsageError(`${at}: services.${name}.build.additional_contexts: invalid value ${s}, expected key=value`);
        }
      }
      b["additional_contexts"] = keyValues(ac, null);
    }
    if (present("extra_hosts")) b["extra_hosts"] = hostsSequence(b["extra_hosts"]);
    if (present("ssh")) b["ssh"] = sshMap(b["ssh"], `${at}: service "${name}"`);
    if (typeof b["no_cache_filter"] === "string") b["no_cache_filter"] = [b["no_cache_filter"]];
    out["build"] = b;
  }
  return out;
}

/** compose-go's keyValueIndexer: an entry's key is what comes before "=". */
const entryKey = (v: unknown): string => (typeof v === "string" ? v.split("=")[0]! : JSON.stringify(v));

/**
 * Merges `over` (a later file, or an extending service) into `base` with
 * compose-go's rules (override/merge.go, uncity.go) for what a build reads:
 * mappings merge key by key; a null keeps the earlier value; args, labels
 * and additional_contexts merge by key (a later bare key wins too); tags
 * and profiles stay unique by key; extra_hosts drop an entry given again;
 * other lists (platforms, cache_from/cache_to, secrets, entitlements, ...)
 * are appended.
 */
function mergeValue(base: unknown, over: unknown, path: readonly string[]): unknown {
  if (over === undefined || over === null) return base;
  if (base === undefined || base === null) return over;
  const last = path.at(-1) ?? "";
  const inBuild = path.length === 4 && path[0] === "services" && path[2] === "build";
  if (inBuild && ["args", "labels", "additional_contexts"].includes(last) && isObj(base) && isObj(over)) return { ...base, ...over };
  if (isObj(base) && isObj(over)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = mergeValue(base[k], v, [...path, k]);
    return out;
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const [bs, os] = [base as unknown[], over as unknown[]];
    if (inBuild && last === "extra_hosts") return [...bs, ...os.filter((o) => !bs.includes(o))];
    const unique = (inBuild && last === "tags") || (path.length === 3 && path[0] === "services" && last === "profiles");
    if (!unique) return [...bs, ...os];
    const out: unknown[] = [];
    const at = new Map<string, number>();
    for (const v of [...bs, ...os]) {
      const i = at.get(entryKey(v));
      if (i === undefined) at.set(entryKey(v), out.push(v) - 1);
      else out[i] = v;
    }
    return out;
  }
  return over;
}

// ---------------------------------------------------------------------------
// Paths

/** compose-go's ExpandUser: a leading ~ is the home directory. */
function expandUser(p: string, home: string): string {
  return p.startsWith("~") ? join(home, p.slice(1)) : p;
}

function absPath(p: string, dir: string, home: string): string {
  const t = expandUser(p, home);
  return t === "" || isAbsolute(t) ? t : join(dir, t);
}

/** compose-go's absContextPath: URLs (`://`), `service:NAME` and git or http(s) references are kept; paths made absolute. */
function absContext(v: string, dir: string, home: string): string {
  if (v.includes("://") || v.startsWith("service:")) return v;
  if (["https://", "http://", "git://", "ssh://", "github.com/", "git@"].some((p) => v.startsWith(p))) return v;
  return absPath(v, dir, home);
}

/** Makes a service's relative paths absolute against `dir` (compose-go's ResolveRelativePaths): context, additional contexts, SSH keys, extends.file. */
function resolveServicePaths(svc: Obj, dir: string, home: string): void {
  const b = svc["build"];
  if (isObj(b)) {
    if (typeof b["context"] === "string") b["context"] = absContext(b["context"], dir, home);
    const ac = b["additional_contexts"];
    if (isObj(ac)) for (const [k, v] of Object.entries(ac)) if (typeof v === "string") ac[k] = absContext(v, dir, home);
    const ssh = b["ssh"];
    if (isObj(ssh)) {
      for (const [k, v] of Object.entries(ssh)) {
        if (typeof v === "string")
          ssh[k] = v
            .split(",")
            .map((x) => absPath(x, dir, home))
            .join(",");
      }
    }
  }
  const ext = svc["extends"];
  if (isObj(ext) && typeof ext["file"] === "string") ext["file"] = absPath(ext["file"], dir, home);
}

// ---------------------------------------------------------------------------
// extends

/** Services to resolve `extends:` in: one document's, or a file that is extended. */
interface Source {
  file: string;
  services: Obj;
  marks: Mark[];
  /** Relative extends.file paths start here. */
  workingDir: string;
  /** An extended file: the relative paths its services give are made absolute against this directory. */
  pathsDir?: string | undefined;
  where: (name: string) => string;
  resolved: Map<string, Obj | null>;
}

/**
 * compose's `extends:`: a service starts from another one, in the same
 * file (`extends: NAME` or `{ service: NAME }`) or in another file
 * (`{ file: PATH, service: NAME }`, PATH relative to the project directory,
 * or to the extended file for the extends inside it), with its own keys
 * merged over the base's as a later -f file's would be, after its own
 * `!reset`/`!override` keys dropped from the base. A base from another
 * file keeps the relative paths it gives relative to that file's
 * directory; what it leaves out (a context) gets the project's default. A
 * cycle, a missing file or a missing service is an error naming them.
 */
class Extends {
  readonly #files = new Map<string, Source>();
  constructor(
    readonly lookup: (n: string) => string | undefined,
    readonly home: string,
  ) {}

  #load(file: string): Source {
    let src = this.#files.get(file);
    if (src) return src;
    if (!existsSync(file)) throw new UsageError(`extends names ${file}, which does not exist`);
    const dir = dirname(file);
    const docs = parseFile(file, undefined).map((doc) => ({ doc, data: interpolateAll(doc.data, this.lookup, doc, []) as Obj }));
    const whereOf = new Map<string, string>();
    let services: Obj = {};
    for (const { doc, data } of docs) {
      const s = data["services"];
      if (s === undefined || s === null) continue;
      if (!isObj(s)) throw new UsageError(`${doc.where(["services"])}: services must be a mapping`);
      for (const n of Object.keys(s)) if (!whereOf.has(n)) whereOf.set(n, doc.where(["services", n]));
      if (docs.length === 1) {
        // compose-go reads an extended file unchecked: its services are checked when one is used.
        services = s;
        continue;
      }
      const own: Obj = {};
      for (const [n, svc] of Object.entries(s)) own[n] = svc === null ? null : normalizeService(svc, n, doc.where(["services", n]));
      for (const m of doc.marks) dropPath({ services }, m.path);
      services = mergeValue(services, own, ["services"]) as Obj;
    }
    src = {
      file,
      services,
      marks: docs.flatMap((d) => d.doc.marks),
      workingDir: dir,
      pathsDir: dir,
      where: (n) => whereOf.get(n) ?? file,
      resolved: new Map(),
    };
    this.#files.set(file, src);
    return src;
  }

  /** `name` of `src`, its extends resolved; null for a service that is empty. */
  resolve(src: Source, name: string, chain: string[] = []): Obj | null {
    const done = src.resolved.get(name);
    if (done !== undefined) return done;
    const key = `${src.file}#${name}`;
    const at = src.where(name);
    if (chain.includes(key)) {
      throw new UsageError(`${at}: service "${name}": extends makes a cycle: ${[...chain, key].map((k) => k.slice(k.lastIndexOf("#") + 1)).join(" -> ")}`);
    }
    const raw = src.services[name];
    if (raw === null || raw === undefined) return null;
    const own = normalizeService(raw, name, at);
    if (src.pathsDir !== undefined) resolveServicePaths(own, src.pathsDir, this.home);
    const spec = own["extends"];
    delete own["extends"];
    let result: Obj = own;
    if (spec !== undefined && spec !== null) {
      let ref: string;
      let file: string | undefined;
      if (typeof spec === "string") ref = spec;
      else if (isObj(spec)) {
        if (typeof spec["service"] !== "string") throw new UsageError(`${at}: extends.${name}.service is required`);
        ref = spec["service"];
        if (spec["file"] !== undefined) {
          if (typeof spec["file"] !== "string") throw new UsageError(`${at}: services.${name}.extends.file must be a string`);
          file = spec["file"];
        }
      } else throw new UsageError(`${at}: services.${name}.extends must be a service name or { service: NAME, file: PATH }`);
      const from = file === undefined ? src : this.#load(absPath(file, src.workingDir, this.home));
      if (!Object.hasOwn(from.services, ref)) throw new UsageError(`${at}: service "${name}": extends service "${ref}", which ${from.file} does not define`);
      const base = this.resolve(from, ref, [...chain, key]);
      if (base !== null) {
        const copy = structuredClone(base);
        applyMarks(copy, src.marks, ["services", name]);
        result = mergeValue(copy, own, ["services", name]) as Obj;
      }
    }
    src.resolved.set(name, result);
    return result;
  }
}

// ---------------------------------------------------------------------------
// Loading the files of a project (or of an included one)

interface ModelContext {
  /** Relative paths of this project (or included one) start here. */
  workingDir: string;
  environment: Record<string, string>;
  home: string;
  /** The files along the way here (include cycles). */
  chain: string[];
  /** For messages about the -f files themselves. */
  fileFlag: string | undefined;
}

interface Model {
  data: Obj;
  /** Where each service is first defined, "FILE:LINE". */
  whereOf: Map<string, string>;
}

/** One `include:` entry: its files, project directory and env files, absolute. */
function includeEntry(entry: unknown, ctx: ModelContext, where: string): { files: string[]; directory: string; envFiles: string[] } {
  const spec = typeof entry === "string" ? { path: entry } : isObj(entry) ? entry : undefined;
  const given = spec === undefined ? [] : typeof spec["path"] === "string" ? [spec["path"]] : Array.isArray(spec["path"]) ? spec["path"] : [];
  if (!given.length || given.some((x) => typeof x !== "string"))
    throw new UsageError(`${where}: each include entry is a path or { path, project_directory, env_file }`);
  const files = (given as string[]).map((f) => absPath(f, ctx.workingDir, ctx.home));
  for (const f of files) if (!existsSync(f)) throw new UsageError(`${where}: include names ${f}, which does not exist`);
  const pd = spec!["project_directory"];
  const directory = typeof pd === "string" ? absPath(pd, ctx.workingDir, ctx.home) : dirname(files[0]!);
  const ef = spec!["env_file"];
  const listed = typeof ef === "string" ? [ef] : Array.isArray(ef) ? ef.map(String) : undefined;
  let envFiles: string[];
  if (listed === undefined) {
    // No env_file: the included project's own .env, if it is a file.
    const dotenv = join(directory, ".env");
    envFiles = existsSync(dotenv) && !statSync(dotenv).isDirectory() ? [dotenv] : [];
  } else {
    envFiles = [];
    for (const f of listed) {
      if (f === "/dev/null") continue;
      const abs = absPath(f, ctx.workingDir, ctx.home);
      if (!existsSync(abs)) throw new UsageError(`${where}: include env_file ${abs} does not exist`);
      if (statSync(abs).isDirectory()) throw new UsageError(`${where}: include env_file ${abs} is not a file`);
      envFiles.push(abs);
    }
  }
  return { files, directory, envFiles };
}

/**
 * include: each entry is a project of its own (paths against its own
 * directory; interpolation with the including project's environment over
 * its env files), whose services and secrets join this document's. One
 * defined on both sides is merged, this document's side winning (with its
 * !reset/!override applied to the included one), as compose-go's
 * importResources.
 */
function applyInclude(inc: unknown, services: Obj, secrets: Obj, doc: Doc, ctx: ModelContext, whereOf: Map<string, string>): void {
  if (inc === undefined || inc === null) return;
  const where = doc.where(["include"]);
  if (!Array.isArray(inc)) throw new UsageError(`${where}: include must be a list`);
  for (const entry of inc) {
    const e = includeEntry(entry, ctx, where);
    if (ctx.chain.includes(e.files[0]!)) throw new UsageError(`include cycle detected: ${[...ctx.chain, e.files[0]!].join(" includes ")} (${where})`);
    const fromFiles: Record<string, string> = {};
    for (const f of e.envFiles) {
      const text = readInputFile(f, { what: "env file", flag: undefined, maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
      parseEnvFile(text, f, (k) => ctx.environment[k], fromFiles);
    }
    const sub = loadModel(e.files, { ...ctx, workingDir: e.directory, environment: { ...fromFiles, ...ctx.environment }, fileFlag: undefined }, new Map());
    for (const [section, target] of [
      ["services", services],
      ["secrets", secrets],
    ] as const) {
      const imported = sub.data[section];
      if (!isObj(imported)) continue;
      for (const [name, value] of Object.entries(imported)) {
        if (section === "services" && !whereOf.has(name)) whereOf.set(name, sub.whereOf.get(name) ?? e.files[0]!);
        if (!Object.hasOwn(target, name)) {
          target[name] = value;
          continue;
        }
        const copy = structuredClone(value);
        applyMarks(copy, doc.marks, [section, name]);
        const local = section === "services" && target[name] !== null ? normalizeService(target[name], name, doc.where([section, name])) : target[name];
        target[name] = mergeValue(copy, local, [section, name]);
      }
    }
  }
}

/**
 * Reads `files` in order into one model (services normalized, relative
 * paths made absolute against the context's working directory, contexts
 * defaulted to it). `parsed` holds files already read.
 */
function loadModel(files: string[], ctx: ModelContext, parsed: Map<string, Doc[]>): Model {
  let data: Obj = {};
  const whereOf = new Map<string, string>();
  const lookup = (n: string): string | undefined => ctx.environment[n];
  const ext = new Extends(lookup, ctx.home);
  const chain = [...ctx.chain];
  for (const file of files) {
    chain.push(file);
    for (const doc of parsed.get(file) ?? parseFile(file, ctx.fileFlag)) {
      const cfg = interpolateAll(doc.data, lookup, doc, []) as Obj;
      checkTop(cfg, doc);
      const services: Obj = { ...((cfg["services"] ?? {}) as Obj) };
      const secrets: Obj = { ...((cfg["secrets"] ?? {}) as Obj) };
      for (const name of Object.keys(services)) if (!whereOf.has(name)) whereOf.set(name, doc.where(["services", name]));
      applyInclude(cfg["include"], services, secrets, doc, { ...ctx, chain }, whereOf);
      delete cfg["include"];
      for (const m of doc.marks) dropPath(data, m.path);
      const src: Source = {
        file: doc.file,
        services,
        marks: doc.marks,
        workingDir: ctx.workingDir,
        // A service an include brought in is not in this document: where it was defined.
        where: (n) => {
          const w = doc.where(["services", n]);
          return w === doc.file ? (whereOf.get(n) ?? w) : w;
        },
        resolved: new Map(),
      };
      const resolved: Obj = {};
      for (const name of Object.keys(services)) resolved[name] = services[name] === null ? null : ext.resolve(src, name);
      if (Object.keys(resolved).length || cfg["services"] !== undefined) cfg["services"] = resolved;
      if (Object.keys(secrets).length || cfg["secrets"] !== undefined) cfg["secrets"] = secrets;
      data = mergeValue(data, cfg, []) as Obj;
    }
  }
  // Defaults (the context), then relative paths, as compose-go's loadYamlModel.
  const services = data["services"];
  if (isObj(services)) {
    for (const svc of Object.values(services)) {
      if (!isObj(svc)) continue;
      if (isObj(svc["build"]) && svc["build"]["context"] === undefined) svc["build"]["context"] = ".";
      resolveServicePaths(svc, ctx.workingDir, ctx.home);
    }
  }
  const secrets = data["secrets"];
  if (isObj(secrets)) {
    for (const def of Object.values(secrets)) if (isObj(def) && typeof def["file"] === "string") def["file"] = absPath(def["file"], ctx.workingDir, ctx.home);
  }
  return { data, whereOf };
}

// ---------------------------------------------------------------------------
// The merged project

/** A boolean as compose-go casts one (toBoolean): true/false, and YAML 1.1's y/yes/on and n/no/off, any case. */
function toBoolean(v: string): boolean | undefined {
  const s = v.toLowerCase();
  if (["true", "y", "yes", "on"].includes(s)) return true;
  if (["false", "n", "no", "off"].includes(s)) return false;
  return undefined;
}

function boolOf(v: unknown, what: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    const b = toBoolean(v);
    if (b !== undefined) return b;
  }
  throw new UsageError(`${what}: ${JSON.stringify(v)} is not a boolean (use true or false)`);
}

/** compose-go's UnitBytes: an integer, or a string that is one or a size with a unit (go-units' RAMInBytes). */
function unitBytes(v: unknown, path: string, at: string): string {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new UsageError(`${at}: ${path} must be an integer or a string`);
    return String(v);
  }
  if (typeof v !== "string") throw new UsageError(`${at}: ${path} must be an integer or a string`);
  if (/^[+-]?\d+$/.test(v)) return BigInt(v).toString();
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m || m[1]!.split(".").length > 2) throw new UsageError(`${at}: ${path}: invalid size: '${v}'`);
  const mult = { "": 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n }[(m[2] ?? "").toLowerCase()]!;
  const [whole, frac = ""] = m[1]!.split(".");
  return ((BigInt(whole! + frac) * mult) / 10n ** BigInt(frac.length)).toString();
}

/** compose-go's HostsList: HOST=IP or HOST:IP (the first "=", else the first ":"), several IPs after a comma, [brackets] taken off. */
function hostsList(entries: string[], path: string, at: string): string[] {
  const byHost = new Map<string, string[]>();
  for (const s of entries) {
    const eq = s.indexOf("=");
    const cut = eq >= 0 ? eq : s.indexOf(":");
    if (cut < 0) throw new UsageError(`${at}: ${path}: invalid additional host, missing IP: ${s}`);
    const host = s.slice(0, cut);
    byHost.set(host, [...(byHost.get(host) ?? []), ...s.slice(cut + 1).split(",")]);
  }
  const out: string[] = [];
  for (const [host, ips] of byHost) {
    if (host === "" || /[:=]/.test(host)) throw new UsageError(`${at}: ${path}: bad host name '${host}'`);
    for (const ip of ips) out.push(`${host}=${ip.length > 2 && ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip}`);
  }
  return out;
}

function toBuild(b: Obj, name: string, env: Record<string, string>, at: string): ComposeBuild {
  const where = `${at}: service "${name}"`;
  const key = (k: string): string => `services.${name}.build.${k}`;
  const str = (k: string): string | undefined => {
    const v = b[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw new UsageError(`${at}: ${key(k)} must be a string`);
    return v;
  };
  const list = (k: string): string[] => {
    const v = b[k];
    if (v === undefined) return [];
    checkStringList(v, key(k), at);
    return v as string[];
  };
  const dict = (k: string): Record<string, string | null> => {
    const v = b[k];
    if (v === undefined) return {};
    checkListOrDict(v, key(k), at);
    return v as Record<string, string | null>;
  };
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(dict("args"))) {
    // A bare arg takes the environment's value, or is left out (compose-go's normalize).
    const value = v ?? env[k];
    if (value !== undefined) args[k] = value;
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(dict("labels"))) labels[k] = v ?? "";
  const additionalContexts: Record<string, string> = {};
  for (const [k, v] of Object.entries(dict("additional_contexts"))) {
    if (v === null) throw new UsageError(`${where}: additional context "${k}" has no value`);
    additionalContexts[k] = v;
  }
  const secrets: ComposeBuildSecret[] = [];
  const given = b["secrets"];
  if (given !== undefined && !Array.isArray(given)) throw new UsageError(`${at}: ${key("secrets")} must be a list`);
  for (const s of (given ?? []) as unknown[]) {
    if (typeof s === "string") secrets.push({ source: s });
    else if (isObj(s) && typeof s["source"] === "string") {
      const target = s["target"];
      if (target !== undefined && typeof target !== "string") throw new UsageError(`${at}: ${key("secrets")} target must be a string`);
      secrets.push({ source: s["source"], target });
    } else throw new UsageError(`${where}: each build.secrets entry is a name or { source, target }`);
  }
  const ssh: Record<string, string | null> = {};
  for (const [id, p] of Object.entries(dict("ssh"))) ssh[id] = p;
  const ulimits: string[] = [];
  const ul = b["ulimits"];
  if (ul !== undefined) {
    if (!isObj(ul)) throw new UsageError(`${at}: ${key("ulimits")} must be a mapping`);
    const limit = (v: unknown, path: string): string => {
      if ((typeof v === "number" && Number.isInteger(v)) || typeof v === "string") return String(v);
      throw new UsageError(`${at}: ${path} must be an integer or a string`);
    };
    for (const [k, v] of Object.entries(ul)) {
      if (!isObj(v)) {
        ulimits.push(`${k}=${limit(v, key(`ulimits.${k}`))}`);
        continue;
      }
      // As the compose-spec schema: soft and hard both.
      for (const p of ["soft", "hard"]) if (v[p] === undefined) throw new UsageError(`${at}: ${key(`ulimits.${k}`)} missing property '${p}'`);
      ulimits.push(`${k}=${limit(v["soft"], key(`ulimits.${k}.soft`))}:${limit(v["hard"], key(`ulimits.${k}.hard`))}`);
    }
  }
  const attest = (k: string): string | undefined => {
    const v = b[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string" && typeof v !== "boolean") throw new UsageError(`${at}: ${key(k)} must be a boolean or a string`);
    return String(v);
  };
  const dockerfileInline = str("dockerfile_inline");
  const nf = b["no_cache_filter"];
  return {
    context: str("context") ?? ".",
    // compose-go's normalize: Dockerfile unless an inline one is given.
    dockerfile: str("dockerfile") ?? (dockerfileInline === undefined ? "Dockerfile" : undefined),
    dockerfileInline,
    args,
    target: str("target"),
    labels,
    tags: list("tags"),
    platforms: list("platforms"),
    cacheFrom: list("cache_from"),
    cacheTo: list("cache_to"),
    additionalContexts,
    network: str("network"),
    extraHosts: hostsList(b["extra_hosts"] === undefined ? [] : list("extra_hosts"), key("extra_hosts"), at),
    shmSize: b["shm_size"] === undefined ? undefined : unitBytes(b["shm_size"], key("shm_size"), at),
    ulimits,
    noCache: boolOf(b["no_cache"], `${where}: build.no_cache`),
    pull: boolOf(b["pull"], `${where}: build.pull`),
    secrets,
    ssh,
    noCacheFilter: typeof nf === "string" ? [nf] : list("no_cache_filter"),
    entitlements: buildEntitlements(b, list("entitlements"), where),
    provenance: attest("provenance"),
    sbom: attest("sbom"),
  };
}

/**
 * entitlements: as listed, and privileged: true adds security.insecure, as
 * docker compose's bakeEntitlements. isolation is a Windows setting that
 * docker compose does not pass to BuildKit: anything but "default" is an
 * error rather than a silent no-op.
 */
function buildEntitlements(b: Obj, listed: string[], where: string): string[] {
  const out = [...listed];
  for (const e of out) {
    if (!isEntitlement(e)) {
      throw new UsageError(`${where}: build.entitlements entry "${e}" is not one of network.host, security.insecure, device[=NAME]`);
    }
  }
  if (boolOf(b["privileged"], `${where}: build.privileged`) && !out.includes("security.insecure")) out.push("security.insecure");
  const isolation = b["isolation"];
  if (isolation !== undefined && isolation !== "default") {
    throw new UsageError(
      `${where}: build.isolation ${JSON.stringify(isolation)} is a Windows container setting BuildKit does not apply: remove it (or use default)`,
    );
  }
  return out;
}

/** depends_on with what compose-go's normalize implies: links, network_mode/ipc/pid/uts/cgroup service:NAME, volumes_from. name -> required. */
function dependencies(svc: Obj, at: string, name: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const deps = svc["depends_on"];
  if (deps !== undefined) {
    if (!isObj(deps)) throw new UsageError(`${at}: services.${name}.depends_on must be a list or a mapping`);
    for (const [dep, cfg] of Object.entries(deps)) {
      const r = isObj(cfg) ? cfg["required"] : undefined;
      out.set(dep, r === undefined ? true : boolOf(r, `${at}: service "${name}": depends_on.${dep}.required`));
    }
  }
  const implied = (dep: string): void => {
    if (!out.has(dep)) out.set(dep, true);
  };
  for (const link of (svc["links"] ?? []) as string[]) {
    const parts = link.split(":");
    implied(parts.length === 2 ? parts[0]! : link);
  }
  for (const ns of ["network_mode", "ipc", "pid", "uts", "cgroup"]) {
    const v = svc[ns];
    if (typeof v === "string" && v.startsWith("service:")) implied(v.slice("service:".length));
  }
  for (const v of (svc["volumes_from"] ?? []) as string[]) if (!v.startsWith("container:")) implied(v.split(":")[0]!);
  return out;
}

/** A top-level secret's `external:` (true, a string compose casts, or the legacy { name }). */
function isExternal(v: unknown, name: string): boolean {
  if (v === undefined || v === null) return false;
  if (isObj(v)) return true;
  return boolOf(v, `secrets.${name}.external`);
}

/** Loads, interpolates, merges and validates a compose project for building. */
export function loadCompose(options: ComposeLoadOptions = {}): ComposeProject {
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
  const home = environment["HOME"] ?? homedir();

  const fileFlag = options.files?.length ? "-f" : undefined;
  const parsed = new Map(files.map((f) => [f, parseFile(f, fileFlag)]));
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
    let last: Doc | undefined;
    for (const doc of [...parsed.values()].flat()) {
      const n = doc.data["name"];
      if (n !== undefined && typeof n !== "string") throw new UsageError(`${doc.where(["name"])}: validating ${doc.file}: name must be a string`);
      if (n) [fromFiles, last] = [n, doc];
    }
    name = (last ? normalizeProjectName(interpolateAll(fromFiles, lookup, last, ["name"]) as string) : "") || normalizeProjectName(basename(directory));
  }
  if (name === "") throw new UsageError(`project name must not be empty: ${directory} gives none; pass -p NAME or set name: in ${files[0]!}`);
  environment["COMPOSE_PROJECT_NAME"] = name;

  const { data, whereOf } = loadModel(files, { workingDir: directory, environment, home, chain: [], fileFlag }, parsed);
  // As compose-go's loader: nothing at all in the files is an error, not an empty project.
  if (Object.keys(data).length === 0) throw new UsageError(`${files.join(", ")}: empty compose file`);

  const secrets: Record<string, ComposeSecret> = {};
  for (const [secret, def] of Object.entries((data["secrets"] ?? {}) as Obj)) {
    if (!isObj(def)) throw new UsageError(`secret "${secret}" must be a mapping (file:, environment: or external:)`);
    // compose-go's checks, in its words: validation's checkFileObject("file", "environment"), transformMaybeExternal's, then validate.go's.
    const given = ["file", "environment"].filter((k) => k in def);
    if (given.length > 1) throw new UsageError(`secrets.${secret}: file|environment attributes are mutually exclusive`);
    if (given.length === 0 && !("driver" in def) && !("external" in def)) throw new UsageError(`secrets.${secret}: one of file|environment must be set`);
    const external = isExternal(def["external"], secret);
    if (isObj(def["external"]) && def["external"]["name"] !== undefined && def["name"] !== undefined && def["name"] !== def["external"]["name"]) {
      throw new UsageError(`secrets.${secret}: name and external.name conflict; only use name`);
    }
    if (!external && !def["file"] && !def["environment"]) throw new UsageError(`secret "${secret}" must declare either \`file\` or \`environment\``);
    secrets[secret] = {
      file: typeof def["file"] === "string" ? def["file"] : undefined,
      environment: typeof def["environment"] === "string" ? def["environment"] : undefined,
      external,
    };
  }

  const profilesOn = new Set(options.profiles ?? (environment["COMPOSE_PROFILES"] ?? "").split(",").filter(Boolean));
  const services: ComposeService[] = [];
  const deps = new Map<string, Map<string, boolean>>();
  const where = new Map<string, string>();
  for (const [svcName, raw] of Object.entries((data["services"] ?? {}) as Obj)) {
    const at = whereOf.get(svcName) ?? files[0]!;
    where.set(svcName, at);
    if (!isObj(raw)) throw new UsageError(`${at}: services.${svcName} must be a mapping`);
    for (const k of ["image", "platform"])
      if (raw[k] !== undefined && typeof raw[k] !== "string") throw new UsageError(`${at}: services.${svcName}.${k} must be a string`);
    if (raw["build"] !== undefined && !isObj(raw["build"])) throw new UsageError(`${at}: services.${svcName}.build must be a string or a mapping`);
    const profiles = (raw["profiles"] ?? []) as string[];
    const build = isObj(raw["build"]) ? toBuild(raw["build"], svcName, environment, at) : undefined;
    const active = profiles.length === 0 || profiles.some((p) => profilesOn.has(p)) || profilesOn.has("*");
    if (active && isObj(raw["build"]) && raw["build"]["dockerfile"] !== undefined && raw["build"]["dockerfile_inline"] !== undefined) {
      throw new UsageError(`${at}: service "${svcName}" declares mutually exclusive dockerfile and dockerfile_inline: invalid compose project`);
    }
    const d = dependencies(raw, at, svcName);
    deps.set(svcName, d);
    const image = raw["image"] as string | undefined;
    const platform = raw["platform"] as string | undefined;
    services.push({ name: svcName, image, platform, profiles, active, build, dependsOn: [...d.keys()] });
  }
  checkConsistency(services, deps, secrets, where);
  applyPlatforms(services, environment, where);
  return { name, directory, files, environment, services, secrets };
}

/** compose-go's checkConsistency, for the active services, as far as a build is concerned. */
function checkConsistency(
  services: ComposeService[],
  deps: Map<string, Map<string, boolean>>,
  secrets: Record<string, ComposeSecret>,
  where: Map<string, string>,
): void {
  const byName = new Map(services.map((s) => [s.name, s]));
  const invalid = "invalid compose project";
  for (const s of services.filter((x) => x.active)) {
    const at = where.get(s.name)!;
    if (!s.build && s.image === undefined) throw new UsageError(`${at}: service "${s.name}" has neither an image nor a build context specified: ${invalid}`);
    if (s.build) {
      for (const [ctx, value] of Object.entries(s.build.additionalContexts)) {
        if (!value.startsWith("service:")) continue;
        const target = byName.get(value.slice("service:".length));
        if (!target?.active) throw new UsageError(`${at}: service "${s.name}" declares unknown service "${value.slice(8)}" as additional contexts ${ctx}`);
        if (!target.build) throw new UsageError(`${at}: service "${s.name}" declares non-buildable service "${target.name}" as additional contexts ${ctx}`);
      }
      if (s.platform !== undefined && s.build.platforms.length && !s.build.platforms.includes(s.platform)) {
        throw new UsageError(`${at}: service "${s.name}": service.build.platforms MUST include service.platform "${s.platform}": ${invalid}`);
      }
      for (const secret of s.build.secrets) {
        if (!secrets[secret.source])
          throw new UsageError(`${at}: service "${s.name}" refers to undefined build secret ${secret.source}; define it under the top-level secrets:`);
      }
    }
    for (const [dep, required] of deps.get(s.name)!) {
      const t = byName.get(dep);
      if (!t || (!t.active && required)) throw new UsageError(`${at}: service "${s.name}" depends on undefined service "${dep}": ${invalid}`);
    }
  }
  // graph.CheckCycle: names in order, the first cycle found.
  const active = (n: string): boolean => byName.get(n)?.active === true;
  const children = (n: string): string[] => [...(deps.get(n)?.keys() ?? [])].filter(active).sort();
  const clear = new Set<string>();
  const search = (path: string[]): void => {
    const v = path.at(-1)!;
    if (clear.has(v)) return;
    for (const c of children(v)) {
      const i = path.indexOf(c);
      if (i >= 0) throw new UsageError(`${where.get(path[i]!)!}: dependency cycle detected: ${[...path.slice(i), c].join(" -> ")}`);
      search([...path, c]);
    }
    clear.add(v);
  };
  for (const n of services
    .map((s) => s.name)
    .filter(active)
    .sort())
    search([n]);
}

/**
 * docker compose's applyPlatforms (for build): DOCKER_DEFAULT_PLATFORM is
 * the platform of a service that names none; a build without platforms is
 * built for the service's platform, and one with platforms must include it.
 */
function applyPlatforms(services: ComposeService[], env: Record<string, string>, where: Map<string, string>): void {
  const fallback = env["DOCKER_DEFAULT_PLATFORM"] || undefined;
  for (const s of services) {
    if (!s.build) continue;
    const at = where.get(s.name)!;
    if (fallback !== undefined && s.platform === undefined) {
      if (s.build.platforms.length && !s.build.platforms.includes(fallback)) {
        throw new UsageError(`${at}: service "${s.name}" build.platforms does not support value set by DOCKER_DEFAULT_PLATFORM: ${fallback}`);
      }
      s.platform = fallback;
    }
    if (s.platform === undefined) continue;
    if (s.build.platforms.length && !s.build.platforms.includes(s.platform)) {
      throw new UsageError(`${at}: service "${s.name}" build configuration does not support platform: ${s.platform}`);
    }
    if (!s.build.platforms.length) s.build.platforms = [s.platform];
  }
}
