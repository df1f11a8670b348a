/**
 * The warnings summary printed after a build, as buildx prints it
 * (commands/build.go printWarnings):
 *
 *
 *    2 warnings found (use --debug to expand):
 *    - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)
 *    - JSONArgsRecommended: JSON arguments recommended for CMD ... (line 4)
 *
 * The count line is yellow when colours are on. With `debug`, each warning
 * also gets its detail lines, "More info: URL" and the source snippet.
 */
import type { VertexWarning } from "./status.js";
import type { SourceSnippet } from "../errors.js";
import { renderSnippet } from "./snippet.js";

/** A warning's source location as a snippet renderSnippet can print (lines only). */
export function warningSnippet(w: VertexWarning): SourceSnippet | undefined {
  if (!w.source || !w.ranges?.length) return undefined;
  return { filename: w.source.filename, data: w.source.data, ranges: w.ranges.map((r) => ({ start: r.start.line, end: r.end.line })) };
}

export function formatWarnings(warnings: readonly VertexWarning[], options: { color?: string; debug?: boolean } = {}): string {
  if (!warnings.length) return "";
  let head = warnings.length === 1 ? "1 warning found" : `${warnings.length} warnings found`;
  if (!options.debug) head += " (use --debug to expand)";
  head += ":\n";
  let out = "\n " + (options.color ? `${options.color}${head}\x1b[0m` : head);
  for (const w of warnings) {
    out += ` - ${w.short}\n`;
    if (!options.debug) continue;
    for (const d of w.detail) out += `${d}\n`;
    if (w.url) out += `More info: ${w.url}\n`;
    const snippet = warningSnippet(w);
    if (snippet) out += renderSnippet(snippet);
    out += "\n";
  }
  return out;
}
