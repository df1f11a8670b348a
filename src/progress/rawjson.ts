/** `--progress rawjson`: one JSON object per status update and line. */
import type { SolveStatus } from "./status.js";

/** One status update as a single JSON line (with "\n"); `extra` fields (compose's service) come first. */
export function rawJsonLine(status: SolveStatus, extra: Record<string, string> = {}): string {
  return JSON.stringify({ ...extra, ...status }) + "\n";
}
