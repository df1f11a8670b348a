import { test } from "node:test";
import assert from "node:assert/strict";
import { PlainPrinter, formatProgressBytes, formatStatusLine } from "../../src/progress/plain.js";
import type { SolveStatus, Vertex } from "../../src/progress/status.js";

const at = (ms: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms));
const empty = (): SolveStatus => ({ vertexes: [], statuses: [], logs: [], warnings: [] });

test("byte counts as buildctl prints them", () => {
  assert.equal(formatProgressBytes(0), "0B");
  assert.equal(formatProgressBytes(135), "135B");
  assert.equal(formatProgressBytes(999), "999B");
  assert.equal(formatProgressBytes(1000), "1.00kB");
  assert.equal(formatProgressBytes(340182), "340.18kB");
  assert.equal(formatProgressBytes(512569804), "512.57MB");
});

test("status lines: bytes, elapsed time over 0.01 s, done", () => {
  const base = { id: "transferring context:", vertex: "v", name: "transferring", total: 0 };
  assert.equal(formatStatusLine({ ...base, current: 2, started: at(0), completed: at(3) }), "transferring context: 2B done");
  assert.equal(formatStatusLine({ ...base, current: 340182, started: at(0), completed: at(400) }), "transferring context: 340.18kB 0.4s done");
  assert.equal(formatStatusLine({ ...base, current: 0, started: at(0), timestamp: at(1500) }), "transferring context: 1.5s");
  assert.equal(formatStatusLine({ ...base, current: 5, total: 10, started: at(0), timestamp: at(0) }), "transferring context: 5B / 10B");
});

test("updates within one batch print once, grouped per vertex; a vertex that completes and restarts is not DONE", () => {
  const out: string[] = [];
  const p = new PlainPrinter((t) => void out.push(t));
  const ctx: Vertex = { digest: "d1", inputs: [], name: "[internal] load build context", cached: false };
  p.update({ ...empty(), vertexes: [{ ...ctx, started: at(0), completed: at(1) }] });
  // The first update prints at once; the next ones, inside 100 ms, are merged.
  p.update({ ...empty(), vertexes: [{ ...ctx, started: at(1) }] });
  p.update({
    ...empty(),
    statuses: [{ id: "transferring context:", vertex: "d1", name: "transferring", current: 22, total: 0, started: at(1), timestamp: at(2) }],
  });
  p.flush();
  p.update({
    ...empty(),
    vertexes: [{ ...ctx, started: at(1), completed: at(400) }],
    statuses: [{ id: "transferring context:", vertex: "d1", name: "transferring", current: 340182, total: 0, started: at(1), completed: at(390) }],
  });
  p.flush();
  assert.equal(
    out.join(""),
    [
      "#1 [internal] load build context",
      "#1 DONE 0.0s",
      "",
      "#1 [internal] load build context",
      "#1 transferring context: 22B",
      "#1 transferring context: 340.18kB 0.4s done",
      "#1 DONE 0.4s",
      "",
    ].join("\n"),
  );
});

test("a running vertex interrupted by another is marked ... and its header repeated", () => {
  const out: string[] = [];
  const p = new PlainPrinter((t) => void out.push(t));
  const a: Vertex = { digest: "a", inputs: [], name: "step a", cached: false, started: at(0) };
  const b: Vertex = { digest: "b", inputs: [], name: "step b", cached: false, started: at(0) };
  p.update({ ...empty(), vertexes: [a], logs: [{ vertex: "a", stream: 1, data: Buffer.from("one\n"), timestamp: at(100) }] });
  p.flush();
  p.update({ ...empty(), vertexes: [b] });
  p.flush();
  p.update({ ...empty(), vertexes: [{ ...a, completed: at(2000) }], logs: [{ vertex: "a", stream: 1, data: Buffer.from("two\n"), timestamp: at(1500) }] });
  p.flush();
  assert.equal(
    out.join(""),
    ["#1 step a", "#1 0.100 one", "#1 ...", "", "#2 step b", "#2 ...", "", "#1 step a", "#1 1.500 two", "#1 DONE 2.0s", ""].join("\n"),
  );
});

test("steps that complete at the same moment print inputs first, whatever order the daemon sent them in", () => {
  const out: string[] = [];
  const p = new PlainPrinter((t) => void out.push(t));
  const c = { started: at(5), completed: at(5), cached: true };
  p.update({
    ...empty(),
    vertexes: [
      { digest: "s3", inputs: ["s2"], name: "[3/3] RUN b", ...c },
      { digest: "s2", inputs: ["s1"], name: "[2/3] RUN a", ...c },
      { digest: "s1", inputs: [], name: "[1/3] FROM busybox", ...c },
    ],
  });
  p.flush();
  assert.deepEqual(
    out
      .join("")
      .split("\n")
      .filter((l) => / \[/.test(l)),
    ["#1 [1/3] FROM busybox", "#2 [2/3] RUN a", "#3 [3/3] RUN b"],
  );
});
