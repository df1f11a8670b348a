/**
 * The index a builder pool puts under its tags: what each node pushed by
 * digest for its platform, merged into one, as buildx's imagetools do for a
 * multi-node build (Resolver.combine in util/imagetools/create.go, called
 * from build/build.go once every node has pushed):
 *
 * - an image manifest becomes one descriptor, with the platform the part
 *   was built for (buildx reads it from the config blob; the pool knows it);
 * - an index (an image manifest and its attestation manifests, annotated
 *   `vnd.docker.reference.type: attestation-manifest`) gives its
 *   descriptors as they are: platform, annotations, urls, data, artifactType;
 * - parts in the order given, descriptors in their order within each part;
 *   a digest seen again stays where it was first, takes the later one's
 *   platform when that has one, and gains its annotations (buildx's addDesc);
 * - the result is an OCI image index, except when every descriptor is a
 *   Docker type (application/vnd.docker.*): then buildx makes a Docker
 *   manifest list, and so do we;
 * - one part that is already an index, with no annotations to add, is
 *   returned as it is (its bytes, so its digest, unchanged), as buildx;
 * - the bytes are Go's json.MarshalIndent of ocispecs.Index with two
 *   spaces, as buildx writes them, so that the same parts give the digest
 *   buildx would (fields Go's structs do not know are dropped, as there).
 */
import { createHash } from "node:crypto";
import { BuildKitError, UsageError } from "../errors.js";
import type { AnnotationSpec } from "../solve/attest.js";
import { checkPlatform, normalizePlatform } from "../solve/platform.js";
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1, OCI_INDEX, isIndexType, isManifestType } from "./media-types.js";

/** What one node pushed: the manifest or index it pushed by digest, as the registry serves it (RegistryClient.getManifest), and the platform it built. */
export interface IndexPart {
  /** OS/ARCH[/VARIANT]: the descriptor's platform when the part is a single image manifest. */
  platform: string;
  /** The part's media type; "" to read it from the bytes (as buildx's detectMediaType). */
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** The merged index (or Docker manifest list): put these bytes, with this media type, under each tag. */
export interface MergedIndex {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** ocispecs.Platform. */
interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
}

/** ocispecs.Descriptor. */
interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

const sha256 = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/**
 * Merges the parts into one index. `annotations` are the build's: those of
 * type `index` go on the index and those of type `manifest-descriptor` on
 * its descriptors (only the platform's when one is given), as buildx's
 * extractIndexAnnotations picks them; the other types are the nodes'
 * exporters' to write. Buildx allows annotations on OCI indexes only: on a
 * Docker manifest list they are left out, as there.
 */
export function mergeIndex(parts: readonly IndexPart[], annotations: readonly AnnotationSpec[] = []): MergedIndex {
  if (parts.length === 0) throw new UsageError("nothing to merge: an index needs at least one part");
  const read = parts.map((p, i) => readPart(p, i));
  const extra = annotations.filter((a) => a.type === "index" || a.type === "manifest-descriptor");
  const only = read[0]!;
  if (parts.length === 1 && extra.length === 0 && isIndexType(only.mediaType)) {
    const p = parts[0]!;
    return { mediaType: only.mediaType, digest: p.digest, size: p.bytes.length, bytes: p.bytes };
  }

  const descs: Descriptor[] = [];
  const at = new Map<string, number>();
  for (const part of read) {
    for (const d of part.descriptors) {
      const i = at.get(d.digest);
      if (i === undefined) {
        at.set(d.digest, descs.length);
        descs.push({ ...d, ...(d.annotations ? { annotations: { ...d.annotations } } : {}) });
        continue;
      }
      const old = descs[i]!;
      if (!old.mediaType) old.mediaType = d.mediaType;
      if (d.platform) old.platform = d.platform;
      old.annotations = { ...old.annotations, ...d.annotations };
    }
  }

  const docker = descs.every((d) => d.mediaType.startsWith("application/vnd.docker."));
  const mediaType = docker ? DOCKER_MANIFEST_LIST : OCI_INDEX;
  const indexAnnotations: Record<string, string> = {};
  if (!docker) {
    for (const a of extra) {
      if (a.type === "index") {
        indexAnnotations[a.key] = a.value;
        continue;
      }
      const want = a.platform === undefined ? undefined : normalizePlatform(a.platform);
      for (const d of descs) {
        if (want === undefined || (d.platform && formatPlatform(d.platform) === want)) d.annotations = { ...d.annotations, [a.key]: a.value };
      }
    }
  }
  const bytes = Buffer.from(indexJson(mediaType, descs, indexAnnotations));
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

/** A part's media type and the descriptors it adds, its bytes checked against its digest and size. */
function readPart(p: IndexPart, i: number): { mediaType: string; descriptors: Descriptor[] } {
  const what = `part ${i + 1} of the index (${p.platform || "no platform"})`;
  const actual = sha256(p.bytes);
  if (actual !== p.digest) throw new BuildKitError(`${what}: its bytes have the digest ${actual}, not ${p.digest}`, { code: "DATA_LOSS" });
  if (p.size !== p.bytes.length) throw new BuildKitError(`${what}: it has ${p.bytes.length} bytes, not ${p.size}`, { code: "DATA_LOSS" });
  let doc: Record<string, unknown>;
  try {
    const j: unknown = JSON.parse(p.bytes.toString("utf8"));
    if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error("not an object");
    doc = j as Record<string, unknown>;
  } catch {
    throw new BuildKitError(`${what}: ${p.digest} is not a JSON manifest or index`, { code: "INVALID_ARGUMENT" });
  }
  const own = typeof doc["mediaType"] === "string" ? doc["mediaType"] : "";
  const mediaType = p.mediaType || detectMediaType(doc);
  if (own && own !== mediaType) throw new BuildKitError(`${what}: ${p.digest} says it is ${own}, not ${mediaType}`, { code: "INVALID_ARGUMENT" });
  if (isIndexType(mediaType)) {
    const list = doc["manifests"];
    if (!Array.isArray(list)) throw new BuildKitError(`${what}: the index ${p.digest} has no "manifests" list`, { code: "INVALID_ARGUMENT" });
    return { mediaType, descriptors: list.map((d, j) => readDescriptor(d, `${what}: descriptor ${j + 1} of ${p.digest}`)) };
  }
  if (isManifestType(mediaType)) {
    return { mediaType, descriptors: [{ mediaType, digest: p.digest, size: p.size, platform: parsePlatform(p.platform, what) }] };
  }
  if (DOCKER_SCHEMA1.includes(mediaType)) throw new UsageError(`${what}: schema1 manifests are not allowed in manifest lists`);
  throw new UsageError(`${what}: ${p.digest} is ${JSON.stringify(mediaType)}, neither an image manifest nor an index`);
}

/** buildx's detectMediaType: a document without a mediaType is a Docker manifest when it has a config, else a Docker manifest list (or schema1). */
function detectMediaType(doc: Record<string, unknown>): string {
  if (doc["config"] !== undefined) return DOCKER_MANIFEST;
  if (Array.isArray(doc["fsLayers"]) && doc["fsLayers"].length > 0) return DOCKER_SCHEMA1[0]!;
  return DOCKER_MANIFEST_LIST;
}

/** OS[(VERSION)]/ARCH[/VARIANT] as containerd's platforms.Parse and Normalize give it. */
function parsePlatform(s: string, what: string): Platform {
  if (s === "local") throw new UsageError(`${what}: give the platform it was built for (OS/ARCH[/VARIANT]), not "local"`);
  checkPlatform(s, `platform of ${what}`);
  const [osPart, architecture, variant] = normalizePlatform(s).split("/") as [string, string, string | undefined];
  const m = /^([^(]*)(?:\((.*)\))?$/.exec(osPart)!;
  const p: Platform = { architecture, os: m[1]! };
  if (m[2]) p["os.version"] = m[2];
  if (variant) p.variant = variant;
  return p;
}

/** containerd's platforms.Format: os/arch[/variant]. */
function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function readDescriptor(v: unknown, where: string): Descriptor {
  const bad = (field: string): never => {
    throw new BuildKitError(`${where}: ${field} is missing or not of its type`, { code: "INVALID_ARGUMENT" });
  };
  if (typeof v !== "object" || v === null || Array.isArray(v)) return bad("the descriptor");
  const o = v as Record<string, unknown>;
  const str = (k: string): string | undefined => {
    const x = o[k];
    if (x === undefined || x === null) return undefined;
    return typeof x === "string" ? x : bad(k);
  };
  const strings = (x: unknown, k: string): string[] | undefined => {
    if (x === undefined || x === null) return undefined;
    return Array.isArray(x) && x.every((s) => typeof s === "string") ? x : bad(k);
  };
  const digest = str("digest") ?? bad("digest");
  const size = o["size"];
  if (typeof size !== "number" || !Number.isSafeInteger(size)) return bad("size");
  const d: Descriptor = { mediaType: str("mediaType") ?? "", digest, size };
  const urls = strings(o["urls"], "urls");
  if (urls?.length) d.urls = urls;
  const ann = o["annotations"];
  if (ann !== undefined && ann !== null) {
    if (typeof ann !== "object" || Array.isArray(ann) || !Object.values(ann).every((s) => typeof s === "string")) return bad("annotations");
    if (Object.keys(ann).length) d.annotations = { ...(ann as Record<string, string>) };
  }
  const data = str("data");
  if (data) d.data = data;
  const plat = o["platform"];
  if (plat !== undefined && plat !== null) {
    if (typeof plat !== "object" || Array.isArray(plat)) return bad("platform");
    const q = plat as Record<string, unknown>;
    const field = (k: string): string => {
      const x = q[k];
      if (x === undefined || x === null) return "";
      return typeof x === "string" ? x : bad(`platform.${k}`);
    };
    const p: Platform = { architecture: field("architecture"), os: field("os") };
    if (field("os.version")) p["os.version"] = field("os.version");
    const features = strings(q["os.features"], "platform.os.features");
    if (features?.length) p["os.features"] = features;
    if (field("variant")) p.variant = field("variant");
    d.platform = p;
  }
  const artifactType = str("artifactType");
  if (artifactType) d.artifactType = artifactType;
  return d;
}

// Go's encoding/json, as json.MarshalIndent(v, "", "  ") writes ocispecs.Index.

/** A JSON string as Go writes it: JSON.stringify's, with <, >, & and U+2028/U+2029 escaped (Go's HTML-safe default). */
function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** An object from its fields (already written), in order, at depth `depth`. */
function goObject(fields: Array<[string, string]>, depth: number): string {
  if (fields.length === 0) return "{}";
  const pad = "  ".repeat(depth + 1);
  return `{\n${fields.map(([k, v]) => `${pad}${goString(k)}: ${v}`).join(",\n")}\n${"  ".repeat(depth)}}`;
}

function goArray(items: string[], depth: number): string {
  if (items.length === 0) return "[]";
  const pad = "  ".repeat(depth + 1);
  return `[\n${items.map((v) => pad + v).join(",\n")}\n${"  ".repeat(depth)}]`;
}

/** A Go map[string]string: keys sorted byte-wise (UTF-8), as Go does. */
function goMap(m: Record<string, string>, depth: number): string {
  const keys = Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return goObject(
    keys.map((k) => [k, goString(m[k]!)]),
    depth,
  );
}

function descriptorJson(d: Descriptor, depth: number): string {
  const f: Array<[string, string]> = [
    ["mediaType", goString(d.mediaType)],
    ["digest", goString(d.digest)],
    ["size", String(d.size)],
  ];
  if (d.urls?.length) f.push(["urls", goArray(d.urls.map(goString), depth + 1)]);
  if (d.annotations && Object.keys(d.annotations).length) f.push(["annotations", goMap(d.annotations, depth + 1)]);
  if (d.data) f.push(["data", goString(d.data)]);
  if (d.platform) {
    const p = d.platform;
    const pf: Array<[string, string]> = [
      ["architecture", goString(p.architecture)],
      ["os", goString(p.os)],
    ];
    if (p["os.version"]) pf.push(["os.version", goString(p["os.version"])]);
    if (p["os.features"]?.length) pf.push(["os.features", goArray(p["os.features"].map(goString), depth + 2)]);
    if (p.variant) pf.push(["variant", goString(p.variant)]);
    f.push(["platform", goObject(pf, depth + 1)]);
  }
  if (d.artifactType) f.push(["artifactType", goString(d.artifactType)]);
  return goObject(f, depth);
}

function indexJson(mediaType: string, descs: Descriptor[], annotations: Record<string, string>): string {
  const f: Array<[string, string]> = [
    ["schemaVersion", "2"],
    ["mediaType", goString(mediaType)],
    [
      "manifests",
      goArray(
        descs.map((d) => descriptorJson(d, 2)),
        1,
      ),
    ],
  ];
  if (Object.keys(annotations).length) f.push(["annotations", goMap(annotations, 1)]);
  return goObject(f, 0);
}
