/**
 * Build options and their mapping to what Control.Solve takes: frontend
 * attributes, exporters, the local directories the session serves.
 */
import { basename, dirname, join, resolve } from "node:path";
import { readdirSync, statSync } from "node:fs";
import type { Writable } from "node:stream";
import type { ByteSink } from "../session/filesend.js";
import { isIP } from "node:net";
import { UsageError } from "../errors.js";
import { MAX_TEXT_FILE_BYTES, checkInputFile } from "../files.js";
import type { SecretSource } from "./secrets.js";
import type { SshAgentSource } from "./ssh.js";
import type { RegistryAuthOptions } from "./registry-auth.js";
import { resolveCaches, withInlineCacheArg, type CacheEntry, type ResolvedCaches } from "./cache.js";
import { parseBool, parseBytes, parseUlimit } from "../units.js";
import { httpSourceDefinition, isHttpUrl } from "./http-source.js";
import type { Definition } from "../gen/types/pb/Definition.js";
import { checkImageName } from "./reference.js";
import { resolveOciContext, type OciContext } from "./stores.js";
import { annotationAttr, attestationAttrs, type AnnotationSpec, type AttestationSpec } from "./attest.js";
import { checkPlatform } from "./platform.js";

export { checkPlatform } from "./platform.js";
import type { LocalDir } from "../session/filesync.js";
import { newId, sessionSharedKey } from "../session/id.js";
import { uploadUrl } from "./context-stream.js";

/**
 * A build context given as the bytes of a tar archive, plain or compressed
 * with gzip, bzip2 or xz (what `docker buildx build -` reads from stdin):
 * a Readable such as `fs.createReadStream("ctx.tar.gz")` or `process.stdin`,
 * or any async iterable of bytes. The daemon pulls it through the session
 * and unpacks it; the Dockerfile is read from inside it (`dockerfile` is a
 * path in the archive) unless given as `{ contents }`. It is read once; if
 * the build ends before the daemon has read it all, the library stops
 * reading it (a Readable is destroyed).
 */
export type ContextArchive = AsyncIterable<Uint8Array>;

/** A Dockerfile given by its text instead of a path (what `-f -` reads from stdin). */
export interface DockerfileContents {
  contents: string | Uint8Array;
}

/**
 * One output of a build (buildx --output).
 *
 * - `image`: into the daemon's image store; `push: "true"` in attrs pushes it.
 *   `registry` is `image` with push.
 * - `local` with `dest: DIR`: the build's files, written into DIR.
 * - `tar`, `oci`, `docker` with `dest: FILE` or `stream`: a tarball (the
 *   files; an OCI layout; `docker load`'s format). With `attrs.tar:
 *   "false"`, `oci`/`docker` write an OCI layout directory at `dest`.
 * - `docker` with neither: loaded into a Docker Engine's image store, as
 *   buildx's `--load` (see BuildOptions.load).
 * - `cacheonly`: no output (the result stays in the build cache).
 *
 * Files and directories land complete or not at all: they are written
 * beside `dest` and moved into place when the build succeeds (a `local`
 * export into an existing directory is merged into it, as buildctl does:
 * nothing there is deleted). A `stream` is ended when the export is
 * complete, and destroyed with the error if the build fails.
 */
export interface ExportSpec {
  /** image, registry, local, tar, oci, docker, cacheonly. */
  type: string;
  /** Exporter attributes, sent as given (a `dest` here counts as `dest` below). */
  attrs?: Record<string, string> | undefined;
  /** local: the directory; tar, oci, docker: the file (the directory with tar=false). */
  dest?: string | undefined;
  /** tar, oci, docker: where the tarball is streamed instead of a file. */
  stream?: Writable | undefined;
}

/** An output as the request sends it, with where its bytes go. */
export interface ResolvedExport {
  type: string;
  /** Attributes for the daemon (`dest` taken out). */
  attrs: Record<string, string>;
  /**
   * How the client receives it: nothing (image), a directory, a file or
   * stream, an OCI layout directory, or loaded into a Docker Engine
   * (`docker` without dest or stream).
   */
  target: "none" | "directory" | "file" | "stream" | "layout" | "load";
  dest?: string | undefined;
  stream?: Writable | undefined;
  /** An export the library consumes itself (the leak audit's): not reported in the result. */
  sink?: ByteSink | undefined;
}

export interface BuildOptions {
  /**
   * Build context: a directory (sent through the session), a git/http(s)
   * URL that buildkitd fetches itself (then `dockerfile` is a path inside
   * it), or a tar archive's bytes (a ContextArchive, e.g. a Readable: then
   * too `dockerfile` is a path inside it). Left out: an empty context (as
   * `docker build -` with a Dockerfile on stdin), for a Dockerfile that
   * copies nothing from it.
   */
  context?: string | ContextArchive | undefined;
  /**
   * The Dockerfile: a path (default: <context>/Dockerfile, or `dockerfile`
   * there when only that exists, as buildx; it may lie outside the
   * context), or its text as `{ contents }` (e.g. `{ contents: "FROM
   * alpine\n" }`), which is served from memory.
   */
  dockerfile?: string | DockerfileContents | undefined;
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
  /**
   * Load the image into a Docker Engine's image store (buildx --load, an
   * output `{ type: "docker" }` without dest). Through an Engine, that
   * Engine; with buildkitd, the Engine the docker CLI would use
   * (`DOCKER_HOST`, `DOCKER_CONTEXT`, the Docker config's current context,
   * then /var/run/docker.sock, read from `env`), the tarball streamed into
   * its `POST /images/load` with no temporary file.
   */
  load?: boolean | undefined;
  /** Extra exporters (buildx --output). */
  outputs?: ExportSpec[] | undefined;
  /** Entitlements such as "network.host" (the daemon must allow them). */
  entitlements?: string[] | undefined;
  /** Other frontend attributes, sent as they are. */
  frontendAttrs?: Record<string, string> | undefined;
  /** Always look up base images in their registry, even when the daemon has them (buildx --pull). */
  pull?: boolean | undefined;
  /**
   * Attestations to attach to the image (buildx --attest, --provenance,
   * --sbom); the first of each type wins.
   */
  attestations?: AttestationSpec[] | undefined;
  /**
   * Add buildx's default provenance attestation (`mode=min,inline-only=true`)
   * unless `attestations` has a provenance entry (a disabled one included).
   * Not sent to a Docker Engine with the classic image store, which cannot
   * store attestations (as buildx's docker driver). Default false; the CLI
   * turns it on unless BUILDX_NO_DEFAULT_ATTESTATIONS is true, as buildx.
   */
  defaultProvenance?: boolean | undefined;
  /** Annotations for every output (buildx --annotation). */
  annotations?: AnnotationSpec[] | undefined;
  signal?: AbortSignal | undefined;
  /**
   * After the build, scan every layer and file it produced for the values of
   * the secrets (and SSH key files) it was given: a finding fails the build
   * with a LeakError (the values are never shown).
   */
  auditSecrets?: boolean | undefined;
  /** Called with each warning as it happens (a skipped cache, ...); they are also in the result's `warnings`. */
  onWarning?: ((message: string) => void) | undefined;
  /**
   * How long a secret function may take to answer, and the writer of a pipe
   * given as a secret file (`<(cmd)`) to finish, in ms. Default 60000.
   */
  secretTimeoutMs?: number | undefined;
  /**
   * Environment for `{ env }` secrets, bare build args, `SSH_AUTH_SOCK`,
   * `DOCKER_CONFIG`/`HOME` (the Docker config) and credential helpers'
   * PATH. Default: process.env.
   */
  env?: Record<string, string | undefined> | undefined;
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
  if (opts.pull) attrs["image-resolve-mode"] = "pull";
  Object.assign(attrs, attestationAttrs(opts.attestations ?? [], opts.defaultProvenance === true));
  if (opts.noCache === true) attrs["no-cache"] = "";
  else if (Array.isArray(opts.noCache) && opts.noCache.length) attrs["no-cache"] = opts.noCache.join(",");
  for (const [name, value] of Object.entries(opts.buildContexts ?? {})) {
    const local = namedDirs.get(name);
    attrs[`context:${name}`] = local !== undefined ? `local:${local}` : value;
  }
  return { ...attrs, ...(opts.frontendAttrs ?? {}) };
}

/** Exporters whose `name=` is a list of image names. */
const namedExporters = new Set(["image", "oci", "docker"]);

function statKind(path: string): "dir" | "other" | undefined {
  try {
    return statSync(path).isDirectory() ? "dir" : "other";
  } catch {
    return undefined;
  }
}

/** One output checked (UsageError naming it and the fix) and mapped, as buildx's CreateExports. */
function resolveExport(spec: ExportSpec, platforms: number): ResolvedExport | undefined {
  const attrs = { ...(spec.attrs ?? {}) };
  let dest = spec.dest;
  if (attrs["dest"] !== undefined) {
    dest ??= attrs["dest"];
    delete attrs["dest"];
  }
  let type = spec.type;
  const what = `output type=${type}`;
  if (!type) throw new UsageError("an output needs a type: image, registry, local, tar, oci, docker or cacheonly");
  if (type === "cacheonly") return undefined;
  if (type === "registry") {
    type = "image";
    attrs["push"] = "true";
    attrs["unpack"] ??= "false";
  }
  const stream = spec.stream;
  const names = attrs["name"];
  if (namedExporters.has(type) && names) for (const n of names.split(",")) checkImageName(n, "image name", "in an output's name=");
  const asTar = type === "tar" || ((type === "oci" || type === "docker") && parseBool(attrs["tar"]) !== false);
  // Loaded into an Engine: whether several platforms fit depends on its image store (checked then).
  if (type === "docker" && asTar && dest === undefined && !stream) return { type, attrs, target: "load" };
  if (type === "docker" && platforms > 1) {
    throw new UsageError("docker exporter does not support exporting manifest lists, use the oci exporter instead (type=oci)");
  }
  const asDir = type === "local" || ((type === "oci" || type === "docker") && !asTar);
  if (asDir) {
    if (stream) throw new UsageError(`${what}${type === "local" ? "" : ",tar=false"} writes a directory and cannot go to a stream: give dest=DIR`);
    if (!dest) throw new UsageError(`dest is required for ${type} exporter: use type=${type},dest=DIR`);
    if (dest === "-") throw new UsageError(`dest cannot be stdout for ${type} exporter: give a directory, dest=DIR`);
    if (statKind(dest) === "other") throw new UsageError(`destination directory ${JSON.stringify(dest)} is a file: give a directory path for ${what}`);
    return { type, attrs, target: type === "local" ? "directory" : "layout", dest: resolve(dest) };
  }
  if (asTar) {
    if (stream && dest !== undefined) throw new UsageError(`${what} has both dest and stream: give one`);
    if (stream) return { type, attrs, target: "stream", stream };
    if (!dest || dest === "-") {
      throw new UsageError(`${what} needs dest=FILE (the library does not write to stdout: pass stream: process.stdout to mean it)`);
    }
    if (statKind(dest) === "dir") throw new UsageError(`destination file ${JSON.stringify(dest)} is a directory: give a file path for ${what}`);
    return { type, attrs, target: "file", dest: resolve(dest) };
  }
  if (stream || dest !== undefined) throw new UsageError(`${what} takes neither dest nor stream`);
  return { type, attrs, target: "none" };
}

/**
 * The exporters for the request, checked as buildx checks them (throws
 * UsageError); the caller's specs are copied, never changed. Tags and image
 * names are checked as buildkitd will read them.
 */
export function exporters(opts: BuildOptions): ResolvedExport[] {
  for (const tag of opts.tags ?? []) checkImageName(tag, "tag");
  const out: ResolvedExport[] = [];
  for (const o of opts.outputs ?? []) {
    const r = resolveExport(o, opts.platforms?.length ?? 0);
    if (r) out.push(r);
  }
  if (opts.load && !out.some((o) => o.target === "load")) out.push(resolveExport({ type: "docker" }, opts.platforms?.length ?? 0)!);
  if (out.filter((o) => o.target === "load").length > 1) throw new UsageError("two outputs load into the Docker Engine: give one");
  if (out.filter((o) => o.target === "layout").length > 1) {
    throw new UsageError("only one oci or docker output with tar=false per build (they share the session's export store)");
  }
  const files = out.filter((o) => o.target === "file").map((o) => o.dest!);
  const local = out.filter((o) => o.target === "directory" || o.target === "layout").map((o) => o.dest!);
  const all = [...files, ...local];
  const dup = all.find((d, i) => all.indexOf(d) !== i);
  if (dup !== undefined) throw new UsageError(`two outputs write to ${JSON.stringify(dup)}: give each its own dest`);
  if (opts.tags?.length || opts.push) {
    const image = out.find((o) => o.type === "image");
    // As buildx: the tags name every image, oci and docker output, over any name= they had.
    if (opts.tags?.length) for (const o of out) if (namedExporters.has(o.type)) o.attrs["name"] = opts.tags.join(",");
    if (image) {
      if (opts.push) image.attrs["push"] = "true";
    } else if (!opts.push && out.some((o) => namedExporters.has(o.type))) {
      // Named through the oci/docker outputs; no image exporter besides them.
    } else {
      if (opts.push && !opts.tags?.length) throw new UsageError("push needs at least one tag (--tag NAME)");
      const attrs: Record<string, string> = { name: opts.tags!.join(",") };
      if (opts.push) attrs["push"] = "true";
      out.unshift({ type: "image", attrs, target: "none" });
    }
  }
  // As buildx: every output gets the annotations (exporters without images ignore them).
  const annotations = (opts.annotations ?? []).map(annotationAttr);
  for (const o of out) for (const [k, v] of annotations) o.attrs[k] = v;
  if (out.some((o) => o.type === "image" && parseBool(o.attrs["push"]) === true && !o.attrs["name"])) {
    throw new UsageError("an image output that pushes needs a name: give --tag NAME or name=NAME");
  }
  return out;
}

/** An entitlement a build may ask for, as buildx's --allow and compose's entitlements: network.host, security.insecure or device[=NAME]. */
export function isEntitlement(e: string): boolean {
  return e === "network.host" || e === "security.insecure" || /^device(=.+)?$/.test(e);
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
  const hosts = env.addHosts.flatMap((h) => parseAddHost(h, name("add-host")));
  if (hosts.length) attrs["add-hosts"] = hosts.join(",");
  if (env.shmSize !== undefined) attrs["shm-size"] = parseBytes(env.shmSize, name("shm-size")).toString();
  // As go-units (buildx's parser): known names, soft <= hard, sent as NAME=SOFT:HARD.
  const ulimits = env.ulimits.map((u) => parseUlimit(u, name("ulimit")));
  if (ulimits.length) attrs["ulimit"] = ulimits.join(",");
  const network = env.network;
  if (network !== undefined && network !== "default") {
    if (network !== "none" && network !== "host") throw new UsageError(`invalid ${name("network")} "${network}": use default, none or host`);
    attrs["force-network-mode"] = network;
    if (network === "host") entitlements.push("network.host");
  }
  return { attrs, entitlements };
}

/** The IP that `host-gateway` stands for until the daemon's worker says which. */
export const HOST_GATEWAY = "host-gateway";

/**
 * One --add-host / extra_hosts entry as buildx reads it: HOST=IP or HOST:IP
 * (the first "=", else the first ":"), several IPs separated by commas,
 * each may be in [brackets] (IPv6), each must be an IP or `host-gateway`
 * (swapped for the worker's gateway IP when the build starts). Gives
 * buildkitd's `host=ip` entries, one per IP.
 */
export function parseAddHost(entry: string, flag: string): string[] {
  let cut = entry.indexOf("=");
  if (cut < 0) cut = entry.indexOf(":");
  const host = cut < 0 ? "" : entry.slice(0, cut);
  const ips = cut < 0 ? "" : entry.slice(cut + 1);
  if (!host || !ips) throw new UsageError(`invalid ${flag} "${entry}": use HOST:IP (or HOST=IP[,IP...], HOST:host-gateway)`);
  if (ips === HOST_GATEWAY) return [`${host}=${HOST_GATEWAY}`];
  return ips.split(",").map((raw) => {
    const ip = raw.length > 2 && raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
    if (!isIP(ip)) throw new UsageError(`invalid ${flag} "${entry}": "${raw}" is not an IP address`);
    return `${host}=${ip}`;
  });
}

/**
 * A context the frontend fetches itself: a git repository or an http(s)
 * URL, as buildx tells them apart. A local directory of that name (under
 * `base`) wins.
 */
export function isRemoteContext(context: string, base?: string): boolean {
  if (isDir(base === undefined ? context : resolve(base, context))) return false;
  return /^(https?|git|ssh):\/\//i.test(context) || /^git@[^:/]+:/.test(context) || /^github\.com\//.test(context) || /\.git(#.*)?$/.test(context);
}

/** Whether a Dockerfile option is given by its text. */
export function isDockerfileContents(d: BuildOptions["dockerfile"]): d is DockerfileContents {
  return typeof d === "object";
}

/**
 * buildx's handleLowercaseDockerfile: a Dockerfile named `Dockerfile` whose
 * directory has no `Dockerfile` but a `dockerfile` is that one.
 */
export function lowercaseDockerfile(path: string): string {
  if (basename(path) !== "Dockerfile") return path;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return path;
  }
  if (names.includes("Dockerfile") || !names.includes("dockerfile")) return path;
  return join(dirname(path), "dockerfile");
}

/** A MemoryDir holding the given files, stamped with the current time. */
function memoryDir(files: Record<string, Buffer>): LocalDir {
  return { files: new Map(Object.entries(files)), modTime: BigInt(Date.now()) * 1_000_000n };
}

/** What a build sends: the local directories the session serves, the frontend attributes, the exporters. */
export interface ResolvedBuild {
  /** The context directory (absolute), the remote context as given, or "-" (an archive) or "" (empty). */
  context: string;
  /** The session's shared key (stable per context directory). */
  sharedKey: string;
  /** Local directories by the name the frontend asks for them. */
  dirs: Map<string, LocalDir>;
  /** A context archive, served by the session's Upload under this id (attrs' `context` names it). */
  upload?: { id: string; source: ContextArchive } | undefined;
  attrs: Record<string, string>;
  exps: ResolvedExport[];
  /** Cache entries as sent (credentials filled in, local directories absolute). */
  caches: ResolvedCaches;
  /** oci-layout:// build contexts, served as content stores. */
  ociContexts: OciContext[];
  /** The frontend's LLB inputs by name (`dockerfile` for `-f https://...`). */
  inputs: Record<string, Definition>;
}

/**
 * Checks the context, the Dockerfile and the named contexts (throws
 * UsageError), and maps the options to the request's parts.
 */
export function resolveBuild(opts: BuildOptions): ResolvedBuild {
  const given = opts.context;
  const dirs = new Map<string, LocalDir>();
  const extra: Record<string, string> = {};
  let dockerfileName = "Dockerfile";
  let context: string;
  /** An archive or remote context holds the Dockerfile: `dockerfile` is a path inside it. */
  let holdsDockerfile = false;
  let upload: ResolvedBuild["upload"];
  const contents = isDockerfileContents(opts.dockerfile) ? opts.dockerfile : undefined;
  const dockerfilePath = contents ? undefined : (opts.dockerfile as string | undefined);
  if (contents) {
    const data = contents.contents;
    if (typeof data !== "string" && !(data instanceof Uint8Array)) throw new UsageError("dockerfile.contents must be a string or bytes");
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length > MAX_TEXT_FILE_BYTES) throw new UsageError("dockerfile.contents is larger than 10 MiB: give a smaller Dockerfile");
    // As buildx serves a Dockerfile read from stdin: alone in its own local, named Dockerfile.
    dirs.set("dockerfile", memoryDir({ Dockerfile: bytes }));
    extra["dockerfilekey"] = "dockerfile";
  }
  if (given === undefined) {
    if (!contents && dockerfilePath === undefined)
      throw new UsageError("no build context and no Dockerfile: give a context (a directory, URL or archive) or dockerfile");
    context = "";
    dirs.set("context", memoryDir({}));
  } else if (typeof given !== "string") {
    if (typeof (given as Partial<ContextArchive>)[Symbol.asyncIterator] !== "function") {
      throw new UsageError("build context must be a directory, a URL or an async iterable of a tar archive's bytes (e.g. a Readable)");
    }
    context = "-";
    holdsDockerfile = true;
    upload = { id: newId(), source: given };
    extra["context"] = uploadUrl(upload.id);
  } else if (isRemoteContext(given)) {
    // The frontend fetches the context itself (git or an HTTP tarball).
    context = given;
    holdsDockerfile = true;
    extra["context"] = given;
  } else {
    context = resolve(given);
    if (!isDir(context)) throw new UsageError(`build context "${given}" is not a directory`);
    dirs.set("context", context);
  }
  const inputs: Record<string, Definition> = {};
  if (!contents && dockerfilePath !== undefined && isHttpUrl(dockerfilePath)) {
    // The frontend reads its inputs only when the context is not itself remote (dockerui's context detection).
    if (holdsDockerfile) {
      throw new UsageError(
        `-f ${dockerfilePath}: a Dockerfile from a URL needs a local (or empty) build context, not ${context === "-" ? "an archive on stdin" : context}`,
      );
    }
    inputs["dockerfile"] = httpSourceDefinition(dockerfilePath);
  } else if (!contents) {
    if (holdsDockerfile) {
      dockerfileName = dockerfilePath ?? "Dockerfile";
    } else {
      const shown = dockerfilePath ?? `${typeof given === "string" ? given : ""}/Dockerfile`;
      const path = lowercaseDockerfile(resolve(dockerfilePath ?? `${context}/Dockerfile`));
      // A directory, FIFO or device gets its own reason (the daemon would read it through the session).
      try {
        checkInputFile(path, { what: "Dockerfile", flag: dockerfilePath === undefined ? undefined : "-f", maxBytes: MAX_TEXT_FILE_BYTES });
      } catch (e) {
        if ((e as Error).cause && ((e as Error).cause as NodeJS.ErrnoException).code === "ENOENT") {
          throw new UsageError(`Dockerfile "${shown}" not found; pass its path with -f/--file`);
        }
        throw e;
      }
      dirs.set("dockerfile", dirname(path));
      dockerfileName = basename(path);
    }
  }
  const namedDirs = new Map<string, string>();
  const ociContexts: OciContext[] = [];
  for (const [name, value] of Object.entries(opts.buildContexts ?? {})) {
    const oci = resolveOciContext(name, value);
    if (oci) {
      ociContexts.push(oci);
      continue;
    }
    // A reference the frontend resolves (docker-image://, https://, git@host:repo, ...) goes as it is; a directory of that name wins, as buildx.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || isRemoteContext(value)) continue;
    const dir = resolve(value);
    if (!isDir(dir)) throw new UsageError(`build context "${name}=${value}" is not a directory or a known reference (docker-image://, https://, ...)`);
    const local = `named-${name.replace(/[^a-zA-Z0-9_.-]/g, "_")}`;
    dirs.set(local, dir);
    namedDirs.set(name, local);
  }
  for (const p of opts.platforms ?? []) checkPlatform(p, "platform");
  const exps = exporters(opts);
  const attrs = { ...frontendAttrs(opts, dockerfileName, namedDirs), ...extra };
  for (const oci of ociContexts) attrs[`context:${oci.name}`] = oci.attr;
  const caches = resolveCaches(opts.cacheFrom ?? [], withInlineCacheArg(opts.cacheTo ?? [], opts.buildArgs), opts.env ?? process.env);
  // A directory's key is stable, so its next build sends only changes; anything else gets a key of its own.
  const sharedKey = typeof given === "string" ? sessionSharedKey(context) : newId();
  return { context, sharedKey, dirs, attrs, exps, caches, ociContexts, upload, inputs };
}
