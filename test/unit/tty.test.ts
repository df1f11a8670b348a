import { test } from "node:test";
import assert from "node:assert/strict";
import { TtyPrinter, type TtyPrinterOptions } from "../../src/progress/tty.js";
import { LogTerminal } from "../../src/progress/log-terminal.js";
import { DEFAULT_COLORS, NO_COLORS } from "../../src/progress/tty-options.js";
import type { SolveStatus, Vertex } from "../../src/progress/status.js";

/** Daemon time: 2026-01-01 plus ms. */
const at = (ms: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms));
const empty = (): SolveStatus => ({ vertexes: [], statuses: [], logs: [], warnings: [] });
const vx = (digest: string, name: string, more: Partial<Vertex> = {}): Vertex => ({ digest, inputs: [], name, cached: false, ...more });
/** A job line as drawn at width w: the name left, the timer ending at column w - 1. */
const row = (left: string, timer: string, w: number): string => left.padEnd(w - 1 - timer.length) + timer;
const strip = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");

/** A printer on a fake clock whose local time runs `skew` ms ahead of the daemon's; frames drawn into a virtual screen. */
function setup(o: Partial<TtyPrinterOptions> & { width?: number; height?: number; skew?: number } = {}) {
  const clock = { now: (o.skew ?? 0) + at(0).getTime() };
  const size = { width: o.width ?? 80, height: o.height ?? 30 };
  const writes: string[] = [];
  const screen = new LogTerminal(size.height, size.width);
  const p = new TtyPrinter({
    write: (t) => {
      writes.push(t);
      screen.write(t);
    },
    columns: () => size.width,
    rows: () => size.height,
    colors: NO_COLORS,
    tickMs: 1e9,
    updateMs: 100,
    now: () => clock.now,
    ...o,
  });
  /** The frame as the terminal shows it now. */
  const frame = (): string[] => screen.content();
  const advance = (ms: number): void => void (clock.now += ms);
  return { p, writes, frame, advance, size, clock };
}

test("tty: header with time and done/total, one line per started step with its own timer, right-aligned at width - 1", () => {
  const { p, frame, advance, writes } = setup({ width: 60 });
  p.update({
    ...empty(),
    vertexes: [
      vx("a", "[internal] load build definition from Dockerfile", { started: at(0), completed: at(20) }),
      vx("b", "[1/2] FROM busybox", { cached: true, started: at(20), completed: at(20) }),
    ],
  });
  advance(1500);
  p.update({ ...empty(), vertexes: [vx("c", "[2/2] RUN make", { started: at(300) }), vx("d", "exporting to image")] });
  const f = frame();
  assert.equal(f[0], "[+] Building 1.5s (2/4)", "the total counts every step seen, started or not");
  assert.equal(f[1], row(" => [internal] load build definition from Dockerfile", " 0.0s", 60));
  assert.equal(f[2], row(" => CACHED [1/2] FROM busybox", " 0.0s", 60));
  assert.equal(f[3], row(" => [2/2] RUN make", " 1.2s", 60));
  assert.equal(f.length, 4, "a step that has not started is not shown");
  for (const w of writes)
    for (const line of strip(w).split("\n").slice(0, -1)) assert.ok(line.length <= 60, `line longer than the terminal: ${JSON.stringify(line)}`);
  advance(2000);
  p.update({
    ...empty(),
    vertexes: [vx("c", "[2/2] RUN make", { started: at(300), completed: at(3000) }), vx("d", "exporting to image", { started: at(3000), completed: at(3010) })],
  });
  p.flush();
  const last = frame();
  assert.equal(last[0], "[+] Building 3.5s (4/4) FINISHED");
  assert.equal(last[3], row(" => [2/2] RUN make", " 2.7s", 60));
  assert.ok(writes.at(-1)!.endsWith("\x1b[?25h"), "the cursor is shown again at the end of the frame");
});

test("tty: timers use the local clock offset taken at the first start, so a daemon clock an hour off does not matter", () => {
  const { p, frame, advance } = setup({ skew: 3_600_000 });
  p.update({ ...empty(), vertexes: [vx("a", "RUN sleep 5", { started: at(0) })] });
  advance(2300);
  p.redraw();
  assert.match(frame()[0]!, /^\[\+\] Building 2\.3s \(0\/1\)/);
  assert.match(frame()[1]!, / 2\.3s$/);
});

test("tty: ERROR and CANCELED prefixes; only completed lines are coloured, in the configured colours", () => {
  const { p, writes } = setup({ colors: DEFAULT_COLORS });
  p.update({
    ...empty(),
    vertexes: [
      vx("a", "RUN false", { started: at(0), completed: at(10), error: "process did not complete successfully: exit code: 1" }),
      vx("b", "RUN sleep 9", { started: at(0), completed: at(10), error: "context canceled" }),
      vx("c", "RUN echo ok", { started: at(0), completed: at(10) }),
      vx("d", "RUN still going", { started: at(0) }),
    ],
  });
  const out = writes.join("");
  assert.match(out, /\x1b\[31m => ERROR RUN false +0\.0s\x1b\[0m\x1b\[K\n/);
  assert.match(out, /\x1b\[33m => CANCELED RUN sleep 9 +0\.0s\x1b\[0m\x1b\[K\n/);
  assert.match(out, /\x1b\[34m => RUN echo ok +0\.0s\x1b\[0m\x1b\[K\n/);
  assert.match(out, /\n => RUN still going +0\.0s\x1b\[K\n\x1b\[\?25h$/, "a running line has no colour");
});

test("tty: transfer statuses with decimal sizes, WARN lines, and the log tail of a running step (faint, cut to width - 10)", () => {
  const { p, frame, writes, advance } = setup({ width: 70, height: 30 });
  p.update({
    ...empty(),
    vertexes: [vx("ctx", "[internal] load build context", { started: at(0) }), vx("run", "RUN build", { started: at(0) })],
    statuses: [{ id: "transferring context:", vertex: "ctx", name: "", current: 12_345_678, total: 45_670_000, started: at(0) }],
    warnings: [{ vertex: "run", level: 1, short: "UndefinedVar: Usage of undefined variable '$X'", detail: [], url: "" }],
    logs: [{ vertex: "run", stream: 1, data: Buffer.from("step 1\nstep 2 " + "x".repeat(60) + "\n"), timestamp: at(5) }],
  });
  advance(200);
  p.redraw();
  const f = frame();
  assert.ok(
    f.some((l) => /^ => => transferring context: 12\.35MB \/ 45\.67MB +0\.2s$/.test(l)),
    f.join("\n"),
  );
  assert.ok(
    f.some((l) => l.startsWith(" => WARN: UndefinedVar: Usage of undefined var")),
    f.join("\n"),
  );
  const tail = f.filter((l) => l.startsWith(" => => # "));
  // The tail's emulator is 60 columns wide (70 - 10): the long line wraps.
  assert.deepEqual(tail, [" => => # step 1", ` => => # step 2 ${"x".repeat(53)}`, ` => => # ${"x".repeat(7)}`]);
  assert.match(writes.join(""), /\x1b\[2m => => # step 1\x1b\[0m\x1b\[K\n/);
  // Once the step completes, its tail goes.
  p.update({
    ...empty(),
    vertexes: [
      vx("run", "RUN build", { started: at(0), completed: at(300) }),
      vx("ctx", "[internal] load build context", { started: at(0), completed: at(10) }),
    ],
  });
  p.flush();
  assert.equal(frame().filter((l) => l.startsWith(" => => # ")).length, 0);
});

test("tty: non-final frames fit the terminal height keeping the newest lines and every running step; the final frame lists every step once", () => {
  const { p, frame, writes } = setup({ width: 60, height: 12 });
  const vs: Vertex[] = [vx("slow", "step 00 running", { started: at(0) })];
  for (let i = 1; i < 30; i++) vs.push(vx(`v${i}`, `step ${String(i).padStart(2, "0")}`, { started: at(i), completed: at(i + 1) }));
  p.update({ ...empty(), vertexes: vs });
  const f = frame();
  assert.ok(f.length <= 12 - 1, `the frame has ${f.length} lines on a 12-line terminal`);
  assert.ok(
    f.some((l) => l.includes("step 00 running")),
    "the running step was cut",
  );
  assert.ok(
    f.some((l) => l.includes("step 29")),
    "the newest step is shown",
  );
  p.update({ ...empty(), vertexes: [vx("slow", "step 00 running", { started: at(0), completed: at(50) })] });
  p.flush();
  const all = strip(writes.at(-1)!)
    .split("\n")
    .filter((l) => l.startsWith(" => "));
  assert.equal(all.length, 30);
  assert.deepEqual(
    all.map((l) => l.slice(4, 11)),
    Array.from({ length: 30 }, (_, i) => `step ${String(i).padStart(2, "0")}`),
  );
});

test("tty: a shorter frame leaves no lines of the longer one behind", () => {
  const { p, frame, advance } = setup({ width: 60, height: 20 });
  p.update({
    ...empty(),
    vertexes: [vx("run", "RUN build", { started: at(0) })],
    logs: [{ vertex: "run", stream: 1, data: Buffer.from("a\nb\nc\nd\n"), timestamp: at(1) }],
  });
  assert.equal(frame().length, 6);
  advance(500);
  p.update({ ...empty(), vertexes: [vx("run", "RUN build", { started: at(0), completed: at(400) })] });
  assert.equal(frame().length, 2, frame().join("\n"));
  assert.match(frame()[1]!, /^ => RUN build +0\.4s$/);
});

test("tty: progress groups fold into one line once a non-weak member starts; cached only when every member is", () => {
  const { p, frame } = setup({ width: 60 });
  const g = { id: "g1", name: "[3/3] COPY --link . /", weak: false };
  p.update({ ...empty(), vertexes: [vx("m1", "copy a", { progressGroup: { ...g, weak: true }, started: at(0), completed: at(5) })] });
  assert.equal(frame().length, 1, "a weak member alone does not show its group");
  p.update({ ...empty(), vertexes: [vx("m2", "copy b", { progressGroup: g, cached: true, started: at(5), completed: at(9) })] });
  p.flush();
  assert.deepEqual(frame().slice(1), [row(" => [3/3] COPY --link . /", " 0.0s", 60)], "not CACHED: the weak member was not cached");
  assert.match(frame()[0]!, /\(1\/1\) FINISHED/);
});

test("tty: failures() lists every log line of a failed step (not the last 10); a cancelled step is left out", () => {
  const { p } = setup();
  const lines = Array.from({ length: 25 }, (_, i) => `out ${i}`).join("\n") + "\n";
  p.update({
    ...empty(),
    vertexes: [vx("a", "RUN make", { started: at(0) }), vx("b", "RUN other", { started: at(0), completed: at(1), error: "context canceled" })],
    logs: [
      { vertex: "a", stream: 1, data: Buffer.from(lines.slice(0, 13)), timestamp: at(1500) },
      { vertex: "a", stream: 1, data: Buffer.from(lines.slice(13)), timestamp: at(12_000) },
    ],
  });
  p.update({ ...empty(), vertexes: [vx("a", "RUN make", { started: at(0), completed: at(13_000), error: "exit code: 2" })] });
  p.flush();
  const f = p.failures().split("\n");
  assert.equal(f[0], "------");
  assert.equal(f[1], " > RUN make:");
  assert.equal(f[2], "1.500 out 0");
  assert.equal(f[3], "1.500 out 1");
  assert.equal(f[4], "1.500 out 2", "a line split across two chunks is one line, timed by its first chunk");
  assert.equal(f[5], "12.00 out 3");
  assert.equal(f.filter((l) => / out \d+$/.test(l)).length, 25);
  assert.ok(!p.failures().includes("RUN other"));
});

test("tty: 100,000 log lines in 1,000 updates cost one redraw per updateMs, not one per update", () => {
  const { p, writes, advance } = setup();
  p.update({ ...empty(), vertexes: [vx("a", "RUN seq 100000", { started: at(0) })] });
  let n = 0;
  for (let u = 0; u < 1000; u++) {
    let chunk = "";
    for (let i = 0; i < 100; i++) chunk += `${++n}\n`;
    p.update({ ...empty(), logs: [{ vertex: "a", stream: 1, data: Buffer.from(chunk), timestamp: at(u) }] });
    advance(1); // 1,000 updates over one second
  }
  p.flush();
  assert.ok(writes.length <= 12, `${writes.length} frames for 1 s of updates at updateMs 100`);
  assert.match(p.failures(), /^$/, "nothing failed");
});

test("tty: control characters in step names cannot move the cursor", () => {
  const { p, writes } = setup();
  p.update({ ...empty(), vertexes: [vx("a", "RUN echo \x1b[2J\ttab", { started: at(0) })] });
  const out = writes.join("");
  assert.ok(!out.includes("\x1b[2J"));
  assert.match(out, /RUN echo  \[2J tab/);
});

test("tty: the frame follows a narrower terminal at once (no line longer than the new width)", () => {
  const { p, size, writes } = setup({ width: 100 });
  p.update({ ...empty(), vertexes: [vx("a", "RUN " + "y".repeat(120), { started: at(0) })] });
  size.width = 40;
  p.redraw();
  const last = strip(writes.at(-1)!).split("\n").slice(0, -1);
  for (const l of last) assert.ok(l.length <= 40, JSON.stringify(l));
  // Going up: the 2 lines drawn 100 wide take 3 rows each at 40.
  assert.ok(writes.at(-1)!.startsWith("\x1b[6A"), JSON.stringify(writes.at(-1)!.slice(0, 12)));
});

test("tty: an unknown terminal size falls back to 80x10, as progressui", () => {
  const writes: string[] = [];
  const p = new TtyPrinter({ write: (t) => void writes.push(t), columns: () => undefined, rows: () => 0, colors: NO_COLORS, tickMs: 1e9 });
  p.update({ ...empty(), vertexes: [vx("a", "RUN x", { started: at(0), completed: at(1) })] });
  p.flush();
  const lines = strip(writes.at(-1)!).split("\n");
  assert.equal(lines[1]!.length + 1, 80);
});
