/**
 * `--progress rawjson`: one status update per line in buildctl's shape, so a
 * tool that reads buildctl's rawjson reads ours.
 *
 * buildctl writes client.SolveStatus with Go's encoding/json: the field names
 * of its json tags (lower camel case), `omitempty` fields left out when zero,
 * byte fields (log data, warning texts, source data) as base64, times as
 * RFC 3339 in UTC, and <, >, & escaped as \u003c, \u003e, \u0026 (the
 * encoder's default). Field order follows the Go structs. Times carry
 * milliseconds (what our status types keep), where buildctl prints
 * nanoseconds.
 */
import type { SolveStatus, Vertex, VertexLog, VertexStatus, VertexWarning } from "./status.js";

/** Go's zero time.Time, which buildctl prints for a status or log without a timestamp. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/** A time as Go's RFC3339Nano: fractional seconds without trailing zeros, none when whole. */
export function goTime(d: Date): string {
  return d.toISOString().replace(/\.(\d*?)0*Z$/, (_m, frac: string) => (frac ? `.${frac}Z` : "Z"));
}

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

function vertex(v: Vertex): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (v.digest) o["digest"] = v.digest;
  if (v.inputs.length) o["inputs"] = v.inputs;
  if (v.name) o["name"] = v.name;
  if (v.started) o["started"] = goTime(v.started);
  if (v.completed) o["completed"] = goTime(v.completed);
  if (v.cached) o["cached"] = true;
  if (v.error) o["error"] = v.error;
  if (v.progressGroup) {
    const g: Record<string, unknown> = {};
    if (v.progressGroup.id) g["id"] = v.progressGroup.id;
    if (v.progressGroup.name) g["name"] = v.progressGroup.name;
    if (v.progressGroup.weak) g["weak"] = true;
    o["progressGroup"] = g;
  }
  return o;
}

function status(s: VertexStatus): Record<string, unknown> {
  const o: Record<string, unknown> = { id: s.id };
  if (s.vertex) o["vertex"] = s.vertex;
  if (s.name) o["name"] = s.name;
  if (s.total) o["total"] = s.total;
  o["current"] = s.current;
  o["timestamp"] = s.timestamp ? goTime(s.timestamp) : ZERO_TIME;
  if (s.started) o["started"] = goTime(s.started);
  if (s.completed) o["completed"] = goTime(s.completed);
  return o;
}

function log(l: VertexLog): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (l.vertex) o["vertex"] = l.vertex;
  if (l.stream) o["stream"] = l.stream;
  o["data"] = l.data.toString("base64");
  o["timestamp"] = l.timestamp ? goTime(l.timestamp) : ZERO_TIME;
  return o;
}

/** One warning as Go's encoding/json writes client.VertexWarning (what buildx puts in buildx.build.warnings). */
export function rawJsonWarning(w: VertexWarning): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (w.vertex) o["vertex"] = w.vertex;
  if (w.level) o["level"] = w.level;
  if (w.short) o["short"] = b64(w.short);
  if (w.detail.length) o["detail"] = w.detail.map(b64);
  if (w.url) o["url"] = w.url;
  if (w.source) {
    const si: Record<string, unknown> = {};
    if (w.source.filename) si["filename"] = w.source.filename;
    if (w.source.data) si["data"] = b64(w.source.data);
    if (w.source.language) si["language"] = w.source.language;
    o["sourceInfo"] = si;
  }
  if (w.ranges?.length) {
    const pos = (p: { line: number; character: number }): Record<string, number> => {
      const r: Record<string, number> = {};
      if (p.line) r["line"] = p.line;
      if (p.character) r["character"] = p.character;
      return r;
    };
    o["range"] = w.ranges.map((r) => ({ start: pos(r.start), end: pos(r.end) }));
  }
  return o;
}

/** Go's encoder escapes these for HTML safety; so do we, so the bytes match. */
const GO_ESCAPES: Record<string, string> = { "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" };

/** buildctl's JSON object for one status update (empty lists left out). */
export function rawJsonObject(s: SolveStatus): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (s.vertexes.length) o["vertexes"] = s.vertexes.map(vertex);
  if (s.statuses.length) o["statuses"] = s.statuses.map(status);
  if (s.logs.length) o["logs"] = s.logs.map(log);
  if (s.warnings.length) o["warnings"] = s.warnings.map(rawJsonWarning);
  return o;
}

/** One status update as a single JSON line (with "\n"); `extra` fields (compose's service) come first. */
export function rawJsonLine(status: SolveStatus, extra: Record<string, string> = {}): string {
  return JSON.stringify({ ...extra, ...rawJsonObject(status) }).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!) + "\n";
}
