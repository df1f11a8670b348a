import { test } from "node:test";
import assert from "node:assert/strict";
import { formatWarnings } from "../../src/progress/warnings.js";
import type { VertexWarning } from "../../src/progress/status.js";

const w = (short: string, more: Partial<VertexWarning> = {}): VertexWarning => ({ vertex: "v", level: 1, short, detail: [], url: "", ...more });

test("warnings summary as buildx prints it: count line, one ' - ' line each; nothing without warnings", () => {
  assert.equal(formatWarnings([]), "");
  assert.equal(formatWarnings([w("A: one")]), "\n 1 warning found (use --debug to expand):\n - A: one\n");
  assert.equal(formatWarnings([w("A: one"), w("B: two")]), "\n 2 warnings found (use --debug to expand):\n - A: one\n - B: two\n");
  assert.equal(formatWarnings([w("A: one")], { color: "\x1b[33m" }), "\n \x1b[33m1 warning found (use --debug to expand):\n\x1b[0m - A: one\n");
});

test("warnings summary with --debug: detail, More info, the source snippet", () => {
  const text = formatWarnings(
    [
      w("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)", {
        detail: ["The 'as' keyword should match the case of the 'from' keyword"],
        url: "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
        source: { filename: "Dockerfile", data: "FROM busybox as base\nRUN true\n", language: "Dockerfile" },
        ranges: [{ start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }],
      }),
    ],
    { debug: true },
  );
  assert.equal(
    text,
    [
      "",
      " 1 warning found:",
      " - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
      "The 'as' keyword should match the case of the 'from' keyword",
      "More info: https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
      "Dockerfile:1",
      "--------------------",
      "   1 | >>> FROM busybox as base",
      "   2 |     RUN true",
      "   3 |     ",
      "--------------------",
      "",
      "",
    ].join("\n"),
  );
});
