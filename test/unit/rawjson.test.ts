import { test } from "node:test";
import assert from "node:assert/strict";
import { goTime, rawJsonLine } from "../../src/progress/rawjson.js";

const at = (ms: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms));

test("rawjson: buildctl's field names, omitempty, base64 bytes, RFC 3339 times, one line", () => {
  const line = rawJsonLine({
    vertexes: [
      { digest: "sha256:aa", inputs: [], name: "RUN echo a > b && c", cached: false, started: at(1500) },
      {
        digest: "sha256:bb",
        inputs: ["sha256:aa"],
        name: "x",
        cached: true,
        started: at(0),
        completed: at(0),
        progressGroup: { id: "g", name: "G", weak: false },
      },
    ],
    statuses: [{ id: "transferring context:", vertex: "sha256:aa", name: "", current: 0, total: 0 }],
    logs: [{ vertex: "sha256:aa", stream: 1, data: Buffer.from("hello\n"), timestamp: at(1234) }],
    warnings: [
      {
        vertex: "sha256:aa",
        level: 1,
        short: "FromAsCasing: x",
        detail: ["d1"],
        url: "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
        source: { filename: "Dockerfile", data: "FROM a as b\n", language: "Dockerfile" },
        ranges: [{ start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }],
      },
    ],
  });
  assert.ok(line.endsWith("}\n") && !line.slice(0, -1).includes("\n"));
  assert.ok(line.includes('"name":"RUN echo a \\u003e b \\u0026\\u0026 c"'), "Go's encoder escapes <, > and &");
  assert.deepEqual(JSON.parse(line), {
    vertexes: [
      { digest: "sha256:aa", name: "RUN echo a > b && c", started: "2026-01-01T00:00:01.5Z" },
      {
        digest: "sha256:bb",
        inputs: ["sha256:aa"],
        name: "x",
        started: "2026-01-01T00:00:00Z",
        completed: "2026-01-01T00:00:00Z",
        cached: true,
        progressGroup: { id: "g", name: "G" },
      },
    ],
    statuses: [{ id: "transferring context:", vertex: "sha256:aa", current: 0, timestamp: "0001-01-01T00:00:00Z" }],
    logs: [{ vertex: "sha256:aa", stream: 1, data: Buffer.from("hello\n").toString("base64"), timestamp: "2026-01-01T00:00:01.234Z" }],
    warnings: [
      {
        vertex: "sha256:aa",
        level: 1,
        short: Buffer.from("FromAsCasing: x").toString("base64"),
        detail: [Buffer.from("d1").toString("base64")],
        url: "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
        sourceInfo: { filename: "Dockerfile", data: Buffer.from("FROM a as b\n").toString("base64"), language: "Dockerfile" },
        range: [{ start: { line: 1 }, end: { line: 1 } }],
      },
    ],
  });
});

test("rawjson: an empty update is {}; compose's service field comes first", () => {
  assert.equal(rawJsonLine({ vertexes: [], statuses: [], logs: [], warnings: [] }), "{}\n");
  assert.match(
    rawJsonLine({ vertexes: [{ digest: "d", inputs: [], name: "n", cached: false }], statuses: [], logs: [], warnings: [] }, { service: "web" }),
    /^\{"service":"web","vertexes":/,
  );
});

test("Go's RFC3339Nano: trailing zeros of the fraction dropped", () => {
  assert.equal(goTime(at(0)), "2026-01-01T00:00:00Z");
  assert.equal(goTime(at(100)), "2026-01-01T00:00:00.1Z");
  assert.equal(goTime(at(123)), "2026-01-01T00:00:00.123Z");
  assert.equal(goTime(at(120)), "2026-01-01T00:00:00.12Z");
});
