/**
 * `-` as the build context and `-f -`, against the real buildkitd: a tar
 * archive on stdin (plain, gzip, xz) served through the session's Upload, a
 * Dockerfile on stdin built with an empty context, `-f -` with a context
 * directory, the library's stream and `{ contents }` forms, and buildx's
 * lowercase `dockerfile` fallback. Each build writes its result with a local
 * output, which is what is checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { spawnSync } from "node:child_process";
import { createReadStream, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient } from "../../src/index.js";
import { runCli, testEnv } from "../helpers/env.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;
const cliEnv = { BUILDKIT_HOST: env.buildkitHost };

/** A tar of `dir`'s contents, compressed with `compress` (a tar flag: -z, -J) if given. */
function tarOf(dir: string, compress?: string): Buffer {
  const r = spawnSync("tar", ["-c", ...(compress ? [compress] : []), "-C", dir, "."], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

test("build - < archive: a gzip, xz and plain tar on stdin is the context (COPY reads it, -f names a path inside it)", (t) => {
  const marker = randomUUID();
  const ctx = fileTree(
    "bk-stdin-tar-",
    {
      Dockerfile: `FROM ${busybox}\nCOPY data.txt /out/data.txt\nRUN echo ${marker} > /out/run.txt\nFROM scratch\nCOPY --from=0 /out /\n`,
      "sub/Other.Dockerfile": `FROM scratch\nCOPY data.txt /other.txt\n`,
      "data.txt": `from the archive ${marker}\n`,
    },
    t,
  );
  for (const compress of ["-z", "-J", undefined]) {
    const out = tempDir("bk-stdin-tar-out-", t);
    const r = runCli(["build", "--progress", "plain", "--output", `type=local,dest=${out}`, "-"], {
      env: cliEnv,
      input: tarOf(ctx, compress),
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `tar ${compress ?? "plain"}: ${r.stderr}`);
    assert.equal(readFileSync(join(out, "data.txt"), "utf8"), `from the archive ${marker}\n`);
    assert.equal(readFileSync(join(out, "run.txt"), "utf8"), `${marker}\n`);
  }
  // -f with an archive context: a path inside the archive, as buildx.
  const out = tempDir("bk-stdin-tar-f-", t);
  const r = runCli(["build", "--progress", "plain", "-f", "sub/Other.Dockerfile", "--output", `type=local,dest=${out}`, "-"], {
    env: cliEnv,
    input: tarOf(ctx, "-z"),
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out), ["other.txt"]);
});

test("build - < Dockerfile: stdin that is not an archive is the Dockerfile, with an empty context", (t) => {
  const marker = randomUUID();
  const out = tempDir("bk-stdin-df-out-", t);
  // The empty context: COPY . copies nothing, so /ctx holds only what RUN lists.
  const dockerfile = `FROM ${busybox}\nCOPY . /ctx/\nRUN echo ${marker} > /res.txt && ls -A /ctx | wc -l >> /res.txt\nFROM scratch\nCOPY --from=0 /res.txt /\n`;
  const r = runCli(["build", "--progress", "plain", "--output", `type=local,dest=${out}`, "-"], { env: cliEnv, input: dockerfile, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(out, "res.txt"), "utf8").replace(/ +/g, ""), `${marker}\n0\n`);
  assert.match(r.stderr, /load build definition from Dockerfile/);
});

test("build -f - DIR: the Dockerfile from stdin, the context from DIR (its .dockerignore applies)", (t) => {
  const marker = randomUUID();
  const ctx = fileTree("bk-stdin-f-", { "data.txt": `context ${marker}\n`, "skip.txt": "ignored\n", ".dockerignore": "skip.txt\n" }, t);
  const out = tempDir("bk-stdin-f-out-", t);
  const dockerfile = `FROM scratch\nCOPY ./ /\n`;
  const r = runCli(["build", "--progress", "plain", "-f", "-", "--output", `type=local,dest=${out}`, ctx], {
    env: cliEnv,
    input: dockerfile,
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), [".dockerignore", "data.txt"]);
  assert.equal(readFileSync(join(out, "data.txt"), "utf8"), `context ${marker}\n`);

  // A second build with another Dockerfile of the same size: served anew, not the daemon's earlier copy.
  const out2 = tempDir("bk-stdin-f-out2-", t);
  const r2 = runCli(["build", "--progress", "plain", "-f", "-", "--output", `type=local,dest=${out2}`, ctx], {
    env: cliEnv,
    input: `FROM scratch\nCOPY d* /\n`,
    timeoutMs: 120_000,
  });
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(readdirSync(out2), ["data.txt"]);
});

test("client.build: context as a Readable of a tar.gz, and dockerfile as { contents } with a directory or no context", async (t) => {
  const marker = randomUUID();
  const ctx = fileTree("bk-stdin-api-", { Dockerfile: `FROM scratch\nCOPY data.txt /\n`, "data.txt": `api ${marker}\n` }, t);
  // Past the 3 MiB a BytesMessage carries: the upload goes in several.
  const big = randomBytes(7 << 20);
  writeFileSync(join(ctx, "big.bin"), big);
  const tarFile = join(tempDir("bk-stdin-api-tar-", t), "ctx.tar.gz");
  writeFileSync(tarFile, tarOf(ctx, "-z"));
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });

  const out = tempDir("bk-stdin-api-out-", t);
  const r = await client.build({ context: createReadStream(tarFile), outputs: [{ type: "local", dest: out }] }).result;
  assert.equal(readFileSync(join(out, "data.txt"), "utf8"), `api ${marker}\n`);
  assert.ok(r.ref);

  // An async generator works as well (small pieces first, then one large one), with a Dockerfile of its own from memory.
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const all = readFileSync(tarFile);
    for (let i = 0; i < 2000; i += 100) yield all.subarray(i, i + 100);
    yield all.subarray(2000);
  }
  const out2 = tempDir("bk-stdin-api-out2-", t);
  await client.build({
    context: chunks(),
    dockerfile: { contents: `FROM scratch\nCOPY data.txt /copied.txt\nCOPY big.bin /\n` },
    outputs: [{ type: "local", dest: out2 }],
  }).result;
  assert.deepEqual(readdirSync(out2).sort(), ["big.bin", "copied.txt"]);
  const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
  assert.equal(sha(readFileSync(join(out2, "big.bin"))), sha(big));

  const out3 = tempDir("bk-stdin-api-out3-", t);
  await client.build({
    context: ctx,
    dockerfile: { contents: Buffer.from(`FROM scratch\nCOPY data.txt /from-dir.txt\n`) },
    outputs: [{ type: "local", dest: out3 }],
  }).result;
  assert.deepEqual(readdirSync(out3), ["from-dir.txt"]);

  const out4 = tempDir("bk-stdin-api-out4-", t);
  await client.build({
    dockerfile: { contents: `FROM ${busybox}\nRUN echo ${marker} > /m.txt\nFROM scratch\nCOPY --from=0 /m.txt /\n` },
    outputs: [{ type: "local", dest: out4 }],
  }).result;
  assert.equal(readFileSync(join(out4, "m.txt"), "utf8"), `${marker}\n`);

  // Not an archive: refused before the build, the stream let go.
  await assert.rejects(
    client.build({
      context: (async function* () {
        yield Buffer.from("FROM scratch\n");
      })(),
    }).result,
    (e: Error & { code?: string }) => e.code === "USAGE" && /the build context stream is not a tar archive/.test(e.message),
  );
});

test("build DIR with only a lowercase 'dockerfile': that one is used, as buildx", (t) => {
  const marker = randomUUID();
  const ctx = fileTree("bk-stdin-lower-", { dockerfile: `FROM scratch\nCOPY data.txt /lower.txt\n`, "data.txt": `${marker}\n` }, t);
  const out = tempDir("bk-stdin-lower-out-", t);
  const r = runCli(["build", "--progress", "plain", "--output", `type=local,dest=${out}`, ctx], { env: cliEnv, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(out, "lower.txt"), "utf8"), `${marker}\n`);
  assert.match(r.stderr, /load build definition from dockerfile/);
});

test("bad stdin: empty, zstd, and both - and -f - are one line each, exit 2, with no build", () => {
  const empty = runCli(["build", "-"], { env: cliEnv, input: "" });
  assert.equal(empty.code, 2, empty.stderr);
  assert.equal(empty.stderr, "error: build context -: stdin is empty: pipe a tar archive or a Dockerfile into it\n");
  const zstd = spawnSync("zstd", ["-c"], { input: "FROM scratch\n" }).stdout;
  const z = runCli(["build", "-"], { env: cliEnv, input: zstd });
  assert.equal(z.code, 2, z.stderr);
  assert.match(z.stderr, /^error: build context -: stdin is zstd-compressed, which BuildKit does not unpack: .*\n$/);
  const both = runCli(["build", "-f", "-", "-"], { env: cliEnv, input: "FROM scratch\n" });
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /^error: can't use stdin for both build context and dockerfile: .*\n$/);
  const ambiguous = runCli(["build", "-f", "Dockerfile", "-"], { env: cliEnv, input: "FROM scratch\n" });
  assert.equal(ambiguous.code, 2, ambiguous.stderr);
  assert.match(ambiguous.stderr, /^error: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles.*\n$/);
});
