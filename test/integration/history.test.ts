/**
 * Build history against real daemons: the CLI's history ls/inspect/logs/rm
 * on a buildkitd of its own (a fresh daemon has a clean history, so
 * listings are exact), secrets kept out of inspect and logs, and the API
 * (client.history(), client.buildLogs(), client.removeHistory()) on the
 * shared daemon, where only the records these tests made are looked at.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient, BuildKitError, type Build, type BuildRecord, type SolveStatus } from "../../src/index.js";
import { runCliAsync, testEnv } from "../helpers/env.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { startBuildkitd } from "../helpers/buildkitd.js";

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;

leakCheckEachTest();

/** The ref from the line a plain-progress build prints at its end. */
function refFromStderr(stderr: string): string {
  const m = /^build ref: ([a-z0-9]+) \(bk-build history inspect \1\)$/m.exec(stderr);
  assert.ok(m, `a "build ref:" line on stderr:\n${stderr}`);
  return m[1]!;
}

async function drain(build: Build): Promise<void> {
  for await (const s of build.progress) void s;
}

test("history ls/inspect/logs/rm on a fresh daemon: a good and a failed build, table and json, prefixes, rm", async (t) => {
  const d = await startBuildkitd(t);
  const cli = (args: string[]) => runCliAsync([...args, "--addr", d.address], { env: { BUILDKIT_HOST: undefined } });
  const marker = randomUUID();
  const ok = fileTree("bk-hist-ok-", { Dockerfile: `FROM ${busybox}\nRUN echo ok-${marker}\n` }, t);
  const bad = fileTree("bk-hist-bad-", { Dockerfile: `FROM ${busybox}\nRUN echo bad-${marker} && exit 3\n` }, t);
  const metadataFile = join(tempDir("bk-hist-md-", t), "metadata.json");

  const good = await cli(["build", "--progress", "plain", "--metadata-file", metadataFile, ok]);
  assert.equal(good.code, 0, good.stderr);
  const okRef = refFromStderr(good.stderr);
  const metadata = JSON.parse(readFileSync(metadataFile, "utf8")) as Record<string, unknown>;
  assert.equal(metadata["buildx.build.ref"], okRef, "the metadata file names the same ref");

  const failed = await cli(["build", "--progress", "plain", bad]);
  assert.equal(failed.code, 1, failed.stderr);
  const badRef = refFromStderr(failed.stderr);
  const lines = failed.stderr.trimEnd().split("\n");
  assert.match(lines.at(-1)!, /^error: /, "the error is still the last line");
  assert.notEqual(okRef, badRef);

  // ls, table: exactly the two builds, the failed (newer) one first.
  const ls = await cli(["history", "ls"]);
  assert.equal(ls.code, 0, ls.stderr);
  const rows = ls.stdout.trimEnd().split("\n");
  assert.match(rows[0]!, /^BUILD ID +NAME +STATUS +CREATED AT +DURATION$/);
  assert.equal(rows.length, 3, ls.stdout);
  assert.match(rows[1]!, new RegExp(`^${badRef} +Error +.+ ago +\\d+\\.\\ds$`));
  assert.match(rows[2]!, new RegExp(`^${okRef} +Completed +.+ ago +\\d+\\.\\ds$`));

  // ls, json.
  const lsJson = await cli(["history", "ls", "--format", "json"]);
  assert.equal(lsJson.code, 0, lsJson.stderr);
  const listed = JSON.parse(lsJson.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    listed.map((r) => [r["ref"], r["status"]]),
    [
      [badRef, "Error"],
      [okRef, "Completed"],
    ],
  );
  for (const r of listed) {
    assert.ok((r["total_steps"] as number) >= 2, JSON.stringify(r));
    assert.equal(typeof r["completed_at"], "string");
  }
  const onlyErrors = await cli(["history", "ls", "--filter", "status=error", "--format", "json"]);
  assert.deepEqual(
    (JSON.parse(onlyErrors.stdout) as Array<Record<string, unknown>>).map((r) => r["ref"]),
    [badRef],
  );

  // inspect by a unique prefix.
  const inspect = await cli(["history", "inspect", okRef.slice(0, 6)]);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.match(inspect.stdout, new RegExp(`^Ref: +${okRef}$`, "m"));
  assert.match(inspect.stdout, /^Frontend: +dockerfile\.v0$/m);
  assert.match(inspect.stdout, /^Dockerfile: +Dockerfile$/m);
  assert.match(inspect.stdout, /^Status: +Completed$/m);
  assert.match(inspect.stdout, /^Duration: +\d+\.\ds$/m);
  assert.match(inspect.stdout, /^Build Steps: +(\d+)\/\1 \(\d+% cached\)$/m);
  const inspectBad = await cli(["history", "inspect", badRef, "--format", "json"]);
  assert.equal(inspectBad.code, 0, inspectBad.stderr);
  const bj = JSON.parse(inspectBad.stdout) as Record<string, unknown>;
  assert.equal(bj["Status"], "Error");
  assert.equal(bj["Frontend"], "dockerfile.v0");
  assert.match((bj["Error"] as { Message: string }).Message, /did not complete successfully: exit code: 3/);
  assert.ok((bj["NumTotalSteps"] as number) >= 2);
  assert.ok((bj["DurationMs"] as number) > 0);

  // logs of the failed build: its output and its error, through the plain printer.
  const logs = await cli(["history", "logs", badRef]);
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /^#1 \[internal\] load build definition from Dockerfile$/m);
  assert.match(logs.stdout, new RegExp(`^#\\d+ \\d+\\.\\d+ bad-${marker}$`, "m"), logs.stdout);
  assert.match(logs.stdout, /^#\d+ ERROR: process "\/bin\/sh -c echo bad-.+ && exit 3" did not complete successfully: exit code: 3$/m);
  assert.match(logs.stdout, /^------\n > \[2\/2\] RUN echo bad-/m, "the failed step's last lines, as after a build");

  // Unknown and bad refs: one line, exit 2.
  const unknown = await cli(["history", "inspect", "zzzzzzzz"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, "error: no build \"zzzzzzzz\" in the history; 'bk-build history ls' lists the builds\n");
  const noSub = await cli(["history", "frobnicate"]);
  assert.equal(noSub.code, 2);
  assert.equal(noSub.stderr, 'error: unknown history subcommand "frobnicate": use ls, inspect, logs, rm\n');

  // rm right after the builds (buildkitd may still hold the record for its
  // trace), then ls and a filtered ls: the daemon must survive both.
  const rm = await cli(["history", "rm", badRef.slice(0, 8)]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout, `${badRef}\n`);
  for (const args of [
    ["history", "ls", "--format", "json"],
    ["history", "ls", "--filter", "status=completed", "--format", "json"],
    ["history", "ls"],
  ]) {
    const after = await cli(args);
    assert.equal(after.code, 0, `${args.join(" ")}: ${after.stderr}\nbuildkitd log:\n${d.log()}`);
    assert.ok(!after.stdout.includes(badRef), `${args.join(" ")} no longer shows ${badRef}:\n${after.stdout}`);
  }
  const lsAfter = await cli(["history", "ls", "--format", "json"]);
  assert.deepEqual(
    (JSON.parse(lsAfter.stdout) as Array<Record<string, unknown>>).map((r) => r["ref"]),
    [okRef],
  );
  const gone = await cli(["history", "logs", badRef]);
  assert.equal(gone.code, 2, gone.stderr);
  assert.match(gone.stderr, /^error: no build "[a-z0-9]+" in the history/);
});

test("secrets: a --secret value and secret-looking build args never appear in history inspect (text, json) or logs", async (t) => {
  const secret = `S3CRET-${randomBytes(12).toString("hex")}`;
  const ghToken = `ghp_${randomBytes(18).toString("hex").slice(0, 36)}`;
  const noteToken = `tk${randomBytes(8).toString("hex")}`;
  const plain = `plain-${randomUUID().slice(0, 8)}`;
  const ctx = fileTree(
    "bk-hist-secret-",
    {
      Dockerfile: [
        `FROM ${busybox}`,
        "ARG GH_TOKEN",
        "ARG NOTE",
        "ARG SHOWN",
        // The step uses all three without printing them.
        'RUN --mount=type=secret,id=tok test -s /run/secrets/tok && test -n "$GH_TOKEN" && test -n "$NOTE" && echo "shown=$SHOWN"',
        "",
      ].join("\n"),
    },
    t,
  );
  const build = await runCliAsync(
    [
      "build",
      "--progress",
      "plain",
      "--no-cache",
      "--secret",
      "id=tok,env=BK_HIST_SECRET",
      "--build-arg",
      `GH_TOKEN=${ghToken}`,
      "--build-arg",
      `NOTE=token=${noteToken}`,
      "--build-arg",
      `SHOWN=${plain}`,
      ctx,
    ],
    { env: { BK_HIST_SECRET: secret } },
  );
  assert.equal(build.code, 0, build.stderr);
  const ref = refFromStderr(build.stderr);
  const outputs: Array<[string, string]> = [];
  for (const args of [
    ["history", "inspect", ref],
    ["history", "inspect", ref, "--format", "json"],
    ["history", "logs", ref],
    ["history", "logs", ref, "--progress", "rawjson"],
  ]) {
    const r = await runCliAsync(args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    outputs.push([args.join(" "), r.stdout + r.stderr]);
  }
  for (const [what, text] of outputs) {
    const hidden: Array<[string, string]> = [
      ["the --secret value", secret],
      ["the GH_TOKEN build arg", ghToken],
      ["the token= in NOTE", noteToken],
    ];
    for (const [name, value] of hidden) {
      assert.ok(!text.includes(value), `${what} shows ${name}`);
    }
  }
  const [, text] = outputs[0]!;
  assert.match(text, /^BUILD ARG +VALUE$/m);
  assert.match(text, /^GH_TOKEN +xxxxx$/m);
  assert.match(text, /^NOTE +token=xxxxx$/m);
  assert.match(text, new RegExp(`^SHOWN +${plain}$`, "m"));
  const json = JSON.parse(outputs[1]![1]) as { BuildArgs: Array<{ name: string; value: string }> };
  assert.deepEqual(
    json.BuildArgs.filter((a) => ["GH_TOKEN", "NOTE", "SHOWN"].includes(a.name)),
    [
      { name: "GH_TOKEN", value: "xxxxx" },
      { name: "NOTE", value: "token=xxxxx" },
      { name: "SHOWN", value: plain },
    ],
  );
  assert.match(outputs[2]![1], new RegExp(`shown=${plain}`), "the step's own output is replayed");
  await runCliAsync(["history", "rm", ref]);
});

test("API: result.ref, client.history() by ref and filter, client.buildLogs() replays the stored progress, removeHistory()", async (t) => {
  await using client = await BuildKitClient.connect({ address: env.buildkitHost, env: {} });
  const marker = randomUUID();
  const ctx = fileTree("bk-hist-api-", { Dockerfile: `FROM ${busybox}\nRUN echo api-${marker}\n` }, t);
  const build = client.build({ context: ctx, noCache: true, env: {} });
  await drain(build);
  const result = await build.result;
  assert.equal(result.ref, build.ref, "the result carries the build's ref");

  const byRef: BuildRecord[] = [];
  for await (const r of client.history({ ref: result.ref })) byRef.push(r);
  assert.equal(byRef.length, 1);
  const rec = byRef[0]!;
  assert.equal(rec.ref, result.ref);
  assert.equal(rec.status, "completed");
  assert.equal(rec.frontend, "dockerfile.v0");
  assert.ok(rec.createdAt instanceof Date && rec.completedAt instanceof Date);
  assert.ok(rec.durationMs! >= 0);
  assert.ok(rec.steps.total >= 2 && rec.steps.completed === rec.steps.total, JSON.stringify(rec.steps));
  assert.equal(rec.logs?.mediaType, "application/vnd.buildkit.status.v0");

  const filtered: string[] = [];
  for await (const r of client.history({ filters: [`ref=${result.ref.slice(2, 12)}`, "status=completed"] })) filtered.push(r.ref);
  assert.deepEqual(filtered, [result.ref]);
  const newest: BuildRecord[] = [];
  for await (const r of client.history({ limit: 3 })) newest.push(r);
  assert.ok(newest.length <= 3 && newest.length >= 1);
  for (let i = 1; i < newest.length; i++) assert.ok(newest[i - 1]!.createdAt >= newest[i]!.createdAt, "newest first");

  const statuses: SolveStatus[] = [];
  for await (const s of client.buildLogs(result.ref)) statuses.push(s);
  const names = statuses.flatMap((s) => s.vertexes.map((v) => v.name));
  assert.ok(names.includes(`[2/2] RUN echo api-${marker}`), names.join("\n"));
  const out = statuses.flatMap((s) => s.logs.map((l) => l.data.toString())).join("");
  assert.ok(out.includes(`api-${marker}\n`), "the step's output is in the stored log");
  assert.ok(
    statuses.some((s) => s.vertexes.some((v) => v.completed)),
    "vertex completion is replayed",
  );

  await assert.rejects(
    async () => {
      for await (const s of client.buildLogs("nosuchbuildref0000000000")) void s;
    },
    (e: unknown) => e instanceof BuildKitError && e.code === "NOT_FOUND" && /no build nosuchbuildref0000000000 in buildkitd's history/.test(e.message),
  );

  await client.removeHistory(result.ref);
  const left: string[] = [];
  for await (const r of client.history({ filters: [`ref=${result.ref}`] })) left.push(r.ref);
  assert.deepEqual(left, [], "removed");
  await assert.rejects(async () => {
    for await (const r of client.history({ filters: ["status=bogus"] })) void r;
  }, /invalid history filter "status=bogus"/);
});

test("API: buildLogs() of a running build follows its live progress to the end; activeOnly lists it while it runs", async (t) => {
  await using client = await BuildKitClient.connect({ address: env.buildkitHost, env: {} });
  const marker = randomUUID();
  const ctx = fileTree("bk-hist-live-", { Dockerfile: `FROM ${busybox}\nRUN echo live-${marker} && sleep 3 && echo end-${marker}\n` }, t);
  const build = client.build({ context: ctx, noCache: true, env: {} });
  let own = "";
  const consumed = (async () => {
    for await (const s of build.progress) for (const l of s.logs) own += l.data.toString();
  })();
  // Wait until the step runs.
  for (const end = Date.now() + 60_000; !own.includes(`live-${marker}\n`) && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
  assert.ok(own.includes(`live-${marker}\n`), "the step started");
  const active: BuildRecord[] = [];
  for await (const r of client.history({ activeOnly: true })) active.push(r);
  const mine = active.find((r) => r.ref === build.ref);
  assert.ok(mine, `the running build is listed with activeOnly: ${active.map((r) => r.ref).join(", ")}`);
  assert.equal(mine.status, "running");
  assert.equal(mine.completedAt, undefined);
  let replayed = "";
  for await (const s of client.buildLogs(build.ref)) for (const l of s.logs) replayed += l.data.toString();
  assert.ok(replayed.includes(`end-${marker}\n`), `the live log went on to the step's end:\n${replayed}`);
  await build.result;
  await consumed;
  await client.removeHistory(build.ref);
});
