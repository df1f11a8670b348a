/**
 * buildctl's plain progress format:
 *   #N name / #N 0.123 log line / #N transferring context: 340.18kB 0.4s done
 *   #N DONE 0.3s / #N CACHED / #N ERROR: ...
 */
import type { SolveStatus, Vertex, VertexStatus } from "./status.js";
import { scaleDecimal } from "../units.js";

/** A byte count as buildctl prints it: "135B", "340.18kB", "1.20GB" (powers of 1000). */
export function formatProgressBytes(n: number): string {
  const [v, unit] = scaleDecimal(n);
  return unit === "B" ? `${n}B` : `${v.toFixed(2)}${unit}`;
}

/** A status's sizes: "current / total", "current" when there is no total, "" when neither is known. */
export function formatStatusBytes(s: Pick<VertexStatus, "current" | "total">): string {
  if (s.total !== 0) return `${formatProgressBytes(s.current)} / ${formatProgressBytes(s.total)}`;
  return s.current !== 0 ? formatProgressBytes(s.current) : "";
}

/** A log line's time since its step started, as buildctl prefixes it: 3, 2 or 1 decimals below 10 s, 100 s, above. */
export function formatLogSeconds(since: number): string {
  return since < 10 ? since.toFixed(3) : since < 100 ? since.toFixed(2) : since.toFixed(1);
}

/**
 * One status line: "ID[ current[ / total]][ 1.2s][ done]". The time shows
 * once over 0.01 s, up to the update's timestamp or the completion.
 */
export function formatStatusLine(s: VertexStatus): string {
  const sizes = formatStatusBytes(s);
  const bytes = sizes ? ` ${sizes}` : "";
  let tm = "";
  const end = s.completed ?? s.timestamp;
  if (s.started && end) {
    const secs = (end.getTime() - s.started.getTime()) / 1000;
    if (secs > 0.01) tm = ` ${secs.toFixed(1)}s`;
  }
  if (s.completed) tm += " done";
  return `${s.id}${bytes}${tm}`;
}

/** Unfinished status updates print only after this much progress or time, as in buildctl. */
const MIN_PROGRESS = 0.05;
const MIN_INTERVAL_MS = 5000;
/** Updates arriving closer together than this are printed as one, as buildctl does. */
const BATCH_MS = 100;

interface State {
  n: number;
  /** Order of first mention: ties in completion time print in this order. */
  seen: number;
  vertex: Vertex;
  announced: boolean;
  done: boolean;
  partial: string;
  lines: string[];
}

export class PlainPrinter {
  readonly #write: (text: string) => void;
  readonly #vertices = new Map<string, State>();
  /** Last printed update per status id. */
  readonly #lastStatus = new Map<string, { current: number; at: number }>();
  #next = 1;
  /** The vertex printed last, while it runs. */
  #current: string | undefined;
  #printed = false;

  #pending: SolveStatus | undefined;
  #lastPrint = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /**
   * Takes one update. Updates within 100 ms of the last print are merged
   * and printed together (a vertex that completes and restarts in between
   * shows once); call flush() when the stream ends.
   */
  update(status: SolveStatus): void {
    const p = (this.#pending ??= { vertexes: [], statuses: [], logs: [], warnings: [] });
    p.vertexes.push(...status.vertexes);
    p.statuses.push(...status.statuses);
    p.logs.push(...status.logs);
    p.warnings.push(...status.warnings);
    const wait = this.#lastPrint + BATCH_MS - performance.now();
    if (wait <= 0) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), wait);
  }

  /** Prints whatever updates are waiting. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const p = this.#pending;
    this.#pending = undefined;
    this.#lastPrint = performance.now();
    if (!p) return;
    // The latest state of each vertex and status, in order of first mention.
    const vertexes = new Map<string, Vertex>();
    for (const v of p.vertexes) vertexes.set(v.digest, v);
    const statuses = new Map<string, VertexStatus>();
    for (const st of p.statuses) statuses.set(`${st.vertex} ${st.id}`, st);
    this.#print({ vertexes: [...vertexes.values()], statuses: [...statuses.values()], logs: p.logs, warnings: p.warnings });
  }

  #state(v: Vertex): State {
    let s = this.#vertices.get(v.digest);
    if (!s) {
      s = { n: 0, seen: this.#vertices.size, vertex: v, announced: false, done: false, partial: "", lines: [] };
      this.#vertices.set(v.digest, s);
    }
    // Each update carries the whole vertex: a vertex that completes and
    // starts again (buildkitd does this for local sources) is running again.
    s.vertex = v;
    return s;
  }

  #print(status: SolveStatus): void {
    for (const v of status.vertexes) {
      const s = this.#state(v);
      if (!v.completed) s.done = false;
    }
    // What each vertex has to show in this batch.
    const lines = new Map<string, string[]>();
    const add = (digest: string, line: string): void => {
      let l = lines.get(digest);
      if (!l) lines.set(digest, (l = []));
      l.push(line);
    };
    for (const st of status.statuses) {
      if (!this.#vertices.has(st.vertex)) continue;
      const last = this.#lastStatus.get(st.id);
      const at = (st.timestamp ?? st.completed ?? new Date()).getTime();
      if (last && !st.completed) {
        const progress = st.total > 0 ? (st.current - last.current) / st.total : 0;
        if (progress < MIN_PROGRESS && at - last.at < MIN_INTERVAL_MS) continue;
      }
      this.#lastStatus.set(st.id, { current: st.current, at });
      add(st.vertex, formatStatusLine(st));
    }
    for (const l of status.logs) {
      const s = this.#vertices.get(l.vertex);
      if (!s) continue;
      const text = s.partial + l.data.toString("utf8");
      const parts = text.split("\n");
      s.partial = parts.pop() ?? "";
      const since = s.vertex.started && l.timestamp ? (l.timestamp.getTime() - s.vertex.started.getTime()) / 1000 : 0;
      const t = formatLogSeconds(since);
      for (const line of parts) {
        s.lines.push(`${t} ${line}`);
        if (s.lines.length > 10) s.lines.shift();
        add(l.vertex, `${t} ${line}`);
      }
    }
    for (const w of status.warnings) {
      if (this.#vertices.has(w.vertex)) add(w.vertex, `WARN: ${w.short}`);
      else this.#write(`WARN: ${w.short}\n`);
    }

    // Completed vertices first, in completion order; then the running ones.
    const touched = new Set<string>([...status.vertexes.map((v) => v.digest), ...lines.keys()]);
    const states = [...touched].map((d) => this.#vertices.get(d)!).filter((s) => s.vertex.started || s.vertex.completed || s.vertex.cached);
    // (buildctl sorts a map by completion time, so its ties come out in any
    // order; ours put a step's inputs before it, then keep the daemon's order.)
    const depth = new Map<string, number>();
    const depthOf = (digest: string, guard = 0): number => {
      const known = depth.get(digest);
      if (known !== undefined) return known;
      const v = this.#vertices.get(digest)?.vertex;
      const d = v && guard < 64 ? 1 + Math.max(-1, ...v.inputs.map((i) => depthOf(i, guard + 1))) : 0;
      depth.set(digest, d);
      return d;
    };
    const completed = states
      .filter((s) => s.vertex.completed && !s.done)
      .sort((x, y) => x.vertex.completed!.getTime() - y.vertex.completed!.getTime() || depthOf(x.vertex.digest) - depthOf(y.vertex.digest) || x.seen - y.seen);
    // A running vertex shows when it has lines, or to announce that it started.
    const running = states.filter((s) => !s.vertex.completed && (lines.has(s.vertex.digest) || !s.announced));
    for (const s of [...completed, ...running]) this.#printVertex(s, lines.get(s.vertex.digest) ?? []);
  }

  /** One vertex's part of a batch, headed by its name when another vertex printed last (as buildctl does). */
  #printVertex(s: State, lines: string[]): void {
    if (this.#current !== s.vertex.digest) {
      const old = this.#current ? this.#vertices.get(this.#current) : undefined;
      if (old && !old.vertex.completed) this.#write(`#${old.n} ...\n`);
      if (!s.announced) {
        s.announced = true;
        s.n = this.#next++;
      }
      this.#write(`${this.#printed ? "\n" : ""}#${s.n} ${s.vertex.name}\n`);
      this.#printed = true;
    }
    for (const line of lines) this.#write(`#${s.n} ${line}\n`);
    this.#current = s.vertex.digest;
    if (!s.vertex.completed || s.done) return;
    s.done = true;
    this.#current = undefined;
    if (s.partial) {
      this.#write(`#${s.n} ${s.partial}\n`);
      s.partial = "";
    }
    if (s.vertex.error) {
      this.#write(/context canceled/.test(s.vertex.error) ? `#${s.n} CANCELED\n` : `#${s.n} ERROR: ${s.vertex.error}\n`);
    } else if (s.vertex.cached) {
      this.#write(`#${s.n} CACHED\n`);
    } else {
      const secs = s.vertex.started ? Math.max(0, (s.vertex.completed.getTime() - s.vertex.started.getTime()) / 1000) : 0;
      this.#write(`#${s.n} DONE ${secs.toFixed(1)}s\n`);
    }
  }

  /** The last log lines of failed steps, as buildctl prints them after an error. */
  failures(): string {
    this.flush();
    let out = "";
    for (const s of this.#vertices.values()) {
      if (!s.vertex.error || /context canceled/.test(s.vertex.error)) continue;
      out += `------\n > ${s.vertex.name}:\n${s.lines.join("\n")}${s.lines.length ? "\n" : ""}------\n`;
    }
    return out;
  }
}
