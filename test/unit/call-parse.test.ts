import { test } from "node:test";
import assert from "node:assert/strict";
import { callFromFlags, parseCall } from "../../src/cli/parse-call.js";
import { parseCommandLine } from "../../src/cli/args.js";
import { buildOptionsFromFlags } from "../../src/cli/commands/build.js";
import { UsageError } from "../../src/errors.js";

test("parseCall reads buildx's --call CSV: a name, format=json, ignorestatus", () => {
  assert.deepEqual(parseCall("check"), { name: "check", json: false, ignoreStatus: false });
  assert.deepEqual(parseCall("check,format=json"), { name: "check", json: true, ignoreStatus: false });
  assert.deepEqual(parseCall("format=json,check"), { name: "check", json: true, ignoreStatus: false });
  assert.deepEqual(parseCall("check,ignorestatus=true"), { name: "check", json: false, ignoreStatus: true });
  assert.deepEqual(parseCall("check,ignorestatus=0"), { name: "check", json: false, ignoreStatus: false });
  assert.deepEqual(parseCall("lint"), { name: "check", json: false, ignoreStatus: false }, "lint is buildx's older name for check");
  assert.deepEqual(parseCall("outline,format=json"), { name: "outline", json: true, ignoreStatus: false });
  assert.deepEqual(parseCall("targets"), { name: "targets", json: false, ignoreStatus: false });
  assert.deepEqual(parseCall('"targets"'), { name: "targets", json: false, ignoreStatus: false });
  assert.equal(parseCall("build"), undefined);
  assert.equal(parseCall(""), undefined);
});

test("parseCall refuses bad values with one line naming the value and the fix", () => {
  const bad: Array<[string, RegExp]> = [
    ["check,outline", /names two calls \("check", "outline"\)/],
    ["frobnicate", /unknown call "frobnicate"; use build, check, outline or targets/],
    ["check,format=yaml", /format=yaml is not known; use format=json/],
    ["check,ignorestatus=maybe", /ignorestatus=maybe is not a boolean/],
    ["check,color=red", /unknown field "color=red"/],
    ["build,format=json", /apply to check, outline and targets, not to a build/],
  ];
  for (const [value, message] of bad) {
    assert.throws(
      () => parseCall(value),
      (e: unknown) => e instanceof UsageError && message.test(e.message) && e.message.includes(JSON.stringify(value)) && !e.message.includes("\n"),
      value,
    );
  }
});

test("--check is --call check; with a --call for something else it is refused", () => {
  assert.deepEqual(callFromFlags(undefined, true), { name: "check", json: false, ignoreStatus: false });
  assert.deepEqual(callFromFlags("check,format=json", true), { name: "check", json: true, ignoreStatus: false });
  assert.equal(callFromFlags(undefined, false), undefined);
  assert.equal(callFromFlags("build", false), undefined);
  assert.throws(() => callFromFlags("outline", true), /--check means --call check, but --call "outline"/);
  assert.throws(() => callFromFlags("build", true), UsageError);
});

test("build --call/--check reach the build flags; compose build takes --check", () => {
  const p = parseCommandLine(["build", "--call", "outline,format=json", "."]);
  assert.equal(p.kind, "command");
  if (p.kind !== "command") return;
  assert.deepEqual(buildOptionsFromFlags(p.values, p.positionals, {}).call, { name: "outline", json: true, ignoreStatus: false });
  const c = parseCommandLine(["build", "--check", "."]);
  if (c.kind !== "command") throw new Error("not a command");
  assert.deepEqual(buildOptionsFromFlags(c.values, c.positionals, {}).call, { name: "check", json: false, ignoreStatus: false });
  const none = parseCommandLine(["build", "."]);
  if (none.kind !== "command") throw new Error("not a command");
  assert.equal(buildOptionsFromFlags(none.values, none.positionals, {}).call, undefined);
  const compose = parseCommandLine(["compose", "build", "--check"]);
  assert.equal(compose.kind === "command" && compose.values["check"], true);
});
