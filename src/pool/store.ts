/**
 * Named builders: bk-build's own store, and buildx's read-only.
 *
 * bk-build's store is one JSON file, `$XDG_CONFIG_HOME/bk-build/builders.json`
 * (else `$HOME/.config/bk-build/builders.json`):
 *
 *     { "version": 1, "current": "ci",
 *       "builders": { "ci": { "nodes": [{ "name": "ci0", "address": "tcp://10.0.0.5:1234",
 *         "platforms": ["linux/amd64"], "tls": { "caFile": "/certs/ca.pem" }, "labels": { "zone": "a" } }] } } }
 *
 * It is changed under a lock file beside it and written whole (a temporary
 * file beside it, mode 0600, renamed over it), so a reader never sees half
 * of it and two writers do not lose each other's change.
 *
 * buildx's store is read as buildx v0.38 writes it: `instances/NAME`, one
 * NodeGroup JSON file per builder (store/nodegroup.go), in `$BUILDX_CONFIG`,
 * else `$DOCKER_CONFIG/buildx`, else `~/.docker/buildx`. Only what a
 * bk-build node can be is taken: a `remote` builder's nodes (Endpoint,
 * Platforms, DriverOpts cacert/cert/key/servername), and a
 * `docker-container` builder's containers (`buildx_buildkit_NODE`, through
 * `docker-container://`). buildx's own current builder is not read.
 *
 * Every function takes the environment it reads (`env`); none reads
 * process.env.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync, type Stats } from "node:fs";
import { userInfo } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { UsageError } from "../errors.js";
import { MAX_TEXT_FILE_BYTES, readInputFile } from "../files.js";
import { checkPlatform, normalizePlatform } from "../solve/platform.js";
import { parseAddress, resolveTls, tlsDirFiles } from "../transport/address.js";
import { engineAddress, parseDockerHost, resolveEngine } from "../docker/host.js";
import type { PoolNode } from "./pool.js";

type Env = Record<string, string | undefined>;

/** TLS files of a stored node (absolute paths, read at each connection). */
export interface StoredTls {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  serverName?: string | undefined;
}

/** One node as bk-build's store keeps it. */
export interface StoredNode {
  name: string;
  address: string;
  platforms?: string[] | undefined;
  tls?: StoredTls | undefined;
  labels?: Record<string, string> | undefined;
}

/** builders.json. */
export interface BuilderStore {
  version: 1;
  /** Set by `bk-build builder use`: the builder used when none is given. */
  current?: string | undefined;
  builders: Record<string, { nodes: StoredNode[] }>;
}

/** A builder found by name, ready for BuildKitPool.connect(). */
export interface FoundBuilder {
  name: string;
  source: "bk-build" | "buildx";
  /** The file it was read from. */
  file: string;
  /** buildx's driver; undefined for bk-build's own builders. */
  driver?: string | undefined;
  nodes: Array<PoolNode & { name: string }>;
}

/** One buildx builder as its instance file has it. */
export interface BuildxBuilder {
  name: string;
  driver: string;
  file: string;
  /** Each node's name and endpoint, as buildx lists them. */
  endpoints: Array<{ name: string; endpoint: string }>;
  /** The nodes as bk-build dials them; undefined when bk-build cannot use the builder (see `unusable`). */
  nodes: Array<PoolNode & { name: string }> | undefined;
  /** Why bk-build cannot use it: one line. */
  unusable?: string | undefined;
}

/** buildx's name rule (store.ValidateName): a letter, then letters, digits, `.`, `-`, `_`; compared without case. */
const NAME = /^[a-zA-Z][a-zA-Z0-9.\-_]*$/;

/** The prefix of the containers buildx's docker-container driver runs (driver.BuilderName). */
export const BUILDX_CONTAINER_PREFIX = "buildx_buildkit_";

/** How long a lock file may stand before it counts as left behind by a process that died. */
const STALE_LOCK_MS = 30_000;
/** How long a writer waits for the lock. */
const LOCK_WAIT_MS = 10_000;

/**
 * A builder or node name by buildx's rule, lowercased (as buildx stores
 * it). `what` names it in the error.
 */
export function checkBuilderName(name: string, what = "builder name"): string {
  if (!NAME.test(name)) {
    throw new UsageError(`invalid ${what} "${name}": a name starts with a letter and has only letters, digits and . _ - (buildx's rule)`);
  }
  return name.toLowerCase();
}

function home(env: Env): string {
  const h = env["HOME"];
  if (h) return h;
  try {
    return userInfo().homedir;
  } catch {
    return "";
  }
}

/** bk-build's store: `$XDG_CONFIG_HOME/bk-build/builders.json` (an absolute XDG_CONFIG_HOME only, as the XDG spec says), else `~/.config/bk-build/builders.json`. */
export function builderStorePath(env: Env): string {
  const xdg = env["XDG_CONFIG_HOME"];
  const base = xdg && isAbsolute(xdg) ? xdg : join(home(env), ".config");
  return join(base, "bk-build", "builders.json");
}

/** buildx's config directory (confutil.NewConfig): `$BUILDX_CONFIG`, else `$DOCKER_CONFIG/buildx`, else `~/.docker/buildx`. */
export function buildxConfigDir(env: Env): string {
  const bx = env["BUILDX_CONFIG"];
  if (bx) return bx;
  const docker = env["DOCKER_CONFIG"];
  return join(docker || join(home(env), ".docker"), "buildx");
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw e;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/* ------------------------------------------------------------------ */
/* bk-build's store                                                    */
/* ------------------------------------------------------------------ */

function emptyStore(): BuilderStore {
  return { version: 1, builders: {} };
}

/** Reads bk-build's store; a missing file is an empty store, a broken one one line naming the file. */
export function readBuilderStore(env: Env): { file: string; store: BuilderStore } {
  const file = builderStorePath(env);
  if (!statOrUndefined(file)) return { file, store: emptyStore() };
  const text = readInputFile(file, { what: "bk-build's builder store", maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`bk-build's builder store ${file} is not valid JSON (${e instanceof Error ? e.message : String(e)}); fix or remove it`);
  }
  return { file, store: checkStore(json, file) };
}

function checkStore(json: unknown, file: string): BuilderStore {
  const bad = (why: string): UsageError => new UsageError(`bk-build's builder store ${file} is not valid: ${why}; fix or remove it`);
  if (!isObject(json)) throw bad("it is not a JSON object");
  if (json["version"] !== 1) throw bad(`version is ${JSON.stringify(json["version"])}, this bk-build reads version 1`);
  const current = json["current"];
  if (current !== undefined && (typeof current !== "string" || !NAME.test(current))) throw bad("current is not a builder name");
  const builders = json["builders"] ?? {};
  if (!isObject(builders)) throw bad("builders is not an object");
  const out: BuilderStore = { version: 1, builders: {} };
  if (typeof current === "string") out.current = current;
  for (const [name, b] of Object.entries(builders)) {
    if (!NAME.test(name) || name !== name.toLowerCase()) throw bad(`${JSON.stringify(name)} is not a builder name`);
    if (!isObject(b) || !Array.isArray(b["nodes"]) || b["nodes"].length === 0) throw bad(`builders.${name} has no nodes`);
    const nodes = (b["nodes"] as unknown[]).map((n, i): StoredNode => {
      const at = `builders.${name}.nodes[${i}]`;
      if (!isObject(n)) throw bad(`${at} is not an object`);
      const { name: nodeName, address, platforms, tls, labels } = n;
      if (typeof nodeName !== "string" || !NAME.test(nodeName)) throw bad(`${at} has no valid name`);
      if (typeof address !== "string" || address === "") throw bad(`${at} has no address`);
      const node: StoredNode = { name: nodeName, address };
      if (platforms !== undefined) {
        if (!Array.isArray(platforms) || !platforms.every((p) => typeof p === "string")) throw bad(`${at}.platforms is not a list of platforms`);
        node.platforms = platforms;
      }
      if (tls !== undefined) {
        if (!isObject(tls)) throw bad(`${at}.tls is not an object`);
        const t: StoredTls = {};
        for (const k of ["caFile", "certFile", "keyFile", "serverName"] as const) {
          const v = tls[k];
          if (v === undefined) continue;
          if (typeof v !== "string") throw bad(`${at}.tls.${k} is not a string`);
          t[k] = v;
        }
        node.tls = t;
      }
      if (labels !== undefined) {
        if (!isObject(labels) || !Object.values(labels).every((v) => typeof v === "string")) throw bad(`${at}.labels is not an object of strings`);
        node.labels = labels as Record<string, string>;
      }
      return node;
    });
    out.builders[name] = { nodes };
  }
  return out;
}

/** The store as written: builders in name order, two-space JSON. */
function storeText(store: BuilderStore): string {
  const builders: BuilderStore["builders"] = {};
  // Each node's keys in one order: name, address, platforms, tls, labels.
  for (const name of Object.keys(store.builders).sort()) {
    builders[name] = {
      nodes: store.builders[name]!.nodes.map((n) => ({ name: n.name, address: n.address, platforms: n.platforms, tls: n.tls, labels: n.labels })),
    };
  }
  const out: BuilderStore = { version: 1, ...(store.current === undefined ? {} : { current: store.current }), builders };
  return JSON.stringify(out, null, 2) + "\n";
}

/** Writes `text` to `file` whole: a temporary beside it (mode 0600), flushed, renamed over it; its directory made 0700. */
export function writeFileAtomic(file: string, text: string): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${file.slice(dir.length + 1)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fd: number | undefined = openSync(tmp, "wx", 0o600);
  try {
    const data = Buffer.from(text, "utf8");
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const d = openSync(dir, "r");
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // Not every filesystem lets a directory be flushed; the rename is done either way.
  }
}

/** Holds `<file>.lock` (created exclusively) while `fn` runs; a lock older than 30 s is taken as left behind. */
function withLock<T>(file: string, fn: () => T): T {
  const lock = `${file}.lock`;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, "wx", 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const st = statOrUndefined(lock);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new UsageError(`bk-build's builder store ${file} is locked by another bk-build (${lock}); try again, or remove the lock file`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Reads the store under its lock, applies `change`, writes the result; returns what `change` returned. */
export function updateBuilderStore<T>(env: Env, change: (store: BuilderStore, file: string) => T): T {
  const file = builderStorePath(env);
  return withLock(file, () => {
    const { store } = readBuilderStore(env);
    const out = change(store, file);
    writeFileAtomic(file, storeText(store));
    return out;
  });
}

/** A node for `builder create`, before it is stored. */
export interface NodeInput {
  address: string;
  /** --node: the node's name (default: the builder's name and the next free number, as buildx). */
  name?: string | undefined;
  platforms?: string[] | undefined;
  /** TLS files, relative to `cwd`; `dir` is expanded to the files it holds. */
  tls?: (StoredTls & { dir?: string | undefined }) | undefined;
  labels?: Record<string, string> | undefined;
}

/**
 * Checks a node as `builder create` gets it: the address parses, the
 * platforms are platforms, the TLS files can be read and fit the address.
 * TLS paths are stored absolute.
 */
export function checkNodeInput(input: NodeInput, cwd: string): Omit<StoredNode, "name"> & { name?: string | undefined } {
  const addr = parseAddress(input.address);
  const node: Omit<StoredNode, "name"> & { name?: string | undefined } = { address: addr.address };
  if (input.name !== undefined) node.name = checkBuilderName(input.name, "node name");
  if (input.platforms?.length) {
    node.platforms = [
      ...new Set(
        input.platforms.map((p) => {
          checkPlatform(p, "--platform");
          return normalizePlatform(p);
        }),
      ),
    ];
  }
  if (input.tls) {
    let { caFile, certFile, keyFile } = input.tls;
    if (input.tls.dir) {
      if (caFile || certFile || keyFile) throw new UsageError("--tlsdir cannot be combined with --tlscacert, --tlscert or --tlskey");
      ({ caFile, certFile, keyFile } = tlsDirFiles(resolve(cwd, input.tls.dir)));
    }
    const abs = (p: string | undefined): string | undefined => (p ? resolve(cwd, p) : undefined);
    const tls: StoredTls = { caFile: abs(caFile), certFile: abs(certFile), keyFile: abs(keyFile), serverName: input.tls.serverName || undefined };
    // Read once now, so a wrong path or a missing key is found at create time, not at the first build.
    if (resolveTls(tls, addr)) node.tls = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
  }
  if (input.labels && Object.keys(input.labels).length) node.labels = { ...input.labels };
  return node;
}

/**
 * `builder create` on the store (buildx's model: one node per call):
 * a new builder gets its first node; `append` adds a node to an existing
 * one; `--node NAME` without `append` replaces that node of an existing
 * builder. Returns what was done.
 */
export function setBuilderNode(
  store: BuilderStore,
  builderName: string,
  node: Omit<StoredNode, "name"> & { name?: string | undefined },
  append: boolean,
): "created" | "appended" | "replaced" {
  const name = checkBuilderName(builderName);
  if (name === "default") throw new UsageError('"default" is a reserved name (buildx\'s): it means no builder; choose another');
  const existing = store.builders[name];
  if (!existing) {
    if (append) throw new UsageError(`no builder "${name}" to append to; create it first without --append`);
    store.builders[name] = { nodes: [{ ...node, name: node.name ?? `${name}0` }] };
    return "created";
  }
  const nodes = existing.nodes;
  const at = node.name === undefined ? -1 : nodes.findIndex((n) => n.name === node.name);
  let action: "appended" | "replaced";
  let next: StoredNode[];
  if (append) {
    if (at >= 0) throw new UsageError(`builder "${name}" already has a node "${node.name!}": without --append, --node ${node.name!} replaces it`);
    let i = 0;
    while (nodes.some((n) => n.name === `${name}${i}`)) i++;
    next = [...nodes, { ...node, name: node.name ?? `${name}${i}` }];
    action = "appended";
  } else if (node.name === undefined) {
    throw new UsageError(`builder "${name}" already exists: --append adds a node to it, --node NAME replaces one, 'bk-build builder rm ${name}' removes it`);
  } else if (at < 0) {
    throw new UsageError(`builder "${name}" has no node "${node.name}": add it with --append`);
  } else {
    next = nodes.map((n, i) => (i === at ? { ...node, name: n.name } : n));
    action = "replaced";
  }
  // As buildx's validateDuplicates: one node per endpoint. Checked before anything changes.
  const dup = next.find((n, i) => next.findIndex((m) => m.address === n.address) !== i);
  if (dup) throw new UsageError(`builder "${name}" would have two nodes at ${dup.address}: each node needs its own address`);
  existing.nodes = next;
  return action;
}

/* ------------------------------------------------------------------ */
/* buildx's store (read only)                                          */
/* ------------------------------------------------------------------ */

/** A field as Go's encoding/json finds a struct field: the key compared without case, the last match winning. */
function field(obj: Record<string, unknown>, name: string): unknown {
  let value: unknown;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) value = v;
  return value;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** Reads buildx's instance file of `name` (lowercased, as buildx names the files); undefined when there is none. */
export function readBuildxBuilder(env: Env, name: string): BuildxBuilder | undefined {
  const dir = join(buildxConfigDir(env), "instances");
  const file = join(dir, name.toLowerCase());
  const st = statOrUndefined(file);
  if (!st?.isFile()) return undefined;
  return parseBuildxInstance(file, env);
}

/** Every builder in buildx's store, by name; a file that cannot be read is listed as unusable, with the reason. */
export function readBuildxBuilders(env: Env): BuildxBuilder[] {
  const dir = join(buildxConfigDir(env), "instances");
  if (!statOrUndefined(dir)?.isDirectory()) return [];
  return readdirSync(dir)
    .filter((f) => NAME.test(f) && statOrUndefined(join(dir, f))?.isFile())
    .sort()
    .map((f) => {
      try {
        return parseBuildxInstance(join(dir, f), env);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        return { name: f, driver: "", file: join(dir, f), endpoints: [], nodes: undefined, unusable: e.message };
      }
    });
}

function parseBuildxInstance(file: string, env: Env): BuildxBuilder {
  const text = readInputFile(file, { what: "buildx builder file", maxBytes: MAX_TEXT_FILE_BYTES }).toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(
      `buildx's builder file ${file} is not valid JSON (${e instanceof Error ? e.message : String(e)}); fix it or remove it with docker buildx rm`,
    );
  }
  if (!isObject(json)) throw new UsageError(`buildx's builder file ${file} is not a JSON object; fix it or remove it with docker buildx rm`);
  const name = str(field(json, "Name")) || file.slice(dirname(file).length + 1);
  const driver = str(field(json, "Driver"));
  const rawNodes = field(json, "Nodes");
  const list = Array.isArray(rawNodes) ? rawNodes.filter(isObject) : [];
  const endpoints = list.map((n) => ({ name: str(field(n, "Name")), endpoint: str(field(n, "Endpoint")) }));
  const out: BuildxBuilder = { name, driver, file, endpoints, nodes: undefined };
  if (list.length === 0) {
    out.unusable = `buildx builder "${name}" (${file}) has no nodes`;
    return out;
  }
  if (driver === "remote") {
    out.nodes = list.map((n) => remoteNode(n, name, file));
  } else if (driver === "docker-container") {
    try {
      out.nodes = list.map((n) => containerNode(n, name, env));
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      out.unusable = e.message;
    }
  } else {
    out.unusable =
      `buildx builder "${name}" uses the ${driver || "unknown"} driver; bk-build uses only buildx's remote builders ` +
      `(and docker-container ones, through docker-container://): create one with 'docker buildx create --driver remote ADDR' or 'bk-build builder create'`;
  }
  return out;
}

/** buildx's ocispecs.Platform objects as os/arch[/variant], normalised. */
function buildxPlatforms(raw: unknown): string[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  const out = raw.filter(isObject).map((p) => {
    const text = [str(field(p, "os")), str(field(p, "architecture")), str(field(p, "variant"))].filter(Boolean).join("/");
    checkPlatform(text, "platform in buildx's builder file");
    return normalizePlatform(text);
  });
  return out.length ? [...new Set(out)] : undefined;
}

/** A remote builder's node: its Endpoint, Platforms, and TLS from DriverOpts (cacert, cert, key, servername; the paths buildx checked are absolute). */
function remoteNode(n: Record<string, unknown>, builder: string, file: string): PoolNode & { name: string } {
  const name = str(field(n, "Name"));
  const address = str(field(n, "Endpoint"));
  if (!address) throw new UsageError(`buildx builder "${builder}" (${file}): node "${name}" has no endpoint`);
  const node: PoolNode & { name: string } = { name: name || address, address };
  const platforms = buildxPlatforms(field(n, "Platforms"));
  if (platforms) node.platforms = platforms;
  const opts = field(n, "DriverOpts");
  if (isObject(opts)) {
    const tls: StoredTls = {};
    if (typeof opts["cacert"] === "string") tls.caFile = opts["cacert"];
    if (typeof opts["cert"] === "string") tls.certFile = opts["cert"];
    if (typeof opts["key"] === "string") tls.keyFile = opts["key"];
    if (typeof opts["servername"] === "string") tls.serverName = opts["servername"];
    if (Object.keys(tls).length) node.tls = tls;
  }
  return node;
}

/**
 * A docker-container builder's node: the container buildx runs,
 * `buildx_buildkit_NODE`, through docker-container://. buildx records the
 * Engine as a docker context name, or as a host when the node was created
 * on the default context; a host must be the one bk-build would reach (the
 * docker CLI's choice: DOCKER_HOST, the docker context, the default socket).
 */
function containerNode(n: Record<string, unknown>, builder: string, env: Env): PoolNode & { name: string } {
  const name = str(field(n, "Name"));
  const endpoint = str(field(n, "Endpoint"));
  const container = BUILDX_CONTAINER_PREFIX + name;
  const node: PoolNode & { name: string } = { name, address: `docker-container://${container}` };
  const platforms = buildxPlatforms(field(n, "Platforms"));
  if (platforms) node.platforms = platforms;
  if (endpoint === "" || endpoint === "default") return node;
  if (!endpoint.includes("://")) {
    node.address = `docker-container://${container}?context=${encodeURIComponent(endpoint)}`;
    return node;
  }
  const recorded = engineAddress(parseDockerHost(endpoint));
  const now = resolveEngine("docker://", { env });
  if (recorded !== now.address) {
    throw new UsageError(
      `buildx builder "${builder}" runs ${container} on the Docker Engine at ${endpoint}, but bk-build would look for it on ${now.address} (${now.source}): set DOCKER_HOST=${endpoint}`,
    );
  }
  return node;
}

/* ------------------------------------------------------------------ */
/* Lookup                                                              */
/* ------------------------------------------------------------------ */

function storedToPool(b: { nodes: StoredNode[] }): Array<PoolNode & { name: string }> {
  return b.nodes.map((n) => {
    const node: PoolNode & { name: string } = { name: n.name, address: n.address };
    if (n.platforms?.length) node.platforms = [...n.platforms];
    if (n.tls) node.tls = { ...n.tls };
    if (n.labels) node.labels = { ...n.labels };
    return node;
  });
}

/**
 * A builder by name: bk-build's store first, then buildx's. An unknown
 * name, or a buildx builder bk-build cannot use, is one line (naming where
 * it looked).
 */
export function findBuilder(name: string, env: Env): FoundBuilder {
  const key = checkBuilderName(name);
  const { file, store } = readBuilderStore(env);
  const own = store.builders[key];
  if (own) return { name: key, source: "bk-build", file, nodes: storedToPool(own) };
  const bx = readBuildxBuilder(env, key);
  if (bx) {
    if (!bx.nodes) throw new UsageError(bx.unusable ?? `buildx builder "${bx.name}" cannot be used`);
    return { name: bx.name, source: "buildx", file: bx.file, driver: bx.driver, nodes: bx.nodes };
  }
  throw new UsageError(
    `unknown builder "${name}": not in bk-build's store (${file}) nor in buildx's (${join(buildxConfigDir(env), "instances")}); 'bk-build builder ls' lists the builders`,
  );
}

/** The builder to use when none is given: `BK_BUILDER`, else the store's `current` (`builder use`); undefined: none. */
export function defaultBuilder(env: Env): { name: string; from: string } | undefined {
  const fromEnv = env["BK_BUILDER"];
  if (fromEnv) return { name: fromEnv, from: "BK_BUILDER" };
  const { store } = readBuilderStore(env);
  if (store.current) return { name: store.current, from: "'bk-build builder use'" };
  return undefined;
}

/**
 * The nodes of a named builder, for `BuildKitPool.connect({ nodes })`:
 * from bk-build's builder store (`bk-build builder create`), else from
 * buildx's (its `remote` and `docker-container` builders). `env` holds
 * HOME, XDG_CONFIG_HOME, BUILDX_CONFIG, DOCKER_CONFIG (and, for
 * docker-container builders, DOCKER_HOST and DOCKER_CONTEXT); default
 * `process.env`. Throws a UsageError for an unknown builder.
 *
 * ```ts
 * await using pool = await BuildKitPool.connect({ nodes: loadBuilder("ci") });
 * ```
 */
export function loadBuilder(name: string, options: { env?: Env | undefined } = {}): PoolNode[] {
  return findBuilder(name, options.env ?? process.env).nodes;
}
