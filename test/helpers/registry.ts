/** Reads images back from the test registry (plain HTTP on 127.0.0.1). */
import { gunzipSync } from "node:zlib";

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

export async function getManifest(registry: string, repo: string, ref: string): Promise<Manifest> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT } });
  if (!res.ok) throw new Error(`GET manifest ${repo}:${ref}: ${res.status}`);
  const body = (await res.json()) as Omit<Manifest, "digest">;
  return { ...body, digest: res.headers.get("docker-content-digest") ?? "" };
}

export async function getBlob(registry: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${registry}/v2/${repo}/blobs/${digest}`);
  if (!res.ok) throw new Error(`GET blob ${digest}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Every byte an image carries: manifest, config, and each layer uncompressed. */
export async function imageBytes(registry: string, repo: string, ref: string): Promise<Buffer[]> {
  const m = await getManifest(registry, repo, ref);
  const out = [Buffer.from(JSON.stringify(m)), await getBlob(registry, repo, m.config.digest)];
  for (const l of m.layers) {
    const blob = await getBlob(registry, repo, l.digest);
    out.push(blob, l.mediaType.includes("gzip") ? gunzipSync(blob) : blob);
  }
  return out;
}
