/**
 * The session content store against the real buildkitd: local cache export
 * and import (what CI keeps in a cache: directory), OCI-layout build
 * contexts, and oci exports to a directory, with buildctl as the oracle.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient } from "../../src/index.js";
import { buildctlBuild, runCli, runCliAsync, testEnv, type TestEnv } from "../helpers/env.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { snapshotTree } from "../helpers/snapshot-tree.js";

leakCheckEachTest();

let env: TestEnv;
before(() => {
  env = testEnv();
});

/**
 * A context whose RUN steps are new to the daemon (a fresh marker each time
 * it is made) and write random bytes: a rerun step gives other bytes, so
 * equal files prove the cache was used (progress lines do not: the daemon
 * may report a step from an imported cache as DONE).
 */
function stepsContext(t: { name: string }): string {
  return fileTree(`bk-lc-${t.name.replace(/\W+/g, "-").slice(0, 16)}-`, {
    Dockerfile: [
      `FROM ${env.registry}/bk-test/busybox:latest AS build`,
      `RUN echo ${randomUUID()} > /one && head -c 100000 /dev/urandom > /rand`,
      "COPY a.txt /a.txt",
      "RUN cat /one /a.txt > /two && head -c 64 /dev/urandom | od -x > /rand2",
      "FROM scratch",
      "COPY --from=build /one /rand /two /rand2 /",
    ].join("\n"),
    "a.txt": "a\n",
  });
}

async function pruneAll(): Promise<void> {
  const client = await BuildKitClient.connect({ address: env.buildkitHost });
  try {
    await client.prune({ all: true });
  } finally {
    await client.close();
  }
}

/** The files a build of stepsContext produced. */
function files(dir: string): Record<string, string> {
  return Object.fromEntries(["one", "rand", "two", "rand2"].map((n) => [n, readFileSync(join(dir, n)).toString("hex")]));
}

function build(args: string[], ctx: string): void {
  const r = runCli(["build", "--addr", env.buildkitHost, ...args, ctx], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
}

test("--cache-to type=local,mode=max, prune, --cache-from type=local: every step comes from the cache", async (t) => {
  const ctx = stepsContext(t);
  const dir = tempDir("bk-lc-dir-", t);
  const cache = join(dir, "cache");
  build(["--cache-to", `type=local,dest=${cache},mode=max`, "-o", join(dir, "first")], ctx);
  for (const name of ["blobs", "index.json", "oci-layout"]) assert.ok(readdirSync(cache).includes(name), `${name} missing in ${cache}`);
  const index = JSON.parse(readFileSync(join(cache, "index.json"), "utf8")) as { manifests: Array<{ annotations: Record<string, string> }> };
  assert.equal(index.manifests[0]!.annotations["org.opencontainers.image.ref.name"], "latest");

  await pruneAll();
  build(["--cache-from", `type=local,src=${cache}`, "-o", join(dir, "second")], ctx);
  assert.deepEqual(files(join(dir, "second")), files(join(dir, "first")), "a step ran again instead of coming from the cache");
  // Without the cache the steps run again (the check above can fail).
  await pruneAll();
  build(["-o", join(dir, "third")], ctx);
  assert.notDeepEqual(files(join(dir, "third")).rand, files(join(dir, "first")).rand);
});

test("two concurrent builds exporting their cache to one directory: both land in index.json, and both import", async (t) => {
  const a = stepsContext(t);
  const b = stepsContext(t);
  const dir = tempDir("bk-lc-conc-", t);
  const cache = join(dir, "cache");
  const [ra, rb] = await Promise.all(
    (
      [
        [a, "a"],
        [b, "b"],
      ] as const
    ).map(([ctx, tag]) =>
      runCliAsync(["build", "--addr", env.buildkitHost, "--cache-to", `type=local,dest=${cache},mode=max,tag=${tag}`, "-o", join(dir, `first-${tag}`), ctx], {
        timeoutMs: 180_000,
      }),
    ),
  );
  assert.equal(ra!.code, 0, ra!.stderr);
  assert.equal(rb!.code, 0, rb!.stderr);
  const index = JSON.parse(readFileSync(join(cache, "index.json"), "utf8")) as { manifests: Array<{ annotations: Record<string, string> }> };
  assert.deepEqual(index.manifests.map((m) => m.annotations["org.opencontainers.image.ref.name"]).sort(), ["a", "b"]);
  await pruneAll();
  for (const [ctx, tag] of [
    [a, "a"],
    [b, "b"],
  ] as const) {
    build(["--cache-from", `type=local,src=${cache},tag=${tag}`, "-o", join(dir, `second-${tag}`)], ctx);
    assert.deepEqual(files(join(dir, `second-${tag}`)), files(join(dir, `first-${tag}`)), `${tag}: a step ran again`);
  }
});

test("a local cache that is not there is skipped with a warning; a tag that is not there fails before the build", async (t) => {
  const ctx = stepsContext(t);
  const dir = tempDir("bk-lc-missing-", t);
  const r = runCli(["build", "--addr", env.buildkitHost, "--cache-from", `type=local,src=${join(dir, "nothing")}`, ctx], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^warning: .*nothing/m);
  const cache = join(dir, "cache");
  assert.equal(runCli(["build", "--addr", env.buildkitHost, "--cache-to", `type=local,dest=${cache}`, ctx]).code, 0);
  const bad = runCli(["build", "--addr", env.buildkitHost, "--cache-from", `type=local,src=${cache},tag=nope`, ctx]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^error: local cache import from ".*cache" needs a digest or a tag in its index.json: none is tagged "nope"/m);
});

test("docker exporter with tar=false (the CLI's -o) writes the same layout directory as buildctl's", async (t) => {
  const marker = randomUUID();
  const ctx = fileTree("bk-lc-docker-", { Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${marker} > /marker\n` }, t);
  const out = tempDir("bk-lc-docker-out-", t);
  buildctlBuild(ctx, `type=docker,tar=false,name=example.com/bk/docker:v1,dest=${join(out, "buildctl")}`);
  const r = runCli(["build", "--addr", env.buildkitHost, "-o", `type=docker,tar=false,name=example.com/bk/docker:v1,dest=${join(out, "ours")}`, ctx], {
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const strip = (s: ReturnType<typeof snapshotTree>) =>
    s.filter((e) => e.path !== "ingest" && e.path !== "index.json").map((e) => ({ ...e, mtimeNs: "", mode: e.type === "dir" ? "" : e.mode }));
  const ours = strip(snapshotTree(join(out, "ours")));
  assert.ok(
    ours.some((e) => e.path.startsWith("blobs/sha256/")),
    "no blobs in the layout",
  );
  assert.deepEqual(ours, strip(snapshotTree(join(out, "buildctl"))));
  const index = (who: string): string =>
    readFileSync(join(out, who, "index.json"), "utf8").replace(/"org.opencontainers.image.created":"[^"]*"/, '"org.opencontainers.image.created":"T"');
  assert.equal(index("ours"), index("buildctl"));
  assert.match(index("ours"), /example\.com\/bk\/docker:v1/);
});

test("oci exporter with tar=false writes the same layout directory as buildctl's; an oci-layout:// context builds FROM it", async (t) => {
  const marker = randomUUID();
  const ctx = fileTree("bk-lc-oci-", { Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${marker} > /marker\n` }, t);
  const out = tempDir("bk-lc-oci-out-", t);
  buildctlBuild(ctx, `type=oci,tar=false,name=example.com/bk/base:v1,dest=${join(out, "buildctl")}`);
  const client = await BuildKitClient.connect({ address: env.buildkitHost });
  try {
    const result = await client.build({
      context: ctx,
      outputs: [{ type: "oci", dest: join(out, "ours"), attrs: { tar: "false", name: "example.com/bk/base:v1" } }],
    }).result;
    assert.match(result.exports[0]!.digest ?? "", /^sha256:/);
  } finally {
    await client.close();
  }
  // The blobs are the same files; index.json is the same bytes but for the time of the export.
  const strip = (s: ReturnType<typeof snapshotTree>) =>
    s.filter((e) => e.path !== "ingest" && e.path !== "index.json").map((e) => ({ ...e, mtimeNs: "", mode: e.type === "dir" ? "" : e.mode }));
  assert.deepEqual(strip(snapshotTree(join(out, "ours"))), strip(snapshotTree(join(out, "buildctl"))));
  const index = (who: string): string =>
    readFileSync(join(out, who, "index.json"), "utf8").replace(/"org.opencontainers.image.created":"[^"]*"/, '"org.opencontainers.image.created":"T"');
  assert.equal(index("ours"), index("buildctl"));

  const user = fileTree("bk-lc-oci-user-", { Dockerfile: "FROM base\nRUN cat /marker > /seen\n" }, t);
  // By tag, and with no tag: "latest" is not there, but the layout holds one image, which is taken (as buildx).
  for (const [i, ref] of [`oci-layout://${join(out, "ours")}:v1`, `oci-layout://${join(out, "ours")}`].entries()) {
    const r = runCli(["build", "--addr", env.buildkitHost, "--build-context", `base=${ref}`, "-o", join(out, `seen${i}`), user], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(out, `seen${i}`, "seen"), "utf8"), `${marker}\n`);
  }
});
