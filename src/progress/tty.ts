/**
 * The live terminal display, after progressui's console mode (what buildx
 * and buildctl show at a terminal):
 *
 *   [+] Building 12.3s (7/9)
 *    => [internal] load build definition from Dockerfile       0.0s
 *    => CACHED [1/4] FROM 127.0.0.1:5000/busybox               0.0s
 *    => [3/4] RUN make                                          4.1s
 *    => => # the running step's last log lines, faint
 *
 * A header with the total time and done/total; one line per started step in
 * the order they started, with its own timer and CACHED / ERROR / CANCELED
 * prefixes; a line per transfer status with sizes; WARN lines; a log tail of
 * running steps drawn through a small terminal emulator (LogTerminal).
 * Redraws at most every `updateMs` on updates and every `tickMs` otherwise;
 * every line is cut to the terminal width so nothing wraps, and non-final
 * frames fit the terminal height. flush() draws the final frame, which lists
 * every step once.
 */
import type { SolveStatus, Vertex, VertexStatus, VertexWarning } from "./status.js";
import { formatLogSeconds, formatStatusBytes } from "./plain.js";
import { LogTerminal } from "./log-terminal.js";
import { DEFAULT_COLORS, type TtyColors } from "./tty-options.js";

export interface TtyPrinterOptions {
  /** Where frames go (a terminal: they hold cursor movements). */
  write: (text: string) => void;
  /** The terminal's width, read at every redraw (default 80). */
  columns?: () => number | undefined;
  /** The terminal's height, read at every redraw (default 10, as progressui when it cannot tell). */
  rows?: () => number | undefined;
  colors?: TtyColors;
  /** Log-tail height (BUILDKIT_TTY_LOG_LINES; progressui never draws fewer than 6). */
  logLines?: number;
  /** Redraw interval without updates, ms (default 150). */
  tickMs?: number;
  /** Shortest interval between redraws on updates, ms (default 100). */
  updateMs?: number;
  /** The header's verb (default "Building"). */
  phase?: string;
  /** Right-aligned in the header (buildx shows the builder there). */
  description?: string;
  /** The clock, ms (tests). */
  now?: () => number;
}

interface Interval {
  /** Daemon clock, ms. */
  start: number;
  stop: number | undefined;
}

interface Job {
  name: string;
  cached: boolean;
  error: string | undefined;
  /** By start time: an update for the same run replaces it. */
  intervals: Map<number, Interval>;
  statuses: VertexStatus[];
  statusById: Map<string, VertexStatus>;
  warnings: VertexWarning[];
  /** Every log line, time-prefixed as plain mode prints them (for the error dump). */
  logs: string[];
  logsPartial: boolean;
  term: LogTerminal;
  termBytes: number;
  termCount: number;
  /** A progress group stays hidden until a non-weak member starts. */
  hidden: boolean;
  /** Progress-group members by digest (groups only). */
  members: Map<string, Vertex> | undefined;
}

interface Line {
  intervals: Interval[];
  completed: boolean;
  name: string;
  status: string;
  error: boolean;
  canceled: boolean;
  job: Job | undefined;
  showTerm: boolean;
}

const TERM_PAD = 10;
const TERM_HEIGHT_MIN = 6;
const CANCELED = /context canceled$/;

/** progressui's interval merge: overlapping runs become one; an open one swallows the rest. */
function mergeIntervals(list: Interval[]): Interval[] {
  const sorted = [...list].sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  let cur = sorted[0];
  if (!cur) return out;
  for (const next of sorted.slice(1)) {
    if (cur.stop === undefined) break;
    if (cur.stop < next.start) {
      out.push(cur);
      cur = next;
      continue;
    }
    if (next.stop === undefined) {
      cur = { start: cur.start, stop: undefined };
      break;
    }
    if (cur.stop >= next.stop) continue;
    cur = { start: cur.start, stop: next.stop };
  }
  out.push(cur);
  return out;
}

/** Code points, so a cut never splits a character. */
const chars = (s: string): string[] => Array.from(s);
const cut = (s: string, n: number): string => {
  const c = chars(s);
  return c.length <= n ? s : c.slice(0, Math.max(0, n)).join("");
};
const len = (s: string): number => chars(s).length;
/** Go's `%-*s %s`: l padded to w - len(r) - 1, a space, r. */
const align = (l: string, r: string, w: number): string => l + " ".repeat(Math.max(0, w - len(r) - 1 - len(l))) + " " + r;

/** Control characters other than the ones a step name may hold, shown as spaces (a name must not move the cursor). */
const printable = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, " ");

export class TtyPrinter {
  readonly #o: Required<Omit<TtyPrinterOptions, "description" | "columns" | "rows">> & {
    description: string;
    columns: () => number | undefined;
    rows: () => number | undefined;
  };
  readonly #byDigest = new Map<string, Job>();
  readonly #groups = new Map<string, Job>();
  /** Jobs in the order they started. */
  readonly #order: Job[] = [];
  /** Daemon ms of the first start seen. */
  #startTime: number | undefined;
  /** Local minus daemon clock, taken at the first start. */
  #offset: number | undefined;
  #termHeight: number;

  /** The previous frame's line lengths (cells) and the width it was drawn at. */
  #lastLines: number[] = [];
  #lastWidth = 0;
  #lastDraw = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: TtyPrinterOptions) {
    this.#o = {
      write: options.write,
      columns: options.columns ?? (() => 80),
      rows: options.rows ?? (() => 10),
      colors: options.colors ?? DEFAULT_COLORS,
      logLines: options.logLines ?? TERM_HEIGHT_MIN,
      tickMs: options.tickMs ?? 150,
      updateMs: options.updateMs ?? 100,
      phase: options.phase ?? "Building",
      description: options.description ?? "",
      now: options.now ?? Date.now,
    };
    this.#termHeight = Math.max(TERM_HEIGHT_MIN, this.#o.logLines);
  }

  #size(): [number, number] {
    const w = this.#o.columns();
    const h = this.#o.rows();
    return w && h && w > 0 && h > 0 ? [w, h] : [80, 10];
  }

  #newJob(name: string, hidden: boolean, group: boolean): Job {
    const [width] = this.#size();
    return {
      name,
      cached: false,
      error: undefined,
      intervals: new Map(),
      statuses: [],
      statusById: new Map(),
      warnings: [],
      logs: [],
      logsPartial: false,
      term: new LogTerminal(this.#termHeight, Math.max(1, width - TERM_PAD)),
      termBytes: 0,
      termCount: 0,
      hidden,
      members: group ? new Map() : undefined,
    };
  }

  /** Takes one update; redraws if the last redraw is `updateMs` old, else leaves it to the ticker. */
  update(status: SolveStatus): void {
    if (this.#closed) return;
    this.#apply(status);
    const now = this.#o.now();
    if (now - this.#lastDraw >= this.#o.updateMs) this.#draw(false);
    this.#schedule();
  }

  /** Draws the final frame (every step, no tails) and stops redrawing. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    this.#closed = true;
    this.#draw(true);
  }

  /** Redraws now (a terminal resize, say). */
  redraw(): void {
    if (!this.#closed) this.#draw(false);
  }

  /**
   * The failed steps' logs, every line (the tty display keeps them all, where
   * plain mode keeps the last 10), as buildx prints them after the final frame.
   */
  failures(): string {
    let out = "";
    for (const j of this.#order) {
      if (!j.error || CANCELED.test(j.error)) continue;
      out += `------\n > ${j.name}:\n${j.logs.map((l) => l + "\n").join("")}------\n`;
    }
    return out;
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#draw(false);
      this.#schedule();
    }, this.#o.tickMs);
    // The ticker never keeps a process alive by itself.
    this.#timer.unref();
  }

  #apply(s: SolveStatus): void {
    const groupsSeen: Job[] = [];
    for (const v of s.vertexes) {
      if (this.#startTime === undefined && v.started) this.#startTime = v.started.getTime();
      if (v.progressGroup) {
        let g = this.#groups.get(v.progressGroup.id);
        if (!g) {
          g = this.#newJob(printable(v.progressGroup.name), true, true);
          this.#groups.set(v.progressGroup.id, g);
        }
        if (!groupsSeen.includes(g)) groupsSeen.push(g);
        g.members!.set(v.digest, v);
        this.#byDigest.set(v.digest, g);
        continue;
      }
      let j = this.#byDigest.get(v.digest);
      const wasStarted = j !== undefined && j.intervals.size > 0;
      if (!j) {
        j = this.#newJob(printable(v.name), false, false);
        this.#byDigest.set(v.digest, j);
      }
      if (v.started && !wasStarted) {
        this.#offset ??= this.#o.now() - v.started.getTime();
        this.#order.push(j);
      }
      // A repeat of the first announcement must not reset a running step.
      if (!wasStarted || v.started) {
        j.name = printable(v.name);
        j.cached = v.cached;
        j.error = v.error;
      }
      if (v.started) j.intervals.set(v.started.getTime(), { start: v.started.getTime(), stop: v.completed?.getTime() });
    }
    for (const g of groupsSeen) this.#refreshGroup(g);
    for (const st of s.statuses) {
      const j = this.#byDigest.get(st.vertex);
      if (!j) continue;
      const prev = j.statusById.get(st.id);
      j.statusById.set(st.id, st);
      if (st.started && !prev?.started) j.statuses.push(st);
      else if (prev) {
        const k = j.statuses.indexOf(prev);
        if (k >= 0) j.statuses[k] = st;
      }
    }
    for (const w of s.warnings) this.#byDigest.get(w.vertex)?.warnings.push(w);
    for (const l of s.logs) {
      const j = this.#byDigest.get(l.vertex);
      if (!j) continue;
      j.termBytes += l.data.length;
      j.term.write(l.data);
      const text = l.data.toString("utf8");
      if (!text) continue;
      const parts = text.split("\n");
      const complete = parts[parts.length - 1] === "";
      if (complete) parts.pop();
      // One chunk, one timestamp: every line it starts gets the same time.
      const recent = mergeIntervals([...j.intervals.values()]).at(-1);
      const t = formatLogSeconds(recent && l.timestamp ? (l.timestamp.getTime() - recent.start) / 1000 : 0);
      parts.forEach((part, i) => {
        if (i === 0 && j.logsPartial && j.logs.length) {
          const last = j.logs.length - 1;
          j.logs[last] = (j.logs[last] ?? "") + part;
          return;
        }
        j.logs.push(`${t} ${part}`);
      });
      j.logsPartial = !complete;
    }
  }

  /** A group: cached iff every member is, the first member error, the union of members' runs; shown once a non-weak member starts. */
  #refreshGroup(g: Job): void {
    const wasStarted = g.intervals.size > 0;
    const wasHidden = g.hidden;
    let cached = true;
    let error: string | undefined;
    for (const m of g.members!.values()) {
      if (m.started) {
        g.intervals.set(m.started.getTime(), { start: m.started.getTime(), stop: m.completed?.getTime() });
        if (!m.progressGroup?.weak) g.hidden = false;
      }
      cached &&= m.cached;
      if (error === undefined) error = m.error;
      else g.hidden = false;
    }
    g.cached = cached;
    g.error = error || undefined;
    if (!wasStarted && g.intervals.size > 0) {
      const first = mergeIntervals([...g.intervals.values()])[0];
      if (first) this.#offset ??= this.#o.now() - first.start;
    }
    if (!g.hidden && wasHidden) this.#order.push(g);
  }

  #local(daemonMs: number): number {
    return daemonMs + (this.#offset ?? 0);
  }

  #lines(): { lines: Line[]; total: number; done: number } {
    // Each job's runs, merged once per frame.
    const merged = new Map<Job, Interval[]>();
    for (const j of this.#byDigest.values()) if (!j.hidden && !merged.has(j)) merged.set(j, mergeIntervals([...j.intervals.values()]));
    let done = 0;
    for (const intervals of merged.values()) {
      const last = intervals.at(-1);
      if (last && last.stop !== undefined) done++;
    }
    const lines: Line[] = [];
    for (const j of this.#order) {
      // (A job is in the order only once started and shown, so it is in `merged`.)
      const intervals = merged.get(j)!;
      let name = j.name;
      let error = false;
      let canceled = false;
      if (j.error) {
        if (CANCELED.test(j.error)) {
          canceled = true;
          name = `CANCELED ${name}`;
        } else {
          error = true;
          name = `ERROR ${name}`;
        }
      }
      if (j.cached) name = `CACHED ${name}`;
      lines.push({ intervals, completed: intervals.every((i) => i.stop !== undefined), name, status: "", error, canceled, job: j, showTerm: false });
      for (const st of j.statuses) {
        const status = formatStatusBytes(st);
        lines.push({
          intervals: [{ start: st.started?.getTime() ?? 0, stop: st.completed?.getTime() }],
          completed: st.completed !== undefined,
          name: `=> ${st.id}`,
          status,
          error: false,
          canceled: false,
          job: undefined,
          showTerm: false,
        });
      }
      const recent = intervals.at(-1);
      for (const w of j.warnings) {
        lines.push({
          intervals: recent ? [recent] : [],
          completed: false,
          name: `WARN: ${printable(w.short)}`,
          status: "",
          error: false,
          canceled: true,
          job: undefined,
          showTerm: false,
        });
      }
    }
    return { lines, total: merged.size, done };
  }

  /** Which running steps get a log tail, and the lines that fit the height (progressui's setupTerminals and wrapHeight). */
  #fit(lines: Line[], height: number, all: boolean): Line[] {
    const candidates = lines.filter((l) => l.job && l.job.termBytes > 0 && !l.completed);
    const running = lines.filter((l) => !l.completed).length;
    candidates.sort((a, b) => b.job!.termBytes + b.job!.termCount * 50 - (a.job!.termBytes + a.job!.termCount * 50));
    let free = height - 2 - running;
    let hide = 0;
    this.#termHeight = Math.max(TERM_HEIGHT_MIN, Math.min(this.#o.logLines, height - TERM_HEIGHT_MIN - 1));
    const limit = this.#termHeight + 3;
    for (let i = 0; free > limit && i < candidates.length; i++) {
      candidates[i]!.showTerm = true;
      hide += candidates[i]!.job!.term.usedHeight();
      free -= limit;
    }
    if (all) return lines;
    const max = height - 2 - hide;
    if (max < 0) return [];
    if (lines.length <= max) return lines;
    // Keep the newest lines, but pull in running ones that would be cut.
    let kept = lines.slice(lines.length - max);
    const invisible = lines.slice(0, lines.length - max).filter((l) => !l.completed);
    if (invisible.length) {
      let l = invisible.length;
      const rewrapped: Line[] = [];
      for (const line of kept) {
        if (!line.completed || l <= 0) rewrapped.push(line);
        l--;
      }
      const room = kept.length - rewrapped.length;
      kept = [...invisible.slice(invisible.length - room), ...rewrapped];
    }
    return kept;
  }

  #draw(all: boolean): void {
    const [width, height] = this.#size();
    const now = this.#o.now();
    this.#lastDraw = now;
    const { lines, total, done } = this.#lines();
    const shown = this.#fit(lines, height, all);
    const c = this.#o.colors;

    // Rows of this frame: the text (with colours) and its length in cells.
    const rows: Array<[string, number]> = [];

    const start = this.#startTime !== undefined ? this.#local(this.#startTime) : now;
    const finished = all && done > 0 && done === total ? "FINISHED" : "";
    let header = `[+] ${this.#o.phase} ${((now - start) / 1000).toFixed(1)}s (${done}/${total}) ${finished}`;
    header = this.#o.description ? align(header, this.#o.description, width - 1) : align(header, "", width);
    // width - 1, as every line: a line that fills the last column leaves
    // some terminals waiting to wrap, and the newline after it then counts twice.
    header = cut(header, width - 1);
    rows.push([header, len(header)]);

    for (const l of shown) {
      if (!l.intervals.length) continue;
      let secs = 0;
      for (const iv of l.intervals) {
        if (!iv.start) continue;
        const stop = iv.stop !== undefined ? this.#local(iv.stop) : now;
        secs += (stop - this.#local(iv.start)) / 1000;
      }
      if (secs < 0.05) secs = 0;
      const pfx = " => ";
      const timer = ` ${secs.toFixed(1)}s`;
      // progressui counts the timer's newline: the line ends at width - 1.
      let left = width - pfx.length - timer.length - 2;
      let showStatus = false;
      if (l.status && left + l.status.length > 20) {
        showStatus = true;
        left -= l.status.length + 1;
      }
      if (left < 12) continue;
      let line = pfx + cut(l.name, left);
      if (showStatus) line += " " + l.status;
      line = align(line, timer, width - 1);
      const n = len(line);
      if (l.completed) {
        const color = l.canceled ? c.cancel : l.error ? c.error : c.run;
        if (color) line = `${color}${line}\x1b[0m`;
      }
      rows.push([line, n]);
      if (l.showTerm && l.job) {
        const term = l.job.term;
        term.resize(this.#termHeight, width - TERM_PAD);
        for (const row of term.content()) {
          const tail = ` => => # ${row}`;
          rows.push([`\x1b[2m${tail}\x1b[0m`, len(tail)]);
        }
        l.job.termCount++;
      }
    }

    // Back to the top of the previous frame. When the terminal got narrower,
    // a terminal that rewraps has split its lines: count the rows they take now.
    let up = 0;
    for (const n of this.#lastLines) up += width < this.#lastWidth ? Math.max(1, Math.ceil(n / width)) : 1;
    let out = up > 0 ? `\x1b[${up}A` : "";
    // Each row ends with ESC[K (erase to the end of the line), so nothing of
    // an older, longer or rewrapped row stays. (Not ESC[J: tmux moves the
    // whole screen into its scrollback when that is sent from the top-left.)
    out += "\x1b[1G\x1b[?25l";
    for (const [text] of rows) out += `${text}\x1b[K\n`;
    // Rows the previous frame used below this one: blanked, then back up.
    if (up > rows.length) out += "\x1b[K\n".repeat(up - rows.length) + `\x1b[${up - rows.length}A`;
    const lengths = rows.map(([, n]) => n);
    out += "\x1b[?25h";
    this.#lastLines = lengths;
    this.#lastWidth = width;
    this.#o.write(out);
  }
}
