import type { SourceSnippet } from "../errors.js";

/**
 * A snippet as buildctl prints it: `file:line`, a rule, the lines around the
 * range with `>>>` on the lines inside it, a rule.
 */
export function renderSnippet(s: SourceSnippet): string {
  const lines = s.data.split("\n");
  if (!s.ranges.length) return "";
  let start = Math.min(...s.ranges.map((r) => r.start));
  let end = Math.max(...s.ranges.map((r) => r.end));
  if (start < 1 || start > lines.length) return "";
  end = Math.min(end, lines.length);
  const header = start;
  const pad = end === start ? 4 : 2;
  for (let p = 0; p < pad;) {
    if (start > 1) {
      start--;
      p++;
    }
    if (end !== lines.length) {
      end++;
      p++;
    }
    p++;
  }
  const inRange = (n: number): boolean => s.ranges.some((r) => n >= r.start && n <= r.end);
  let out = `${s.filename}:${header}\n--------------------\n`;
  for (let i = start; i <= end; i++) {
    out += ` ${String(i).padStart(3)} | ${inRange(i) ? ">>>" : "   "} ${lines[i - 1]}\n`;
  }
  return out + "--------------------\n";
}
