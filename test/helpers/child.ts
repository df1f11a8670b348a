import { spawnSync } from "node:child_process";

/** file:// URL of dist/src/, for code run in a child. */
export const srcUrl = new URL("../../src/", import.meta.url).href;

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `code` (an ES module; `process.env.SRC` is dist/src/'s URL) in a new
 * node under bash, with `shellArgs` (e.g. `<(printf x)`) as its arguments.
 * For calls that, were they to regress, would block an event loop for good:
 * the child is killed after `timeoutMs` and the test fails instead of hanging.
 */
export function runModule(code: string, options: { shellArgs?: string; env?: Record<string, string>; timeoutMs?: number } = {}): ChildResult {
  const t = Date.now();
  const r = spawnSync("bash", ["-c", `exec "$NODE" --input-type=module -e "$CODE" ${options.shellArgs ?? ""}`], {
    encoding: "utf8",
    env: { ...process.env, ...(options.env ?? {}), NODE: process.execPath, CODE: code, SRC: srcUrl },
    timeout: options.timeoutMs ?? 10_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t };
}
