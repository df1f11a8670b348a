/**
 * The CLI's progress display for one build or one compose project: plain,
 * tty, rawjson, quiet or none, plus the warnings summary after the build.
 *
 * Compose: plain prints one PlainPrinter per service, its lines prefixed
 * with the service; tty draws one display for the whole project, each step
 * named "[service] step"; rawjson adds a "service" field to each line.
 */
import { TtyPrinter, PlainPrinter, formatWarnings, rawJsonLine, ttyOptionsFromEnv, type SolveStatus, type VertexWarning } from "../index.js";
import type { CliIo } from "./io.js";
import type { ProgressMode } from "./parse-build.js";

export interface ProgressDisplay {
  update(status: SolveStatus, service?: string): void;
  /** A line of the CLI's own (a warning) while the display runs: held back in tty mode, printed once the display ends. */
  message(text: string): void;
  /** Ends the display: the final frame, held messages, then the failed steps' logs when `failed`, then the warnings summary. */
  end(failed: boolean): void;
}

/** A service's status with its vertex digests and names made its own, so one display can hold several builds. */
export function serviceStatus(s: SolveStatus, service: string): SolveStatus {
  const d = (digest: string): string => `${service}/${digest}`;
  return {
    vertexes: s.vertexes.map((v) => {
      const out = { ...v, digest: d(v.digest), inputs: v.inputs.map(d), name: `[${service}] ${v.name}` };
      if (v.progressGroup) out.progressGroup = { ...v.progressGroup, id: d(v.progressGroup.id), name: `[${service}] ${v.progressGroup.name}` };
      return out;
    }),
    statuses: s.statuses.map((st) => ({ ...st, vertex: d(st.vertex) })),
    logs: s.logs.map((l) => ({ ...l, vertex: d(l.vertex) })),
    warnings: s.warnings.map((w) => ({ ...w, vertex: d(w.vertex) })),
  };
}

/**
 * Writers that prefix every non-empty line with `SERVICE | ` (services
 * padded to the longest name), as compose's plain output reads; no service
 * writes the text as it is.
 */
export function servicePrefixer(services: readonly string[], write: (text: string) => void): (service: string | undefined) => (text: string) => void {
  const width = Math.max(0, ...services.map((s) => s.length));
  return (service) => (text) => write(service === undefined ? text : text.replace(/^(?=.)/gm, `${service.padEnd(width)} | `));
}

export function startProgress(
  mode: Exclude<ProgressMode, "auto">,
  io: Pick<CliIo, "err" | "env" | "stderr">,
  options: { debug?: boolean; services?: readonly string[] } = {},
): ProgressDisplay {
  const warnings: VertexWarning[] = [];
  const held: string[] = [];
  const prefixed = servicePrefixer(options.services ?? [], io.err);
  const plain = new Map<string | undefined, PlainPrinter>();
  let tty: TtyPrinter | undefined;
  let unsubscribe: (() => void) | undefined;
  let warningColor = "";
  if (mode === "tty") {
    const t = ttyOptionsFromEnv(io.env, (m) => io.err(`warning: ${m}\n`));
    warningColor = t.colors.warning;
    const term = io.stderr;
    tty = new TtyPrinter({ write: io.err, columns: () => term?.columns(), rows: () => term?.rows(), ...t });
    const printer = tty;
    unsubscribe = term?.onResize(() => printer.redraw());
  }
  return {
    update(status, service) {
      warnings.push(...status.warnings);
      if (tty) tty.update(service === undefined ? status : serviceStatus(status, service));
      else if (mode === "plain") {
        let p = plain.get(service);
        if (!p) plain.set(service, (p = new PlainPrinter(prefixed(service))));
        p.update(status);
      } else if (mode === "rawjson") io.err(rawJsonLine(status, service === undefined ? {} : { service }));
    },
    message(text) {
      if (tty) held.push(text);
      else io.err(text);
    },
    end(failed) {
      unsubscribe?.();
      unsubscribe = undefined;
      if (tty) tty.flush();
      for (const p of plain.values()) p.flush();
      for (const m of held.splice(0)) io.err(m);
      if (failed) {
        if (tty) io.err(tty.failures());
        for (const [service, p] of plain) prefixed(service)(p.failures());
      }
      if (mode !== "quiet" && mode !== "rawjson" && mode !== "none") {
        const w = warnings.splice(0);
        if (w.length) io.err(formatWarnings(w, { color: warningColor, debug: options.debug === true }));
      }
    },
  };
}
