/** Build history as `bk-build history ls` and `inspect` print it (buildx's columns and rows). */
import { keyValues, table } from "./output.js";
import { humanDuration } from "./format.js";
import type { BuildRecord, BuildStatus } from "../index.js";

const STATUS_WORDS: Record<BuildStatus, string> = { running: "Running", completed: "Completed", error: "Error", canceled: "Canceled" };

/** buildx's formatDuration: `%.1fs` under a minute, else `Mm SSs`. */
export function formatBuildDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, " ")}s`;
}

/**
 * A display name as buildx derives it from the frontend attributes:
 * BUILDKIT_BUILD_NAME, else the context or the Dockerfile's name, then the
 * target. (buildx also reads local state files; bk-build keeps none.)
 */
export function buildName(attrs: Readonly<Record<string, string>>): string {
  const named = attrs["build-arg:BUILDKIT_BUILD_NAME"];
  if (named) return named;
  const context = attrs["context"] ?? (attrs["vcs:localdir:context"] !== "." ? attrs["vcs:localdir:context"] : undefined);
  const filename = attrs["filename"];
  let name = context ?? (filename && filename !== "Dockerfile" ? filename.replace(/\/Dockerfile$/, "") : "");
  const target = attrs["target"];
  if (target) name = name ? `${name} (${target})` : target;
  if (!name && attrs["vcs:source"]) name = attrs["vcs:source"];
  return name;
}

/** Running builds first, then newest first (buildx's order). */
export function sortRecords(records: BuildRecord[]): BuildRecord[] {
  return [...records].sort((a, b) => {
    if (!a.completedAt !== !b.completedAt) return a.completedAt ? 1 : -1;
    return b.createdAt.getTime() - a.createdAt.getTime();
  });
}

function duration(r: BuildRecord, now: number): string {
  if (r.durationMs !== undefined) return formatBuildDuration(r.durationMs);
  return formatBuildDuration(Math.max(0, now - r.createdAt.getTime())) + "+";
}

/** The `history ls` table. */
export function renderHistoryTable(records: BuildRecord[], now = Date.now()): string {
  return table(
    ["BUILD ID", "NAME", "STATUS", "CREATED AT", "DURATION"],
    records.map((r) => [r.ref, buildName(r.frontendAttrs), STATUS_WORDS[r.status], `${humanDuration(now - r.createdAt.getTime())} ago`, duration(r, now)]),
  );
}

/** `history ls --format json`: buildx's fields (ref is the bare ref: bk-build talks to one daemon). */
export function historyJson(records: BuildRecord[]): Array<Record<string, unknown>> {
  return records.map((r) => ({
    ref: r.ref,
    name: buildName(r.frontendAttrs),
    status: STATUS_WORDS[r.status],
    created_at: r.createdAt,
    ...(r.completedAt ? { completed_at: r.completedAt } : {}),
    ...(r.durationMs !== undefined ? { duration_ms: r.durationMs } : {}),
    total_steps: r.steps.total,
    completed_steps: r.steps.completed,
    cached_steps: r.steps.cached,
  }));
}

/** Attributes under a prefix (`build-arg:`, `label:`), prefix cut, sorted by name. */
export function attrsWithPrefix(attrs: Readonly<Record<string, string>>, prefix: string): Array<{ name: string; value: string }> {
  return Object.entries(attrs)
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => ({ name: k.slice(prefix.length), value: v }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const SHOWN_APART = ["build-arg:", "label:", "context:", "vcs:", "attest:"];

/** `history inspect --format json`: buildx's inspect fields that bk-build has, attrs masked. */
export function inspectJson(r: BuildRecord): Record<string, unknown> {
  const attrs = r.frontendAttrs;
  const rest = Object.entries(attrs)
    .filter(([k]) => !SHOWN_APART.some((p) => k.startsWith(p)))
    .map(([name, value]) => ({ name, value }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    Name: buildName(attrs),
    Ref: r.ref,
    Frontend: r.frontend,
    ...(attrs["target"] ? { Target: attrs["target"] } : {}),
    ...(attrs["platform"] ? { Platform: attrs["platform"].split(",") } : {}),
    StartedAt: r.createdAt,
    ...(r.completedAt ? { CompletedAt: r.completedAt } : {}),
    ...(r.durationMs !== undefined ? { DurationMs: r.durationMs } : {}),
    Status: STATUS_WORDS[r.status],
    ...(r.error ? { Error: { Code: r.error.code, Message: r.error.message } } : {}),
    NumCompletedSteps: r.steps.completed,
    NumTotalSteps: r.steps.total,
    NumCachedSteps: r.steps.cached,
    NumWarnings: r.warnings,
    Pinned: r.pinned,
    BuildArgs: attrsWithPrefix(attrs, "build-arg:"),
    Labels: attrsWithPrefix(attrs, "label:"),
    NamedContexts: attrsWithPrefix(attrs, "context:"),
    Attrs: rest,
    Exporters: r.exporters.map((e) => ({ Type: e.type, Attrs: e.attrs })),
    ...(Object.keys(r.exporterResponse).length ? { ExporterResponse: r.exporterResponse } : {}),
  };
}

function kvTable(title: string, kvs: Array<{ name: string; value: string }>): string {
  if (kvs.length === 0) return "";
  return (
    table(
      [title.toUpperCase(), "VALUE"],
      kvs.map((kv) => [kv.name, kv.value]),
    ) + "\n"
  );
}

/** `history inspect` as text: buildx's rows, then the tables. */
export function renderInspect(r: BuildRecord, now = Date.now()): string {
  const attrs = r.frontendAttrs;
  const head: Array<[string, string]> = [];
  const name = buildName(attrs);
  if (name) head.push(["Name", name]);
  head.push(["Ref", r.ref], ["Frontend", r.frontend]);
  if (attrs["context"]) head.push(["Context", attrs["context"]]);
  if (attrs["filename"]) head.push(["Dockerfile", attrs["filename"]]);
  if (attrs["target"]) head.push(["Target", attrs["target"]]);
  if (attrs["platform"]) head.push(["Platforms", attrs["platform"].split(",").join(", ")]);
  const times: Array<[string, string]> = [["Started", localTime(r.createdAt)]];
  if (r.completedAt) times.push(["Completed", localTime(r.completedAt)]);
  times.push(["Duration", duration(r, now) + (r.status === "running" ? " (running)" : "")]);
  times.push(["Status", STATUS_WORDS[r.status]]);
  if (r.error) times.push(["Error", `${r.error.code} ${r.error.message}`]);
  const cachedPct = r.steps.total > 0 ? Math.round((r.steps.cached / r.steps.total) * 100) : 0;
  times.push(["Build Steps", `${r.steps.completed}/${r.steps.total} (${cachedPct}% cached)`]);
  times.push(["Warnings", String(r.warnings)]);
  if (r.pinned) times.push(["Pinned", "true"]);
  let out = keyValues(head) + "\n" + keyValues(times) + "\n";
  const rest = Object.entries(attrs)
    .filter(([k]) => !SHOWN_APART.some((p) => k.startsWith(p)) && !["context", "filename", "target", "platform"].includes(k))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  if (rest.length) out += keyValues(rest.map(([k, v]) => [k, v])) + "\n";
  out += kvTable("Named Context", attrsWithPrefix(attrs, "context:"));
  out += kvTable("Build Arg", attrsWithPrefix(attrs, "build-arg:"));
  out += kvTable("Label", attrsWithPrefix(attrs, "label:"));
  if (r.exporters.length) {
    out += table(
      ["EXPORTER", "ATTRS"],
      r.exporters.map((e) => [
        e.type,
        Object.entries(e.attrs)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => `${k}=${v}`)
          .join(","),
      ]),
    );
  }
  return out.replace(/\n+$/, "\n");
}

/** buildx's "2006-01-02 15:04:05" in local time. */
function localTime(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
