/**
 * The printers, from fixed frontend answers shaped as buildkit v0.24's
 * dockerfile frontend writes them (Go encoding/json: zero values left out).
 * The integration test compares the same printers with buildx itself.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkResult, outlineResult, targetsResult } from "../../src/gateway/results.js";
import { formatCheck, formatOutline, formatTargets } from "../../src/gateway/print.js";
import { BuildKitError } from "../../src/errors.js";

const dockerfile = ["FROM busybox as build", "ENV PATH=$NOPE:$PATH", "RUN true", "CMD echo hi", ""].join("\n");
const b64 = (s: string): string => Buffer.from(s).toString("base64");
const range = (line: number): unknown => ({ start: { line, character: 0 }, end: { line } });

function lint(body: unknown, statusCode = "1"): Record<string, string> {
  return { "result.json": JSON.stringify(body, null, 2), "result.txt": "frontend text\n", "result.statuscode": statusCode, version: "1.0.0" };
}

const warnings = [
  // Out of line order on purpose: buildx sorts by source, then first line.
  {
    ruleName: "JSONArgsRecommended",
    description: "JSON args",
    url: "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
    detail: "JSON arguments recommended for CMD",
    location: { ranges: [range(4)] },
  },
  {
    ruleName: "FromAsCasing",
    url: "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
    detail: "'as' and 'FROM' keywords' casing do not match",
    location: { ranges: [range(1)] },
  },
  { ruleName: "NoSource", detail: "not tied to a file", location: { sourceIndex: -1 } },
];
const sources = [{ filename: "Dockerfile", language: "Dockerfile", data: b64(dockerfile) }];

test("check with warnings: the count line, then each warning sorted (no source first), with its snippet", () => {
  const r = checkResult(lint({ warnings, sources }));
  assert.equal(r.statusCode, 1);
  assert.equal(r.warnings[0]!.location!.sourceIndex, 0, "a missing sourceIndex is 0 (Go omits zero values)");
  assert.equal(r.sources[0]!.data, dockerfile);
  const { out, error } = formatCheck(r, { dockerfileName: "ctx/Dockerfile" });
  assert.equal(error, undefined);
  assert.equal(
    out,
    [
      "Check complete, 3 warnings have been found!",
      "",
      "WARNING: NoSource",
      "not tied to a file",
      "",
      "WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
      "'as' and 'FROM' keywords' casing do not match",
      "ctx/Dockerfile:1",
      "--------------------",
      "   1 | >>> FROM busybox as build",
      "   2 |     ENV PATH=$NOPE:$PATH",
      "   3 |     RUN true",
      "--------------------",
      "",
      "WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
      "JSON arguments recommended for CMD",
      "ctx/Dockerfile:4",
      "--------------------",
      "   2 |     ENV PATH=$NOPE:$PATH",
      "   3 |     RUN true",
      "   4 | >>> CMD echo hi",
      "   5 |     ",
      "--------------------",
      "",
    ].join("\n"),
  );
  // Without a mapping the frontend's file name is shown.
  assert.match(formatCheck(r).out, /\nDockerfile:1\n/);
  assert.equal(formatCheck(checkResult(lint({ warnings: [warnings[1]], sources }))).out.split("\n")[0], "Check complete, 1 warning has been found!");
});

test("check JSON is the frontend's answer as sent; a clean check says so", () => {
  const md = lint({ warnings, sources });
  assert.equal(formatCheck(checkResult(md), { format: "json" }).out, `${md["result.json"]!}\n`);
  const clean = checkResult(lint({ warnings: [], sources }, "0"));
  assert.equal(clean.statusCode, 0);
  assert.deepEqual(formatCheck(clean), { out: "Check complete, no warnings found.\n" });
  assert.deepEqual(formatCheck(clean, { format: "json" }).out.trim(), JSON.stringify({ warnings: [], sources }, null, 2));
});

test("check with a build error: warnings printed, a blank line, then the error with its snippet kept apart", () => {
  const body = {
    warnings: [warnings[1]],
    sources,
    buildError: { message: "dockerfile parse error on line 3: unknown instruction: RUNN", location: { ranges: [range(3)] } },
  };
  const { out, error } = formatCheck(checkResult(lint(body)));
  assert.match(out, /^Check complete, 1 warning has been found!\n\nWARNING: FromAsCasing/);
  assert.ok(out.endsWith("--------------------\n\n"), JSON.stringify(out.slice(-40)));
  assert.equal(
    error,
    "dockerfile parse error on line 3: unknown instruction: RUNN\nDockerfile:3\n--------------------\n   1 |     FROM busybox as build\n   2 |     ENV PATH=$NOPE:$PATH\n   3 | >>> RUN true\n   4 |     CMD echo hi\n   5 |     \n--------------------\n",
  );
  const only = formatCheck(checkResult(lint({ sources, buildError: body.buildError })));
  assert.equal(only.out, "", "no warnings: nothing on stdout, not even 'no warnings found'");
  assert.ok(only.error);
});

test("a result newer than the printers know is printed from the frontend's own text", () => {
  const md = { ...lint({ warnings, sources }), version: "1.1.0" };
  assert.equal(formatCheck(checkResult(md)).out, "Check complete, 3 warnings have been found!\nfrontend text\n");
  const o = outlineResult({ "result.json": "{}", "result.txt": "outline text\n", version: "2.0.0" });
  assert.equal(formatOutline(o), "outline text\n");
  assert.equal(formatOutline({ ...o, version: "1.0.0" }), "", "an empty outline prints nothing");
});

test("outline: buildx's TARGET block and tab-aligned tables (padding 3), each followed by a blank line", () => {
  const o = outlineResult({
    "result.json": JSON.stringify({
      name: "final",
      description: "the image that ships",
      args: [{ name: "GREETING", description: "says hello", value: "hello" }, { name: "EMPTY" }, { name: "LONGER_NAME", value: "x" }],
      secrets: [{ name: "npmrc", required: true }, { name: "opt" }],
      ssh: [{ name: "default" }],
      sources: [b64(dockerfile)],
    }),
    version: "1.0.0",
  });
  assert.deepEqual(o.args[1], { name: "EMPTY", description: undefined, value: undefined, location: undefined });
  assert.equal(o.sources[0], dockerfile);
  assert.equal(
    formatOutline(o),
    [
      "TARGET:      final",
      "DESCRIPTION: the image that ships",
      "",
      "BUILD ARG     VALUE   DESCRIPTION",
      "GREETING      hello   says hello",
      "EMPTY                 ",
      "LONGER_NAME   x       ",
      "",
      "SECRET   REQUIRED",
      "npmrc    true",
      "opt      ",
      "",
      "SSH       REQUIRED",
      "default   ",
      "",
      "",
    ].join("\n"),
  );
  const unnamed = outlineResult({ "result.json": JSON.stringify({ description: "d" }) });
  assert.equal(formatOutline(unnamed), "TARGET:      (default)\nDESCRIPTION: d\n\n");
  assert.equal(formatOutline(unnamed, { format: "json" }), '{"description":"d"}\n');
});

test("targets: TARGET/DESCRIPTION table (padding 1) with (default) markers; widths count characters, not bytes", () => {
  const t = targetsResult({
    "result.json": JSON.stringify({
      targets: [
        { name: "deps", base: "busybox" },
        { name: "größe", description: "ünicode" },
        { name: "final", default: true, description: "ships" },
        { default: true },
      ],
      sources: [b64(dockerfile)],
    }),
  });
  assert.deepEqual(t.targets[0], { name: "deps", default: false, description: undefined, base: "busybox", platform: undefined, location: undefined });
  assert.equal(formatTargets(t), "TARGET          DESCRIPTION\ndeps            \ngröße           ünicode\nfinal (default) ships\n(default)       \n");
});

test("answers that are not what the frontend sends fail with one clear line", () => {
  assert.throws(
    () => checkResult({ "result.txt": "x" }),
    (e: unknown) => e instanceof BuildKitError && /has no result.json \(metadata keys: result.txt\)/.test(e.message),
  );
  assert.throws(() => outlineResult({ "result.json": "[1]" }), /outline answer is not a JSON object/);
  assert.throws(() => targetsResult({ "result.json": "{" }), /targets answer is not a JSON object/);
  const out = checkResult(lint({ warnings: [{ ruleName: "X", location: { sourceIndex: 5 } }], sources }));
  assert.throws(() => formatCheck(out), /sourceIndex is out of range/);
});
