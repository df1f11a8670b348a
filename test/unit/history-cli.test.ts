import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCommandLine } from "../../src/cli/args.js";
import { main, type CliIo } from "../../src/cli/main.js";

function io(): CliIo & { stdout: string; stderr: string } {
  const r = {
    stdout: "",
    stderr: "",
    out: (t: string) => void (r.stdout += t),
    err: (t: string) => void (r.stderr += t),
    env: { BUILDKIT_HOST: "unix:///nonexistent/bk-history-test.sock" },
    cwd: process.cwd(),
    signal: new AbortController().signal,
  };
  return r as unknown as CliIo & { stdout: string; stderr: string };
}

test("history takes its subcommand and refs as positionals, and its own flags", () => {
  const p = parseCommandLine(["history", "ls", "--filter", "status=error", "--filter", "startedAt>1h", "--format", "json"]);
  assert.equal(p.kind, "command");
  if (p.kind !== "command") return;
  assert.equal(p.spec.name, "history");
  assert.deepEqual(p.positionals, ["ls"]);
  assert.deepEqual(p.values["filter"], ["status=error", "startedAt>1h"]);
  const rm = parseCommandLine(["--addr", "unix:///x", "history", "rm", "abc", "def"]);
  assert.ok(rm.kind === "command" && rm.positionals.join(" ") === "rm abc def");
  const help = parseCommandLine(["history", "--help"]);
  assert.ok(help.kind === "help" && help.text.includes("bk-build history inspect [REF]"));
});

test("history usage mistakes are one line and exit 2, before the daemon is dialled", async () => {
  const cases: Array<[string[], string]> = [
    [["history"], "error: 'bk-build history' needs a subcommand: ls, inspect, logs, rm; run 'bk-build history --help'\n"],
    [["history", "show"], 'error: unknown history subcommand "show": use ls, inspect, logs, rm\n'],
    [["history", "ls", "extra"], "error: 'bk-build history ls' takes no arguments, got \"extra\"\n"],
    [["history", "rm"], "error: 'bk-build history rm' needs at least one build ref; 'bk-build history ls' lists them\n"],
    [["history", "inspect", "a", "b"], "error: 'bk-build history inspect' takes one build ref, got 2\n"],
    [
      ["history", "ls", "--filter", "name=x"],
      'error: unsupported history filter "name=x": keys are ref, repository, status, startedAt, completedAt, duration\n',
    ],
    [["history", "inspect", "a", "--filter", "status=error"], "error: --filter is for 'bk-build history ls', not 'inspect'\n"],
    [["history", "logs", "a", "--progress", "tty"], 'error: invalid --progress "tty" for history logs: use plain or rawjson\n'],
    [["history", "rm", "a", "--format", "json"], "error: --format is for 'bk-build history ls' and 'inspect', not 'rm'\n"],
    [["history", "ls", "--format", "yaml"], 'error: invalid --format "yaml": use table or json\n'],
  ];
  for (const [argv, want] of cases) {
    const o = io();
    const code = await main(argv, o);
    assert.equal(code, 2, argv.join(" "));
    assert.equal(o.stderr, want, argv.join(" "));
    assert.equal(o.stdout, "");
  }
});
