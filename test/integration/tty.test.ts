/**
 * The tty progress display in a real terminal (tmux), and the plain,
 * rawjson and warnings output of real builds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { repoRoot, runCli, testEnv } from "../helpers/env.js";
import { fileTree } from "../helpers/files.js";
import { startTmux } from "../helpers/tmux.js";

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;
const bin = join(repoRoot, "dist", "src", "cli", "bin.js");
const ESC = /\x1b/;

/** A build whose second step logs a line every 250 ms for 3 s, and a FROM ... as (a FromAsCasing lint warning). */
function slowContext(t: Parameters<typeof fileTree>[2]): { ctx: string; marker: string } {
  const marker = randomUUID().slice(0, 8);
  const ctx = fileTree(
    "bk-tty-",
    {
      Dockerfile: `FROM ${busybox} as base\nRUN for i in $(seq 1 12); do echo "tick-$i ${marker}"; sleep 0.25; done\nRUN echo second-${marker} && sleep 1\n`,
    },
    t,
  );
  return { ctx, marker };
}

const ttyEnv = (more: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  BUILDKIT_HOST: env.buildkitHost,
  NO_COLOR: undefined,
  BUILDKIT_COLORS: undefined,
  BUILDKIT_PROGRESS: undefined,
  TERM: "xterm-256color",
  ...more,
});

const count = (text: string, needle: string): number => text.split(needle).length - 1;

test("tty: live header and per-step timers that advance, the running step's log tail, a final frame with every step once and no debris", async (t) => {
  const { ctx, marker } = slowContext(t);
  const term = startTmux(t, [process.execPath, bin, "build", "--no-cache", ctx], { width: 110, height: 40, env: ttyEnv() });
  await term.waitFor(new RegExp(`tick-3 ${marker}`));
  const screen1 = term.capture();
  assert.match(screen1.split("\n")[0]!, /^\[\+\] Building \d+\.\ds \(\d+\/\d+\)/, screen1);
  const run1 = screen1.split("\n").find((l) => l.includes("RUN for i"));
  assert.ok(run1, `no line for the running step:\n${screen1}`);
  assert.match(screen1, new RegExp(` => => # tick-\\d+ ${marker}`), "the running step's log tail");
  await new Promise((r) => setTimeout(r, 1200));
  const screen2 = term.capture();
  const secs = (line: string | undefined): number => Number(/ (\d+\.\d)s$/.exec(line ?? "")?.[1]);
  const run2 = screen2.split("\n").find((l) => l.includes("RUN for i"));
  assert.ok(secs(run2) >= secs(run1) + 0.8, `the step timer did not advance: "${run1}" then "${run2}"`);
  const headerSecs = (screen: string): number => Number(/^\[\+\] Building (\d+\.\d)s/.exec(screen)?.[1]);
  assert.ok(headerSecs(screen2) >= headerSecs(screen1) + 0.8, `the header's time did not advance: ${screen1.split("\n")[0]} then ${screen2.split("\n")[0]}`);
  assert.equal(await term.exitCode(), 0, term.capture({ history: true }));

  const all = term.capture({ history: true });
  const coloured = term.capture({ escapes: true });
  assert.equal(count(all, "[+] Building"), 1, `frames were not redrawn in place:\n${all}`);
  assert.match(all, /\[\+\] Building \d+\.\ds \((\d+)\/\1\) FINISHED/);
  assert.equal(count(all, "RUN for i"), 1, all);
  assert.equal(count(all, `RUN echo second-${marker}`), 1, all);
  assert.ok(!all.includes(" => => # "), `a log tail was left in the final frame:\n${all}`);
  assert.ok(!ESC.test(all) && !all.includes("[?25"), "escape sequences left as text");
  for (const line of all.split("\n")) assert.ok(line.length <= 110, `a line is wider than the terminal: ${line}`);
  // The warnings summary after the frame, its count line yellow; completed steps blue.
  assert.match(all, /\n 1 warning found \(use --debug to expand\):\n - FromAsCasing: /);
  assert.match(coloured, /\x1b\[33m1 warning found/);
  assert.match(coloured, /\x1b\[34m => \[internal\] load build definition/);
  assert.equal(term.format("#{cursor_flag}"), "1", "the cursor is visible again");
});

test("tty: NO_COLOR draws no colour; a resize mid-build leaves the final frame whole", async (t) => {
  const { ctx, marker } = slowContext(t);
  const term = startTmux(t, [process.execPath, bin, "build", "--no-cache", ctx], { width: 120, height: 40, env: ttyEnv({ NO_COLOR: "1" }) });
  await term.waitFor(new RegExp(`tick-3 ${marker}`));
  term.resize(70, 30);
  await term.waitFor(new RegExp(`tick-6 ${marker}`));
  term.resize(90, 30);
  assert.equal(await term.exitCode(), 0, term.capture({ history: true }));
  const coloured = term.capture({ escapes: true, history: true });
  assert.ok(!/\x1b\[(3\d|9\d|38;5;\d+)m/.test(coloured), `colour codes with NO_COLOR:\n${JSON.stringify(coloured)}`);
  // tmux rewraps on a narrower window and pushes the rows that no longer
  // fit above the cursor into its scrollback, where no program can reach
  // them; what must hold is the screen: the final frame, whole, once. (Rows
  // tmux rewrapped keep their "wrapped" mark when overwritten, so the screen
  // is read row by row, not with wrapped rows joined.)
  const screen = term.capture({ join: false });
  assert.equal(count(screen, "[+] Building"), 1, `a resize left an old frame on the screen:\n${screen}`);
  assert.match(screen, /^\[\+\] Building \d+\.\ds \((\d+)\/\1\) FINISHED/);
  assert.equal(count(screen, "RUN for i"), 1, screen);
  assert.equal(count(screen, `RUN echo second-${marker}`), 1, screen);
  for (const line of screen.split("\n")) {
    assert.ok(line.length < 90, `wider than the terminal: ${line}`);
    assert.ok(!/^\s+\d+\.\ds$/.test(line), `a broken line: "${line}"\n${screen}`);
  }
});

test("tty: Ctrl-C mid-build exits 130 with one error line and a clean terminal (cursor shown, one frame)", async (t) => {
  const { ctx, marker } = slowContext(t);
  const term = startTmux(t, [process.execPath, bin, "build", "--no-cache", ctx], { width: 100, height: 40, env: ttyEnv() });
  await term.waitFor(new RegExp(`tick-2 ${marker}`));
  term.keys("C-c");
  assert.equal(await term.exitCode(20_000), 130, term.capture({ history: true }));
  const all = term.capture({ history: true });
  assert.equal(count(all, "[+] Building"), 1, all);
  assert.equal(count(all, "error: interrupted"), 1, all);
  assert.ok(!ESC.test(all) && !all.includes("[?25"), all);
  assert.equal(term.format("#{cursor_flag}"), "1", "the cursor is visible again");
});

test("auto progress with stderr piped is plain (also with CI set); --progress tty on a pipe is refused", (t) => {
  const { ctx } = slowContext(t);
  for (const extra of [{}, { CI: "true" }]) {
    const r = runCli(["build", ctx], { env: { BUILDKIT_HOST: env.buildkitHost, BUILDKIT_PROGRESS: undefined, ...extra } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^#1 \[internal\] load build definition from Dockerfile$/m);
    assert.ok(!r.stderr.includes("[+] Building") && !ESC.test(r.stderr), r.stderr);
    // Warnings are summarised in plain mode too, without colour off a terminal.
    assert.match(r.stderr, /\n 1 warning found \(use --debug to expand\):\n - FromAsCasing: 'as' and 'FROM' keywords' casing do not match \(line 1\)\n/);
  }
  const tty = runCli(["build", "--progress", "tty", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(tty.code, 2);
  assert.equal(tty.stderr, "error: progress mode tty needs stderr to be a terminal: use --progress plain or auto\n");
  const quiet = runCli(["build", "--progress", "quiet", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.ok(!quiet.stderr.includes("warning found"), "quiet prints no warnings summary");
  const debug = runCli(["build", "--debug", "--progress", "plain", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.match(
    debug.stderr,
    /1 warning found:\n - FromAsCasing: [^\n]*\nThe 'as' keyword should match the case of the 'from' keyword\nMore info: https:\/\/docs\.docker\.com\/go\/dockerfile\/rule\/from-as-casing\/\nDockerfile:1\n/,
  );
});

test("rawjson: the same build's lines from bk-build and buildctl parse to the same structure", (t) => {
  const marker = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-rawjson-", { Dockerfile: `FROM ${busybox}\nRUN echo "raw-${marker} <&>" && echo to-stderr >&2\n` }, t);
  const ours = runCli(["build", "--no-cache", "--progress", "rawjson", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(ours.code, 0, ours.stderr);
  // buildctl writes rawjson on stderr.
  const r = spawnSync(
    env.buildctl,
    [
      "--addr",
      env.buildkitHost,
      "build",
      "--no-cache",
      "--progress",
      "rawjson",
      "--frontend",
      "dockerfile.v0",
      "--local",
      `context=${ctx}`,
      "--local",
      `dockerfile=${ctx}`,
    ],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  type Obj = Record<string, unknown>;
  const parse = (text: string): Obj[] =>
    text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Obj);
  const summary = (lines: Obj[]) => {
    const keys: Record<string, Set<string>> = { top: new Set(), vertexes: new Set(), statuses: new Set(), logs: new Set() };
    const names = new Map<string, { cached: boolean; completed: boolean; error: boolean }>();
    const runDigests = new Set<string>();
    let runLog = "";
    for (const l of lines) {
      for (const k of Object.keys(l)) keys["top"]!.add(k);
      for (const v of (l["vertexes"] as Obj[] | undefined) ?? []) {
        for (const k of Object.keys(v)) keys["vertexes"]!.add(k);
        const name = String(v["name"]);
        names.set(name, { cached: v["cached"] === true, completed: typeof v["completed"] === "string", error: "error" in v });
        if (name.includes("RUN echo")) runDigests.add(String(v["digest"]));
      }
      for (const s of (l["statuses"] as Obj[] | undefined) ?? []) for (const k of Object.keys(s)) keys["statuses"]!.add(k);
      for (const g of (l["logs"] as Obj[] | undefined) ?? []) {
        for (const k of Object.keys(g)) keys["logs"]!.add(k);
        if (runDigests.has(String(g["vertex"]))) runLog += Buffer.from(String(g["data"]), "base64").toString();
      }
    }
    return {
      keys: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, [...v].sort()])),
      names: Object.fromEntries([...names].sort()),
      runDigests: [...runDigests],
      runLog,
    };
  };
  const a = summary(parse(ours.stderr));
  const b = summary(parse(r.stderr));
  assert.deepEqual(a.names, b.names);
  assert.deepEqual(a.runDigests, b.runDigests, "the RUN step has the same digest");
  assert.deepEqual(a.keys, b.keys, "the same field names on each kind of object");
  assert.match(a.runLog, new RegExp(`raw-${marker} <&>`));
  assert.deepEqual(a.runLog.split("\n").sort(), b.runLog.split("\n").sort());
  // The step's name holds <&>: both escape it as Go's encoder does.
  assert.ok(r.stderr.includes("\\u003c\\u0026\\u003e") && ours.stderr.includes("\\u003c\\u0026\\u003e"), "<&> escaped as \\u003c\\u0026\\u003e");
  assert.ok(!ours.stderr.includes('"type":"Buffer"'));
});

test("tty: a failed step's logs are printed in full after the final frame, then the error", async (t) => {
  const marker = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-tty-fail-", { Dockerfile: `FROM ${busybox}\nRUN for i in $(seq 1 15); do echo "out-$i ${marker}"; done; exit 3\n` }, t);
  const term = startTmux(t, [process.execPath, bin, "build", "--no-cache", ctx], { width: 100, height: 40, env: ttyEnv() });
  assert.equal(await term.exitCode(), 1, term.capture({ history: true }));
  const all = term.capture({ history: true });
  assert.equal(count(all, "[+] Building"), 1, all);
  assert.match(all, / => ERROR \[2\/2\] RUN for i/);
  const dump = all.slice(all.indexOf("------"));
  assert.match(dump, /^------\n > \[2\/2\] RUN for i[^\n]*:\n/);
  for (let i = 1; i <= 15; i++) assert.match(dump, new RegExp(`^\\d+\\.\\d+ out-${i} ${marker}$`, "m"), `line ${i} of the failed step is missing:\n${dump}`);
  assert.match(dump, /\nerror: [^\n]*exit code: 3/);
});

test("tty: compose draws one display for the project, each step named by its service", async (t) => {
  const marker = randomUUID().slice(0, 8);
  const dir = fileTree(
    "bk-tty-compose-",
    {
      "compose.yaml": ["services:", "  alpha:", "    build: ./a", "  beta:", "    build: ./b", ""].join("\n"),
      "a/Dockerfile": `FROM ${busybox}\nRUN echo alpha-${marker} && sleep 1\n`,
      "b/Dockerfile": `FROM ${busybox}\nRUN echo beta-${marker} && sleep 1\n`,
    },
    t,
  );
  const term = startTmux(t, [process.execPath, bin, "compose", "-f", join(dir, "compose.yaml"), "build", "--no-cache"], {
    width: 110,
    height: 40,
    env: ttyEnv(),
  });
  assert.equal(await term.exitCode(), 0, term.capture({ history: true }));
  const all = term.capture({ history: true });
  assert.equal(count(all, "[+] Building"), 1, all);
  assert.match(all, /FINISHED/);
  assert.equal(count(all, `=> [alpha] [2/2] RUN echo alpha-${marker}`), 1, all);
  assert.equal(count(all, `=> [beta] [2/2] RUN echo beta-${marker}`), 1, all);
  assert.match(all, /service "alpha": built/);
  assert.match(all, /service "beta": built/);
});
