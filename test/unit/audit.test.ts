import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import * as zlib from "node:zlib";
import { pack } from "tar-stream";
import { tempDir } from "../helpers/files.js";
import {
  AuditError,
  SecretAuditor,
  SecretLeakError,
  formatAuditSummary,
  formatFinding,
  type AuditReport,
  type AuditSecret,
  type AuditSink,
} from "../../src/audit/index.js";
import { Matcher, StreamScan } from "../../src/audit/matcher.js";
import { base64Cores, compileSecrets } from "../../src/audit/patterns.js";

// --- building inputs ---------------------------------------------------------

interface Entry {
  name: string;
  data?: string | Buffer;
  type?: "file" | "directory" | "symlink" | "link";
  linkname?: string;
  pax?: Record<string, string>;
}

/** A tarball of `entries`, made with tar-stream's packer. */
async function tarball(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const out: Buffer[] = [];
  const collect = (async () => {
    for await (const c of p) out.push(c as Buffer);
  })();
  for (const e of entries) {
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const header = {
      name: e.name,
      type: e.type ?? (data === undefined ? "directory" : "file"),
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      ...(e.pax === undefined ? {} : { pax: e.pax }),
      mode: 0o644,
      mtime: new Date(0),
    } as const;
    await new Promise<void>((resolve, reject) => {
      if (data === undefined) p.entry(header, (err) => (err ? reject(err) : resolve()));
      else p.entry({ ...header, size: data.length }, data, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await collect;
  return Buffer.concat(out);
}

const digestOf = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

type Layer = { files: Entry[]; compression: "gzip" | "none" } | { raw: Buffer; mediaType: string };

/**
 * An OCI image tarball as buildkit's oci exporter writes it (containerd's
 * archive writer: entries sorted by name, so blobs come before index.json).
 */
async function ociImage(layers: Layer[], config: Record<string, unknown> = {}): Promise<{ tar: Buffer; layers: string[]; config: string; manifest: string }> {
  const blobs = new Map<string, Buffer>();
  const descs: Array<{ mediaType: string; digest: string; size: number }> = [];
  for (const l of layers) {
    let blob: Buffer;
    let mediaType: string;
    if ("raw" in l) {
      blob = l.raw;
      mediaType = l.mediaType;
    } else {
      const t = await tarball(l.files);
      blob = l.compression === "gzip" ? gzipSync(t) : t;
      mediaType = l.compression === "gzip" ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar";
    }
    blobs.set(digestOf(blob), blob);
    descs.push({ mediaType, digest: digestOf(blob), size: blob.length });
  }
  const cfg = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, ...config }));
  blobs.set(digestOf(cfg), cfg);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digestOf(cfg), size: cfg.length },
      layers: descs,
    }),
  );
  blobs.set(digestOf(manifest), manifest);
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf(manifest), size: manifest.length }],
  });
  const entries: Entry[] = [{ name: "blobs/" }, { name: "blobs/sha256/" }];
  for (const [d, b] of [...blobs].sort((a, b) => (a[0] < b[0] ? -1 : 1))) entries.push({ name: `blobs/sha256/${d.slice(7)}`, data: b });
  entries.push({ name: "index.json", data: index }, { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' });
  return { tar: await tarball(entries), layers: descs.map((d) => d.digest), config: digestOf(cfg), manifest: digestOf(manifest) };
}

/** Feeds `data` to a sink in chunks of the given sizes (cycled), awaiting each write. */
async function feed(sink: AuditSink, data: Buffer, sizes: number[] = [64 * 1024]): Promise<void> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    // A fresh copy: a sink must not rely on the caller keeping chunks intact.
    await sink.write(Buffer.from(data.subarray(at, at + n)));
    at += n;
  }
  await sink.end();
}

async function auditTar(secrets: AuditSecret[], entries: Entry[], sizes?: number[]): Promise<AuditReport> {
  const a = new SecretAuditor(secrets);
  await feed(a.tarSink("tar"), await tarball(entries), sizes);
  return a.report();
}

const secret = (id: string, value: Buffer | string): AuditSecret => ({ id, value: Buffer.from(value), kind: "secret" });
const where = (r: AuditReport): string[] =>
  r.findings.map((f) => `${f.secretId} ${f.encoding} ${f.where} ${f.layer || "-"} ${f.path}${f.endPath ? ` -> ${f.endPath}` : ""}`).sort();

/** Every form the audit looks for, and the value itself: none may appear in anything it outputs. */
function assertNoValue(secrets: AuditSecret[], ...outputs: unknown[]): void {
  const text = outputs.map((o) => (o instanceof Error ? `${o.name}: ${o.message} ${JSON.stringify(o)}` : JSON.stringify(o))).join("\n");
  for (const p of compileSecrets(secrets).patterns) {
    assert.ok(!text.includes(p.bytes.toString("latin1")), `a ${p.encoding} form of secret ${p.secret} appears in the output`);
  }
  for (const s of secrets) {
    assert.ok(!text.includes(s.value.toString("utf8")), `secret ${s.id} appears in the output`);
    assert.ok(!text.includes(s.value.toString("hex")), `secret ${s.id} appears in the output as hex`);
    assert.ok(!text.includes(s.value.toString("base64").replace(/=+$/, "")), `secret ${s.id} appears in the output as base64`);
  }
}

// --- the matcher ------------------------------------------------------------

test("the multi-pattern matcher finds exactly what indexOf finds, across every chunking", () => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  // A small alphabet makes partial matches and overlaps common.
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => 97 + rand(4)));
  for (let round = 0; round < 12; round++) {
    const patterns = Array.from({ length: 1 + rand(8) }, () => bytes(1 + rand(round % 2 ? 40 : 12)));
    const data = bytes(3000);
    for (const p of patterns) p.copy(data, rand(data.length - p.length));
    const want: string[] = [];
    patterns.forEach((p, i) => {
      for (let at = data.indexOf(p); at !== -1; at = data.indexOf(p, at + 1)) want.push(`${i}@${at}`);
    });
    want.sort();
    const m = new Matcher(patterns);
    const once: string[] = [];
    m.scan(data, (i, at) => once.push(`${i}@${at}`));
    assert.deepEqual(once.sort(), want, `round ${round}: one buffer`);
    for (const size of [1, 3, 17, 4096]) {
      // Each byte is its own "file", named by its offset: a match reports where it starts and ends.
      const got: string[] = [];
      const s = new StreamScan(
        m,
        (i, from, to) => {
          got.push(`${i}@${from}`);
          assert.equal(Number(to) - Number(from), patterns[i]!.length - 1, "end file");
        },
        size === 4096 ? 4096 : 0,
      );
      for (let at = 0; at < data.length; at += size) {
        for (let b = at; b < Math.min(at + size, data.length); b++) {
          s.file(String(b));
          s.write(data.subarray(b, b + 1));
        }
      }
      s.end();
      assert.deepEqual(got.sort(), want, `round ${round}: chunks of ${size}`);
    }
  }
});

test("base64 cores: the characters that do not depend on neighbouring bytes, for each alignment", () => {
  const v = randomBytes(20);
  const cores = base64Cores(v);
  assert.equal(cores.length, 3);
  for (let lead = 0; lead < 3; lead++) {
    for (let trail = 0; trail < 3; trail++) {
      for (let trial = 0; trial < 5; trial++) {
        const text = Buffer.concat([randomBytes(lead + 3 * trial), v, randomBytes(trail)]).toString("base64");
        assert.ok(text.includes(cores[lead]!), `lead ${lead} trail ${trail}`);
      }
    }
  }
  assert.equal(cores[0]!.length, Math.floor((8 * 20) / 6));
});

// --- filesystem tarballs ---------------------------------------------------------

test("tar: a secret is found raw, as hex (both cases) and as base64 and base64url at every alignment", async () => {
  // 0xfb 0xff … encodes with '+' and '/', so the url-safe form differs.
  const value = Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf, 0xfb, 0xef, 0xbe]), randomBytes(18)]);
  const s = secret("tok", value);
  const b64 = (lead: number): string => Buffer.concat([randomBytes(lead), value, randomBytes(2)]).toString("base64");
  const r = await auditTar(
    [s],
    [
      { name: "app/" },
      { name: "app/raw.bin", data: Buffer.concat([randomBytes(100), value, randomBytes(100)]) },
      { name: "app/lower.txt", data: `x=${value.toString("hex")}\n` },
      { name: "app/upper.txt", data: `X=${value.toString("hex").toUpperCase()}\n` },
      { name: "app/b0.txt", data: `auth: ${b64(0)}\n` },
      { name: "app/b1.txt", data: `auth: ${b64(1)}\n` },
      { name: "app/b2.txt", data: `auth: ${b64(2)}\n` },
      { name: "app/u1.txt", data: `auth: ${Buffer.concat([randomBytes(1), value]).toString("base64url")}\n` },
      { name: "app/clean.txt", data: "nothing here\n" },
    ],
  );
  assert.deepEqual(where(r), [
    "tok base64 content - app/b0.txt",
    "tok base64 content - app/b1.txt",
    "tok base64 content - app/b2.txt",
    "tok base64url content - app/u1.txt",
    "tok hex content - app/lower.txt",
    "tok hex content - app/upper.txt",
    "tok raw content - app/raw.bin",
  ]);
  assert.equal(r.layers, 1);
  assert.equal(r.files, 8);
  assertNoValue([s], r, r.findings.map(formatFinding));
});

test("tar: a secret split over two consecutive files is found, with where it starts and ends", async () => {
  const value = randomBytes(32);
  const s = secret("split", value);
  for (const head of [Buffer.from("head"), randomBytes(100_000)]) {
    const entries: Entry[] = [
      { name: "a.txt", data: Buffer.concat([head, value.subarray(0, 11)]) },
      { name: "empty", data: "" },
      { name: "d/" },
      { name: "d/b.txt", data: Buffer.concat([value.subarray(11), Buffer.from("tail")]) },
    ];
    for (const sizes of [[1], [7, 4093], [512], [1 << 20]]) {
      if (head.length > 10 && sizes[0] === 1) continue;
      const r = await auditTar([s], entries, sizes);
      assert.deepEqual(where(r), ["split raw content - a.txt -> d/b.txt"], `chunks ${sizes.join(",")}`);
    }
  }
});

test("tar: chunk boundaries anywhere (1-byte and odd-size writes) find the same, and count the same", async () => {
  // The scanner gathers small chunks into 64 KiB pieces: one secret sits
  // across each place a piece can end, for every chunking below.
  const secrets = Array.from({ length: 7 }, (_, i) => secret(`s${i}`, `ghp_${randomBytes(20).toString("hex")}`));
  const big = randomBytes(140_000);
  const at = [65_536 - 20, 69_581 - 7, 98_304 - 30, 110_000, 120_000, 131_072 - 2];
  at.forEach((p, i) => Buffer.from(secrets[i]!.value).copy(big, p));
  const b64 = Buffer.from(`pre${secrets[6]!.value.toString()}post`).toString("base64");
  const entries: Entry[] = [
    { name: "big.bin", data: big },
    { name: "b64.txt", data: b64 },
  ];
  const want = [...at.map((_, i) => `s${i} raw content - big.bin`), "s6 base64 content - b64.txt"].sort();
  for (const sizes of [[1 << 22], [1], [3, 5, 7], [4093], [65537]]) {
    const r = await auditTar(secrets, entries, sizes);
    assert.deepEqual(where(r), want, `chunks ${sizes.join(",")}`);
    assert.equal(r.bytes, big.length + b64.length);
    assert.equal(r.files, 2);
  }
});

test("tar: names, symlink and hard link targets and PAX records are scanned; a name finding stops at its path component", async () => {
  const value = `name-secret-${randomBytes(6).toString("hex")}`;
  const s = secret("n", value);
  const r = await auditTar(
    [s],
    [
      { name: `etc/${value}/` },
      { name: `etc/${value}/a`, data: "1" },
      { name: `etc/${value}/b`, data: "2" },
      { name: "link", type: "symlink", linkname: `/opt/${value}` },
      { name: "x", data: "x", pax: { "SCHILY.xattr.user.note": value } },
    ],
  );
  assert.deepEqual(where(r), ["n raw header - x", "n raw link - link", "n raw name - etc/<secret:n>"]);
  assertNoValue([s], r, r.findings.map(formatFinding));
});

test("tar: a clean tarball reports what it scanned and finds nothing", async () => {
  const r = await auditTar(
    [secret("a", randomBytes(16)), secret("b", "b".repeat(40))],
    [{ name: "d/" }, { name: "d/one", data: "hello" }, { name: "d/two", data: randomBytes(1000) }, { name: "l", type: "symlink", linkname: "d/one" }],
  );
  assert.deepEqual(r.findings, []);
  assert.equal(r.layers, 1);
  assert.equal(r.files, 2);
  assert.equal(r.bytes, 1005);
  assert.match(formatAuditSummary(r), /^secret audit: 1 layer, 2 files, 0\.0 MB scanned; no secret found$/);
});

test("short secrets are scanned raw only, with a note; empty ones not at all", async () => {
  const r = await auditTar([secret("pin", "4711"), secret("none", ""), secret("long", "x".repeat(30))], [{ name: "f", data: "code 4711 here" }]);
  assert.deepEqual(where(r), ["pin raw content - f"]);
  assert.deepEqual(r.skipped, ["secret pin is 4 bytes: base64/hex forms not scanned", "secret none is empty: not scanned"]);
});

test("a tar export that is not a tarball fails (a later write or end()), with one clear error", async () => {
  const a = new SecretAuditor([secret("s", randomBytes(16))]);
  const sink = a.tarSink("tar");
  const err = await (async () => {
    // Parsing runs behind the writes: the error surfaces on a later call.
    for (let i = 0; i < 3; i++) await sink.write(randomBytes(4096));
    await sink.end();
  })().then(
    () => assert.fail("random bytes were taken as a tarball"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AuditError);
  assert.match(err.message, /^the tar export stream cannot be read as a tarball: Invalid tar header/);
  await assert.rejects(sink.write(Buffer.from("x")), (e) => e === err);
  await assert.rejects(sink.end(), (e) => e === err);
  assert.deepEqual(a.report().errors, [err.message]);
});

test("a broken tar export is a clear error, not a pass", async () => {
  const a = new SecretAuditor([secret("s", randomBytes(16))]);
  const t = await tarball([{ name: "f", data: "x".repeat(2000) }]);
  await assert.rejects(feed(a.tarSink("tar"), t.subarray(0, 1500)), (e: unknown) => {
    assert.ok(e instanceof AuditError);
    assert.match(e.message, /^the tar export stream cannot be read as a tarball: /);
    return true;
  });
});

// --- image tarballs ----------------------------------------------------------

test("oci: every layer is walked (gzip and uncompressed); a finding names the layer's digest; the config is scanned as <config>", async () => {
  const value = `AKIA${randomBytes(16).toString("hex")}`;
  const s = secret("aws", value);
  const img = await ociImage(
    [
      { files: [{ name: "bin/" }, { name: "bin/sh", data: randomBytes(500) }], compression: "gzip" },
      { files: [{ name: "app/" }, { name: "app/clean", data: "ok" }], compression: "none" },
      { files: [{ name: "app/.env", data: `AWS_KEY=${value}\n` }], compression: "gzip" },
      { files: [{ name: "app/cfg.json", data: JSON.stringify({ k: Buffer.from(value).toString("hex") }) }], compression: "none" },
    ],
    { config: { Env: [`KEY=${value}`] } },
  );
  for (const sizes of [[64 * 1024], [1], [333, 4097]]) {
    const a = new SecretAuditor([s]);
    await feed(a.tarSink("oci"), img.tar, sizes);
    const r = a.report();
    assert.deepEqual(
      where(r),
      [`aws hex content ${img.layers[3]} app/cfg.json`, `aws raw content ${img.config} <config>`, `aws raw content ${img.layers[2]} app/.env`].sort(),
      `chunks ${sizes.join(",")}`,
    );
    assert.equal(r.layers, 4);
    // 4 layer files + config, manifest, index.json, oci-layout
    assert.equal(r.files, 8);
    assert.deepEqual(
      r.findings.map(formatFinding).sort(),
      [
        `secret "aws" (hex) in layer ${img.layers[3]}, file app/cfg.json`,
        `secret "aws" (raw) in layer ${img.config}, <config>`,
        `secret "aws" (raw) in layer ${img.layers[2]}, file app/.env`,
      ].sort(),
    );
  }
});

test("oci: a clean image reports its layers, files and bytes", async () => {
  const f1 = randomBytes(3000);
  const f2 = Buffer.from("hello world\n");
  const img = await ociImage([
    { files: [{ name: "a", data: f1 }], compression: "gzip" },
    {
      files: [
        { name: "b", data: f2 },
        { name: "c", data: "" },
      ],
      compression: "none",
    },
    { files: [], compression: "gzip" },
  ]);
  const a = new SecretAuditor([secret("s", randomBytes(24))]);
  await feed(a.tarSink("oci"), img.tar);
  const r = a.report();
  assert.deepEqual(r.findings, []);
  assert.deepEqual(r.errors, []);
  assert.equal(r.layers, 3);
  assert.equal(r.files, 3 + 4);
  const jsonBytes = r.bytes - f1.length - f2.length;
  assert.ok(jsonBytes > 300 && jsonBytes < 2000, `config+manifest+index+oci-layout bytes: ${jsonBytes}`);
});

test("oci: a zstd layer is an error naming the layer, after the rest was scanned; never a silent pass", async () => {
  const value = randomBytes(20);
  const s = secret("z", value);
  const zstdBlob = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(100)]);
  const img = await ociImage([
    { raw: zstdBlob, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" },
    { files: [{ name: "leak", data: value }], compression: "gzip" },
  ]);
  const a = new SecretAuditor([s]);
  const err = await feed(a.tarSink("oci"), img.tar).then(
    () => assert.fail("a zstd layer passed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AuditError);
  if (typeof Reflect.get(zlib, "createZstdDecompress") === "function") assert.match(err.message, new RegExp(`^layer ${img.layers[0]} cannot be read: `));
  else assert.equal(err.message, `layer ${img.layers[0]} is zstd-compressed; the audit cannot read it yet (export with compression=gzip to audit it)`);
  // The other layer was still scanned.
  assert.deepEqual(where(a.report()), [`z raw content ${img.layers[1]} leak`]);
  assert.deepEqual(a.report().errors, [err.message]);
  assertNoValue([s], a.report(), err);
});

test("oci: a layer in a compression the audit does not know is an error once the manifest names it", async () => {
  const lz4 = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), randomBytes(64)]);
  const img = await ociImage([{ raw: lz4, mediaType: "application/vnd.oci.image.layer.v1.tar+lz4" }]);
  const a = new SecretAuditor([secret("s", randomBytes(16))]);
  await assert.rejects(feed(a.tarSink("oci"), img.tar), {
    name: "AuditError",
    message: `layer ${img.layers[0]} (application/vnd.oci.image.layer.v1.tar+lz4) is not gzip, zstd or tar; the audit cannot read it`,
  });
});

test("oci: a corrupt gzip layer is an error naming the layer", async () => {
  const good = gzipSync(await tarball([{ name: "f", data: randomBytes(10_000) }]));
  const bad = Buffer.from(good);
  bad.fill(0x55, 100, 200);
  const img = await ociImage([{ raw: bad, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]);
  const a = new SecretAuditor([secret("s", randomBytes(16))]);
  await assert.rejects(feed(a.tarSink("oci"), img.tar), (e: unknown) => {
    assert.ok(e instanceof AuditError);
    assert.match(e.message, new RegExp(`^layer ${img.layers[0]} cannot be read: `));
    return true;
  });
});

test("docker: manifest.json names the config; the sink also works as a Writable in a pipeline", async () => {
  const value = randomBytes(16).toString("base64");
  const s = secret("d", value);
  const layer = await tarball([{ name: "etc/" }, { name: "etc/token", data: value }]);
  const cfg = Buffer.from(JSON.stringify({ comment: "no rootfs key here", history: [{ created_by: `echo ${value}` }] }));
  const manifestJson = JSON.stringify([
    { Config: `blobs/sha256/${digestOf(cfg).slice(7)}`, RepoTags: ["x:latest"], Layers: [`blobs/sha256/${digestOf(layer).slice(7)}`] },
  ]);
  const entries: Entry[] = [
    { name: `blobs/sha256/${digestOf(cfg).slice(7)}`, data: cfg },
    { name: `blobs/sha256/${digestOf(layer).slice(7)}`, data: layer },
  ].sort((x, y) => (x.name < y.name ? -1 : 1));
  entries.push({ name: "manifest.json", data: manifestJson });
  const a = new SecretAuditor([s]);
  await pipeline(Readable.from([await tarball(entries)]), a.tarSink("docker").writable());
  assert.deepEqual(where(a.report()), [`d raw content ${digestOf(cfg)} <config>`, `d raw content ${digestOf(layer)} etc/token`].sort());
});

test("a leak error and the finding lines never carry the value, even when it sits in a file name", async () => {
  const secrets = [secret("one", `sk_live_${randomBytes(12).toString("hex")}`), { id: "k", value: randomBytes(40), kind: "ssh-key" as const }];
  const v0 = secrets[0]!.value.toString();
  const img = await ociImage([
    {
      files: [
        { name: `srv/${v0}.txt`, data: secrets[1]!.value.toString("base64") },
        { name: "srv/other", data: Buffer.concat([secrets[1]!.value.subarray(0, 20)]) },
        { name: "srv/other2", data: Buffer.concat([secrets[1]!.value.subarray(20), Buffer.from(v0)]) },
      ],
      compression: "gzip",
    },
    { raw: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" },
  ]);
  const a = new SecretAuditor(secrets);
  const err = await feed(a.tarSink("oci"), img.tar, [1000]).catch((e: unknown) => e);
  assert.ok(err instanceof AuditError);
  const r = a.report();
  assert.equal(r.findings.length, 4, where(r).join("\n"));
  const leak = new SecretLeakError(r);
  assert.equal(leak.code, "SECRET_LEAK");
  assert.match(leak.message, /^the build's output holds 4 secret values it was given: /);
  assertNoValue(secrets, r, err, leak, leak.message, r.findings.map(formatFinding), formatAuditSummary(r));
});

// --- SSH keys -------------------------------------------------------------------

/** An unencrypted openssh-key-v1 file for an ed25519 key (the format ssh-keygen writes). */
function openSshEd25519(comment: string): { file: string; pub: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d!, "base64url");
  const str = (b: Buffer | string): Buffer => {
    const v = Buffer.from(b);
    const n = Buffer.alloc(4);
    n.writeUInt32BE(v.length);
    return Buffer.concat([n, v]);
  };
  const u32 = (x: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(x);
    return b;
  };
  const blob = Buffer.concat([str("ssh-ed25519"), str(pub)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, str("ssh-ed25519"), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const bin = Buffer.concat([Buffer.from("openssh-key-v1\0"), str("none"), str("none"), str(""), u32(1), str(blob), str(priv)]);
  const b64 = bin.toString("base64");
  const lines = b64.match(/.{1,70}/g)!;
  return {
    file: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`,
    pub: `ssh-ed25519 ${blob.toString("base64")} ${comment}\n`,
  };
}

test("ssh keys: the key file, its body re-wrapped or escaped, are found; its public key and other keys are not", async () => {
  const key = openSshEd25519("me@host");
  const other = openSshEd25519("someone@else");
  const pkcs8 = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const secrets: AuditSecret[] = [
    { id: "default", value: Buffer.from(key.file), kind: "ssh-key" },
    { id: "rsa", value: Buffer.from(pkcs8), kind: "ssh-key" },
  ];
  const oneLine = key.file.split("\n").slice(1, -2).join("");
  const r = await auditTar(secrets, [
    { name: "root/.ssh/id_ed25519", data: key.file },
    { name: "root/.ssh/id_ed25519.pub", data: key.pub },
    { name: "root/.ssh/authorized_keys", data: key.pub },
    { name: "etc/ssh/ssh_host_ed25519_key", data: other.file },
    { name: "app/deploy.json", data: JSON.stringify({ key: key.file }) },
    { name: "app/oneline", data: `KEY=${oneLine}\n` },
    { name: "app/rsa.pem", data: pkcs8.replaceAll("\n", "\r\n") },
    { name: "app/rsa.pub", data: generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }) },
  ]);
  assert.deepEqual(where(r), [
    "default raw content - app/deploy.json",
    "default raw content - app/oneline",
    "default raw content - root/.ssh/id_ed25519",
    "rsa raw content - app/rsa.pem",
  ]);
  assertNoValue(secrets, r);
});

test("ssh keys: the public half of a PEM key in the image is not a finding", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const priv = privateKey.export({ type: "pkcs1", format: "pem" });
  const s: AuditSecret = { id: "rsa", value: Buffer.from(priv), kind: "ssh-key" };
  const lines = compileSecrets([s]).patterns.filter((p) => p.encoding === "raw" && p.bytes.length < 100);
  assert.ok(lines.length > 10, `lines kept: ${lines.length}`);
  const pub = publicKey.export({ type: "pkcs1", format: "der" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const jwk = JSON.stringify(publicKey.export({ format: "jwk" }));
  // The public key in every layout, at every alignment, unwrapped.
  const texts = [pub, spki].flatMap((d) => [0, 1, 2].map((k) => Buffer.concat([randomBytes(k), d]).toString("base64")));
  const r = await auditTar([s], [{ name: "pub.txt", data: `${texts.join("\n")}\n${jwk}\n` }]);
  assert.deepEqual(r.findings, []);
});

// --- local trees ------------------------------------------------------------------

test("directory: files are scanned in order (a split value is found), symlinks are not followed but their targets are scanned", async (t) => {
  const value = randomBytes(24);
  const text = `pw-${randomBytes(10).toString("hex")}`;
  const s = [secret("bin", value), secret("txt", text)];
  const outside = tempDir("bk-audit-outside-", t);
  writeFileSync(join(outside, "secret"), value);
  const dir = tempDir("bk-audit-tree-", t);
  mkdirSync(join(dir, "a/b"), { recursive: true });
  writeFileSync(join(dir, "a/b/one"), Buffer.concat([randomBytes(10), value.subarray(0, 9)]));
  writeFileSync(join(dir, "a/b/two"), Buffer.concat([value.subarray(9), randomBytes(10)]));
  writeFileSync(join(dir, "a/clean"), "nothing");
  symlinkSync(join(outside, "secret"), join(dir, "follow-me"));
  symlinkSync(outside, join(dir, "dir-link"));
  symlinkSync(`/nowhere/${text}`, join(dir, "dangling"));
  writeFileSync(join(dir, "hex"), Buffer.from(text).toString("hex"));
  // A name that is not UTF-8 is read all the same.
  writeFileSync(Buffer.from(`${dir}/latin-\xe9`, "latin1"), text);
  const a = new SecretAuditor(s);
  await a.scanDirectory(dir);
  const r = a.report();
  assert.deepEqual(where(r), ["bin raw content - a/b/one -> a/b/two", "txt hex content - hex", "txt raw content - latin-\ufffd", "txt raw link - dangling"]);
  assert.equal(r.layers, 1);
  assert.equal(r.files, 5);
  assert.equal(r.bytes, 10 + 24 + 10 + 7 + text.length * 3);
  assertNoValue(s, r);
});

test("directory: a missing directory is one clear error naming it", async (t) => {
  const dir = join(tempDir("bk-audit-missing-", t), "out");
  const a = new SecretAuditor([secret("s", randomBytes(16))]);
  await assert.rejects(a.scanDirectory(dir), (e: unknown) => {
    assert.ok(e instanceof AuditError);
    assert.ok(e.message.startsWith(`cannot read the output directory ${dir} for the secret audit: ENOENT`), e.message);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
});
