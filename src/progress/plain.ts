/**
 * buildctl's plain progress format:
 *   #N name / #N 0.123 log line / #N DONE 0.3s / #N CACHED / #N ERROR: ...
 */
import type { SolveStatus, Vertex } from "./status.js";

interface State {
  n: number;
  vertex: Vertex;
  announced: boolean;
  done: boolean;
  partial: string;
  lines: string[];
}

export class PlainPrinter {
  readonly #write: (text: string) => void;
  readonly #vertices = new Map<string, State>();
  #next = 1;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  #state(v: Vertex): State {
    let s = this.#vertices.get(v.digest);
    if (!s) {
      s = { n: 0, vertex: v, announced: false, done: false, partial: "", lines: [] };
      this.#vertices.set(v.digest, s);
    }
    s.vertex = { ...s.vertex, ...v };
    return s;
  }

  #announce(s: State): void {
    if (s.announced) return;
    s.announced = true;
    s.n = this.#next++;
    this.#write(`\n#${s.n} ${s.vertex.name}\n`);
  }

  update(status: SolveStatus): void {
    for (const v of status.vertexes) {
      const s = this.#state(v);
      if (v.started || v.completed || v.cached) this.#announce(s);
    }
    for (const l of status.logs) {
      const s = this.#vertices.get(l.vertex);
      if (!s) continue;
      this.#announce(s);
      const text = s.partial + l.data.toString("utf8");
      const parts = text.split("\n");
      s.partial = parts.pop() ?? "";
      const since = s.vertex.started && l.timestamp ? (l.timestamp.getTime() - s.vertex.started.getTime()) / 1000 : 0;
      const t = since < 10 ? since.toFixed(3) : since < 100 ? since.toFixed(2) : since.toFixed(1);
      for (const line of parts) {
        s.lines.push(`${t} ${line}`);
        if (s.lines.length > 10) s.lines.shift();
        this.#write(`#${s.n} ${t} ${line}\n`);
      }
    }
    for (const w of status.warnings) {
      const s = this.#vertices.get(w.vertex);
      this.#write(`${s ? `#${s.n} ` : ""}WARN: ${w.short}\n`);
    }
    for (const v of status.vertexes) {
      const s = this.#vertices.get(v.digest)!;
      if (!s.done && s.vertex.completed) {
        s.done = true;
        this.#announce(s);
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
    }
  }

  /** The last log lines of failed steps, as buildctl prints them after an error. */
  failures(): string {
    let out = "";
    for (const s of this.#vertices.values()) {
      if (!s.vertex.error || /context canceled/.test(s.vertex.error)) continue;
      out += `------\n > ${s.vertex.name}:\n${s.lines.join("\n")}${s.lines.length ? "\n" : ""}------\n`;
    }
    return out;
  }
}
