/** Reads images back from the test registry (plain HTTP on 127.0.0.1). */
import { request } from "node:http";
import { gunzipSync } from "node:zlib";

export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * One GET on its own connection, closed after the response. (fetch() keeps
 * idle connections open for seconds afterwards, which the leak check after
 * each test would rightly report.)
 */
export function httpGet(url: string, headers: Record<string, string> = {}, redirects = 3): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      const location = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && redirects > 0) {
        res.resume();
        httpGet(new URL(location, url).toString(), headers, redirects - 1).then(resolve, reject);
        return;
      }
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url}: no answer within 30 s`)));
    req.on("error", reject);
    req.end();
  });
}

const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export interface Manifest {
  digest: string;
  config: { digest: string };
  layers: Array<{ digest: string; mediaType: string }>;
}

/**
 * The image manifest for `ref`: an index (a multi-platform image, or one
 * with attestations, as buildx's default provenance makes) is followed to
 * its first image manifest, as a pull on one platform would.
 */
export async function getManifest(registry: string, repo: string, ref: string): Promise<Manifest> {
  const doc = await getDocument(registry, repo, ref);
  if (doc.manifests) {
    const image = doc.manifests.find((d) => d.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest");
    if (!image) throw new Error(`${repo}:${ref} is an index without an image manifest`);
    return getManifest(registry, repo, image.digest);
  }
  return doc as unknown as Manifest;
}

/** An OCI descriptor as an index or manifest lists it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

/** An index or a manifest as the registry serves it, with its digest and media type. */
export interface ImageDocument {
  digest: string;
  mediaType: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
  annotations?: Record<string, string>;
}

export async function getDocument(registry: string, repo: string, ref: string): Promise<ImageDocument> {
  const res = await httpGet(`http://${registry}/v2/${repo}/manifests/${ref}`, { Accept: ACCEPT });
  if (!res.ok) throw new Error(`GET manifest ${repo}:${ref}: ${res.status}`);
  const body = JSON.parse(res.body.toString("utf8")) as Omit<ImageDocument, "digest">;
  return { ...body, mediaType: body.mediaType ?? String(res.headers["content-type"]), digest: String(res.headers["docker-content-digest"] ?? "") };
}

export async function getBlob(registry: string, repo: string, digest: string): Promise<Buffer> {
  const res = await httpGet(`http://${registry}/v2/${repo}/blobs/${digest}`);
  if (!res.ok) throw new Error(`GET blob ${digest}: ${res.status}`);
  return res.body;
}

/** Every byte an image carries: its index and every manifest in it (attestations too), configs, and each layer uncompressed. */
export async function imageBytes(registry: string, repo: string, ref: string): Promise<Buffer[]> {
  const doc = await getDocument(registry, repo, ref);
  const out: Buffer[] = [Buffer.from(JSON.stringify(doc))];
  if (doc.manifests) {
    for (const d of doc.manifests) out.push(...(await imageBytes(registry, repo, d.digest)));
    return out;
  }
  if (doc.config) out.push(await getBlob(registry, repo, doc.config.digest));
  for (const l of doc.layers ?? []) {
    const blob = await getBlob(registry, repo, l.digest);
    out.push(blob, l.mediaType.includes("gzip") ? gunzipSync(blob) : blob);
  }
  return out;
}
