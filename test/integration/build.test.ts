/**
 * The secret-safe build, end to end, against the real buildkitd and registry.
 */
import { before, after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { appendFileSync, chmodSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient, BuildKitError, PlainPrinter } from "../../src/index.js";
import { spawnSync } from "node:child_process";
import { buildctlBuild, repoRoot, runCli, runCliAsync, testEnv, type TestEnv } from "../helpers/env.js";
import { getDocument, getManifest, imageBytes } from "../helpers/registry.js";
import { leakCheckEachTest, trackHandles } from "../helpers/leaks.js";
import { tempDir } from "../helpers/files.js";
import { startPackageIndex, stepNumbers, type PackageIndex } from "../helpers/package-index.js";

const cliPath = join(repoRoot, "dist", "src", "cli", "bin.js");

leakCheckEachTest();

let env: TestEnv;
let index: PackageIndex;
let indexPort = 0;
/** Tokens the fake package index saw, in order. */
let seen: string[] = [];

before(async () => {
  env = testEnv();
  // Stands in for a private package index: it answers only the current token.
  index = await startPackageIndex();
  indexPort = index.port;
  seen = index.seen;
});

after(async () => {
  await index.close();
});

/**
 * Starts recording the paths requested from the fake index; the returned
 * function waits `ms` more, stops recording and gives the paths seen.
 */
function recordIndexRequests(): (ms: number) => Promise<string[]> {
  const urls: string[] = [];
  const track = (req: { url?: string }): void => void urls.push(req.url ?? "");
  index.server.on("request", track);
  return async (ms) => {
    await new Promise((r) => setTimeout(r, ms));
    index.server.off("request", track);
    return urls;
  };
}

function dir(prefix: string): string {
  return tempDir(prefix);
}

function token(): string {
  return `glcbt-${randomBytes(12).toString("hex")}`;
}

test("rotating CI_JOB_TOKEN keeps every layer cached and never lands anywhere", async () => {
  const ctx = dir("bk-ci-");
  const runId = randomUUID();
  writeFileSync(join(ctx, "requirements.txt"), "internal-pkg\n");
  writeFileSync(
    join(ctx, "Dockerfile"),
    [
      `FROM ${env.registry}/bk-test/busybox:latest`,
      `RUN echo ${runId} > /run-id`,
      "COPY requirements.txt /app/",
      `RUN --mount=type=secret,id=CI_JOB_TOKEN,required=true wget -q --header "Authorization: Bearer $(cat /run/secrets/CI_JOB_TOKEN)" -O /app/installed http://127.0.0.1:${indexPort}/simple/internal-pkg`,
      "RUN cat /app/installed > /app/check && echo installed",
      "",
    ].join("\n"),
  );
  const repo = `bk-test/ci-${runId.slice(0, 8)}`;
  const tokenA = token();
  const tokenB = token();
  const outputs: string[] = [];

  // Build 1: token A.
  index.token = tokenA;
  seen.length = 0;
  const a = await runCliAsync(["build", "--progress", "plain", "--secret", "id=CI_JOB_TOKEN", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, CI_JOB_TOKEN: tokenA },
  });
  outputs.push(a.stdout, a.stderr);
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual(seen, [tokenA], "the index was asked once, with token A");

  // Build 2: token B, pushed. The secret step and all after it are cached.
  index.token = tokenB;
  seen.length = 0;
  const meta = join(dir("bk-ci-meta-"), `${runId}.json`);
  const b = await runCliAsync(
    ["build", "--progress", "plain", "--secret", "id=CI_JOB_TOKEN,env=CI_JOB_TOKEN", "-t", `${env.registry}/${repo}:b`, "--push", "--metadata-file", meta, ctx],
    { env: { BUILDKIT_HOST: env.buildkitHost, CI_JOB_TOKEN: tokenB } },
  );
  outputs.push(b.stdout, b.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(seen, [], "no request reached the index");
  const st = stepNumbers(b.stderr);
  const secretStep = [...st].find(([name]) => name.includes("--mount=type=secret"));
  const lastStep = [...st].find(([name]) => name.includes("RUN cat /app/installed"));
  assert.ok(secretStep && lastStep, b.stderr);
  assert.match(b.stderr, new RegExp(`^#${secretStep[1]} CACHED$`, "m"));
  assert.match(b.stderr, new RegExp(`^#${lastStep[1]} CACHED$`, "m"));

  // --metadata-file digest is the registry's manifest digest.
  const metadata = JSON.parse(readFileSync(meta, "utf8")) as Record<string, unknown>;
  const top = await getDocument(env.registry, repo, "b");
  assert.equal(metadata["containerimage.digest"], top.digest);

  // Build 3: token B with --no-cache reaches the index with B.
  seen.length = 0;
  const c = await runCliAsync(["build", "--progress", "rawjson", "--no-cache", "--secret", "id=CI_JOB_TOKEN", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, CI_JOB_TOKEN: tokenB },
  });
  outputs.push(c.stdout, c.stderr);
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(seen, [tokenB]);
  assert.ok(
    c.stderr
      .split("\n")
      .filter(Boolean)
      .every((l) => JSON.parse(l) && true),
    "rawjson is one JSON object per line",
  );

  // Quiet mode prints only the digest.
  const q = await runCliAsync(["build", "-q", "--secret", "id=CI_JOB_TOKEN", "-t", `${env.registry}/${repo}:q`, "--push", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, CI_JOB_TOKEN: tokenB },
  });
  outputs.push(q.stdout, q.stderr);
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);

  for (const text of outputs) {
    assert.ok(!text.includes(tokenA) && !text.includes(tokenB), "no token in any progress output");
  }
  for (const blob of await imageBytes(env.registry, repo, "b")) {
    assert.ok(!blob.includes(tokenA) && !blob.includes(tokenB), "no token in manifest, config, history or layers");
  }
});

test("secret sources: file, env, binary, id only, function; clear errors", async () => {
  const ctx = dir("bk-src-");
  const fileSecret = join(dir("bk-src-secret-"), `secret-${randomUUID()}`);
  writeFileSync(fileSecret, "from-a-file");
  const binary = randomBytes(64);
  const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");
  const ids = ["f", "e", "bin", "ONLY_ID", "fn"];
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${randomUUID()}\n` +
      ids.map((id) => `RUN --mount=type=secret,id=${id},required=true echo "${id} $(sha256sum /run/secrets/${id} | cut -c1-64)"\n`).join(""),
  );
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const build = client.build({
    context: ctx,
    env: { SECRET_ENV: "from-env" },
    secrets: { f: { file: fileSecret }, e: { env: "SECRET_ENV" }, bin: binary, ONLY_ID: "plain-string", fn: async () => "from-function" },
  });
  let logs = "";
  for await (const s of build.progress) for (const l of s.logs) logs += l.data.toString();
  await build.result;
  assert.match(logs, new RegExp(`f ${sha("from-a-file")}`));
  assert.match(logs, new RegExp(`e ${sha("from-env")}`));
  assert.match(logs, new RegExp(`bin ${sha(binary)}`));
  assert.match(logs, new RegExp(`ONLY_ID ${sha("plain-string")}`));
  assert.match(logs, new RegExp(`fn ${sha("from-function")}`));

  // id only on the CLI: the environment variable if set, else the file of that name.
  const onlyId = runCli(
    [
      "build",
      "--progress",
      "plain",
      "--secret",
      "id=ONLY_ID",
      "--secret",
      `id=f,src=${fileSecret}`,
      "--secret",
      "id=e,env=SECRET_ENV",
      "--secret",
      "id=bin,src=" + fileSecret,
      "--secret",
      "id=fn,src=" + fileSecret,
      ctx,
    ],
    {
      env: { BUILDKIT_HOST: env.buildkitHost, ONLY_ID: "plain-string", SECRET_ENV: "from-env" },
    },
  );
  assert.equal(onlyId.code, 0, onlyId.stderr);

  // Required secret not provided: the step fails naming the id.
  const missing = runCli(["build", "--progress", "plain", "--no-cache", "--secret", `id=f,src=${fileSecret}`, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost },
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /warning: the Dockerfile mounts secret "e" \(required\) but no --secret provides it/);
  assert.match(missing.stderr, /error: .*secret e: not found/);

  // Unset env=VAR: an error naming VAR, before anything runs.
  const unset = runCli(["build", "--secret", "id=e,env=BK_TEST_UNSET_VAR", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(unset.code, 2);
  assert.equal(unset.stderr.trim().split("\n").pop(), 'error: secret "e": environment variable BK_TEST_UNSET_VAR is not set; set it, or remove the secret');
  const noFile = runCli(["build", "--secret", "id=nofile,src=/nonexistent/secret", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /error: secret "nofile": cannot read file "\/nonexistent\/secret": no such file/);
});

test("conformance: a tricky context gives the same layer as buildctl", async () => {
  const ctx = dir("bk-conf-");
  const outside = dir("bk-outside-");
  writeFileSync(join(outside, "secret.txt"), "must never be read");
  mkdirSync(join(ctx, "empty"));
  mkdirSync(join(ctx, "a/b/c"), { recursive: true });
  writeFileSync(join(ctx, "a/b/c/deep.txt"), "deep\n");
  writeFileSync(join(ctx, "exec.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(ctx, "exec.sh"), 0o755);
  writeFileSync(join(ctx, "setuid"), "x");
  chmodSync(join(ctx, "setuid"), 0o4755);
  writeFileSync(join(ctx, "sticky-dir-file"), "y");
  writeFileSync(join(ctx, "hard1"), "linked content\n");
  linkSync(join(ctx, "hard1"), join(ctx, "hard2"));
  symlinkSync("a/b/c/deep.txt", join(ctx, "link-inside"));
  symlinkSync(join(outside, "secret.txt"), join(ctx, "link-outside"));
  symlinkSync("../../etc/passwd", join(ctx, "link-dotdot"));
  writeFileSync(join(ctx, "ünïcödé-名前.txt"), "unicode\n");
  writeFileSync(join(ctx, "Zebra"), "z");
  writeFileSync(join(ctx, "apple"), "a");
  mkdirSync(join(ctx, "logs/keep"), { recursive: true });
  writeFileSync(join(ctx, "logs/a.log"), "drop");
  writeFileSync(join(ctx, "logs/keep/important.log"), "keep");
  writeFileSync(join(ctx, "logs/keep/other.txt"), "drop too?");
  mkdirSync(join(ctx, "node_modules/x"), { recursive: true });
  writeFileSync(join(ctx, "node_modules/x/index.js"), "drop");
  writeFileSync(join(ctx, ".dockerignore"), "**/*.log\n!logs/keep/important.log\nnode_modules\nlogs/keep/other.txt\n");
  writeFileSync(join(ctx, "Dockerfile"), "FROM scratch\nCOPY . /ctx\n");

  const tag = randomUUID().slice(0, 8);
  const ours = `${env.registry}/bk-test/conf:ours-${tag}`;
  const theirs = `${env.registry}/bk-test/conf:buildctl-${tag}`;
  const r = runCli(["build", "--progress", "plain", "-o", `type=image,name=${ours},push=true`, ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(r.code, 0, r.stderr);
  buildctlBuild(ctx, `type=image,name=${theirs},push=true`);
  const a = await getManifest(env.registry, "bk-test/conf", `ours-${tag}`);
  const b = await getManifest(env.registry, "bk-test/conf", `buildctl-${tag}`);
  assert.equal(a.layers.length, 1);
  assert.deepEqual(
    a.layers.map((l) => l.digest),
    b.layers.map((l) => l.digest),
    "identical layer digests",
  );
  const layer = Buffer.concat(await imageBytes(env.registry, "bk-test/conf", `ours-${tag}`));
  assert.ok(!layer.includes("must never be read"), "the symlink target outside the context was not read");
  assert.ok(layer.includes("important.log") && !layer.includes("index.js"), ".dockerignore with ! and ** applied");
});

test("10 concurrent builds on one client each see only their own secret", async () => {
  const ctx = dir("bk-conc-");
  const run = randomUUID();
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nARG N\nRUN --mount=type=secret,id=tok,required=true echo "build $N ${run} sees $(sha256sum /run/secrets/tok | cut -c1-64)"\n`,
  );
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const secrets = Array.from({ length: 10 }, () => randomBytes(16).toString("hex"));
  const results = await Promise.all(
    secrets.map(async (secret, n) => {
      const build = client.build({ context: ctx, buildArgs: { N: String(n) }, secrets: { tok: secret } });
      let logs = "";
      for await (const s of build.progress) for (const l of s.logs) logs += l.data.toString();
      await build.result;
      return logs;
    }),
  );
  results.forEach((logs, n) => {
    const hash = createHash("sha256").update(secrets[n]!).digest("hex");
    assert.match(logs, new RegExp(`build ${n} ${run} sees ${hash}`));
    for (const [m, other] of secrets.entries()) {
      if (m !== n) assert.ok(!logs.includes(createHash("sha256").update(other).digest("hex")), `build ${n} saw build ${m}'s secret`);
    }
  });
});

/**
 * A context whose step prints "started-...", sleeps 4 s, then asks the fake
 * index for `marker`: if that request arrives, the step was not stopped.
 */
function sleepingStep(prefix: string, markerPrefix: string): { ctx: string; marker: string } {
  const ctx = dir(prefix);
  const marker = `/${markerPrefix}${randomUUID()}`;
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo started-${randomUUID()} && sleep 4 && wget -q -O- http://127.0.0.1:${indexPort}${marker} || true\n`,
  );
  return { ctx, marker };
}

test("aborting a build cancels the daemon's step", async () => {
  const { ctx, marker } = sleepingStep("bk-cancel-", "after-sleep-");
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const ac = new AbortController();
  const build = client.build({ context: ctx, signal: ac.signal });
  const printer: string[] = [];
  const p = new PlainPrinter((t) => void printer.push(t));
  const requested = recordIndexRequests();
  const t = Date.now();
  let aborted = false;
  for await (const s of build.progress) {
    p.update(s);
    if (!aborted && s.logs.some((l) => l.data.toString().includes("started-"))) {
      aborted = true;
      ac.abort();
    }
  }
  p.flush();
  await assert.rejects(build.result);
  assert.ok(aborted, "the step started");
  assert.ok(Date.now() - t < 4000, `the build ended ${Date.now() - t} ms after starting`);
  assert.ok(!(await requested(5000)).includes(marker), "the step was stopped before its sleep ended");
});

test("a failed step prints its last log lines, the Dockerfile snippet and error:, exit 1", () => {
  const ctx = dir("bk-fail-");
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ok-${randomUUID()}\nRUN echo 'about to fail' && exit 3\n`);
  const r = runCli(["build", "--progress", "plain", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /------\n > \[3\/3\] RUN echo 'about to fail' && exit 3:\n\d+\.\d+ about to fail\n------\n/);
  assert.match(r.stderr, /Dockerfile:3\n-{20}\n +1 \| +FROM .*\n +2 \| +RUN echo ok-.*\n +3 \| >>> RUN echo 'about to fail' && exit 3\n/);
  assert.match(r.stderr, /\nerror: failed to solve: process "\/bin\/sh -c echo 'about to fail' && exit 3" did not complete successfully: exit code: 3\n$/);
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace without --debug");
});

test("a 300 MB context in 10,000 files arrives intact; one changed file is all that is sent next", async (t) => {
  const ctx = tempDir("bk-big-", t);
  const files = 10_000;
  const size = 30 * 1024; // 10,000 x 30 KiB = 293 MiB, over 300 MB
  const all = createHash("sha256");
  const lines: string[] = [];
  for (let i = 0; i < files; i++) {
    const sub = join(ctx, `d${String(i % 100).padStart(2, "0")}`);
    if (i < 100) mkdirSync(sub);
    const content = randomBytes(size);
    const name = `f${String(i).padStart(5, "0")}.bin`;
    writeFileSync(join(sub, name), content);
    lines.push(`${createHash("sha256").update(content).digest("hex")}  ./d${String(i % 100).padStart(2, "0")}/${name}`);
  }
  lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
  all.update(lines.join("\n") + "\n");
  const expected = all.digest("hex");
  const dfDir = tempDir("bk-big-df-", t);
  writeFileSync(
    join(dfDir, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=bind,target=/ctx cd /ctx && find . -type f | sort | xargs sha256sum | sha256sum && find . -type f | wc -l\n`,
  );
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const once = async (): Promise<{ logs: string; sent: number; transferred: number }> => {
    const build = client.build({ context: ctx, dockerfile: join(dfDir, "Dockerfile"), noCache: true });
    let logs = "";
    let transferred = 0;
    for await (const s of build.progress) {
      for (const l of s.logs) logs += l.data.toString();
      for (const st of s.statuses) if (/transferring context/.test(st.id)) transferred = Math.max(transferred, st.current);
    }
    const r = await build.result;
    return { logs, sent: r.bytesSent["context"] ?? 0, transferred };
  };
  const first = await once();
  assert.match(first.logs, new RegExp(`${expected}  -`), "every byte arrived");
  assert.match(first.logs, /\b10000\b/);
  assert.ok(first.sent >= files * size, `sent ${first.sent}`);

  appendFileSync(join(ctx, "d07", "f00007.bin"), "changed");
  const second = await once();
  assert.doesNotMatch(second.logs, new RegExp(expected), "the change arrived");
  assert.equal(second.sent, size + "changed".length, "only the changed file's bytes were sent");
  // The daemon's own counter also includes every entry's metadata (~35 bytes each).
  assert.ok(first.transferred >= files * size, `first transfer ${first.transferred}`);
  assert.ok(second.transferred < first.transferred / 100, `the daemon reports ${second.transferred} bytes transferred (first: ${first.transferred})`);
});

test("named contexts, a Dockerfile outside the context, and no handles left open", async () => {
  const leftOpen = trackHandles();
  const ctx = dir("bk-named-");
  const extra = dir("bk-extra-");
  const dfDir = dir("bk-dfout-");
  writeFileSync(join(ctx, "main.txt"), "from the main context\n");
  writeFileSync(join(extra, "extra.txt"), "from a named context\n");
  writeFileSync(
    join(dfDir, "build.Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nCOPY main.txt /\nCOPY --from=assets extra.txt /\nRUN cat /main.txt /extra.txt && echo ${randomUUID()}\n`,
  );
  {
    await using client = await BuildKitClient.connect({ address: env.buildkitHost });
    const build = client.build({ context: ctx, dockerfile: join(dfDir, "build.Dockerfile"), buildContexts: { assets: extra } });
    let logs = "";
    for await (const s of build.progress) for (const l of s.logs) logs += l.data.toString();
    await build.result;
    assert.match(logs, /from the main context\nfrom a named context/);
  }
  const cli = runCli(["build", "--progress", "plain", "-f", join(dfDir, "build.Dockerfile"), "--build-context", `assets=${extra}`, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost },
  });
  assert.equal(cli.code, 0, cli.stderr);
  const bad = runCli(["build", "-f", join(dfDir, "build.Dockerfile"), "--build-context", "assets=/nonexistent/dir", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost },
  });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /error: build context "assets=\/nonexistent\/dir" is not a directory/);

  assert.deepEqual(await leftOpen(5000), [], "the build and its session left nothing open");
});

/**
 * Runs a CLI build of a sleeping step and sends `signals` (at once) when the
 * step has started; resolves with how it ended and whether the step went
 * on to make its request after the sleep.
 */
async function signalledBuild(prefix: string, ...signals: NodeJS.Signals[]): Promise<{ code: number | null; stderr: string; ms: number; stepRan: boolean }> {
  const { ctx, marker } = sleepingStep(prefix, `after-${signals.join("-")}-`);
  const requested = recordIndexRequests();
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [cliPath, "build", "--progress", "plain", ctx], {
    env: { ...process.env, BUILDKIT_HOST: env.buildkitHost },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let sent = false;
  let t = 0;
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /started-/.test(stderr.replace(/RUN echo started-/g, ""))) {
        sent = true; // once the step runs; a second signal would force an immediate exit
        t = Date.now();
        for (const sig of signals) child.kill(sig);
      }
    });
    child.on("close", resolve);
  });
  assert.ok(sent, `the step never started:\n${stderr}`);
  return { code, stderr, ms: Date.now() - t, stepRan: (await requested(5000)).includes(marker) };
}

test("Ctrl-C in the CLI cancels the daemon's step and exits 130", async () => {
  const r = await signalledBuild("bk-sigint-", "SIGINT");
  assert.equal(r.code, 130, r.stderr);
  assert.ok(r.ms < 3000, `exited ${r.ms} ms after the signal`);
  assert.match(r.stderr, /error: interrupted\n$/);
  assert.ok(!r.stepRan, "the step was stopped");
});

for (const [signal, code] of [
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const) {
  test(`${signal} cancels the daemon's step too and exits ${code} with one error: line`, async () => {
    const r = await signalledBuild(`bk-${signal.toLowerCase()}-`, signal);
    assert.equal(r.code, code, r.stderr);
    assert.ok(r.ms < 3000, `exited ${r.ms} ms after the signal`);
    assert.deepEqual(r.stderr.match(/^error: .*$/gm), [`error: terminated by ${signal}`], r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.ok(!r.stepRan, "the daemon's step was stopped before its sleep ended");
  });
}

test("a second signal exits at once, and the daemon still stops the step", async () => {
  // Two different signals, sent together: the same one twice may merge into
  // one while pending, and a second sent later may find the process gone.
  // The kernel may deliver them in either order; the second one's code wins.
  const r = await signalledBuild("bk-sigterm2-", "SIGTERM", "SIGINT");
  assert.ok(r.code === 143 || r.code === 130, `exit ${r.code}\n${r.stderr}`);
  assert.ok(r.ms < 1500, `exited ${r.ms} ms after the first signal`);
  assert.match(r.stderr, /^error: interrupted again; exiting now$/m);
  assert.ok(!r.stepRan, "the daemon's step was stopped when the client went away");
});

test("a failing secret provider's message (which may hold the value) is never passed on", async () => {
  const ctx = dir("bk-leak-");
  const value = `leaky-${randomBytes(8).toString("hex")}`;
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=s,required=true echo ${randomUUID()}\n`);
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const build = client.build({
    context: ctx,
    secrets: {
      s: async () => {
        throw new Error(`vault said no for ${value}`);
      },
    },
  });
  let seen = "";
  for await (const s of build.progress)
    seen += JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)) + Buffer.concat(s.logs.map((l) => l.data)).toString();
  const err = await build.result.then(
    () => assert.fail("the build should fail"),
    (e: unknown) => e as Error,
  );
  // The caller gets the provider's error as the cause; buildkitd, the progress and the message never see its text.
  assert.ok(err instanceof BuildKitError, String(err));
  assert.match(err.message, /^secret "s" could not be provided/);
  assert.ok(err.cause instanceof Error && err.cause.message === `vault said no for ${value}`, "the cause is the thrown error");
  for (const text of [err.message, String(err.stack), seen]) {
    assert.ok(!text.includes(value) && !text.includes("vault said no"), "the provider's message is not passed on");
  }
});

test("a secret function that never answers ends the build after secretTimeoutMs, naming the id", async () => {
  const ctx = dir("bk-slow-secret-");
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=slow,required=true echo ${randomUUID()}\n`);
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  // The signal only bounds this test, should the timeout not work.
  const build = client.build({
    context: ctx,
    secretTimeoutMs: 1000,
    signal: AbortSignal.timeout(20_000),
    secrets: { slow: () => new Promise<string>(() => undefined) },
  });
  for await (const _ of build.progress) void _;
  await assert.rejects(build.result, {
    code: "DEADLINE_EXCEEDED",
    message: 'secret "slow" could not be provided: its function did not answer within 1 s; make it answer sooner, or raise secretTimeoutMs',
  });
});

/**
 * `bk-build build --addr ...` as a user who cannot read root's files: as
 * root, nobody over the TLS endpoint (the unix socket is root's), with a
 * copy of the client certificates; undefined when there is no such endpoint.
 */
function nonRootBuild(): string[] | undefined {
  if (process.getuid?.() !== 0) return [process.execPath, cliPath, "build", "--addr", env.buildkitHost];
  if (!env.tlsHost || !env.tlsDir) return undefined;
  const tls = dir("bk-unreadable-tls-");
  chmodSync(tls, 0o755);
  for (const f of ["ca.pem", "cert.pem", "key.pem"]) {
    writeFileSync(join(tls, f), readFileSync(join(env.tlsDir, "client", f)));
    chmodSync(join(tls, f), 0o644);
  }
  return ["runuser", "-u", "nobody", "--", process.execPath, cliPath, "build", "--tlsdir", tls, "--addr", env.tlsHost];
}

test("an unreadable file in the context fails with one line naming it and what to do", (t) => {
  const ctx = dir("bk-unreadable-");
  chmodSync(ctx, 0o755);
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nCOPY . /x\n`);
  writeFileSync(join(ctx, "locked.txt"), "not for you\n");
  chmodSync(join(ctx, "locked.txt"), 0o000);
  const nonRoot = nonRootBuild();
  if (!nonRoot) {
    t.skip("needs the TLS endpoint of scripts/test-env.sh to run as a non-root user");
    return;
  }
  const r = spawnSync(nonRoot[0]!, [...nonRoot.slice(1), "--progress", "quiet", ctx], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stderr);
  const path = join(ctx, "locked.txt");
  assert.match(
    r.stderr,
    new RegExp(
      `^error: .*cannot read ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: permission denied \\(fix its permissions or exclude it in \\.dockerignore\\)$`,
      "m",
    ),
  );
  assert.equal(r.stderr.split(path).length - 1, 1, `the path is named once:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

test("a FIFO as -f or as --secret src= fails within seconds with one line and exit 2, instead of hanging", async () => {
  const ctx = dir("bk-fifo-");
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=s,required=true echo ${randomUUID()}\n`);
  const fifo = join(dir("bk-fifo-p-"), "pipe");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  // Before the fix, both waited for a writer that never comes: the timeout kills them.
  const asDockerfile = await runCliAsync(["build", "--progress", "plain", "-f", fifo, ctx], { env: { BUILDKIT_HOST: env.buildkitHost }, timeoutMs: 20_000 });
  assert.equal(asDockerfile.code, 2, asDockerfile.stderr);
  assert.equal(asDockerfile.stderr, `error: cannot read Dockerfile "${fifo}" (-f): not a regular file (a FIFO); pass a regular file\n`);
  assert.ok(asDockerfile.ms < 5000, `took ${asDockerfile.ms} ms`);
  const asSecret = await runCliAsync(["build", "--progress", "plain", "--secret", `id=s,src=${fifo}`, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost },
    timeoutMs: 20_000,
  });
  assert.equal(asSecret.code, 2, asSecret.stderr);
  assert.equal(
    asSecret.stderr,
    `error: secret "s": cannot read file "${fifo}": the pipe is empty and nothing writes to it; start what writes it before the build, or pass a regular file\n`,
  );
  assert.ok(asSecret.ms < 5000, `took ${asSecret.ms} ms`);
});

test("--secret src=<(cmd): the pipe is read once, and two RUN steps both see its value", () => {
  const ctx = dir("bk-pipe-");
  const value = token();
  const mount = "--mount=type=secret,id=s,required=true";
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${randomUUID()}\n` +
      `RUN ${mount} echo "one $(sha256sum /run/secrets/s | cut -c1-64)"\n` +
      `RUN ${mount} echo "two $(sha256sum /run/secrets/s | cut -c1-64)"\n`,
  );
  // As a shell user writes it: bash turns <(...) into /dev/fd/63, a pipe readable once.
  const r = spawnSync("bash", ["-c", 'exec "$NODE" "$CLI" build --progress plain --secret id=s,src=<(printf %s "$V") "$CTX"'], {
    encoding: "utf8",
    env: { ...process.env, NODE: process.execPath, CLI: cliPath, V: value, CTX: ctx, BUILDKIT_HOST: env.buildkitHost },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const hash = createHash("sha256").update(value).digest("hex");
  assert.match(r.stderr, new RegExp(`^#\\d+ \\d+\\.\\d+ one ${hash}$`, "m"));
  assert.match(r.stderr, new RegExp(`^#\\d+ \\d+\\.\\d+ two ${hash}$`, "m"), "the second step got the same value, not an empty one");
  assert.ok(!r.stderr.includes(value) && !r.stdout.includes(value), "the value is never printed");
});

test("NODE_DEBUG=bk-build traces the transport and the session, and never a secret or a registry password", () => {
  const ctx = dir("bk-debug-");
  const value = token();
  const password = token();
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=s,required=true echo "${randomUUID()} $(sha256sum /run/secrets/s | cut -c1-64)"\n`,
  );
  const r = runCli(["build", "--progress", "plain", "--secret", "id=s,env=BK_DEBUG_SECRET", "--registry-auth", `${env.registry}=ci:BK_DEBUG_PASSWORD`, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, NODE_DEBUG: "bk-build", BK_DEBUG_SECRET: value, BK_DEBUG_PASSWORD: password },
  });
  assert.equal(r.code, 0, r.stderr);
  // The trace is on: dials, and the daemon's calls on the session, secrets included.
  assert.match(r.stderr, /^BK-BUILD \d+: connection \d+: dialling/m);
  assert.match(r.stderr, /^BK-BUILD \d+: session server: \/moby\.buildkit\.secrets\.v1\.Secrets\/GetSecret$/m);
  assert.match(r.stderr, new RegExp(createHash("sha256").update(value).digest("hex")), "the step read the secret");
  for (const [what, v] of [
    ["secret", value],
    ["password", password],
  ] as const) {
    assert.ok(!r.stderr.includes(v) && !r.stdout.includes(v), `the ${what} is never printed, not even in the trace`);
  }
});

test("a secret file that is a directory or unreadable fails before the build is sent, naming the id and the path", (t) => {
  const ctx = dir("bk-badsecret-");
  chmodSync(ctx, 0o755);
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=s,required=true echo ${randomUUID()}\n`);
  chmodSync(join(ctx, "Dockerfile"), 0o644);
  const secretDir = dir("bk-secretdir-");
  const isDir = runCli(["build", "--progress", "plain", "--secret", `id=s,src=${secretDir}`, ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(isDir.code, 2, isDir.stderr);
  // Only the error: no progress, so nothing was solved.
  assert.equal(isDir.stderr, `error: secret "s": cannot read file "${secretDir}": is a directory; pass a file\n`);

  const nonRoot = nonRootBuild();
  if (!nonRoot) {
    t.skip("needs the TLS endpoint of scripts/test-env.sh to run as a non-root user");
    return;
  }
  // Outside the context, in a directory nobody may enter: only the file itself is closed.
  const lockedDir = dir("bk-badsecret-locked-");
  chmodSync(lockedDir, 0o755);
  const locked = join(lockedDir, "secret");
  writeFileSync(locked, "not for you");
  chmodSync(locked, 0o600);
  const r = spawnSync(nonRoot[0]!, [...nonRoot.slice(1), "--progress", "plain", "--secret", `id=s,src=${locked}`, ctx], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `error: secret "s": cannot read file "${locked}": permission denied; check its permissions\n`);
});
