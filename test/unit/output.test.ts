import { test } from "node:test";
import assert from "node:assert/strict";
import { keyValues, table, toJson } from "../../src/cli/output.js";
import { int64, recordFromWire, summarize, timestamp } from "../../src/convert.js";

test("toJson writes bigints as exact numbers and dates as RFC 3339", () => {
  const big = 2n ** 63n - 1n;
  const text = toJson({ size: big, at: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), name: "x" });
  assert.match(text, /"size": 9223372036854775807,/);
  assert.match(text, /"at": "2026-01-02T03:04:05.000Z"/);
  assert.equal(JSON.parse(text).name, "x");
  // A string that merely looks like our marker stays a string.
  assert.match(toJson({ s: "12" }), /"s": "12"/);
});

test("table and keyValues align columns", () => {
  assert.equal(
    table(
      ["ID", "SIZE"],
      [
        ["a", "1"],
        ["long-id", "22"],
      ],
    ),
    "ID        SIZE\na         1\nlong-id   22\n",
  );
  assert.equal(
    keyValues([
      ["ID", "x"],
      ["Platforms", "y"],
    ]),
    "ID:        x\nPlatforms: y\n",
  );
});

test("int64 stays exact beyond 2^53", () => {
  assert.equal(int64("9007199254740993"), 9007199254740993n);
  assert.equal(int64(""), 0n);
  assert.equal(int64(undefined), 0n);
});

test("timestamps: zero and Go's zero time mean unset", () => {
  assert.equal(timestamp({ seconds: "0", nanos: 0 }), undefined);
  assert.equal(timestamp({ seconds: "-62135596800", nanos: 0 }), undefined);
  assert.equal(timestamp({ seconds: "1700000000", nanos: 500_000_000 })?.toISOString(), "2023-11-14T22:13:20.500Z");
});

test("summarize counts like buildctl du", () => {
  const rec = (id: string, size: string, inUse: boolean, shared: boolean) =>
    recordFromWire({
      ID: id,
      Mutable: false,
      InUse: inUse,
      Size: size,
      Parent: "",
      CreatedAt: null,
      LastUsedAt: null,
      UsageCount: "1",
      Description: "",
      RecordType: "regular",
      Shared: shared,
      Parents: [],
    });
  const du = summarize([rec("a", "100", false, false), rec("b", "50", true, true), rec("c", "-1", false, false)]);
  assert.equal(du.total, 150n);
  assert.equal(du.reclaimable, 100n);
  assert.equal(du.shared, 50n);
  assert.equal(du.records.length, 3);
});
