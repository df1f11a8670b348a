/**
 * --ulimit and build.ulimits as go-units' ParseUlimit reads them (the
 * parser buildx uses), cases from docker/go-units at 2bd057e: ulimit_test.go
 * (ExampleParseUlimit, TestParseUlimitValid, ...InvalidLimitType,
 * ...BadFormat, ...HardLessThanSoft, ...Unlimited, ...InvalidValueType);
 * and a bare --label K, an empty value as buildx's listToMap.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseUlimit } from "../../src/units.js";
import { parseLabels } from "../../src/cli/parse-build.js";
import { UsageError } from "../../src/errors.js";

test("parseUlimit: go-units' valid and unlimited cases, sent as NAME=SOFT:HARD", () => {
  const cases: Array<[string, string]> = [
    ["nofile=512:1024", "nofile=512:1024"],
    ["nofile=1024", "nofile=1024:1024"],
    ["cpu=2:4", "cpu=2:4"],
    ["cpu=6", "cpu=6:6"],
    ["nofile=-1", "nofile=-1:-1"],
    ["nofile=1024:-1", "nofile=1024:-1"],
    ["nofile=-1:-1", "nofile=-1:-1"],
    ["nproc=+5", "nproc=5:5"],
  ];
  for (const [input, want] of cases) assert.equal(parseUlimit(input, "--ulimit"), want, input);
});

test("parseUlimit: go-units' bad cases are one line naming the flag", () => {
  const bad: Array<[string, RegExp]> = [
    ["notarealtype=1024:1024", /unknown ulimit "notarealtype"/],
    ["as=1", /unknown ulimit "as"/],
    ["nofile:1024:1024", /use NAME=SOFT\[:HARD\]/],
    ["nofile", /use NAME=SOFT\[:HARD\]/],
    ["nofile=", /"" is not a whole number/],
    ["nofile=:", /"" is not a whole number/],
    ["nofile=:1024", /"" is not a whole number/],
    ["nofile=1024=512", /"1024=512" is not a whole number/],
    ["nofile=1024:512=extra", /"512=extra" is not a whole number/],
    ["nofile=1024:1", /the soft limit 1024 is above the hard limit 1/],
    ["nofile=-1:1024", /the soft limit -1 \(unlimited\) is above the hard limit 1024/],
    ["nofile=asdf", /"asdf" is not a whole number/],
    ["nofile=1024:asdf", /"asdf" is not a whole number/],
    ["nofile=9223372036854775808", /is not a whole number/],
  ];
  for (const [input, re] of bad) {
    assert.throws(
      () => parseUlimit(input, "--ulimit"),
      (e: unknown) => e instanceof UsageError && e.message.startsWith(`invalid --ulimit "${input}": `) && re.test(e.message),
      input,
    );
  }
});

test("--label K without a value is an empty label, as buildx", () => {
  assert.deepEqual(parseLabels(["a=1", "bare", "b=x=y"]), { a: "1", bare: "", b: "x=y" });
  assert.throws(() => parseLabels(["=v"]), /invalid --label "=v"/);
});
