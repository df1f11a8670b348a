/**
 * History filters as buildx takes them (`ref=x`, `status=error`,
 * `startedAt>24h`, `duration>30s`, ...) with buildx's meaning (buildx
 * commands/history/utils.go: `ref=` and `repository=` match substrings,
 * `status=` exactly, times at whole seconds). They are matched here, not by
 * the daemon: see api.ts for why none are sent.
 */
import { UsageError } from "../errors.js";
import { parseGoDuration } from "../units.js";
import type { BuildRecord } from "./record.js";

export type FilterKey = "ref" | "repository" | "status" | "startedAt" | "completedAt" | "duration";
export type FilterOp = "=" | "!=" | "<" | "<=" | ">" | ">=";

export interface HistoryFilter {
  key: FilterKey;
  op: FilterOp;
  value: string;
  /** Whether a record passes the filter. */
  matches(record: BuildRecord): boolean;
}

const STATUSES = ["running", "completed", "error", "canceled"];
/** Longest first, so `!=` is not read as `=` and `<=` not as `<`. */
const OPERATORS: FilterOp[] = ["!=", "<=", ">=", "=", "<", ">"];

/** Parses one filter; throws a UsageError naming it. `now` anchors "ago" durations (default: the current time). */
export function parseHistoryFilter(text: string, now: Date = new Date()): HistoryFilter {
  let at = -1;
  let op: FilterOp | undefined;
  for (const o of OPERATORS) {
    const i = text.indexOf(o);
    if (i > 0 && (at < 0 || i < at || (i === at && o.length > op!.length))) {
      at = i;
      op = o;
    }
  }
  if (op === undefined) throw new UsageError(`invalid history filter "${text}": use KEY=VALUE, KEY!=VALUE or KEY<VALUE (e.g. status=error, startedAt>24h)`);
  const key = text.slice(0, at);
  const value = text.slice(at + op.length);
  switch (key) {
    case "ref":
    case "repository":
    case "status": {
      if (op !== "=" && op !== "!=") throw new UsageError(`invalid history filter "${text}": ${key} takes = or !=`);
      if (key === "status" && !STATUSES.includes(value)) throw new UsageError(`invalid history filter "${text}": status is one of ${STATUSES.join(", ")}`);
      const get = (r: BuildRecord): string => (key === "ref" ? r.ref : key === "status" ? r.status : repositoryOf(r.frontendAttrs));
      const matches =
        op === "!="
          ? (r: BuildRecord): boolean => get(r) !== value
          : key === "status"
            ? (r: BuildRecord): boolean => get(r) === value
            : (r: BuildRecord): boolean => get(r).includes(value);
      return { key, op, value, matches };
    }
    case "startedAt":
    case "completedAt":
    case "duration": {
      if (op === "=" || op === "!=") throw new UsageError(`invalid history filter "${text}": ${key} takes <, <=, > or >=`);
      let bound: number;
      const what = `history filter "${text}"`;
      if (key === "duration") {
        bound = parseGoDuration(value, what);
      } else if (/^\d/.test(value) && !Number.isNaN(Date.parse(value)) && /[T-]/.test(value)) {
        bound = Date.parse(value);
      } else {
        try {
          bound = now.getTime() - parseGoDuration(value, what);
        } catch {
          throw new UsageError(`invalid ${what}: ${key} takes a Go duration (ago, e.g. 24h) or an RFC 3339 time`);
        }
      }
      const get = (r: BuildRecord): number =>
        key === "startedAt" ? r.createdAt.getTime() : key === "completedAt" ? (r.completedAt?.getTime() ?? 0) : (r.durationMs ?? 0);
      const cmp = {
        "<": (a: number) => a < bound,
        "<=": (a: number) => a <= bound,
        ">": (a: number) => a > bound,
        ">=": (a: number) => a >= bound,
      }[op];
      // buildx compares times at whole seconds (Unix()).
      const sec = (ms: number): number => (key === "duration" ? ms : Math.floor(ms / 1000) * 1000);
      bound = sec(bound);
      return { key, op, value, matches: (r) => cmp(sec(get(r))) };
    }
    default:
      throw new UsageError(`unsupported history filter "${text}": keys are ref, repository, status, startedAt, completedAt, duration`);
  }
}

/** The repository a record was built from: `vcs:source`, else a git URL context. */
function repositoryOf(attrs: Readonly<Record<string, string>>): string {
  const src = attrs["vcs:source"];
  if (src) return src;
  const ctx = attrs["context"] ?? "";
  if (/^(?:git@|git:\/\/|ssh:\/\/|https?:\/\/)/.test(ctx)) return ctx.replace(/#.*$/, "");
  return "";
}
