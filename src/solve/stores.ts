/**
 * The content stores a build's session serves (containerd's Content API):
 * local cache directories (`local:<dir>`), OCI-layout build contexts
 * (`oci:<name>`), and the `oci`/`docker` directory export (`export`). Each
 * is an OCI image layout on disk. The daemon reads and writes blobs; the
 * client resolves tags before the build and writes index.json after it, as
 * buildkit's Go client does.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { OciLayout } from "../oci/layout.js";
import { finishLocalCacheExport, finishOciDirectoryExport, resolveLocalCacheImport } from "../oci/cache.js";
import type { CacheEntry, ResolvedCaches } from "./cache.js";
import type { ResolvedExport } from "./options.js";

/** An `oci-layout://` build context, resolved to a digest before the build. */
export interface OciContext {
  /** The context's name (`--build-context NAME=...`). */
  name: string;
  /** The store name the frontend attribute uses (`oci:<name>` on the session). */
  store: string;
  dir: string;
  /** The frontend attribute value, `oci-layout://<store>[:tag]@<digest>`. */
  attr: string;
}

const OCI_PREFIX = "oci-layout://";
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Parses `oci-layout://DIR[:TAG][@DIGEST]` as buildx does (no tag and no
 * digest means tag latest), reads DIR/index.json when there is no digest
 * (the tag's manifest, else the only one), and names the store by the
 * directory, so the same layout gives the same attribute from build to
 * build. Throws UsageError naming the context.
 */
export function resolveOciContext(name: string, value: string): OciContext | undefined {
  if (!value.startsWith(OCI_PREFIX)) return undefined;
  let path = value.slice(OCI_PREFIX.length);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = path.lastIndexOf("@");
  if (at >= 0 && DIGEST.test(path.slice(at + 1))) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
  }
  const colon = path.lastIndexOf(":");
  if (colon >= 0 && TAG.test(path.slice(colon + 1))) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (!tag && !digest) tag = "latest";
  const what = `build context "${name}=${value}"`;
  if (!path) throw new UsageError(`${what} names no directory: use oci-layout://DIR[:TAG|@DIGEST]`);
  const dir = resolve(path);
  if (!digest) {
    let index: { manifests?: Array<{ digest?: string; annotations?: Record<string, string> }> };
    try {
      index = JSON.parse(readFileSync(`${dir}/index.json`, "utf8")) as typeof index;
    } catch (e) {
      throw new UsageError(`${what}: cannot read ${dir}/index.json (${(e as Error).message.replace(/^.*?: /, "")}); is it an OCI image layout?`, { cause: e });
    }
    const manifests = index.manifests ?? [];
    const found =
      manifests.find((m) => m.annotations?.["io.containerd.image.name"] === tag) ??
      manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag) ??
      (manifests.length === 1 ? manifests[0] : undefined);
    if (!found?.digest || !DIGEST.test(found.digest)) {
      throw new UsageError(`${what} could not be resolved: no manifest tagged "${tag}" in ${dir}/index.json; give :TAG or @sha256:DIGEST`);
    }
    digest = found.digest;
  }
  const store = `bk-${createHash("sha256").update(dir).digest("hex").slice(0, 20)}`;
  return { name, store, dir, attr: `${OCI_PREFIX}${store}${tag ? `:${tag}` : ""}@${digest}` };
}

export interface PreparedStores {
  /** Store openers by the id the daemon sends. */
  stores: Map<string, () => Promise<OciLayout>>;
  /** Cache imports as sent: local ones with their digest resolved, unreadable ones dropped. */
  imports: CacheEntry[];
  /** After a successful Solve: index.json written for the local cache and the directory export. */
  finish(response: Readonly<Record<string, string>>): Promise<void>;
}

/** Registers every store the build needs; warnings for local caches that cannot be read (dropped, as buildctl). */
export async function prepareStores(
  caches: ResolvedCaches,
  exps: readonly ResolvedExport[],
  contexts: readonly OciContext[],
  warn: (message: string) => void,
): Promise<PreparedStores> {
  const stores = new Map<string, () => Promise<OciLayout>>();
  const opener = (dir: string, create: boolean): (() => Promise<OciLayout>) => {
    let open: Promise<OciLayout> | undefined;
    return () => (open ??= OciLayout.open(dir, { create }));
  };
  const imports: CacheEntry[] = [];
  for (const c of caches.imports) {
    if (c.type !== "local") {
      imports.push(c);
      continue;
    }
    const src = c.attrs["src"]!;
    const r = await resolveLocalCacheImport(src, c.attrs);
    if ("warning" in r) {
      warn(r.warning);
      continue;
    }
    imports.push({ type: c.type, attrs: r.attrs });
    stores.set(`local:${src}`, opener(src, false));
  }
  const localExports = caches.exports.filter((c) => c.type === "local");
  if (localExports.length > 1) {
    throw new UsageError("only one --cache-to type=local per build (buildkitd reports one cache manifest for the build); export the others in another build");
  }
  for (const c of localExports) stores.set(`local:${c.attrs["dest"]!}`, opener(c.attrs["dest"]!, true));
  for (const ctx of contexts) stores.set(`oci:${ctx.store}`, opener(ctx.dir, false));
  const layout = exps.find((e) => e.target === "layout");
  if (layout) stores.set("export", opener(layout.dest!, true));
  return {
    stores,
    imports,
    async finish(response) {
      for (const c of localExports) {
        const manifest = response["cache.manifest"];
        if (manifest === undefined) {
          warn(`--cache-to type=local,dest=${c.attrs["dest"]!}: buildkitd exported no cache manifest; the cache index was not updated`);
          continue;
        }
        await finishLocalCacheExport(c.attrs["dest"]!, c.attrs["tag"] ?? "latest", manifest);
      }
      if (layout) {
        const descriptor = response["containerimage.descriptor"];
        if (descriptor === undefined)
          throw new UsageError(`output type=${layout.type},tar=false: buildkitd reported no image descriptor to index in ${layout.dest!}`);
        await finishOciDirectoryExport(layout.dest!, descriptor, response["image.name"]);
      }
    },
  };
}
