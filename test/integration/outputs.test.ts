/**
 * Outputs against the real buildkitd, with buildctl as the oracle: the same
 * build exported by both must give the same files and bytes.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { PassThrough, Writable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BuildKitClient, BuildKitError } from "../../src/index.js";
import { buildctlBuild, repoRoot, runCli, testEnv, type TestEnv } from "../helpers/env.js";

const cliPath = join(repoRoot, "dist", "src", "cli", "bin.js");
import { leakCheckEachTest } from "../helpers/leaks.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { listAll, snapshotTree } from "../helpers/snapshot-tree.js";
import { readTar, checkOciLayoutTar } from "../helpers/oci.js";

leakCheckEachTest();

let env: TestEnv;
before(() => {
  env = testEnv();
});

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** A build whose result has every kind of entry a local export must reproduce. */
function richContext(t: { name: string }): string {
  return fileTree(`bk-out-${t.name.replace(/\W+/g, "-").slice(0, 20)}-`, {
    Dockerfile: [
      `FROM ${env.registry}/bk-test/busybox:latest AS base`,
      "RUN mkdir -p /out/dir/sub/deeper /out/empty-dir /out/sticky && cd /out && \\",
      "    echo hello > dir/file.txt && : > dir/empty && head -c 3000000 /dev/urandom > big.bin && \\",
      "    ln -s file.txt dir/rel-link && ln -s /etc/passwd abs-link && ln -s missing dangling && \\",
      "    ln dir/file.txt dir/hard && echo ro > readonly && chmod 0444 readonly && \\",
      "    echo x > dir/setuid && chmod 4755 dir/setuid && chmod 1777 sticky && chmod 2750 dir/sub && \\",
      "    echo owned > owned && chown 1234:5678 owned && echo 'a b' > 'dir/with space' && \\",
      "    touch -t 200102030405.06 dir/old && touch -t 199912312359.59 dir/sub/deeper",
      "FROM scratch",
      "COPY --from=base /out/ /",
      "COPY ctx.txt /ctx/",
    ].join("\n"),
    "ctx.txt": "from the context\n",
  });
}

async function withClient<T>(fn: (c: BuildKitClient) => Promise<T>): Promise<T> {
  const client = await BuildKitClient.connect({ address: env.buildkitHost });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

test("type=local: the same tree as buildctl's (modes, owners, links, hardlinks, mtimes, contents)", async (t) => {
  const ctx = richContext(t);
  const out = tempDir("bk-out-local-", t);
  buildctlBuild(ctx, `type=local,dest=${join(out, "buildctl")}`);
  const result = await withClient((c) => c.build({ context: ctx, outputs: [{ type: "local", dest: join(out, "ours") }] }).result);
  assert.deepEqual(result.exports, [{ type: "local", dest: join(out, "ours"), bytes: result.exports[0]!.bytes }]);
  const ours = snapshotTree(join(out, "ours"), { mtimes: "us" });
  const theirs = snapshotTree(join(out, "buildctl"), { mtimes: "us" });
  assert.deepEqual(ours, theirs);
  // The tree really has what the comparison is about.
  const byPath = new Map(ours.map((e) => [e.path, e]));
  assert.equal(byPath.get("dir/rel-link")?.link, "file.txt");
  assert.equal(byPath.get("abs-link")?.link, "/etc/passwd");
  assert.deepEqual(byPath.get("dir/hard")?.links, ["dir/file.txt", "dir/hard"]);
  assert.equal(byPath.get("dir/setuid")?.mode, "4755");
  assert.equal(byPath.get("sticky")?.mode, "1777");
  assert.equal(byPath.get("dir/sub")?.mode, "2750");
  assert.equal(byPath.get("readonly")?.mode, "444");
  assert.equal(byPath.get("dir/old")?.mtimeNs, String(Date.UTC(2001, 1, 3, 4, 5, 6) * 1e6));
  assert.equal(byPath.get("big.bin")?.size, 3000000);
  assert.ok((result.exports[0]!.bytes ?? 0) >= 3000000);
  assert.deepEqual(
    listAll(out),
    listAll(out).filter((p) => p.startsWith("ours") || p.startsWith("buildctl")),
  );
});

test("type=local into an existing directory merges as buildctl does: nothing there is deleted, entries are replaced", async (t) => {
  const ctx = richContext(t);
  const out = tempDir("bk-out-merge-", t);
  for (const who of ["ours", "buildctl"]) {
    mkdirSync(join(out, who, "dir"), { recursive: true });
    writeFileSync(join(out, who, "keep.txt"), "kept\n");
    writeFileSync(join(out, who, "dir", "file.txt"), "old content\n");
    mkdirSync(join(out, who, "big.bin")); // a directory where a file comes
    chmodSync(join(out, who), 0o755);
    // The same time on both sides: two writes a few ms apart can fall in different clock ticks.
    utimesSync(join(out, who, "keep.txt"), 1_700_000_000, 1_700_000_000);
  }
  buildctlBuild(ctx, `type=local,dest=${join(out, "buildctl")}`);
  await withClient((c) => c.build({ context: ctx, outputs: [{ type: "local", dest: join(out, "ours") }] }).result);
  const strip = (s: ReturnType<typeof snapshotTree>) => s.map((e) => (e.path === "." || e.path === "dir" ? { ...e, mtimeNs: "" } : e));
  assert.deepEqual(strip(snapshotTree(join(out, "ours"), { mtimes: "us" })), strip(snapshotTree(join(out, "buildctl"), { mtimes: "us" })));
  assert.equal(readFileSync(join(out, "ours", "keep.txt"), "utf8"), "kept\n");
  assert.equal(readFileSync(join(out, "ours", "dir", "file.txt"), "utf8"), "hello\n");
  assert.ok(statSync(join(out, "ours", "big.bin")).isFile());
});

test("multi-platform type=local: one directory per platform, as buildctl's", async (t) => {
  const ctx = fileTree("bk-out-mp-", { Dockerfile: "FROM scratch\nARG TARGETPLATFORM\nCOPY a.txt /files/\n", "a.txt": "a\n" }, t);
  const out = tempDir("bk-out-mp-out-", t);
  buildctlBuild(ctx, `type=local,dest=${join(out, "buildctl")}`, ["--opt", "platform=linux/amd64,linux/386"]);
  await withClient((c) => c.build({ context: ctx, platforms: ["linux/amd64", "linux/386"], outputs: [{ type: "local", dest: join(out, "ours") }] }).result);
  assert.deepEqual(readdirSync(join(out, "ours")).sort(), ["linux_386", "linux_amd64"]);
  assert.deepEqual(snapshotTree(join(out, "ours"), { mtimes: "us" }), snapshotTree(join(out, "buildctl"), { mtimes: "us" }));
});

test("type=tar is byte-identical to buildctl's; the stream form hashes the same", async (t) => {
  const ctx = richContext(t);
  const out = tempDir("bk-out-tar-", t);
  buildctlBuild(ctx, `type=tar,dest=${join(out, "buildctl.tar")}`);
  const hash = createHash("sha256");
  const pass = new PassThrough();
  pass.pipe(hash);
  const result = await withClient(
    (c) =>
      c.build({
        context: ctx,
        outputs: [
          { type: "tar", dest: join(out, "ours.tar") },
          { type: "tar", stream: pass },
        ],
      }).result,
  );
  const theirs = readFileSync(join(out, "buildctl.tar"));
  assert.ok(readFileSync(join(out, "ours.tar")).equals(theirs), "tar files differ");
  assert.equal(hash.digest("hex"), sha256(theirs));
  assert.equal(result.exports[1]!.stream, true);
  assert.equal(result.exports[1]!.bytes, theirs.length);
  assert.deepEqual(readdirSync(out).sort(), ["buildctl.tar", "ours.tar"]);
});

test("type=oci and type=docker tarballs: buildctl's manifest digest, a complete layout, docker load's manifest.json", async (t) => {
  const ctx = richContext(t);
  const out = tempDir("bk-out-oci-", t);
  for (const type of ["oci", "docker"]) {
    buildctlBuild(ctx, `type=${type},name=example.com/bk/out:1,dest=${join(out, `buildctl-${type}.tar`)}`);
  }
  const result = await withClient(
    (c) =>
      c.build({
        context: ctx,
        outputs: [
          { type: "oci", dest: join(out, "ours-oci.tar"), attrs: { name: "example.com/bk/out:1" } },
          { type: "docker", dest: join(out, "ours-docker.tar"), attrs: { name: "example.com/bk/out:1" } },
        ],
      }).result,
  );
  for (const [i, type] of ["oci", "docker"].entries()) {
    const ours = checkOciLayoutTar(readTar(readFileSync(join(out, `ours-${type}.tar`))));
    const theirs = checkOciLayoutTar(readTar(readFileSync(join(out, `buildctl-${type}.tar`))));
    assert.equal(ours.manifestDigest, theirs.manifestDigest, `${type} manifest digest`);
    assert.equal(result.exports[i]!.digest, ours.manifestDigest);
    assert.equal(result.exports[i]!.configDigest, ours.configDigest);
    assert.deepEqual(result.exports[i]!.names, ["example.com/bk/out:1"]);
    // The exporter's descriptor is the one index.json points at.
    const top = ours.index.manifests[0]!;
    assert.equal(result.exports[i]!.descriptor?.digest, ours.manifestDigest, `${type} descriptor digest`);
    assert.equal(result.exports[i]!.descriptor?.size, top.size, `${type} descriptor size`);
    assert.equal(result.exports[i]!.descriptor?.mediaType, top.mediaType, `${type} descriptor media type`);
    if (type === "docker") {
      assert.deepEqual(ours.dockerManifest, theirs.dockerManifest);
      assert.equal(ours.dockerManifest?.[0]?.RepoTags[0], "example.com/bk/out:1");
    }
  }
});

test("CLI: -o DIR, -o - to a pipe, --iidfile and -q give the image ID; bad outputs fail before the build", async (t) => {
  const ctx = richContext(t);
  const out = tempDir("bk-out-cli-", t);
  const r = runCli(["build", "--addr", env.buildkitHost, "-o", join(out, "dir"), ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(out, "dir", "dir", "file.txt"), "utf8"), "hello\n");
  // stdout is a pipe here (spawnSync's), as in `bk-build build -o - . | tar x`.
  const tar = spawnSync(process.execPath, [cliPath, "build", "--addr", env.buildkitHost, "--progress", "quiet", "-o", "-", ctx], { maxBuffer: 1 << 30 });
  assert.equal(tar.status, 0, tar.stderr.toString());
  buildctlBuild(ctx, `type=tar,dest=${join(out, "buildctl.tar")}`);
  assert.equal(sha256(tar.stdout), sha256(readFileSync(join(out, "buildctl.tar"))));
  const q = runCli(["build", "--addr", env.buildkitHost, "-q", "--iidfile", join(out, "iid"), "-o", `type=oci,dest=${join(out, "x.tar")}`, ctx]);
  assert.equal(q.code, 0, q.stderr);
  const layout = checkOciLayoutTar(readTar(readFileSync(join(out, "x.tar"))));
  assert.equal(q.stdout, `${layout.configDigest}\n`);
  assert.equal(readFileSync(join(out, "iid"), "utf8"), layout.configDigest);

  writeFileSync(join(out, "a-file"), "x");
  const cases: Array<[string[], RegExp]> = [
    [["-o", "type=local"], /^error: dest is required for local exporter/m],
    [["-o", "type=local,dest=-"], /^error: dest cannot be stdout for local exporter/m],
    [["-o", `type=local,dest=${join(out, "a-file")}`], /^error: destination directory ".*a-file" is a file/m],
    [["-o", `type=tar,dest=${out}`], /^error: destination file ".*" is a directory/m],
    [["-o", "-", "-o", "type=oci"], /^error: multiple outputs configured to write to stdout/m],
    [["-o", "type=local,dest=x", "--iidfile", join(out, "i2")], /^error: --iidfile needs an image output/m],
    [["-o", "dest=x,push=true"], /^error: --output "dest=x,push=true" has no type/m],
  ];
  for (const [args, want] of cases) {
    const bad = runCli(["build", "--addr", "unix:///nonexistent.sock", ...args, ctx]);
    assert.equal(bad.code, 2, `${args.join(" ")}: ${bad.stderr}`);
    assert.match(bad.stderr, want, args.join(" "));
    assert.equal(bad.stderr.split("\n").filter(Boolean).length, 1, bad.stderr);
  }
  assert.deepEqual(readdirSync(out).sort(), ["a-file", "buildctl.tar", "dir", "iid", "x.tar"]);
});

test("a failed or cancelled build leaves every destination as it was, with no temporary files", async (t) => {
  const out = tempDir("bk-out-fail-", t);
  mkdirSync(join(out, "existing"));
  writeFileSync(join(out, "existing", "old.txt"), "old\n");
  writeFileSync(join(out, "old.tar"), "old tar\n");
  const failing = fileTree("bk-out-failctx-", { Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo x > /x && exit 3\n` }, t);
  const before = listAll(out);
  await withClient(async (c) => {
    await assert.rejects(
      c.build({
        context: failing,
        outputs: [
          { type: "local", dest: join(out, "existing") },
          { type: "local", dest: join(out, "new-dir") },
          { type: "tar", dest: join(out, "old.tar") },
        ],
      }).result,
      BuildKitError,
    );
    // Cancelled while the export is running: a large file is on its way.
    const slow = fileTree("bk-out-slowctx-", { Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nRUN head -c 200000000 /dev/zero > /big\n` }, t);
    const b = c.build({
      context: slow,
      outputs: [
        { type: "local", dest: join(out, "existing") },
        { type: "tar", dest: join(out, "old.tar") },
      ],
    });
    const progress = (async () => {
      for await (const s of b.progress) {
        if (s.vertexes.some((v) => /export|sending tarball|copying files/i.test(v.name) && v.started)) {
          b.cancel();
          return;
        }
      }
    })();
    await assert.rejects(b.result, (e: BuildKitError) => e.code === "CANCELLED");
    await progress;
  });
  assert.deepEqual(listAll(out), before);
  assert.equal(readFileSync(join(out, "existing", "old.txt"), "utf8"), "old\n");
  assert.equal(readFileSync(join(out, "old.tar"), "utf8"), "old tar\n");
});

test("destination not writable, or a full disk: one clear error, the destination unchanged, nothing left behind", async (t) => {
  assert.equal(process.getuid?.(), 0, "this test mounts small tmpfs file systems: run the suite as root (CI does; buildkitd needs it anyway)");
  const ctx = richContext(t);
  const out = tempDir("bk-out-fs-", t);
  const mounted: string[] = [];
  const mount = (dir: string, options: string): void => {
    mkdirSync(dir);
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir]);
    mounted.push(dir);
    writeFileSync(join(dir, "keep"), "k");
  };
  try {
    const small = join(out, "small");
    mount(small, "size=1m");
    const ro = join(out, "ro");
    mount(ro, "size=1m");
    execFileSync("mount", ["-o", "remount,ro", ro]);
    const cases: Array<[string, string, RegExp]> = [
      ["full, local", `type=local,dest=${join(small, "dest")}`, /no space left on (the )?device/],
      ["full, tar", `type=tar,dest=${join(small, "x.tar")}`, /no space left on (the )?device/],
      ["read-only, local", `type=local,dest=${join(ro, "dest")}`, /read-only/],
      ["read-only, tar", `type=tar,dest=${join(ro, "x.tar")}`, /read-only/],
    ];
    for (const [what, output, want] of cases) {
      const r = runCli(["build", "--addr", env.buildkitHost, "--progress", "quiet", "-o", output, ctx]);
      assert.notEqual(r.code, 0, what);
      assert.match(r.stderr, want, `${what}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\.bk-build-|\.tmp\b|at .*\.js:/, `${what}: names a temporary file or prints a stack: ${r.stderr}`);
      assert.deepEqual(readdirSync(small), ["keep"], what);
      assert.deepEqual(readdirSync(ro), ["keep"], what);
    }
  } finally {
    // Before tempDir's cleanup removes the directories.
    for (const dir of mounted) execFileSync("umount", ["-l", dir]);
  }
});

test("type=local of an image whose files carry xattrs: the tree lands, and a warning names what Node.js could not set", (t) => {
  // buildctl sends the context's xattrs (Go reads them), so its image has one; python3 sets it on the context file.
  const ctx = fileTree("bk-xattr-ctx-", { f: "with an xattr\n", Dockerfile: "FROM scratch\nCOPY f /f\n" }, t);
  const py = spawnSync("python3", ["-c", "import os,sys; os.setxattr(sys.argv[1], 'user.bk-test', b'v')", join(ctx, "f")], { encoding: "utf8" });
  assert.equal(py.status, 0, `python3 could not set an xattr on ${ctx}/f (python3 and user xattrs are needed here): ${py.error?.message ?? py.stderr}`);
  const image = `${env.registry}/bk-test/xattr:${Date.now()}`;
  buildctlBuild(ctx, `type=image,name=${image},push=true,registry.insecure=true`);

  const from = fileTree("bk-xattr-from-", { Dockerfile: `FROM ${image}\n` }, t);
  const dest = join(tempDir("bk-xattr-out-", t), "out");
  const r = runCli(["build", "--progress", "plain", "-o", dest, from]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(dest, "f"), "utf8"), "with an xattr\n");
  const warning = r.stderr.split("\n").filter((l) => l.startsWith("warning: type=local"));
  assert.deepEqual(warning, [
    `warning: type=local,dest=${dest}: the extended attributes of 1 entry were not set, as Node.js cannot set them (first: "f" ("user.bk-test")); use type=tar or type=oci to keep them`,
  ]);
});

test("the stream form keeps to a slow consumer's pace: write() returning false holds the daemon back, nothing piles up in memory, the end waits for its flush", async (t) => {
  const total = 64 << 20;
  const ctx = fileTree("bk-out-slow-", {
    Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest AS gen\nRUN head -c ${total} /dev/urandom > /big\nFROM scratch\nCOPY --from=gen /big /\n`,
  });
  const out = tempDir("bk-out-slow-", t);
  // Warm the daemon's cache, so the export is all that runs below.
  await withClient((c) => c.build({ context: ctx, outputs: [{ type: "tar", dest: join(out, "first.tar") }] }).result);

  // A consumer at about 32 MB/s: every 1 MiB written waits 30 ms.
  const hash = createHash("sha256");
  let written = 0;
  let maxQueued = 0;
  let flushed = false;
  const slow = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      maxQueued = Math.max(maxQueued, slow.writableLength);
      hash.update(chunk);
      const before = Math.floor(written / (1 << 20));
      written += chunk.length;
      if (Math.floor(written / (1 << 20)) > before) setTimeout(cb, 30);
      else cb();
    },
    // A consumer that is slow to flush at the end too: the build is done only once it has.
    final(cb) {
      setTimeout(() => {
        flushed = true;
        cb();
      }, 200);
    },
  });
  // What is held, not garbage not yet collected: a full GC before every sample.
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const sampler = setInterval(() => {
    gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  }, 50);
  try {
    const result = await withClient((c) => c.build({ context: ctx, outputs: [{ type: "tar", stream: slow }] }).result);
    assert.equal(flushed, true, "the result came before the stream's final() had called back");
    assert.equal(result.exports[0]!.bytes, written);
  } finally {
    clearInterval(sampler);
  }
  const first = readFileSync(join(out, "first.tar"));
  assert.equal(hash.digest("hex"), sha256(first), "the stream's bytes are the file export's");
  assert.ok(written > total, `${written} bytes streamed`);
  // What write() returning false means: we wait for 'drain', so the Writable never holds much past its mark.
  assert.ok(maxQueued <= 4 << 20, `the consumer's queue reached ${maxQueued} bytes`);
  // Held: what the HTTP/2 windows let in flight (4 MiB a stream, 16 MiB a connection, on the outer
  // connection and on the session inside it), 10-15 MB here. Without backpressure most of the 64 MB.
  assert.ok(peak < 32 << 20, `buffers held in this process grew by ${(peak / 1048576).toFixed(1)} MB during the export`);
});
