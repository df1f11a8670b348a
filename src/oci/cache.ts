/**
 * The client's own duties around the session content store, as buildkit's
 * Go client does them (client/solve.go): before a build, a local cache
 * import's tag is resolved to a digest from index.json; after it, the
 * daemon's descriptor goes into index.json of a local cache export or of an
 * oci/docker export to a directory (the daemon only writes blobs).
 */
import { BuildKitError, UsageError } from "../errors.js";
import {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  OciLayout,
  parseDescriptor,
  putDescriptor,
  resolveTag,
  type OciDescriptor,
  type OciIndex,
} from "./layout.js";

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Fills in attr `digest` of a `type=local` cache import from
 * `<src>/index.json` (buildkit v0.24's rules): a given digest is kept as it
 * is; otherwise the manifest tagged `tag` (default "latest", an empty tag
 * attr counts as given) is looked up, first by io.containerd.image.name,
 * then by org.opencontainers.image.ref.name. A store whose index cannot be
 * read gives a warning and the import is to be dropped; a tag that is not
 * there is the caller's mistake (UsageError).
 */
export async function resolveLocalCacheImport(src: string, attrs: Record<string, string>): Promise<{ attrs: Record<string, string> } | { warning: string }> {
  if (attrs["digest"]) return { attrs: { ...attrs } };
  const tag = Object.hasOwn(attrs, "tag") ? attrs["tag"]! : "latest";
  let index: OciIndex | undefined;
  try {
    index = await (await OciLayout.open(src, { create: false })).readIndex();
  } catch (e) {
    return { warning: `local cache import from "${src}" skipped: ${reasonOf(e)}` };
  }
  if (!index) return { warning: `local cache import from "${src}" skipped: it has no index.json (export a cache there first)` };
  const desc = resolveTag(index, tag);
  if (!desc) {
    const tags = [...new Set(index.manifests.flatMap((m) => Object.values(pick(m.annotations))))];
    throw new UsageError(
      `local cache import from "${src}" needs a digest or a tag in its index.json: none is tagged "${tag}"` +
        (tags.length ? ` (it has ${tags.map((t) => JSON.stringify(t)).join(", ")})` : " (it has no tagged manifest)") +
        "; pass tag=<one of those> or digest=sha256:<hex>",
    );
  }
  return { attrs: { ...attrs, digest: desc.digest } };
}

/** The name annotations of a manifest (what a tag can match). */
function pick(annotations: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME]) {
    const v = annotations?.[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function descriptorFrom(json: string, what: string, dest: string): OciDescriptor {
  try {
    return parseDescriptor(JSON.parse(json), what);
  } catch (e) {
    throw new BuildKitError(
      `cannot update index.json of "${dest}": the daemon's ${what} is not an OCI descriptor (${reasonOf(e)}); is the daemon a BuildKit?`,
      {
        cause: e,
      },
    );
  }
}

/**
 * After a build with a `type=local` cache export to `dest`: puts the
 * daemon's `cache.manifest` (a JSON descriptor) into `<dest>/index.json`
 * with ref.name `tag` (undefined: "latest"), replacing the entry that had
 * that tag; writes oci-layout and creates index.json if missing.
 */
export async function finishLocalCacheExport(dest: string, tag: string | undefined, cacheManifestJson: string): Promise<void> {
  const desc = descriptorFrom(cacheManifestJson, "cache.manifest", dest);
  const layout = await OciLayout.open(dest, { create: true });
  await layout.updateIndex((index) => putDescriptor(index, desc, { tag: tag ?? "latest" }));
}

/**
 * Text the daemon sent in Go's base64.StdEncoding (padded; line breaks
 * skipped, as Go's decoder skips them), e.g. `containerimage.descriptor`;
 * undefined when it is not that encoding.
 */
export function decodeGoBase64(text: string): string | undefined {
  const b64 = text.replace(/[\r\n]/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  return Buffer.from(b64, "base64").toString("utf8");
}

/**
 * After a build with an oci/docker export to a directory (tar=false): puts
 * the daemon's `containerimage.descriptor` (base64 of a JSON descriptor)
 * into `<dest>/index.json` once per name of `image.name` (a comma list, as
 * the daemon sends it), or tagged "latest" when the daemon sent no names.
 */
export async function finishOciDirectoryExport(dest: string, descriptorBase64: string, imageNames?: string): Promise<void> {
  const json = decodeGoBase64(descriptorBase64);
  if (json === undefined) {
    throw new BuildKitError(`cannot update index.json of "${dest}": the daemon's containerimage.descriptor is not base64; is the daemon a BuildKit?`);
  }
  const desc = descriptorFrom(json, "containerimage.descriptor", dest);
  const layout = await OciLayout.open(dest, { create: true });
  await layout.updateIndex((index) => putDescriptor(index, desc, imageNames === undefined ? { tag: "latest" } : { names: imageNames.split(",") }));
}
