import { test } from "node:test";
import assert from "node:assert/strict";
import { formatGoDuration, formatSize, formatSizeShort, humanDuration } from "../../src/cli/format.js";
import { parseBytes, parseGoDuration, parseTimeout } from "../../src/units.js";

test("parseGoDuration follows Go's time.ParseDuration", () => {
  assert.equal(parseGoDuration("24h", "--x"), 86_400_000);
  assert.equal(parseGoDuration("1h30m", "--x"), 5_400_000);
  assert.equal(parseGoDuration("1.5s", "--x"), 1500);
  assert.equal(parseGoDuration("500ms", "--x"), 500);
  assert.equal(parseGoDuration("0", "--x"), 0);
  for (const bad of ["", "24", "3x", "h", "1d", "-1h"]) {
    assert.throws(() => parseGoDuration(bad, "--keep-duration"), new RegExp(`invalid duration "${bad}" for --keep-duration`));
  }
});

test("parseTimeout takes buildctl's whole seconds or a duration", () => {
  assert.equal(parseTimeout("5"), 5000);
  assert.equal(parseTimeout("250ms"), 250);
  assert.throws(() => parseTimeout("0"), /invalid --timeout "0"/);
  assert.throws(() => parseTimeout("soon"), /invalid duration "soon" for --timeout/);
});

test("parseBytes uses docker's binary units", () => {
  assert.equal(parseBytes("1024", "--x"), 1024n);
  assert.equal(parseBytes("512k", "--x"), 524_288n);
  assert.equal(parseBytes("10GB", "--x"), 10n * 1024n ** 3n);
  assert.equal(parseBytes("1.5g", "--x"), 1_610_612_736n);
  assert.equal(parseBytes("2 MiB", "--x"), 2_097_152n);
  assert.equal(parseBytes("8PB", "--x"), 8n * 1024n ** 5n);
  for (const bad of ["", "-1", "ten", "10XB", "1.2.3m"]) {
    assert.throws(() => parseBytes(bad, "--keep-storage"), new RegExp(`invalid size ".*" for --keep-storage`), bad);
  }
});

test("sizes and durations print like buildctl", () => {
  assert.equal(formatSize(4096n), "4.10kB");
  assert.equal(formatSize(24576n), "24.58kB");
  assert.equal(formatSize(0n), "0.00B");
  assert.equal(formatSize(5_130_000n), "5.13MB");
  assert.equal(formatSizeShort(512_000_000n), "512MB");
  assert.equal(formatSizeShort(10_000_000_000n), "10GB");
  assert.equal(formatSizeShort(51_234_567_890n), "51.23GB");
  assert.equal(formatGoDuration(48n * 3_600_000_000_000n), "48h0m0s");
  assert.equal(formatGoDuration(1_500_000_000n), "1.5s");
  assert.equal(formatGoDuration(90_000_000_000n), "1m30s");
  assert.equal(formatGoDuration(2_500_000n), "2.5ms");
  assert.equal(formatGoDuration(0n), "0s");
  assert.equal(humanDuration(500), "Less than a second");
  assert.equal(humanDuration(45_000), "45 seconds");
  assert.equal(humanDuration(61_000), "About a minute");
  assert.equal(humanDuration(3 * 3_600_000), "3 hours");
});
