/**
 * OCI layouts on disk: index.json edits byte-compared with what Go's
 * json.Marshal of buildkit's structs gives (the expected bytes are written
 * out by hand from client/ociindex and image-spec v1.1's struct order and
 * omitempty tags), tag resolution, the client's cache/export duties, the
 * index lock across processes, and ingests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  LayoutError,
  OCI_LAYOUT_JSON,
  OciLayout,
  formatIndex,
  ociReferenceName,
  parseDigest,
  parseIndex,
  putDescriptor,
  resolveTag,
  type OciDescriptor,
  type OciIndex,
} from "../../src/oci/layout.js";
import { finishLocalCacheExport, finishOciDirectoryExport, resolveLocalCacheImport } from "../../src/oci/cache.js";
import { UsageError } from "../../src/errors.js";
import { tempDir } from "../helpers/files.js";
import { srcUrl } from "../helpers/child.js";

const A = "sha256:" + "a".repeat(64);
const B = "sha256:" + "b".repeat(64);
const C = "sha256:" + "c".repeat(64);
const INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");

const readText = (p: string): string => readFileSync(p, "utf8");
const empty = (): OciIndex => ({ schemaVersion: 2, mediaType: INDEX, manifests: [] });

function isLayoutError(code: string, pattern?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof LayoutError, `a LayoutError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

test("open: create makes the directory and oci-layout as Go writes it; without create a missing directory is NOT_FOUND", async (t) => {
  const base = tempDir("bk-oci-", t);
  const dir = join(base, "a", "b");
  await OciLayout.open(dir, { create: true });
  assert.equal(readText(join(dir, "oci-layout")), '{"imageLayoutVersion":"1.0.0"}');
  assert.equal(OCI_LAYOUT_JSON, '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion": "1.0.0"}\n');
  await OciLayout.open(dir, { create: true });
  assert.equal(readText(join(dir, "oci-layout")), '{"imageLayoutVersion": "1.0.0"}\n', "an existing oci-layout is left alone on open");
  assert.deepEqual(readdirSync(dir), ["oci-layout"], "nothing else is made before it is needed");

  await assert.rejects(OciLayout.open(join(base, "nope"), { create: false }), isLayoutError("NOT_FOUND", /nope.*does not exist/));
  assert.equal(existsSync(join(base, "nope")), false);
  writeFileSync(join(base, "file"), "x");
  await assert.rejects(OciLayout.open(join(base, "file"), { create: false }), isLayoutError("INVALID_ARGUMENT", /not a directory/));
});

test("index.json: a cache export's entries are tagged by ref.name and replace the same tag only; bytes as Go's json.Marshal", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const layout = await OciLayout.open(dir, { create: true });
  const index = join(dir, "index.json");
  const d1: OciDescriptor = { mediaType: INDEX, digest: A, size: 123 };
  const d2: OciDescriptor = { mediaType: INDEX, digest: B, size: 456 };

  await layout.updateIndex((idx) => putDescriptor(idx, d1, { tag: "latest" }));
  assert.equal(
    readText(index),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
      `{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"${A}","size":123,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}`,
  );
  await layout.updateIndex((idx) => putDescriptor(idx, d2, {}));
  assert.equal(
    readText(index),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
      `{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"${B}","size":456,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}`,
    "no tag means latest, and the old latest is replaced",
  );
  await layout.updateIndex((idx) => putDescriptor(idx, d1, { tag: "v1" }));
  // An image export named docker.io/library/app:v1 has ref.name v1 too, but an image name: a cache tag v1 leaves it.
  await layout.updateIndex((idx) => putDescriptor(idx, { mediaType: MANIFEST, digest: C, size: 7 }, { names: ["docker.io/library/app:v1"] }));
  await layout.updateIndex((idx) => putDescriptor(idx, d2, { tag: "v1" }));
  assert.equal(
    readText(index),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
      `{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"${B}","size":456,"annotations":{"org.opencontainers.image.ref.name":"latest"}},` +
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${C}","size":7,"annotations":{"io.containerd.image.name":"docker.io/library/app:v1","org.opencontainers.image.ref.name":"v1"}},` +
      `{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"${B}","size":456,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`,
  );
  assert.equal(existsSync(join(dir, "index.json.lock")), false, "the lock is removed after");
  assert.deepEqual(readdirSync(dir).sort(), ["index.json", "oci-layout"], "no temporary files left");
});

test("index.json: an image export is put once per name with the name's tag part; the same name replaces its entry", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const layout = await OciLayout.open(dir, { create: true });
  const img: OciDescriptor = { mediaType: MANIFEST, digest: A, size: 1, annotations: { "org.opencontainers.image.created": "2025-01-02T03:04:05Z" } };
  await layout.updateIndex((idx) => putDescriptor(idx, img, { names: ["docker.io/library/app:1.0", "localhost:5000/team/app:edge"] }));
  await layout.updateIndex((idx) => putDescriptor(idx, { ...img, digest: B }, { names: ["docker.io/library/app:1.0"] }));
  assert.equal(
    readText(join(dir, "index.json")),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${A}","size":1,"annotations":{"io.containerd.image.name":"localhost:5000/team/app:edge","org.opencontainers.image.created":"2025-01-02T03:04:05Z","org.opencontainers.image.ref.name":"edge"}},` +
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${B}","size":1,"annotations":{"io.containerd.image.name":"docker.io/library/app:1.0","org.opencontainers.image.created":"2025-01-02T03:04:05Z","org.opencontainers.image.ref.name":"1.0"}}]}`,
  );
  assert.deepEqual(img.annotations, { "org.opencontainers.image.created": "2025-01-02T03:04:05Z" }, "the caller's descriptor is not changed");
});

test("index.json: Go's field order, omitempty, sorted map keys, HTML-safe escaping; unknown fields dropped as Go drops them", async (t) => {
  const dir = tempDir("bk-oci-", t);
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      extra: 1,
      annotations: { b: "2", a: "1" },
      manifests: [
        {
          unknown: true,
          artifactType: "application/x",
          platform: { variant: "v8", "os.features": ["f"], os: "linux", architecture: "arm64", "os.version": "1" },
          data: "e30=",
          size: 2,
          annotations: { z: "1", Z: "2", é: "3", a: '<b>&\u2028\u2029\u0001\b\f\n\r\t"\\/é😀\u007f' },
          urls: ["http://x/?a=<1>&b"],
          digest: A,
          mediaType: MANIFEST,
        },
        { mediaType: "m", digest: B, size: 0, annotations: {}, urls: [], platform: { architecture: "", os: "" } },
      ],
      subject: { digest: C, mediaType: "s", size: 3 },
      mediaType: INDEX,
      schemaVersion: 2,
    }),
  );
  const layout = await OciLayout.open(dir, { create: true });
  await layout.updateIndex((idx) => idx);
  assert.equal(
    readText(join(dir, "index.json")),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${A}","size":2,"urls":["http://x/?a=\\u003c1\\u003e\\u0026b"],` +
      `"annotations":{"Z":"2","a":"\\u003cb\\u003e\\u0026\\u2028\\u2029\\u0001\\b\\f\\n\\r\\t\\"\\\\/é😀\u007f","z":"1","é":"3"},"data":"e30=",` +
      `"platform":{"architecture":"arm64","os":"linux","os.version":"1","os.features":["f"],"variant":"v8"},"artifactType":"application/x"},` +
      `{"mediaType":"m","digest":"${B}","size":0,"platform":{"architecture":"","os":""}}],` +
      `"subject":{"mediaType":"s","digest":"${C}","size":3},"annotations":{"a":"1","b":"2"}}`,
  );
  // Defaults, as Go's setOCIIndexDefaults, for an index that lacks them.
  writeFileSync(join(dir, "index.json"), '{"manifests":null}');
  await layout.updateIndex((idx) => idx);
  assert.equal(readText(join(dir, "index.json")), '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
  assert.equal(formatIndex({ schemaVersion: 2, manifests: [] }), '{"schemaVersion":2,"manifests":[]}', "mediaType is omitempty");
});

test("index.json: a broken file is an error naming it; an empty one counts as none", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const layout = await OciLayout.open(dir, { create: true });
  writeFileSync(join(dir, "index.json"), "{not json");
  await assert.rejects(layout.readIndex(), isLayoutError("FAILED_PRECONDITION", /index\.json.*fix or remove it/));
  await assert.rejects(
    layout.updateIndex((i) => i),
    isLayoutError("FAILED_PRECONDITION"),
  );
  assert.equal(readText(join(dir, "index.json")), "{not json", "left as it was");
  assert.equal(existsSync(join(dir, "index.json.lock")), false);
  writeFileSync(join(dir, "index.json"), '{"manifests":[{"size":"12"}]}');
  await assert.rejects(layout.readIndex(), isLayoutError("FAILED_PRECONDITION", /manifests\[0\]\.size is not an integer/));
  writeFileSync(join(dir, "index.json"), "");
  assert.equal(await layout.readIndex(), undefined);
  assert.throws(() => parseIndex([]), /not a JSON object/);
});

test("resolveTag: the first image name match, else the first ref.name match", () => {
  const m = (digest: string, annotations?: Record<string, string>): OciDescriptor => ({
    mediaType: MANIFEST,
    digest,
    size: 1,
    ...(annotations ? { annotations } : {}),
  });
  const index: OciIndex = {
    ...empty(),
    manifests: [
      m(A),
      m(A, { "org.opencontainers.image.ref.name": "docker.io/library/x:1" }),
      m(B, { "io.containerd.image.name": "docker.io/library/x:1", "org.opencontainers.image.ref.name": "1" }),
      m(C, { "org.opencontainers.image.ref.name": "latest" }),
      m(B, { "org.opencontainers.image.ref.name": "latest" }),
    ],
  };
  assert.equal(resolveTag(index, "docker.io/library/x:1")?.digest, B, "io.containerd.image.name wins over an earlier ref.name");
  assert.equal(resolveTag(index, "1")?.digest, B);
  assert.equal(resolveTag(index, "latest")?.digest, C, "the first one");
  assert.equal(resolveTag(index, "nope"), undefined);
  assert.equal(resolveTag(index, ""), undefined, "an absent annotation never matches, not even the empty tag");
});

test("ociReferenceName: the object part of containerd's reference.Parse, else the name", () => {
  // Each pair checked against containerd v2.1.4 pkg/reference (Go's url.Parse underneath).
  const cases: Array<[string, string]> = [
    ["docker.io/library/app:1.0", "1.0"],
    ["localhost:5000/a/b:tag", "tag"],
    ["x", ""],
    ["x:latest", "x:latest"],
    ["docker.io/x@sha256:abc", "@sha256:abc"],
    ["reg.io/y:t@sha256:abc", "t@sha256:abc"],
    ["user@host/p:q", "q"],
    ["[::1]:5000/z:w", "w"],
    ["h/%41:b", "b"],
    ["h/a%zz:b", "h/a%zz:b"],
    ["a?b/c:d", ""],
    ["h/x#frag:1", ""],
    ["", ""],
    ["ghcr.io/o/r", ""],
    ["h:x/y:z", "h:x/y:z"],
    ["h/p:a:b", "a:b"],
    ["a b/c:d", "a b/c:d"],
    ["h/%C3%A9:%41", "A"],
    ["http://h/x:1", "http://h/x:1"],
  ];
  for (const [name, want] of cases) assert.equal(ociReferenceName(name), want, name);
});

test("digests: only sha256/sha512 in lower-case hex; path tricks are INVALID_ARGUMENT", async (t) => {
  assert.deepEqual(parseDigest(A), { algorithm: "sha256", hex: "a".repeat(64) });
  assert.deepEqual(parseDigest("sha512:" + "0".repeat(128)), { algorithm: "sha512", hex: "0".repeat(128) });
  const layout = await OciLayout.open(tempDir("bk-oci-", t), { create: true });
  for (const bad of [
    "sha256:../../x",
    "sha256:" + "a".repeat(64) + "\n",
    "sha256:" + "A".repeat(64),
    "sha384:" + "a".repeat(96),
    "sha512:" + "a".repeat(64),
    "a".repeat(64),
    "/etc/passwd",
  ]) {
    assert.throws(() => parseDigest(bad), isLayoutError("INVALID_ARGUMENT"), JSON.stringify(bad));
    await assert.rejects(layout.info(bad), isLayoutError("INVALID_ARGUMENT"));
    await assert.rejects(layout.read(bad, 0, 0).next(), isLayoutError("INVALID_ARGUMENT"));
    await assert.rejects(layout.ingest("ref", bad), isLayoutError("INVALID_ARGUMENT"));
  }
});

test("ingests: unique files per writer, commit stores 0444 or reports the blob as existing, sha512 when expected says so", async (t) => {
  const dir = tempDir("bk-oci-", t);
  // Two builds writing into the same directory, each with its own layout object.
  const one = await OciLayout.open(dir, { create: true });
  const two = await OciLayout.open(dir, { create: true });
  const data = Buffer.from("same layer from two builds");
  const w1 = await one.ingest("layer-x", sha256(data));
  const w2 = await two.ingest("layer-x", sha256(data));
  await assert.rejects(one.ingest("layer-x"), isLayoutError("UNAVAILABLE", /layer-x/), "one layout: one writer per ref");
  assert.equal(readdirSync(join(dir, "ingest")).length, 2, "two ingest files");
  await w1.write(data.subarray(0, 5));
  await w2.write(data);
  await w1.write(data.subarray(5));
  assert.equal(w1.digest(), sha256(data));
  assert.deepEqual(await w1.commit(data.length, sha256(data)), { digest: sha256(data), size: data.length, existed: false });
  assert.deepEqual(await w2.commit(data.length, sha256(data)), { digest: sha256(data), size: data.length, existed: true });
  const p = join(dir, "blobs", "sha256", sha256(data).slice(7));
  assert.equal(statSync(p).mode & 0o777, 0o444);
  assert.ok(readFileSync(p).equals(data));
  assert.deepEqual(readdirSync(join(dir, "ingest")), []);
  await assert.rejects(w1.write(data), isLayoutError("FAILED_PRECONDITION", /ended/));
  await w1.abort();
  await assert.rejects(one.ingest("again", sha256(data)), isLayoutError("ALREADY_EXISTS"));

  const big = Buffer.from("a sha512 blob");
  const d512 = "sha512:" + createHash("sha512").update(big).digest("hex");
  const w3 = await one.ingest("r512", d512);
  await w3.write(big);
  assert.equal((await w3.commit(0, d512)).digest, d512);
  assert.equal((await one.info(d512))?.size, big.length);
  const chunks: Buffer[] = [];
  for await (const c of one.read(d512, 2, 5)) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), "sha51");
});

test("ingests: symbolic links for blobs/ or ingest/ are refused and nothing is written through them", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const outside = tempDir("bk-oci-outside-", t);
  symlinkSync(outside, join(dir, "ingest"));
  const layout = await OciLayout.open(dir, { create: true });
  await assert.rejects(layout.ingest("r"), isLayoutError("FAILED_PRECONDITION", /ingest.*symbolic link/));

  const dir2 = tempDir("bk-oci-", t);
  const layout2 = await OciLayout.open(dir2, { create: true });
  mkdirSync(join(outside, "sha256"));
  symlinkSync(outside, join(dir2, "blobs"));
  const w = await layout2.ingest("r");
  await w.write(Buffer.from("x"));
  await assert.rejects(w.commit(1), isLayoutError("FAILED_PRECONDITION", /blobs.*symbolic link/));
  assert.deepEqual(readdirSync(join(outside, "sha256")), []);
  assert.deepEqual(readdirSync(join(dir2, "ingest")), [], "the failed commit dropped its file");
});

test("read(): pieces of at most 1 MiB; NOT_FOUND and OUT_OF_RANGE when iterated", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const layout = await OciLayout.open(dir, { create: true });
  const data = Buffer.alloc((1 << 20) * 2 + 3, 7);
  const w = await layout.ingest("r");
  await w.write(data);
  const { digest } = await w.commit(data.length);
  const sizes: number[] = [];
  for await (const c of layout.read(digest, 1, 0)) sizes.push(c.length);
  assert.deepEqual(sizes, [1 << 20, 1 << 20, 2]);
  await assert.rejects(layout.read(sha256("x"), 0, 0).next(), isLayoutError("NOT_FOUND"));
  await assert.rejects(layout.read(digest, data.length + 1, 0).next(), isLayoutError("OUT_OF_RANGE"));
});

test("local cache import: a digest is kept; a tag resolves from index.json; an unreadable store warns; a missing tag is a UsageError", async (t) => {
  const dir = tempDir("bk-oci-", t);
  assert.deepEqual(await resolveLocalCacheImport(join(dir, "none"), { src: "x", digest: A }), { attrs: { src: "x", digest: A } }, "a digest needs no index");
  const gone = await resolveLocalCacheImport(join(dir, "none"), { src: join(dir, "none") });
  assert.ok("warning" in gone);
  assert.match(gone.warning, /local cache import from ".*none" skipped: .*does not exist/);
  const noIndex = await resolveLocalCacheImport(dir, { src: dir });
  assert.ok("warning" in noIndex && /no index\.json/.test(noIndex.warning));
  writeFileSync(join(dir, "index.json"), "[");
  const broken = await resolveLocalCacheImport(dir, { src: dir });
  assert.ok("warning" in broken && /cannot parse/.test(broken.warning));
  rmSync(join(dir, "index.json"));

  await finishLocalCacheExport(dir, undefined, JSON.stringify({ mediaType: INDEX, digest: A, size: 10 }));
  await finishLocalCacheExport(dir, "v2", JSON.stringify({ mediaType: INDEX, digest: B, size: 11 }));
  assert.deepEqual(await resolveLocalCacheImport(dir, { src: dir, mode: "max" }), { attrs: { src: dir, mode: "max", digest: A } }, "latest by default");
  assert.deepEqual(await resolveLocalCacheImport(dir, { src: dir, tag: "v2" }), { attrs: { src: dir, tag: "v2", digest: B } });
  await assert.rejects(resolveLocalCacheImport(dir, { src: dir, tag: "v3" }), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(
      e.message,
      `local cache import from "${dir}" needs a digest or a tag in its index.json: none is tagged "v3" (it has "latest", "v2"); pass tag=<one of those> or digest=sha256:<hex>`,
    );
    return true;
  });
  await assert.rejects(resolveLocalCacheImport(dir, { src: dir, tag: "" }), UsageError, "an empty tag attr is a tag");
});

test("finishing exports: cache.manifest JSON and the base64 image descriptor go into index.json as buildctl puts them", async (t) => {
  const dir = join(tempDir("bk-oci-", t), "out");
  const created = "2025-06-01T00:00:00Z";
  const desc = { mediaType: MANIFEST, digest: A, size: 500, annotations: { "org.opencontainers.image.created": created } };
  const b64 = Buffer.from(JSON.stringify(desc)).toString("base64");
  await finishOciDirectoryExport(dir, b64);
  await finishOciDirectoryExport(dir, b64, "docker.io/library/a:1,docker.io/library/b:2");
  const ann = (extra: string): string => `"annotations":{${extra}"org.opencontainers.image.created":"${created}","org.opencontainers.image.ref.name":`;
  assert.equal(
    readText(join(dir, "index.json")),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
      `{"mediaType":"${MANIFEST}","digest":"${A}","size":500,${ann("")}"latest"}},` +
      `{"mediaType":"${MANIFEST}","digest":"${A}","size":500,${ann('"io.containerd.image.name":"docker.io/library/a:1",')}"1"}},` +
      `{"mediaType":"${MANIFEST}","digest":"${A}","size":500,${ann('"io.containerd.image.name":"docker.io/library/b:2",')}"2"}}]}`,
  );
  assert.equal(readText(join(dir, "oci-layout")), OCI_LAYOUT_JSON);
  await assert.rejects(finishOciDirectoryExport(dir, "not base64!"), /containerimage\.descriptor is not base64/);
  await assert.rejects(finishLocalCacheExport(dir, "x", '{"size":"big"}'), /cache\.manifest is not an OCI descriptor/);
});

interface ChildExit {
  code: number | null;
  stderr: string;
}

/** Runs `code` (an ES module; SRC is dist/src/'s URL) in a new node, without blocking this one; killed after 30 s. */
function child(code: string, env: Record<string, string>): Promise<ChildExit> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", code], {
      env: { ...process.env, ...env, SRC: srcUrl },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test("lock: two processes updating index.json at once never lose an entry", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const writer = `
    const { OciLayout, putDescriptor } = await import(process.env.SRC + "oci/layout.js");
    const layout = await OciLayout.open(process.env.DIR, { create: true });
    for (let i = 0; i < 60; i++) {
      await layout.updateIndex((idx) => putDescriptor(idx, { mediaType: "m", digest: "sha256:" + "0".repeat(64), size: i }, { tag: process.env.W + "-" + i }));
    }`;
  const [a, b] = await Promise.all([child(writer, { DIR: dir, W: "a" }), child(writer, { DIR: dir, W: "b" })]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const layout = await OciLayout.open(dir, { create: false });
  const tags = (await layout.readIndex())!.manifests.map((m) => m.annotations!["org.opencontainers.image.ref.name"]!);
  assert.equal(tags.length, 120);
  for (const w of ["a", "b"]) for (let i = 0; i < 60; i++) assert.ok(tags.includes(`${w}-${i}`), `${w}-${i}`);
  assert.deepEqual(readdirSync(dir).sort(), ["index.json", "oci-layout"]);
});

test("lock: a lock whose process is gone is taken over; a live one is waited for, then UNAVAILABLE naming the lock file", async (t) => {
  const dir = tempDir("bk-oci-", t);
  const lock = join(dir, "index.json.lock");
  const put = (tag: string) => (idx: OciIndex) => putDescriptor(idx, { mediaType: "m", digest: A, size: 1 }, { tag });

  const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
  writeFileSync(lock, `${dead}\n`);
  const layout = await OciLayout.open(dir, { create: true });
  const t0 = Date.now();
  await layout.updateIndex(put("after-dead"));
  assert.ok(Date.now() - t0 < 2000, "taken over at once");
  assert.equal(existsSync(lock), false);
  assert.ok(resolveTag((await layout.readIndex())!, "after-dead"));

  // Held by a live process (this one): waited for until released.
  writeFileSync(lock, `${process.pid}\n`);
  const released = new Promise<void>((r) =>
    setTimeout(() => {
      rmSync(lock);
      r();
    }, 300),
  );
  const t1 = Date.now();
  await layout.updateIndex(put("after-wait"));
  await released;
  assert.ok(Date.now() - t1 >= 250, "it waited");
  assert.ok(resolveTag((await layout.readIndex())!, "after-wait"));

  const impatient = await OciLayout.open(dir, { create: true, lockTimeoutMs: 300 });
  writeFileSync(lock, `${process.pid}\n`);
  await assert.rejects(
    impatient.updateIndex(put("never")),
    isLayoutError("UNAVAILABLE", new RegExp(`locked by process ${process.pid} .*index\\.json\\.lock.*remove the lock file`)),
  );
  assert.equal(readText(lock), `${process.pid}\n`, "someone else's lock is left alone");

  // A lock without a pid (a Go flock, or one being written): fresh ones are waited for, old ones taken over.
  writeFileSync(lock, "");
  await assert.rejects(impatient.updateIndex(put("never")), isLayoutError("UNAVAILABLE", /locked by another process/));
  utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  await impatient.updateIndex(put("after-old"));
  assert.equal(existsSync(lock), false);
  assert.equal(resolveTag((await layout.readIndex())!, "never"), undefined);
});
