/**
 * Reading tarballs in tests (a small ustar/pax reader; the archives are
 * small) and checking an OCI image layout inside one: index.json → manifest
 * → config and layers, every blob present with the digest it is named by.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
  data: Buffer;
}

function str(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul >= 0 ? s.subarray(0, nul) : s).toString("utf8");
}
function num(b: Buffer, off: number, len: number): number {
  const s = str(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

export function readTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let pos = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((x) => x === 0)) break;
    const size = num(h, 124, 12);
    const type = String.fromCharCode(h[156] || 0x30);
    const data = buf.subarray(pos + 512, pos + 512 + size);
    pos += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      let i = 0;
      const text = data.toString("utf8");
      while (i < text.length) {
        const sp = text.indexOf(" ", i);
        const len = Number(text.slice(i, sp));
        const rec = text.slice(sp + 1, i + len - 1);
        const eq = rec.indexOf("=");
        pax[rec.slice(0, eq)] = rec.slice(eq + 1);
        i += len;
      }
      continue;
    }
    if (type === "L") {
      longName = str(data, 0, data.length);
      continue;
    }
    const prefix = str(h, 345, 155);
    let name = longName ?? pax["path"] ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
    if (name.startsWith("./")) name = name.slice(2);
    out.push({
      name,
      type,
      mode: num(h, 100, 8),
      uid: num(h, 108, 8),
      gid: num(h, 116, 8),
      mtime: num(h, 136, 12),
      linkname: pax["linkpath"] ?? str(h, 157, 100),
      data: Buffer.from(data),
    });
    pax = {};
    longName = undefined;
  }
  return out;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface LayoutCheck {
  manifestDigest: string;
  configDigest: string;
  layers: string[];
  /** docker save's manifest.json, when there is one. */
  dockerManifest?: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> | undefined;
  index: { manifests: Descriptor[] };
}

/** Checks an OCI layout given as tar entries (or a map of files); returns the image's digests. */
export function checkOciLayoutTar(entries: TarEntry[]): LayoutCheck {
  const files = new Map(entries.filter((e) => e.type === "0").map((e) => [e.name, e.data]));
  const blob = (d: Descriptor): Buffer => {
    const [alg, hex] = d.digest.split(":");
    const data = files.get(`blobs/${alg}/${hex}`);
    assert.ok(data, `blob ${d.digest} is missing`);
    assert.equal(data.length, d.size, `blob ${d.digest} size`);
    assert.equal(`sha256:${createHash("sha256").update(data).digest("hex")}`, d.digest, `blob ${d.digest} content`);
    return data;
  };
  assert.deepEqual(JSON.parse(files.get("oci-layout")?.toString() ?? "null"), { imageLayoutVersion: "1.0.0" });
  const index = JSON.parse(files.get("index.json")!.toString()) as { manifests: Descriptor[] };
  assert.ok(index.manifests.length >= 1, "index.json lists no manifest");
  let top = index.manifests[0]!;
  let manifest = JSON.parse(blob(top).toString()) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  const manifestDigest = top.digest;
  if (manifest.manifests) {
    // An index: follow its first image manifest.
    for (const m of manifest.manifests) blob(m);
    top = manifest.manifests[0]!;
    manifest = JSON.parse(blob(top).toString()) as typeof manifest;
  }
  assert.ok(manifest.config && manifest.layers, "not an image manifest");
  blob(manifest.config);
  for (const l of manifest.layers) blob(l);
  const out: LayoutCheck = { manifestDigest, configDigest: manifest.config.digest, layers: manifest.layers.map((l) => l.digest), index };
  const dm = files.get("manifest.json");
  if (dm) out.dockerManifest = JSON.parse(dm.toString()) as LayoutCheck["dockerManifest"];
  return out;
}
