/**
 * --call check|outline|targets on the real buildkitd, with buildx (v0.38.2,
 * a remote builder pointed at the same daemon, in a Docker config of its
 * own) as the oracle: same stdout, same JSON, same exit codes.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { BuildKitClient, UnsupportedSubrequestError, type CheckResult } from "../../src/index.js";
import { runCli, testEnv, type RunResult } from "../helpers/env.js";
import { remoteBuildx, type Buildx } from "../helpers/buildx.js";
import { fileTree } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

const env = testEnv();
const base = `${env.registry}/bk-test/busybox:latest`;

leakCheckEachTest();

/** Findings: FromAsCasing (FROM ... as), JSONArgsRecommended (shell-form CMD), UndefinedVar ($NOPE). */
const LINTY = [`FROM ${base} as build`, "ENV PATH=$NOPE:$PATH", "RUN true", "CMD echo hi", ""].join("\n");
const CLEAN = [`FROM ${base}`, 'CMD ["true"]', ""].join("\n");
const BROKEN = [`FROM ${base}`, "FROM base AS", "RUN true", ""].join("\n");
const OUTLINED = [
  `FROM ${base} AS deps`,
  "RUN true",
  "",
  "# final the image that ships",
  `FROM ${base} AS final`,
  "# GREETING says hello",
  "ARG GREETING=hello",
  "ARG EMPTY",
  // One mount per line: the frontend orders them by location, so two on one line come in map order.
  "RUN --mount=type=secret,id=npmrc,required=true true",
  "RUN --mount=type=secret,id=opt true",
  "RUN --mount=type=ssh,id=git,required=true true",
  "RUN --mount=type=cache,id=gocache,target=/root/.cache true",
  "",
].join("\n");

let oracle: Buildx | undefined;

before(() => {
  oracle = remoteBuildx(env.buildkitHost, `bk-call-${process.pid}`);
});

function buildx(args: string[], cwd: string): RunResult {
  return oracle!.build(args, cwd);
}

function ours(args: string[], cwd: string): RunResult {
  return runCli(["build", ...args], { cwd, env: { BUILDKIT_HOST: env.buildkitHost } });
}

/** A check result's JSON without the LLB definitions in its sources: they carry each run's session id. */
function comparableCheckJson(text: string): unknown {
  const j = JSON.parse(text) as { sources?: Array<Record<string, unknown>> };
  for (const s of j.sources ?? []) delete s["definition"];
  return j;
}

function same(a: RunResult, b: RunResult, what: string): void {
  assert.equal(b.stdout, a.stdout, `${what}: stdout differs from buildx's\nbuildx stderr: ${a.stderr.slice(-1500)}\nour stderr: ${b.stderr.slice(-1500)}`);
  assert.equal(b.code, a.code, `${what}: exit code ${b.code}, buildx ${a.code}; our stderr: ${b.stderr.slice(-1500)}`);
}

test("--call check on a Dockerfile with findings: buildx's text, its JSON, exit 1; ignorestatus exits 0", () => {
  const dir = fileTree("bk-call-lint-", { Dockerfile: LINTY });
  const a = buildx(["--call", "check", "."], dir);
  const b = ours(["--call", "check", "."], dir);
  same(a, b, "--call check");
  assert.equal(b.code, 1);
  assert.match(b.stdout, /^Check complete, 3 warnings have been found!\n/);
  for (const rule of ["FromAsCasing", "JSONArgsRecommended", "UndefinedVar"]) assert.match(b.stdout, new RegExp(`WARNING: ${rule} - https://`));
  assert.match(b.stdout, /Dockerfile:1\n-+\n {3}1 \| >>> FROM /);

  // --check is --call check.
  same(a, ours(["--check", "."], dir), "--check");

  const aj = buildx(["--call", "check,format=json", "."], dir);
  const bj = ours(["--call", "check,format=json", "."], dir);
  assert.equal(bj.code, 1);
  assert.equal(bj.code, aj.code);
  assert.deepEqual(comparableCheckJson(bj.stdout), comparableCheckJson(aj.stdout));

  const ai = buildx(["--call", "check,ignorestatus=true", "."], dir);
  const bi = ours(["--call", "check,ignorestatus=true", "."], dir);
  same(ai, bi, "ignorestatus=true");
  assert.equal(bi.code, 0);
});

test("--call check on a clean Dockerfile: 'no warnings found', exit 0, as buildx", () => {
  const dir = fileTree("bk-call-clean-", { Dockerfile: CLEAN });
  const b = ours(["--call", "check", "."], dir);
  same(buildx(["--call", "check", "."], dir), b, "clean check");
  assert.equal(b.stdout, "Check complete, no warnings found.\n");
  assert.equal(b.code, 0);
  const aj = buildx(["--call", "check,format=json", "."], dir);
  const bj = ours(["--call", "check,format=json", "."], dir);
  assert.equal(bj.code, 0);
  assert.deepEqual(comparableCheckJson(bj.stdout), comparableCheckJson(aj.stdout));
});

test("--call check with -f names the Dockerfile as given in snippets, as buildx; a parse error is an error with its snippet, exit 1", () => {
  const dir = fileTree("bk-call-f-", { "ctx/.keep": "", "df/Lint.Dockerfile": LINTY, "df/Broken.Dockerfile": BROKEN });
  const a = buildx(["--call", "check", "-f", "df/Lint.Dockerfile", "ctx"], dir);
  const b = ours(["--call", "check", "-f", "df/Lint.Dockerfile", "ctx"], dir);
  same(a, b, "check -f");
  assert.match(b.stdout, /\ndf\/Lint\.Dockerfile:1\n/);

  const ab = buildx(["--call", "check", "-f", "df/Broken.Dockerfile", "ctx"], dir);
  const bb = ours(["--call", "check", "-f", "df/Broken.Dockerfile", "ctx"], dir);
  same(ab, bb, "check of a Dockerfile that does not parse");
  assert.equal(bb.code, 1);
  assert.match(bb.stderr, /^error: dockerfile parse error on line 2: FROM requires either one or three arguments\ndf\/Broken\.Dockerfile:2\n-+\n/m);
  assert.doesNotMatch(bb.stderr, /\n\s+at /, "no stack trace without --debug");
});

test("--call outline lists args, secrets and SSH as buildx does (text and JSON), with build args and --target applied", () => {
  const dir = fileTree("bk-call-outline-", { Dockerfile: OUTLINED });
  for (const extra of [[], ["--build-arg", "GREETING=hi"], ["--target", "deps"]]) {
    const a = buildx(["--call", "outline", ...extra, "."], dir);
    const b = ours(["--call", "outline", ...extra, "."], dir);
    same(a, b, `outline ${extra.join(" ")}`);
    const aj = buildx(["--call", "outline,format=json", ...extra, "."], dir);
    const bj = ours(["--call", "outline,format=json", ...extra, "."], dir);
    same(aj, bj, `outline,format=json ${extra.join(" ")}`);
    assert.deepEqual(JSON.parse(bj.stdout), JSON.parse(aj.stdout));
  }
  const text = ours(["--call", "outline", "."], dir).stdout;
  assert.match(text, /^TARGET: {6}final\nDESCRIPTION: the image that ships\n\nBUILD ARG {3}VALUE {3}DESCRIPTION\nGREETING {4}hello {3}says hello\n/);
  assert.match(text, /\nSECRET {3}REQUIRED\nnpmrc {4}true\nopt {6}\n\nSSH {3}REQUIRED\ngit {3}true\n\n$/);
  assert.match(ours(["--call", "outline", "--build-arg", "GREETING=hi", "."], dir).stdout, /\nGREETING {4}hi {6}says hello\n/);
});

test("--call targets lists the stages as buildx does (text and JSON)", () => {
  const dir = fileTree("bk-call-targets-", { Dockerfile: OUTLINED });
  const a = buildx(["--call", "targets", "."], dir);
  const b = ours(["--call", "targets", "."], dir);
  same(a, b, "targets");
  assert.equal(b.stdout, "TARGET          DESCRIPTION\ndeps            \nfinal (default) the image that ships\n");
  const aj = buildx(["--call", "targets,format=json", "."], dir);
  const bj = ours(["--call", "targets,format=json", "."], dir);
  same(aj, bj, "targets,format=json");
});

test("the API: check, outline and targets return typed results", async () => {
  const dir = fileTree("bk-call-api-", { Dockerfile: LINTY, "Outline.Dockerfile": OUTLINED });
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const t0 = Date.now();
  const check: CheckResult = await client.check({ context: dir });
  const checkMs = Date.now() - t0;
  assert.deepEqual(check.warnings.map((w) => w.ruleName).sort(), ["FromAsCasing", "JSONArgsRecommended", "UndefinedVar"]);
  assert.equal(check.statusCode, 1);
  assert.equal(check.version, "1.0.0");
  assert.equal(check.buildError, undefined);
  assert.equal(check.sources[0]?.filename, "Dockerfile");
  assert.equal(check.sources[0]?.data, LINTY);
  const casing = check.warnings.find((w) => w.ruleName === "FromAsCasing")!;
  assert.equal(casing.location?.sourceIndex, 0);
  assert.equal(casing.location?.ranges[0]?.start.line, 1);
  assert.match(casing.url ?? "", /^https:\/\/docs\.docker\.com\//);
  assert.match(casing.detail ?? "", /'as' and 'FROM' keywords' casing do not match/);

  const clean = await client.check({ context: dir, dockerfile: join(dir, "Outline.Dockerfile") });
  assert.deepEqual(clean.warnings, []);
  assert.equal(clean.statusCode, 0);

  const outline = await client.outline({ context: dir, dockerfile: join(dir, "Outline.Dockerfile"), buildArgs: { GREETING: "hi" } });
  assert.equal(outline.name, "final");
  assert.equal(outline.description, "the image that ships");
  assert.deepEqual(
    outline.args.map((a) => [a.name, a.value, a.description]),
    [
      ["GREETING", "hi", "says hello"],
      ["EMPTY", undefined, undefined],
    ],
  );
  assert.deepEqual(
    outline.secrets.map((s) => [s.name, s.required]),
    [
      ["npmrc", true],
      ["opt", false],
    ],
  );
  assert.deepEqual(
    outline.ssh.map((s) => [s.name, s.required]),
    [["git", true]],
  );
  // buildkit v0.24's frontend does not list cache mounts in the outline (the JSON equality above covers what it sends).
  assert.deepEqual(outline.cache, []);

  const targets = await client.targets({ context: dir, dockerfile: join(dir, "Outline.Dockerfile") });
  assert.deepEqual(
    targets.targets.map((t) => [t.name, t.default, t.base]),
    [
      ["deps", false, base],
      ["final", true, base],
    ],
  );
  // A cancelled call rejects with CANCELLED and leaves the client usable.
  const ac = new AbortController();
  const cancelled = client.check({ context: dir, signal: ac.signal });
  ac.abort();
  await assert.rejects(cancelled, (e: unknown) => (e as { code?: string }).code === "CANCELLED");
  await assert.rejects(client.check({ context: join(dir, "missing") }), /build context ".*missing" is not a directory/);
  // Calls leave no job behind: another round trip on the same client works.
  assert.equal((await client.check({ context: dir })).warnings.length, 3);
  assert.ok(checkMs < 10_000, `check took ${checkMs} ms`);
});

test("compose build --check lints every service, each line prefixed with its service; exit 1 when one has warnings", () => {
  const dir = fileTree("bk-call-compose-", {
    "compose.yaml": [
      "services:",
      "  web:",
      "    build:",
      "      context: .",
      "      dockerfile: Web.Dockerfile",
      "  db:",
      "    build:",
      "      context: db",
      "",
    ].join("\n"),
    "Web.Dockerfile": LINTY,
    "db/Dockerfile": CLEAN,
  });
  const r = runCli(["compose", "-f", join(dir, "compose.yaml"), "build", "--check"], { cwd: dir, env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.ok(
    lines.every((l) => /^(web|db ) \|( |$)/.test(l)),
    r.stdout,
  );
  const web = lines.filter((l) => l.startsWith("web |")).map((l) => l.replace(/^web \| ?/, ""));
  const db = lines.filter((l) => l.startsWith("db  |")).map((l) => l.replace(/^db {2}\| ?/, ""));
  // Each service's part is what `build --check` prints for it.
  const alone = ours(["--check", "-f", "Web.Dockerfile", "."], dir);
  assert.equal(web.join("\n") + "\n", alone.stdout);
  assert.deepEqual(db, ["Check complete, no warnings found."]);

  const ok = fileTree("bk-call-compose-ok-", { "compose.yaml": "services:\n  db:\n    build: .\n", Dockerfile: CLEAN });
  const r2 = runCli(["compose", "-f", join(ok, "compose.yaml"), "build", "--check"], { cwd: ok, env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.stdout, "db | Check complete, no warnings found.\n");
});

test("a daemon whose frontend predates subrequests (the test Engine's BuildKit): one clear line, exit 1, for each call", async () => {
  const dir = fileTree("bk-call-old-", { Dockerfile: CLEAN });
  for (const [call, request] of [
    ["check", "frontend.lint"],
    ["outline", "frontend.outline"],
    ["targets", "frontend.targets"],
  ] as const) {
    const r = runCli(["--addr", `docker+${env.docker.host}`, "build", "--call", call, "."], {
      cwd: dir,
      env: { DOCKER_HOST: undefined, DOCKER_CONTEXT: undefined },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `error: the daemon's Dockerfile frontend does not support ${request} (it is too old): use a newer buildkitd, or a newer frontend with # syntax=docker/dockerfile:1\n`,
    );
  }
  await using client = await BuildKitClient.connect({ address: `docker+${env.docker.host}`, env: {} });
  await assert.rejects(client.check({ context: dir }), (e: unknown) => e instanceof UnsupportedSubrequestError && e.subrequest === "frontend.lint");
});

test("--call check with the Dockerfile on stdin: named as buildx names it: stdin for -f -, -/Dockerfile for an archive on stdin", () => {
  const dir = fileTree("bk-call-stdin-", { "hello.txt": "hi\n", Dockerfile: LINTY });
  const tar = spawnSync("tar", ["-c", "-f", "-", "Dockerfile", "hello.txt"], { cwd: dir }).stdout;
  const cases: Array<[string[], string | Buffer, RegExp]> = [
    [["--call", "check", "-f", "-", "."], LINTY, /^stdin:\d+$/m],
    [["--call", "check", "-"], tar, /^-\/Dockerfile:\d+$/m],
  ];
  for (const [args, input, name] of cases) {
    const a = oracle!.build(args, dir, {}, input);
    const b = runCli(["build", ...args], { cwd: dir, env: { BUILDKIT_HOST: env.buildkitHost }, input });
    same(a, b, args.join(" "));
    assert.match(b.stdout, name, b.stdout);
  }
  // A bare Dockerfile as the context `-`: buildx names the empty temporary directory it makes (/tmp/empty-dirNNN/Dockerfile); we say -/Dockerfile.
  const a = oracle!.build(["--call", "check", "-"], dir, {}, LINTY);
  const b = runCli(["build", "--call", "check", "-"], { cwd: dir, env: { BUILDKIT_HOST: env.buildkitHost }, input: LINTY });
  assert.equal(b.stdout, a.stdout.replace(/^\/tmp\/empty-dir\d+\/Dockerfile:/gm, "-/Dockerfile:"));
  assert.equal(b.code, a.code);
});
