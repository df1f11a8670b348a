/**
 * Compose projects built on the real buildkitd: the CI-token scenario as
 * compose, ssh in map form, a service built FROM another through
 * additional_contexts, .env feeding build args.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync, copyFileSync, chmodSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { BuildKitClient } from "../../src/index.js";
import { runCliAsync, testEnv, type RunResult } from "../helpers/env.js";
import { getManifest, imageBytes } from "../helpers/registry.js";
import { startSshd } from "../helpers/sshd.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { cleanup, leakCheckEachTest } from "../helpers/leaks.js";

const env = testEnv();

leakCheckEachTest();

function project(files: Record<string, string>): string {
  return fileTree("bk-compose-it-", files);
}

function compose(dir: string, args: string[], extraEnv: Record<string, string | undefined> = {}, cwd?: string): Promise<RunResult> {
  return runCliAsync(["compose", "-f", join(dir, "compose.yaml"), ...args], {
    env: { SSH_AUTH_SOCK: undefined, ...extraEnv },
    timeoutMs: 180_000,
    ...(cwd ? { cwd } : {}),
  });
}

/**
 * One service whose RUN step is new to the daemon (`run` is in it) and
 * writes random bytes (a rerun gives other ones), with these cache_from and
 * cache_to entries, and `image` as its name when given.
 */
function cacheProject(run: string, cacheFrom: string, cacheTo: string, image?: string): string {
  return project({
    "compose.yaml": [
      "services:",
      "  cached:",
      ...(image ? [`    image: ${image}`] : []),
      "    build:",
      "      context: .",
      `      cache_from: ["${cacheFrom}"]`,
      `      cache_to: ["${cacheTo}"]`,
      "",
    ].join("\n"),
    Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${run} > /run-id && head -c 100000 /dev/urandom > /rand && sleep 1\n`,
  });
}

test("the CI-token scenario as compose: a rotated token keeps the secret step CACHED and never shows", async () => {
  const run = randomUUID();
  const dir = project({
    "compose.yaml": [
      "services:",
      "  api:",
      `    image: ${env.registry}/bk-test/compose-api:${run}`,
      "    build:",
      "      context: .",
      "      secrets:",
      "        - source: ci_token",
      "          target: CI_JOB_TOKEN",
      "secrets:",
      "  ci_token:",
      "    environment: TOKEN_FROM_CI",
      "",
    ].join("\n"),
    Dockerfile: [
      `FROM ${env.registry}/bk-test/busybox:latest`,
      `RUN --mount=type=secret,id=CI_JOB_TOKEN,required=true wc -c < /run/secrets/CI_JOB_TOKEN > /token-length && echo ${run} > /run-id`,
      "RUN cat /token-length",
      "",
    ].join("\n"),
  });
  const tokenA = `token-A-${randomUUID()}`;
  const first = await compose(dir, ["build", "--progress", "plain", "--push"], { TOKEN_FROM_CI: tokenA });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /^api \| #\d+ \[stage-0 2\/3\] RUN --mount=type=secret,id=CI_JOB_TOKEN/m);
  assert.match(first.stderr, /service "api": built .*compose-api:.* sha256:[0-9a-f]{64}/);

  const tokenB = `token-B-${randomUUID()}`;
  const second = await compose(dir, ["build", "--progress", "plain"], { TOKEN_FROM_CI: tokenB });
  assert.equal(second.code, 0, second.stderr);
  const secretStep = /^api \| (#\d+) \[stage-0 2\/3\] RUN --mount=type=secret/m.exec(second.stderr);
  assert.ok(secretStep, second.stderr);
  assert.match(second.stderr, new RegExp(`^api \\| ${secretStep[1]} CACHED$`, "m"));
  for (const out of [first.stdout, first.stderr, second.stdout, second.stderr]) {
    assert.ok(!out.includes(tokenA) && !out.includes(tokenB), "no token in any output");
  }
  const blobs = await imageBytes(env.registry, "bk-test/compose-api", run);
  assert.ok(
    blobs.every((b) => !b.includes(tokenA)),
    "no token in the pushed image",
  );

  const unset = await compose(dir, ["build"], { TOKEN_FROM_CI: undefined });
  assert.equal(unset.code, 2);
  assert.equal(unset.stderr, 'error: service "api": secret "ci_token": environment variable TOKEN_FROM_CI is not set; set it or put it in .env\n');
});

test("ssh in map form with a key file relative to the project", async (t) => {
  const s = await startSshd();
  cleanup(t, () => s.stop());
  const token = `compose-ssh-${randomUUID()}`;
  writeFileSync(join(s.dir, "served.txt"), token);
  const dir = project({
    "compose.yaml": ["services:", "  fetch:", "    build:", "      context: .", "      ssh:", "        deploy: ./keys/deploy_key", ""].join("\n"),
    Dockerfile: [
      `FROM ${env.registry}/bk-test/ssh:latest`,
      `RUN --mount=type=ssh,id=deploy,required=true echo ${token} > /dev/null && ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p ${s.port} root@127.0.0.1 cat ${join(s.dir, "served.txt")}`,
      "",
    ].join("\n"),
  });
  mkdirSync(join(dir, "keys"));
  copyFileSync(s.clientKey, join(dir, "keys", "deploy_key"));
  chmodSync(join(dir, "keys", "deploy_key"), 0o600);
  const r = await compose(dir, ["build", "--progress", "plain"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.split(token).length - 1 >= 2, "the step printed the fetched file");
});

test("a second service builds FROM the first through additional_contexts: service:first, with .env build args", async () => {
  const run = randomUUID();
  const dir = project({
    "compose.yaml": [
      "services:",
      "  second:",
      `    image: ${env.registry}/bk-test/compose-second:${run}`,
      "    build:",
      "      context: ./second",
      "      additional_contexts:",
      "        base: service:first",
      "      args:",
      "        - GREETING",
      "  first:",
      `    image: ${env.registry}/bk-test/compose-first:${run}`,
      "    build:",
      "      context: ./first",
      "      args:",
      "        MARK: ${MARK:?set MARK in .env}",
      "",
    ].join("\n"),
    ".env": `MARK=first-${run}\nGREETING=hello-from-dotenv\n`,
    "first/Dockerfile": `FROM ${env.registry}/bk-test/busybox:latest\nARG MARK\nRUN echo "$MARK" > /first.txt\n`,
    "second/Dockerfile": 'FROM base\nARG GREETING\nRUN cat /first.txt && echo "$GREETING" > /greeting.txt\n',
  });
  const r = await compose(dir, ["build", "--progress", "plain", "--push"]);
  assert.equal(r.code, 0, r.stderr);
  // first ran before second and second saw first's file.
  assert.ok(r.stderr.indexOf("first  | ") < r.stderr.indexOf("second | "), "first builds first");
  assert.match(r.stderr, new RegExp(`^second \\| #\\d+ [0-9.]+ first-${run}$`, "m"));
  const second = await imageBytes(env.registry, "bk-test/compose-second", run);
  assert.ok(second.some((b) => b.includes("hello-from-dotenv") && b.includes("greeting.txt")));
  const firstManifest = await getManifest(env.registry, "bk-test/compose-first", run);
  assert.ok(firstManifest.layers.length >= 2);
});

test("service:NAME without a registry: an unnamed first service reaches the second through an OCI layout; nothing is pushed or left behind", async () => {
  const run = randomUUID();
  const dir = project({
    "compose.yaml": [
      `name: layout-${run.slice(0, 8)}`,
      "services:",
      "  second:",
      "    build:",
      "      context: ./second",
      "      additional_contexts: { base: service:first }",
      "  first:",
      "    build: ./first",
      "",
    ].join("\n"),
    "first/Dockerfile": `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo layout-${run} > /first.txt\n`,
    "second/Dockerfile": "FROM base\nRUN cat /first.txt\n",
  });
  const tmp = process.env["TMPDIR"] ?? "/tmp";
  const before = new Set(readdirSync(tmp).filter((n) => n.startsWith("bk-compose-context-")));
  const r = await compose(dir, ["build", "--progress", "plain"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^second \\| #\\d+ [0-9.]+ layout-${run}$`, "m"), "second saw first's file");
  assert.deepEqual(
    readdirSync(tmp).filter((n) => n.startsWith("bk-compose-context-") && !before.has(n)),
    [],
    "the layout directories are removed",
  );
});

test("composeBuild through the API: results per service; a failure stops its dependents only", async () => {
  const run = randomUUID();
  const dir = project({
    "compose.yaml": [
      "services:",
      "  broken:",
      `    image: ${env.registry}/bk-test/compose-broken:${run}`,
      "    build: ./broken",
      "  needs-broken:",
      "    build:",
      "      context: ./ok",
      "      additional_contexts: { base: 'service:broken' }",
      "  fine:",
      "    build: ./ok",
      "",
    ].join("\n"),
    "broken/Dockerfile": `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo failing-${run} && exit 7\n`,
    "ok/Dockerfile": `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo fine-${run}\n`,
  });
  await using client = await BuildKitClient.connect({ address: env.buildkitHost, env: {} });
  const seen = new Set<string>();
  const results = await client.composeBuild({ files: [join(dir, "compose.yaml")], env: {}, parallel: 2, onStatus: (service) => seen.add(service) });
  const by = Object.fromEntries(results.map((r) => [r.service, r]));
  assert.equal(by["broken"]!.outcome, "failed");
  assert.match(by["broken"]!.error!.message, /exit code: 7/);
  assert.equal(by["needs-broken"]!.outcome, "skipped");
  assert.match(by["needs-broken"]!.error!.message, /service "broken", which it uses as a context, did not build/);
  assert.equal(by["fine"]!.outcome, "built");
  assert.deepEqual([...seen].sort(), ["broken", "fine"]);

  // -q / --progress quiet: nothing at all on success, as docker compose build -q.
  const cli = await compose(dir, ["build", "--progress", "quiet", "fine"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual([cli.stdout, cli.stderr], ["", ""]);
  const failing = await compose(dir, ["build", "--progress", "plain"]);
  assert.equal(failing.code, 1);
  assert.match(failing.stderr, /^error: 2 of 3 services did not build: broken, needs-broken$/m);
  assert.match(failing.stderr, /^broken {7}\| Dockerfile:2$/m);
});

test("a remote context: an HTTP tarball the daemon fetches itself", async () => {
  const { createServer } = await import("node:http");
  const { spawnSync } = await import("node:child_process");
  const run = randomUUID();
  const ctx = project({
    Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n`,
    "hello.txt": `remote-${run}\n`,
  });
  const tar = spawnSync("tar", ["-C", ctx, "-cf", "-", "Dockerfile", "hello.txt"]).stdout;
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { "Content-Type": "application/x-tar" });
    res.end(tar);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as { port: number }).port;
    const dir = project({ "compose.yaml": `services:\n  remote:\n    build:\n      context: http://127.0.0.1:${port}/context.tar\n` });
    const r = await compose(dir, ["build", "--progress", "plain"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`remote \\| #\\d+ [0-9.]+ remote-${run}`));
    assert.ok(requests >= 1, "buildkitd fetched the context");
  } finally {
    server.close();
  }
});

test("cache_to a registry, then cache_from it after the daemon's cache is pruned: the step is CACHED", async () => {
  const { buildctl } = await import("../helpers/env.js");
  const run = randomUUID();
  const cacheRef = `${env.registry}/bk-test/compose-cache:${run}`;
  const dir = cacheProject(run, `type=registry,ref=${cacheRef},registry.insecure=true`, `type=registry,ref=${cacheRef},mode=max,registry.insecure=true`);
  const first = await compose(dir, ["build", "--progress", "plain"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /exporting cache to registry/);
  buildctl(["prune", "--all"]);
  const second = await compose(dir, ["build", "--progress", "plain"]);
  assert.equal(second.code, 0, second.stderr);
  const step = /^cached \| (#\d+) \[(?:stage-0 )?2\/2\] RUN echo/m.exec(second.stderr);
  assert.ok(step, second.stderr);
  assert.match(second.stderr, new RegExp(`^cached \\| ${step[1]} CACHED$`, "m"));
});

test("cache_to and cache_from type=local with a path relative to the project: the cache lands there, not in the working directory, and brings the step back from the cache", async (t) => {
  const { buildctl } = await import("../helpers/env.js");
  const run = randomUUID();
  const repo = "bk-test/compose-local-cache";
  const dir = cacheProject(run, "type=local,src=./layer-cache", "type=local,dest=./layer-cache,mode=max", `${env.registry}/${repo}:${run}`);
  // Run from elsewhere: the relative dest is the project's, as the context is.
  const cwd = tempDir("bk-compose-cwd-", t);
  const build = (): Promise<RunResult> => compose(dir, ["build", "--progress", "plain", "--push"], {}, cwd);
  const first = await build();
  assert.equal(first.code, 0, first.stderr);
  const firstLayers = (await getManifest(env.registry, repo, run)).layers.map((l) => l.digest);
  assert.deepEqual(readdirSync(cwd), [], "nothing is written to the working directory");
  const cacheDir = join(dir, "layer-cache");
  const index = JSON.parse(readFileSync(join(cacheDir, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  assert.equal(index.manifests.length, 1, JSON.stringify(index));
  const [alg, hex] = index.manifests[0]!.digest.split(":") as [string, string];
  assert.ok(statSync(join(cacheDir, "blobs", alg, hex)).isFile(), "the cache's root blob is stored");
  // An empty ingest/ stays, as containerd's store (buildctl's) leaves it; nothing in it, and no lock file.
  assert.deepEqual(readdirSync(cacheDir).sort(), ["blobs", "index.json", "ingest", "oci-layout"]);
  assert.deepEqual(readdirSync(join(cacheDir, "ingest")), [], "no ingest is left");

  buildctl(["prune", "--all"]);
  const second = await build();
  assert.equal(second.code, 0, second.stderr);
  // The step's random bytes are the first build's: it came from the cache. (Progress alone cannot say:
  // the daemon shows a step whose layer it unpacks from a local cache as DONE or as CACHED.)
  assert.deepEqual(
    (await getManifest(env.registry, repo, run)).layers.map((l) => l.digest),
    firstLayers,
    "the RUN step ran again",
  );
});
