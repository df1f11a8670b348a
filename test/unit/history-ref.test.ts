import { test } from "node:test";
import assert from "node:assert/strict";
import { matchRef } from "../../src/history/ref.js";
import { UsageError } from "../../src/errors.js";

const at = (s: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const records = [
  { ref: "abc111", createdAt: at(1), completedAt: at(2) },
  { ref: "abc222", createdAt: at(3), completedAt: at(4) },
  { ref: "abd333", createdAt: at(5) }, // running
  { ref: "x", createdAt: at(0), completedAt: at(1) },
  { ref: "xy", createdAt: at(0), completedAt: at(1) },
];

test("a full ref or a unique prefix names one record", () => {
  assert.equal(matchRef(records, "abc111").ref, "abc111");
  assert.equal(matchRef(records, "abc2").ref, "abc222");
  assert.equal(matchRef(records, "abd").ref, "abd333");
});

test("an exact ref wins over longer refs it prefixes", () => {
  assert.equal(matchRef(records, "x").ref, "x");
});

test("an ambiguous prefix is one clear UsageError that says how many matched", () => {
  assert.throws(
    () => matchRef(records, "ab"),
    (e: unknown) => e instanceof UsageError && e.message === 'build ref "ab" is ambiguous: 3 builds start with it; give more characters',
  );
});

test("an unknown ref says so and where the refs are", () => {
  assert.throws(
    () => matchRef(records, "zzz"),
    (e: unknown) => e instanceof UsageError && e.message === "no build \"zzz\" in the history; 'bk-build history ls' lists the builds",
  );
  assert.throws(() => matchRef([], "a"), UsageError);
  assert.throws(() => matchRef(records, ""), /empty build ref/);
});

test("^N is the Nth newest finished build (running ones are skipped)", () => {
  assert.equal(matchRef(records, "^0").ref, "abc222");
  assert.equal(matchRef(records, "^1").ref, "abc111");
  assert.throws(() => matchRef(records, "^9"), /no finished build at offset \^9: the history has 4 finished builds/);
  assert.throws(() => matchRef(records, "^x"), /invalid build ref "\^x"/);
});
