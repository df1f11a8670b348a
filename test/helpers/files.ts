/**
 * Temporary directories for tests, each removed again: at the end of the
 * test that made it (when given its context), otherwise when the test file
 * ends. Every test temp dir goes through tempDir(); scripts/test.sh checks
 * that none is left after a run.
 */
import { after, type TestContext } from "node:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup } from "./leaks.js";

const fileLevel = new Set<string>();
after(() => {
  for (const dir of fileLevel) remove(dir);
  fileLevel.clear();
});

function remove(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * A new empty directory `<tmpdir>/<prefix>XXXXXX`, removed with everything
 * in it when `t` ends (or, without `t`, when the test file ends).
 */
export function tempDir(prefix: string, t?: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (t) cleanup(t, () => remove(dir));
  else fileLevel.add(dir);
  return dir;
}

/** A new temporary directory holding `files` (relative path -> text); returns its path. Removed as tempDir(). */
export function fileTree(prefix: string, files: Record<string, string>, t?: TestContext): string {
  const dir = tempDir(prefix, t);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}
