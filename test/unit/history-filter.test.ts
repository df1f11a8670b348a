import { test } from "node:test";
import assert from "node:assert/strict";
import { parseHistoryFilter } from "../../src/history/filter.js";
import { UsageError } from "../../src/errors.js";
import type { BuildRecord } from "../../src/history/record.js";
import { buildRecord } from "../helpers/history.js";

const now = new Date(Date.UTC(2026, 0, 2, 12, 0, 0));
function rec(p: Partial<BuildRecord>): BuildRecord {
  return buildRecord({ createdAt: new Date(now.getTime() - 3_600_000), steps: { total: 1, completed: 1, cached: 0 }, ...p });
}

test("ref= matches a substring, ref!= excludes one exact ref", () => {
  const f = parseHistoryFilter("ref=bc");
  assert.deepEqual([f.key, f.op, f.value], ["ref", "=", "bc"]);
  assert.equal(f.matches(rec({ ref: "abcd" })), true);
  assert.equal(f.matches(rec({ ref: "xyz" })), false);
  const not = parseHistoryFilter("ref!=abcd");
  assert.equal(not.matches(rec({ ref: "abcd" })), false);
  assert.equal(not.matches(rec({ ref: "abc" })), true);
});

test("status= matches exactly, and only known statuses are accepted", () => {
  const f = parseHistoryFilter("status=error");
  assert.equal(f.matches(rec({ status: "error" })), true);
  assert.equal(f.matches(rec({ status: "completed" })), false);
  assert.equal(parseHistoryFilter("status!=running").matches(rec({ status: "completed" })), true);
  assert.throws(() => parseHistoryFilter("status=failed"), /invalid history filter "status=failed": status is one of running, completed, error, canceled/);
});

test("repository= looks at vcs:source, else a git context", () => {
  const f = parseHistoryFilter("repository=github.com/o/r");
  assert.equal(f.matches(rec({ frontendAttrs: { "vcs:source": "https://github.com/o/r.git" } })), true);
  assert.equal(f.matches(rec({ frontendAttrs: { context: "https://github.com/o/r.git#main" } })), true);
  assert.equal(f.matches(rec({ frontendAttrs: { context: "." } })), false);
});

test("startedAt and completedAt take a duration (ago) or an RFC 3339 time, compared at whole seconds", () => {
  const recent = parseHistoryFilter("startedAt>2h", now);
  assert.equal(recent.matches(rec({})), true, "started 1 h ago is within 2 h");
  assert.equal(parseHistoryFilter("startedAt>30m", now).matches(rec({})), false);
  const before = parseHistoryFilter("startedAt<=2026-01-02T11:00:00Z", now);
  assert.equal(before.matches(rec({ createdAt: new Date(Date.UTC(2026, 0, 2, 11, 0, 0, 900)) })), true, "same second");
  assert.equal(before.matches(rec({ createdAt: new Date(Date.UTC(2026, 0, 2, 11, 0, 1)) })), false);
  const done = parseHistoryFilter("completedAt>=1h", now);
  assert.equal(done.matches(rec({ completedAt: new Date(now.getTime() - 1000) })), true);
  assert.equal(done.matches(rec({})), false, "a running build has not completed");
});

test("duration compares completedAt − createdAt", () => {
  const slow = parseHistoryFilter("duration>30s");
  assert.equal(slow.matches(rec({ durationMs: 31_000 })), true);
  assert.equal(slow.matches(rec({ durationMs: 29_000 })), false);
  assert.equal(parseHistoryFilter("duration<=1m30s").matches(rec({ durationMs: 90_000 })), true);
});

test("bad filters are one clear UsageError naming the filter", () => {
  const cases: Array<[string, RegExp]> = [
    ["status", /invalid history filter "status": use KEY=VALUE/],
    ["=x", /invalid history filter "=x"/],
    ["name=x", /unsupported history filter "name=x": keys are ref, repository, status, startedAt, completedAt, duration/],
    ["ref>x", /invalid history filter "ref>x": ref takes = or !=/],
    ["duration=5s", /invalid history filter "duration=5s": duration takes <, <=, > or >=/],
    ["duration>fast", /invalid duration "fast" for history filter "duration>fast"/],
    ["startedAt>yesterday", /invalid history filter "startedAt>yesterday": startedAt takes a Go duration \(ago, e.g. 24h\) or an RFC 3339 time/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseHistoryFilter(text, now),
      (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes("\n"),
      text,
    );
  }
});

test("<= and >= are read as one operator, != is not =", () => {
  assert.equal(parseHistoryFilter("duration<=5s").op, "<=");
  assert.equal(parseHistoryFilter("duration>=5s").op, ">=");
  assert.equal(parseHistoryFilter("ref!=a=b").op, "!=");
  assert.equal(parseHistoryFilter("ref!=a=b").value, "a=b");
});
