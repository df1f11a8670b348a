import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_COLORS, parseBuildkitColors, ttyOptionsFromEnv } from "../../src/progress/tty-options.js";

test("BUILDKIT_COLORS: names, light- names, R,G,B to the 256-colour cube, case-insensitive keys, CSV quoting", () => {
  const c = parseBuildkitColors('run=green:ERROR=255,0,0:cancel=light-magenta:"warning=0,128,255"');
  assert.equal(c.run, "\x1b[32m");
  assert.equal(c.error, "\x1b[38;5;196m"); // 16 + 36*5
  assert.equal(c.cancel, "\x1b[95m");
  assert.equal(c.warning, "\x1b[38;5;33m"); // 16 + 6*2 + 5
});

test("BUILDKIT_COLORS: bad entries are skipped with a warning each; the rest applies", () => {
  const warnings: string[] = [];
  const c = parseBuildkitColors("run=purple:error=256,0,0:cancel=1,2:nokey:a=b=c:other=red:warning=cyan", DEFAULT_COLORS, (m) => void warnings.push(m));
  assert.equal(c.run, DEFAULT_COLORS.run);
  assert.equal(c.error, DEFAULT_COLORS.error);
  assert.equal(c.cancel, DEFAULT_COLORS.cancel);
  assert.equal(c.warning, "\x1b[36m");
  assert.equal(warnings.length, 6, warnings.join("\n"));
  assert.match(warnings[0]!, /"run=purple": unknown colour/);
  assert.match(warnings[5]!, /"other=red": unknown key/);
});

test("NO_COLOR (non-empty) turns every colour off and wins over BUILDKIT_COLORS; empty NO_COLOR does not", () => {
  const off = ttyOptionsFromEnv({ NO_COLOR: "1", BUILDKIT_COLORS: "run=green" });
  assert.deepEqual(off.colors, { run: "", cancel: "", warning: "", error: "" });
  assert.equal(ttyOptionsFromEnv({ NO_COLOR: "" }).colors.run, "\x1b[34m");
  assert.equal(ttyOptionsFromEnv({ BUILDKIT_COLORS: "run=green" }).colors.run, "\x1b[32m");
});

test("BUILDKIT_TTY_LOG_LINES and TTY_DISPLAY_RATE: positive whole numbers, else the defaults (6 lines, 150/100 ms)", () => {
  assert.deepEqual(ttyOptionsFromEnv({}), { colors: DEFAULT_COLORS, logLines: 6, tickMs: 150, updateMs: 100 });
  const o = ttyOptionsFromEnv({ BUILDKIT_TTY_LOG_LINES: "12", TTY_DISPLAY_RATE: "500" });
  assert.equal(o.logLines, 12);
  assert.equal(o.tickMs, 500);
  assert.equal(o.updateMs, 500);
  for (const bad of ["0", "-3", "x", "1.5", ""]) {
    const d = ttyOptionsFromEnv({ BUILDKIT_TTY_LOG_LINES: bad, TTY_DISPLAY_RATE: bad });
    assert.equal(d.logLines, 6, bad);
    assert.equal(d.tickMs, 150, bad);
  }
});
