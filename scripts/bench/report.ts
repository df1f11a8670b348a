/**
 * The bench's results: one row per (case, anchor), printed as it is
 * measured (tab-separated), printed again as an aligned table at the end,
 * and written as JSON. The goals are information: the bench reports them
 * and exits 0 (issue 15 owns them).
 */
import { cpus, loadavg } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export interface Row {
  section: string;
  case: string;
  unit: "ms" | "MB";
  ours: Stats;
  /** What ours is compared with (buildctl, buildx, the Go harness, ...); absent for an absolute goal. */
  anchor?: string;
  anchorStats?: Stats;
  /** ours / anchor, medians. */
  ratio?: number;
  /** "<= 1.2x", "<= 100 MB", or "-" for a row that is information only. */
  goal: string;
  /** The largest ratio (or value, in unit) that meets the goal; null: information only. */
  goalMax: number | null;
  /** null: information only. */
  met: boolean | null;
  note?: string;
}

export interface Failure {
  section: string;
  case: string;
  error: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function stats(xs: number[]): Stats {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs.length };
}

const COLUMNS = ["case", "anchor", "ours", "anchor", "ratio", "goal", "met", "ours min-max", "anchor min-max", "note"];

export class Report {
  readonly rows: Row[] = [];
  readonly failures: Failure[] = [];
  readonly #started = new Date();
  readonly #load = loadavg();

  constructor(
    readonly path: string,
    readonly settings: Record<string, unknown>,
  ) {}

  header(): void {
    console.log(COLUMNS.join("\t"));
  }

  /**
   * ours against an anchor, by medians; goal is the largest ratio that meets
   * it (Infinity: information only). Returns whether it is met (true for
   * information).
   */
  ratio(section: string, name: string, anchor: string, goal: number, ours: number[], theirs: number[], note?: string): boolean {
    const a = stats(ours);
    const b = stats(theirs);
    const ratio = a.median / b.median;
    const met = Number.isFinite(goal) ? ratio <= goal : null;
    return this.#add({
      section,
      case: name,
      unit: "ms",
      ours: a,
      anchor,
      anchorStats: b,
      ratio,
      goal: Number.isFinite(goal) ? `<= ${Number.isInteger(goal) ? goal.toFixed(1) : goal}x` : "-",
      goalMax: Number.isFinite(goal) ? goal : null,
      met,
      ...(note ? { note } : {}),
    });
  }

  /** ours against a fixed limit (peak RSS in MB, a decision's ms). */
  limit(section: string, name: string, unit: "ms" | "MB", goal: number, ours: number[], note?: string): boolean {
    const a = stats(ours);
    return this.#add({ section, case: name, unit, ours: a, goal: `<= ${goal} ${unit}`, goalMax: goal, met: a.median <= goal, ...(note ? { note } : {}) });
  }

  /** A case that could not be measured. */
  fail(section: string, name: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.failures.push({ section, case: name, error: message });
    console.log(`${name}: no ratio: ${message}`);
    this.write();
  }

  get allMet(): boolean {
    return this.failures.length === 0 && this.rows.every((r) => r.met !== false);
  }

  #add(row: Row): boolean {
    this.rows.push(row);
    console.log(cells(row).join("\t"));
    this.write();
    return row.met !== false;
  }

  /** The JSON file, rewritten after every row so an interrupted run leaves what it measured. */
  write(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const doc = {
      started: this.#started.toISOString(),
      finished: new Date().toISOString(),
      machine: { cpus: cpus().length, loadavgAtStart: this.#load, loadavgNow: loadavg() },
      settings: this.settings,
      rows: this.rows,
      failures: this.failures,
    };
    writeFileSync(this.path, `${JSON.stringify(doc, null, 2)}\n`);
  }

  /** The whole table, aligned, and where the JSON went. */
  print(): void {
    const table = [COLUMNS, ...this.rows.map(cells)];
    const widths = COLUMNS.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    console.log("");
    for (const r of table)
      console.log(
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      );
    for (const f of this.failures) console.log(`not measured: ${f.case}: ${f.error}`);
    console.log(`results: ${this.path}`);
  }
}

function cells(r: Row): string[] {
  const n = (x: number): string => (r.unit === "MB" ? x.toFixed(0) : x < 10 ? x.toFixed(3) : x.toFixed(1));
  const range = (s: Stats): string => `${n(s.min)}-${n(s.max)}`;
  return [
    `${r.case} (${r.ours.runs} runs)`,
    r.anchor ?? "",
    `${n(r.ours.median)} ${r.unit}`,
    r.anchorStats ? `${n(r.anchorStats.median)} ${r.unit}` : "",
    r.ratio === undefined ? "" : r.ratio.toFixed(2),
    r.goal,
    r.met === null ? "info" : r.met ? "yes" : "NO",
    range(r.ours),
    r.anchorStats ? range(r.anchorStats) : "",
    r.note ?? "",
  ];
}
