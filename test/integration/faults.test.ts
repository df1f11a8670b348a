/**
 * Faults against real daemons: buildkitd killed or stopped mid-build (each
 * test with a buildkitd of its own, test/helpers/buildkitd.ts), a soak of
 * 2000 cached builds on one client, and 50 concurrent builds with distinct
 * secrets on the shared daemon.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { BuildKitClient, BuildKitError, type Build } from "../../src/index.js";
import { repoRoot, testEnv } from "../helpers/env.js";
import { fileTree } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { startBuildkitd } from "../helpers/buildkitd.js";
import { imageBytes } from "../helpers/registry.js";

const env = testEnv();
const cliPath = join(repoRoot, "dist", "src", "cli", "bin.js");
const busybox = `${env.registry}/bk-test/busybox:latest`;

leakCheckEachTest();

interface Settled<T> {
  ok: boolean;
  value?: T;
  error?: unknown;
  /** false when it had not settled after the limit. */
  settled: boolean;
  ms: number;
}

/** Waits for `p` at most `limitMs`; says how it ended and when (a hang is a result, not a stuck test). */
async function settle<T>(p: Promise<T>, limitMs: number): Promise<Settled<T>> {
  const t = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Settled<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, settled: false, ms: Date.now() - t }), limitMs);
  });
  const done = p.then(
    (value): Settled<T> => ({ ok: true, value, settled: true, ms: Date.now() - t }),
    (error: unknown): Settled<T> => ({ ok: false, error, settled: true, ms: Date.now() - t }),
  );
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name} (code ${(e as { code?: string }).code ?? "none"}): ${e.message}`;
  return String(e);
}

/** Reads a build's progress to the end; its logs as text. */
async function drain(build: Build): Promise<string> {
  let logs = "";
  for await (const s of build.progress) for (const l of s.logs) logs += l.data.toString();
  return logs;
}

/** Waits until `seen()` is true, polling; false after `ms`. */
async function until(seen: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (seen()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen();
}

test("SIGKILL of buildkitd during a RUN step: the CLI exits non-zero within 10 s with one error: line saying the connection was lost", async (t) => {
  const d = await startBuildkitd(t);
  const marker = randomUUID();
  const ctx = fileTree("bk-fault-kill-", { Dockerfile: `FROM ${busybox}\nRUN echo started-${marker} && sleep 120\n` }, t);
  const child = spawn(process.execPath, [cliPath, "build", "--progress", "plain", "--addr", d.address, ctx], {
    env: { ...process.env, BUILDKIT_HOST: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  child.stdout.resume();
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    // The step's own output, not the step's name in the progress.
    const started = await until(() => stderr.replace(/RUN echo started-/g, "").includes(`started-${marker}`), 60_000);
    assert.ok(started, `the RUN step did not start within 60 s:\n${stderr}\nbuildkitd log:\n${d.log()}`);
    const killedAt = Date.now();
    await d.kill();
    const r = await settle(exit, 30_000);
    const ms = Date.now() - killedAt;
    t.diagnostic(`the CLI exited ${ms} ms after the SIGKILL, code ${String(r.value)}`);
    assert.ok(r.settled, `the CLI had not exited 30 s after buildkitd was killed; stderr so far:\n${stderr}`);
    assert.ok(r.value !== 0 && r.value !== null, `exit code ${String(r.value)}`);
    assert.ok(ms < 10_000, `the CLI exited ${ms} ms after the kill`);
    const errors = stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, `one error: line, got:\n${errors.join("\n")}\n-- stderr:\n${stderr}`);
    const line = errors[0]!;
    assert.ok(line.includes(d.address), `the error names the address ${d.address}: ${line}`);
    assert.match(line, /connection/i, `the error says the connection was lost: ${line}`);
    assert.match(line, /\blost\b/i, `the error says the connection was lost: ${line}`);
    assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  } finally {
    child.kill("SIGKILL");
    await exit;
  }
});

test("a client connected before buildkitd was killed builds again after the restart, without a new connect()", async (t) => {
  const d = await startBuildkitd(t);
  await using client = await BuildKitClient.connect({ address: d.address, env: {} });
  const before = fileTree("bk-fault-before-", { Dockerfile: `FROM ${busybox}\nRUN echo before-${randomUUID()}\n` }, t);
  const warm = client.build({ context: before, env: {} });
  await drain(warm);
  await warm.result;

  // A build in flight when the daemon dies ends with an error, soon.
  const marker = randomUUID();
  const sleeping = fileTree("bk-fault-inflight-", { Dockerfile: `FROM ${busybox}\nRUN echo started-${marker} && sleep 120\n` }, t);
  const inflight = client.build({ context: sleeping, env: {} });
  let logs = "";
  const progress = (async () => {
    for await (const s of inflight.progress) for (const l of s.logs) logs += l.data.toString();
  })();
  assert.ok(await until(() => logs.includes(`started-${marker}`), 60_000), `the RUN step did not start:\n${d.log()}`);
  const killedAt = Date.now();
  await d.kill();
  const lost = await settle(inflight.result, 30_000);
  t.diagnostic(
    `the in-flight build ${lost.settled ? `ended ${Date.now() - killedAt} ms after the kill: ${lost.ok ? "succeeded" : describe(lost.error)}` : "had not ended 30 s after the kill"}`,
  );
  assert.ok(lost.settled && !lost.ok, `the in-flight build ${lost.settled ? "succeeded" : "had not ended 30 s after the kill"}`);
  assert.ok(lost.error instanceof BuildKitError, describe(lost.error));
  await settle(progress, 10_000);

  await d.restart();
  const after = fileTree("bk-fault-after-", { Dockerfile: `FROM ${busybox}\nRUN echo after-restart-${marker}\n` }, t);
  const again = client.build({ context: after, env: {} });
  const againLogs = drain(again);
  const r = await settle(again.result, 60_000);
  assert.ok(r.settled, "the build after the restart had not finished within 60 s");
  assert.ok(r.ok, `the build after the restart failed: ${describe(r.error)}`);
  assert.match(await againLogs, new RegExp(`after-restart-${marker}`));
});

test("SIGSTOP of buildkitd: info() fails within the client's timeout instead of hanging", async (t) => {
  const d = await startBuildkitd(t);
  await using client = await BuildKitClient.connect({ address: d.address, timeoutMs: 2000, env: {} });
  await client.info();
  d.pause();
  try {
    const r = await settle(client.info(), 8000);
    t.diagnostic(`info() on a stopped daemon: ${r.settled ? `${r.ok ? "resolved" : describe(r.error)} after ${r.ms} ms` : `still pending after ${r.ms} ms`}`);
    assert.ok(r.settled, `info() had not settled ${r.ms} ms after the daemon was stopped (timeoutMs: 2000)`);
    assert.ok(!r.ok, "info() succeeded on a stopped daemon");
    assert.ok(r.error instanceof BuildKitError, describe(r.error));
    assert.ok(r.ms < 4000, `info() failed after ${r.ms} ms (timeoutMs: 2000)`);
  } finally {
    d.resume();
  }
});

test("SIGSTOP of buildkitd: a build ends with CANCELLED within 2 s of abort()", async (t) => {
  const d = await startBuildkitd(t);
  await using client = await BuildKitClient.connect({ address: d.address, timeoutMs: 2000, env: {} });
  const ctx = fileTree("bk-fault-stop-", { Dockerfile: `FROM ${busybox}\nRUN echo ${randomUUID()}\n` }, t);
  d.pause();
  try {
    const ac = new AbortController();
    const build = client.build({ context: ctx, signal: ac.signal, env: {} });
    const progress = drain(build);
    await new Promise((r) => setTimeout(r, 500));
    ac.abort();
    const r = await settle(build.result, 10_000);
    const p = await settle(progress, 1000);
    t.diagnostic(
      `after abort(): result ${r.settled ? `${r.ok ? "resolved" : describe(r.error)} in ${r.ms} ms` : `pending after ${r.ms} ms`}; progress ${p.settled ? "ended" : "still open"}`,
    );
    assert.ok(r.settled, `the build had not ended ${r.ms} ms after abort()`);
    assert.ok(!r.ok, "the build succeeded");
    assert.equal((r.error as { code?: string }).code, "CANCELLED", describe(r.error));
    assert.ok(r.ms < 2000, `the build ended ${r.ms} ms after abort()`);
    assert.ok(p.settled, "progress ended with the build");
  } finally {
    d.resume();
  }
});

test("soak: 2000 cached builds on one client: RSS flat, file descriptors back after close(), and the process exits by itself", async (t) => {
  const d = await startBuildkitd(t);
  const builds = 2000;
  /** The trend is measured from here: see the assertion. */
  const from = 1000;
  const ctx = fileTree(
    "bk-soak-",
    {
      "hello.txt": "soak\n",
      Dockerfile: `FROM ${busybox}\nCOPY hello.txt /\nRUN --mount=type=secret,id=tok,required=true test -s /run/secrets/tok && cat /hello.txt\n`,
    },
    t,
  );
  const script = join(repoRoot, "dist", "test", "helpers", "soak-child.js");
  const started = Date.now();
  const child = spawn(process.execPath, ["--expose-gc", "--min-semi-space-size=16", "--enable-source-maps", script, d.address, ctx, String(builds)], {
    stdio: ["ignore", "pipe", "pipe"],
    // MALLOC_ARENA_MAX=2: glibc gives each thread that mallocs (libuv's
    // pool, V8's GC helpers) an arena of its own, and which arenas hold free
    // pages at a sample is luck: without it RSS wandered +-3 % between
    // samples here with the heap flat, and a CI machine saw +10 % from build
    // 200 to 1000 that way. Two arenas leave RSS to what is actually kept.
    env: { ...process.env, BUILDKIT_HOST: undefined, MALLOC_ARENA_MAX: "2" },
  });
  let stderr = "";
  let buffered = "";
  const events: Array<Record<string, number | boolean | string>> = [];
  let closedAt = 0;
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  child.stdout.on("data", (c: Buffer) => {
    buffered += c.toString();
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const e = JSON.parse(line) as Record<string, number | boolean | string>;
      if (e["event"] === "closed") closedAt = Date.now();
      events.push(e);
    }
  });
  const exit = new Promise<{ code: number | null; at: number }>((resolve) => child.on("close", (code) => resolve({ code, at: Date.now() })));
  const r = await settle(exit, 15 * 60_000);
  if (!r.settled) {
    child.kill("SIGKILL");
    await exit;
  }
  const get = (name: string, build?: number) => events.find((e) => e["event"] === name && (build === undefined || e["build"] === build));
  const mb = (n: unknown): string => `${(Number(n) / 1048576).toFixed(1)} MB`;
  const first = get("uncached");
  const loop = get("builds");
  const closed = get("closed");
  const samples = events.filter((e) => e["event"] === "memory");
  const m100 = get("memory", 100);
  const m200 = get("memory", 200);
  const m500 = get("memory", 500);
  const m1000 = get("memory", 1000);
  const mEnd = get("memory", builds);
  // Least-squares slope of RSS (and of heap + external) over the samples from
  // build `from` on, in bytes per build: one sample's noise cannot fail it, a
  // steady leak cannot hide in it.
  const slope = (key: (e: Record<string, number | boolean | string>) => number): number => {
    const pts = samples.filter((e) => Number(e["build"]) >= from).map((e) => [Number(e["build"]), key(e)] as const);
    const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
    const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
    const sxy = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
    const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
    return sxx > 0 ? sxy / sxx : NaN;
  };
  const rssSlope = slope((e) => Number(e["rss"]));
  const heapSlope = slope((e) => Number(e["heapUsed"]) + Number(e["external"]));
  t.diagnostic(
    `uncached build ${first?.["ms"]} ms; ${builds} cached builds in ${loop?.["ms"]} ms (${loop ? (Number(loop["ms"]) / builds).toFixed(1) : "?"} ms each), not cached: ${loop?.["notCached"]}`,
  );
  t.diagnostic(
    `RSS (forced GC: ${m100?.["gc"]}) at build 100: ${mb(m100?.["rss"])}, 200: ${mb(m200?.["rss"])}, 500: ${mb(m500?.["rss"])}, 1000: ${mb(m1000?.["rss"])}, ${builds}: ${mb(mEnd?.["rss"])}; heap used ${mb(m100?.["heapUsed"])} / ${mb(m1000?.["heapUsed"])} / ${mb(mEnd?.["heapUsed"])} of ${mb(m100?.["heapTotal"])} / ${mb(m1000?.["heapTotal"])} / ${mb(mEnd?.["heapTotal"])}`,
  );
  t.diagnostic(
    `trend from build ${from} over ${samples.filter((e) => Number(e["build"]) >= from).length} samples: RSS ${(rssSlope / 1024).toFixed(2)} KB/build, heap + external ${(heapSlope / 1024).toFixed(2)} KB/build`,
  );
  t.diagnostic(`open fds before connect(): ${closed?.["fdStart"]}, after close(): ${closed?.["fdEnd"]}`);
  t.diagnostic(
    `the child exited ${r.settled && closedAt ? r.value!.at - closedAt : "?"} ms after its client was closed (code ${r.value?.code}); whole soak ${Date.now() - started} ms`,
  );

  assert.ok(r.settled, `the soak child had not exited after 15 min; events: ${JSON.stringify(events)}\n${stderr}`);
  assert.equal(r.value!.code, 0, `the soak child failed:\n${stderr}`);
  assert.ok(first && loop && closed && m100 && m200 && m500 && m1000 && mEnd, `missing reports: ${JSON.stringify(events)}`);
  assert.equal(first["cached"], false, "the first build ran its RUN step");
  assert.equal(loop["notCached"], 0, "every later build was fully cached");
  // From build 1000: RSS settles slowly. Measured on 2026-12-04 with two
  // arenas over 3000 builds: RSS 100.8 MB at 250, 106.0 at 1000, 110.1 at
  // 3000, the growth all in glibc's heap (9 MB to 17.5 MB by build 1000,
  // 20.3 MB at 3000) with heap + external flat, before and after the session
  // server's HTTP/2 changed: 7.6 KB a build from 200 to 1000, 1.9 KB from
  // 1000 to 3000. Measured from 200 the test failed on a clean run of either
  // version. From 1000 a leak of 6 KB per build (6 MB over 1000 builds, 5 %
  // of RSS) fails the RSS trend; 2 KB of kept JavaScript objects or buffers
  // per build fails the heap trend.
  assert.ok(
    rssSlope * (builds - from) <= 0.05 * Number(m1000["rss"]),
    `RSS grows ${(rssSlope / 1024).toFixed(2)} KB per build from build ${from} (${mb(rssSlope * (builds - from))} over ${builds - from} builds)`,
  );
  assert.ok(heapSlope <= 2048, `heap + external grow ${(heapSlope / 1024).toFixed(2)} KB per build from build ${from}`);
  assert.equal(closed["fdEnd"], closed["fdStart"], "file descriptors back to their count before connect()");
  assert.ok(closedAt > 0 && r.value!.at - closedAt < 3000, `the child exited ${r.value!.at - closedAt} ms after close() (it must exit by itself)`);
});

test("load: 50 concurrent builds on one client, each pushed, each image holds only its own secret's hash and no token", async (t) => {
  const n = 50;
  const run = randomUUID();
  const ctx = fileTree(
    "bk-load-",
    {
      Dockerfile: `FROM ${busybox}\nARG N\nRUN --mount=type=secret,id=tok,required=true echo "${run} $N" > /n && sha256sum /run/secrets/tok | cut -c1-64 > /hash\n`,
    },
    t,
  );
  const tokens = Array.from({ length: n }, () => `tok-${randomBytes(24).toString("hex")}`);
  const hashes = tokens.map((tok) => createHash("sha256").update(tok).digest("hex"));
  const repo = "bk-test/load";
  const tag = (i: number): string => `${run.slice(0, 8)}-${i}`;
  await using client = await BuildKitClient.connect({ address: env.buildkitHost, env: {} });
  const started = Date.now();
  const results = await Promise.allSettled(
    tokens.map(async (tok, i) => {
      const build = client.build({
        context: ctx,
        buildArgs: { N: String(i) },
        secrets: { tok },
        tags: [`${env.registry}/${repo}:${tag(i)}`],
        push: true,
        env: {},
      });
      const logs = await drain(build);
      await build.result;
      return logs;
    }),
  );
  t.diagnostic(`${n} concurrent builds and pushes in ${Date.now() - started} ms`);
  const failed = results.map((r, i) => [r, i] as const).filter(([r]) => r.status === "rejected");
  assert.deepEqual(
    failed.map(([r, i]) => `build ${i}: ${describe((r as PromiseRejectedResult).reason)}`),
    [],
    "every build succeeded",
  );

  const checked = Date.now();
  for (let i = 0; i < n; i++) {
    const image = Buffer.concat(await imageBytes(env.registry, repo, tag(i)));
    assert.ok(image.includes(`${run} ${i}\n`), `image ${i} is build ${i}'s`);
    assert.ok(image.includes(hashes[i]!), `image ${i} holds its own secret's hash`);
    for (let j = 0; j < n; j++) {
      if (j !== i) assert.ok(!image.includes(hashes[j]!), `image ${i} holds build ${j}'s hash`);
      assert.ok(!image.includes(tokens[j]!), `image ${i} holds token ${j}`);
    }
    const logs = (results[i] as PromiseFulfilledResult<string>).value;
    for (const tok of tokens) assert.ok(!logs.includes(tok), `build ${i}'s progress shows a token`);
  }
  t.diagnostic(`${n} images checked in ${Date.now() - checked} ms`);
});
