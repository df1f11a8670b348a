/**
 * Subrequest results printed as buildx prints them (docker/buildx
 * commands/build.go printResult, which uses the frontend's own printers in
 * moby/buildkit frontend/subrequests): the check summary with each
 * warning's rule, URL, detail and source snippet; outline and targets as
 * tab-aligned tables (Go text/tabwriter); or the JSON answer as sent.
 */
import { BuildKitError } from "../errors.js";
import { renderSnippet } from "../progress/snippet.js";
import type { CheckResult, CheckWarning, OutlineResult, SourceFile, SourceLocation, TargetsResult } from "./results.js";

/** The result format version these printers know; a newer answer is printed from the frontend's own text (result.txt). */
const KNOWN_VERSION = "1.0.0";

export interface PrintOptions {
  /** "json" prints the frontend's JSON answer as sent. */
  format?: "text" | "json" | undefined;
  /**
   * check: the name shown for the Dockerfile in snippets. buildx shows the
   * path as given (-f), else CONTEXT/Dockerfile; the frontend's own name is
   * the file's base name.
   */
  dockerfileName?: string | undefined;
}

/** What `check` prints: `out` for stdout, and the build error (message and snippet) when the Dockerfile did not parse. */
export interface CheckOutput {
  out: string;
  error?: string | undefined;
}

/** A cell's width as Go's tabwriter counts it: code points (runes). */
const runes = (s: string): number => Array.from(s).length;

/** Go's tabwriter with minwidth 0, padding `pad`, padchar ' ', no flags: every cell but a line's last is padded to its column. */
function table(rows: string[][], pad: number): string {
  const widths: number[] = [];
  for (const r of rows) r.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, runes(c))));
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c + " ".repeat(widths[i]! + pad - runes(c)) : c)).join("") + "\n").join("");
}

/** Compares dotted versions; true when `a` is older than `b`. */
function older(a: string, b: string): boolean {
  const pa = a.split(".").map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d < 0;
  }
  return false;
}

const newer = (version: string, text: string | undefined): text is string => version !== "" && older(KNOWN_VERSION, version) && Boolean(text);

function snippet(loc: SourceLocation, sources: SourceFile[], dockerfileName: string | undefined): string {
  const src = sources[loc.sourceIndex];
  if (!src) return "";
  return renderSnippet({
    filename: dockerfileName ?? src.filename,
    data: src.data,
    ranges: loc.ranges.map((r) => ({ start: r.start.line, end: Math.max(r.end.line, r.start.line) })),
  });
}

/** buildx's order: no source first, then by file name, no range first, then by first line. */
function compareWarnings(a: CheckWarning, b: CheckWarning, sources: SourceFile[]): number {
  const ia = a.location?.sourceIndex ?? 0;
  const ib = b.location?.sourceIndex ?? 0;
  const byRule = (): number => (a.ruleName < b.ruleName ? -1 : a.ruleName > b.ruleName ? 1 : 0);
  if (ia < 0 && ib < 0) return byRule();
  if (ia < 0 || ib < 0) return ia < 0 ? -1 : 1;
  const fa = sources[ia]?.filename ?? "";
  const fb = sources[ib]?.filename ?? "";
  if (fa !== fb) return fa < fb ? -1 : 1;
  const ra = a.location?.ranges ?? [];
  const rb = b.location?.ranges ?? [];
  if (!ra.length && !rb.length) return byRule();
  if (!ra.length || !rb.length) return !ra.length ? -1 : 1;
  return ra[0]!.start.line - rb[0]!.start.line;
}

/** A check result as `buildx build --call check` prints it. */
export function formatCheck(result: CheckResult, options: PrintOptions = {}): CheckOutput {
  const json = options.format === "json";
  const n = result.warnings.length;
  let out = "";
  if (!json && n > 0) out += `Check complete, ${n === 1 ? "1 warning has been found!" : `${n} warnings have been found!`}\n`;
  if (json) out += result.json + "\n";
  else if (newer(result.version, result.text)) out += result.text;
  else {
    for (const w of result.warnings) {
      if ((w.location?.sourceIndex ?? 0) >= result.sources.length) throw new BuildKitError("the check result's sourceIndex is out of range");
    }
    const sorted = [...result.warnings].sort((a, b) => compareWarnings(a, b, result.sources));
    for (const w of sorted) {
      out += `\nWARNING: ${w.ruleName}${w.url ? ` - ${w.url}` : ""}\n${w.detail ?? ""}\n`;
      if (w.location && w.location.sourceIndex >= 0) out += snippet(w.location, result.sources, options.dockerfileName);
    }
  }
  if (result.buildError) {
    if (!json && n > 0) out += "\n";
    return { out, error: `${result.buildError.message}\n${snippet(result.buildError.location, result.sources, options.dockerfileName)}` };
  }
  if (n === 0 && !json) out += "Check complete, no warnings found.\n";
  return { out };
}

/** An outline as `buildx build --call outline` prints it. */
export function formatOutline(result: OutlineResult, options: PrintOptions = {}): string {
  if (options.format === "json") return result.json + "\n";
  if (newer(result.version, result.text)) return result.text;
  let out = "";
  if (result.name || result.description) {
    const rows = [["TARGET:", result.name || "(default)"]];
    if (result.description) rows.push(["DESCRIPTION:", result.description]);
    out += table(rows, 1) + "\n";
  }
  if (result.args.length)
    out += table([["BUILD ARG", "VALUE", "DESCRIPTION"], ...result.args.map((a) => [a.name, a.value ?? "", a.description ?? ""])], 3) + "\n";
  if (result.secrets.length) out += table([["SECRET", "REQUIRED"], ...result.secrets.map((s) => [s.name, s.required ? "true" : ""])], 3) + "\n";
  if (result.ssh.length) out += table([["SSH", "REQUIRED"], ...result.ssh.map((s) => [s.name, s.required ? "true" : ""])], 3) + "\n";
  return out;
}

/** A target list as `buildx build --call targets` prints it. */
export function formatTargets(result: TargetsResult, options: PrintOptions = {}): string {
  if (options.format === "json") return result.json + "\n";
  if (newer(result.version, result.text)) return result.text;
  const rows = result.targets.map((t) => {
    const name = !t.name && t.default ? "(default)" : t.default ? `${t.name ?? ""} (default)` : (t.name ?? "");
    return [name, t.description ?? ""];
  });
  return table([["TARGET", "DESCRIPTION"], ...rows], 1);
}
