import { test } from "node:test";
import assert from "node:assert/strict";
import { outputFormat, parseCommandLine } from "../../src/cli/args.js";
import { UsageError } from "../../src/errors.js";

function usage(argv: string[], re: RegExp): void {
  assert.throws(
    () => parseCommandLine(argv),
    (e: unknown) => e instanceof UsageError && re.test(e.message),
    argv.join(" "),
  );
}

test("global flags may come before or after the command", () => {
  const a = parseCommandLine(["--addr", "tcp://x:1", "du", "--verbose", "--filter", "type==regular", "--filter=until=1h"]);
  assert.equal(a.kind, "command");
  if (a.kind !== "command") return;
  assert.equal(a.spec.name, "du");
  assert.equal(a.values["addr"], "tcp://x:1");
  assert.equal(a.values["verbose"], true);
  assert.deepEqual(a.values["filter"], ["type==regular", "until=1h"]);

  const b = parseCommandLine(["info", "--addr=unix:///s.sock", "--format", "json", "--timeout", "2"]);
  assert.equal(b.kind === "command" && b.values["addr"], "unix:///s.sock");
  assert.equal(b.kind === "command" && b.values["timeout"], "2");
});

test("help and version", () => {
  const h = parseCommandLine(["--help"]);
  assert.equal(h.kind, "help");
  assert.match(h.kind === "help" ? h.text : "", /Commands:\n  build .*\n  info .*\n  compose .*\n  workers .*\n  du .*\n  prune /);
  const ch = parseCommandLine(["prune", "--help"]);
  assert.match(ch.kind === "help" ? ch.text : "", /Usage: bk-build prune .*\n[\s\S]*--keep-storage N/);
  assert.equal(parseCommandLine(["--version"]).kind, "version");
});

test("mistakes give one line naming the input and what to do", () => {
  usage([], /no command given; run 'bk-build --help'/);
  usage(["frob"], /unknown command "frob"; commands are: build, info, compose, workers, du, prune/);
  usage(["du", "--bogus"], /unknown flag --bogus; run 'bk-build du --help'/);
  usage(["info", "--all"], /unknown flag --all; run 'bk-build info --help'/);
  usage(["prune", "--keep-duration"], /flag --keep-duration needs a value; run 'bk-build prune --help'/);
  usage(["--addr"], /flag --addr needs a value/);
  usage(["info", "extra"], /'bk-build info' takes no arguments, got "extra"/);
  usage(["--nope"], /unknown flag --nope/);
  usage(["du", "--verbose=yes"], /^invalid argument "yes" for "--verbose" flag: use true or false; run 'bk-build du --help'$/);
  usage(["build", "--push=maybe", "."], /^invalid argument "maybe" for "--push" flag: use true or false; run .bk-build build --help.$/);
});

test("--format accepts table and json only", () => {
  assert.equal(outputFormat({}), "table");
  assert.equal(outputFormat({ format: "json" }), "json");
  assert.throws(() => outputFormat({ format: "yaml" }), /invalid --format "yaml": use table or json/);
});

test("a string flag takes the next argument even when it starts with '-', as pflag", () => {
  const a = parseCommandLine(["build", "--shm-size", "-1", "-t", "-x", "--build-arg", "--A=b", "--", "-ctx"]);
  assert.equal(a.kind, "command");
  if (a.kind !== "command") return;
  assert.equal(a.values["shm-size"], "-1");
  assert.deepEqual(a.values["tag"], ["-x"]);
  assert.deepEqual(a.values["build-arg"], ["--A=b"]);
  assert.deepEqual(a.positionals, ["-ctx"]);
  const g = parseCommandLine(["--addr", "-weird", "du", "--filter", "-x"]);
  assert.equal(g.kind === "command" && g.values["addr"], "-weird");
  assert.deepEqual(g.kind === "command" && g.values["filter"], ["-x"]);
  usage(["info", "--timeout", "-5"], /^invalid --timeout "-5": must be more than zero \(e\.g\. 5 or 10s\)$/);
  usage(["--timeout", "-5s", "info"], /^invalid --timeout "-5s": must be more than zero/);
  usage(["du", "--filter"], /flag --filter needs a value/);
});

test("--timeout is checked by the parser, up to what a timer can wait (2^31-1 ms)", () => {
  usage(["info", "--timeout", "600h"], /^invalid --timeout "600h": at most 596h31m23s \(2\^31-1 ms, the longest a timer can wait\)$/);
  usage(["info", "--timeout=2147484"], /^invalid --timeout "2147484": at most 596h31m23s/);
  usage(["info", "--timeout", "soon"], /invalid duration "soon" for --timeout/);
  const ok = parseCommandLine(["info", "--timeout", "2147483"]);
  assert.equal(ok.kind === "command" && ok.values["timeout"], "2147483");
});

test("pflag's forms: --flag=true|false (Go's ParseBool, the last one wins), -t=NAME, -- ends the options", () => {
  const p = (argv: string[]) => {
    const r = parseCommandLine(argv);
    assert.equal(r.kind, "command");
    return r.kind === "command" ? r : undefined!;
  };
  assert.equal(p(["build", "--push=true", "."]).values["push"], true);
  assert.equal(p(["build", "--push=false", "."]).values["push"], undefined);
  assert.equal(p(["build", "--no-cache", "--no-cache=false", "."]).values["no-cache"], undefined, "--no-cache=false means cached");
  assert.equal(p(["build", "--no-cache=0", "--no-cache=T", "."]).values["no-cache"], true);
  assert.deepEqual(p(["build", "-t=reg/app:1", "-t", "reg/app:2", "."]).values["tag"], ["reg/app:1", "reg/app:2"]);
  assert.deepEqual(p(["build", "--build-arg", "--push", "."]).values["build-arg"], ["--push"], "a string flag's value is not read as a flag");
  const dd = p(["build", "--push", "--", "--not-a-flag"]);
  assert.deepEqual(dd.positionals, ["--not-a-flag"]);
  assert.equal(dd.values["push"], true);
});
