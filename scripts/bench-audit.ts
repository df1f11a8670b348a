/**
 * npm run bench:audit: the leak audit's throughput over a ~500 MB image.
 *
 * Writes, in a temp dir (removed at the end): one layer tarball of about
 * 500 MB of files (many small ones and some large; half text-like, half
 * random bytes), its gzip'd form, and an OCI image tarball around each, as
 * the oci exporter streams them. Then feeds each image to a SecretAuditor in
 * 1 MiB chunks, as a file read or a FileSend stream would, and reports MB/s
 * of uncompressed bytes scanned. The goal (issue: ≥ 200 MB/s on 2 cores) is
 * information: the script reports and exits 0.
 *
 * BK_AUDIT_BENCH_MB sets the layer size (default 500).
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pack } from "tar-stream";
import { SecretAuditor, formatAuditSummary, type AuditSecret } from "../src/audit/index.js";

const targetMB = Number(process.env["BK_AUDIT_BENCH_MB"] ?? 500);
const dir = mkdtempSync(join(tmpdir(), "bk-audit-bench-"));

/** Text-like content: compresses about 3:1 with gzip, like source trees and lockfiles. */
function textLike(n: number): Buffer {
  const words = ["const", "return", "function", "import", "export", "node_modules", "version", "dependencies", "0.1.2", "sha512-"];
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const w = Math.random() < 0.1 ? randomBytes(8).toString("hex") : words[Math.floor(Math.random() * words.length)]!;
    parts.push(w);
    len += w.length + 1;
  }
  return Buffer.from(parts.join(" ")).subarray(0, n);
}

async function writeLayer(path: string): Promise<number> {
  const p = pack();
  const out = pipeline(p, createWriteStream(path));
  let total = 0;
  let i = 0;
  const entry = (name: string, data: Buffer): Promise<void> =>
    new Promise((resolve, reject) => p.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? reject(e) : resolve())));
  while (total < targetMB * 1e6) {
    // 99 small files (1..32 KiB) for every large one (4 MiB): about 30% of
    // the bytes in small files. Every other file of each size is text-like.
    const large = i % 100 === 99;
    const size = large ? 4 * 1024 * 1024 : 1024 + Math.floor(Math.random() * 31 * 1024);
    const data = (large ? Math.floor(i / 100) : i) % 2 === 0 ? textLike(size) : randomBytes(size);
    await entry(`usr/lib/pkg${Math.floor(i / 100)}/file${i}${large ? ".so" : ".js"}`, data);
    total += size;
    i++;
  }
  p.finalize();
  await out;
  return i;
}

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/** An OCI image tarball around one layer file, entries sorted by name as containerd writes them. */
async function writeImage(path: string, layerPath: string, mediaType: string): Promise<void> {
  const layerDigest = await sha256(layerPath);
  const layerSize = statSync(layerPath).size;
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", config: { Env: ["PATH=/usr/bin"] }, rootfs: { type: "layers", diff_ids: [] } }),
  );
  const digest = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digest(config), size: config.length },
      layers: [{ mediaType, digest: layerDigest, size: layerSize }],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digest(manifest), size: manifest.length }],
    }),
  );
  const blobs: Array<[string, Buffer | string]> = [
    [digest(config), config],
    [digest(manifest), manifest],
    [layerDigest, layerPath],
  ];
  blobs.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const p = pack();
  const out = pipeline(p, createWriteStream(path));
  const put = (name: string, data: Buffer): Promise<void> =>
    new Promise((resolve, reject) => p.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? reject(e) : resolve())));
  for (const [d, data] of blobs) {
    const name = `blobs/sha256/${d.slice(7)}`;
    if (typeof data !== "string") await put(name, data);
    else await pipeline(createReadStream(data), p.entry({ name, size: layerSize, mode: 0o644, mtime: new Date(0) }));
  }
  await put("index.json", index);
  await put("oci-layout", Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  p.finalize();
  await out;
}

/** Runs a case 3 times (the first also warms the page cache and the JIT) and reports the median. */
async function run(label: string, path: string, kind: "tar" | "oci", secrets: AuditSecret[]): Promise<void> {
  const runs: Array<{ s: number; report: string; mbs: number }> = [];
  for (let i = 0; i < 3; i++) runs.push(await once(label, path, kind, secrets));
  runs.sort((a, b) => a.s - b.s);
  const m = runs[1]!;
  console.log(`${label}\t${m.mbs.toFixed(0)} MB/s\t${m.s.toFixed(2)} s (${runs.map((r) => r.s.toFixed(2)).join(", ")})\t${m.report}`);
}

async function once(label: string, path: string, kind: "tar" | "oci", secrets: AuditSecret[]): Promise<{ s: number; report: string; mbs: number }> {
  const auditor = new SecretAuditor(secrets);
  const sink = auditor.tarSink(kind);
  const t = process.hrtime.bigint();
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) await sink.write(c as Buffer);
  await sink.end();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  const r = auditor.report();
  if (r.findings.length > 0) throw new Error(`${label}: unexpected findings`);
  return { s, report: formatAuditSummary(r), mbs: r.bytes / 1e6 / s };
}

try {
  const key = (await import("node:crypto")).generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const typical: AuditSecret[] = [
    { id: "npm", value: Buffer.from(`npm_${randomBytes(18).toString("base64url")}`), kind: "secret" },
    { id: "gh", value: Buffer.from(`ghp_${randomBytes(18).toString("base64url")}`), kind: "secret" },
    { id: "aws", value: randomBytes(30), kind: "secret" },
    { id: "default", value: Buffer.from(key), kind: "ssh-key" },
  ];
  const worst: AuditSecret[] = [...typical, { id: "pin8", value: Buffer.from("12345678"), kind: "secret" }];

  const layer = join(dir, "layer.tar");
  const t0 = Date.now();
  const files = await writeLayer(layer);
  await pipeline(createReadStream(layer), createGzip({ level: 1 }), createWriteStream(`${layer}.gz`));
  await writeImage(join(dir, "oci-plain.tar"), layer, "application/vnd.oci.image.layer.v1.tar");
  await writeImage(join(dir, "oci-gzip.tar"), `${layer}.gz`, "application/vnd.oci.image.layer.v1.tar+gzip");
  const mb = (p: string): string => (statSync(p).size / 1e6).toFixed(0);
  console.log(`generated ${files} files: layer ${mb(layer)} MB, gzip'd ${mb(`${layer}.gz`)} MB (level 1), in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(`secrets: ${typical.length} (3 tokens of 22..30 bytes, one ed25519 key); "+8-byte" adds an 8-byte secret (shortest pattern, densest sampling)`);
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  console.log(["case", "throughput (uncompressed, median of 3)", "time (all 3)", "report"].join("\t"));
  await run("tar export, plain", layer, "tar", typical);
  await run("oci image, uncompressed layer", join(dir, "oci-plain.tar"), "oci", typical);
  await run("oci image, gzip layer", join(dir, "oci-gzip.tar"), "oci", typical);
  await run("oci image, uncompressed layer, +8-byte", join(dir, "oci-plain.tar"), "oci", worst);
  await run("oci image, gzip layer, +8-byte", join(dir, "oci-gzip.tar"), "oci", worst);
  clearInterval(sampler);
  console.log(`RSS while auditing: at most ${(peakRss / 1e6).toFixed(0)} MB (sampled every 20 ms; ${(startRss / 1e6).toFixed(0)} MB before the first case)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
