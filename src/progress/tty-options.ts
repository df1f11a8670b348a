/**
 * The tty display's settings from the environment variables progressui
 * reads: NO_COLOR, BUILDKIT_COLORS, BUILDKIT_TTY_LOG_LINES and
 * TTY_DISPLAY_RATE. The library never reads process.env itself: the CLI (or
 * a caller who wants the same behaviour) passes its environment here.
 */
import { csvFields } from "../csv.js";

/** SGR sequences (e.g. "\x1b[34m") per line state; "" draws without colour. */
export interface TtyColors {
  /** Completed steps. */
  run: string;
  /** Cancelled steps and the warnings summary. */
  cancel: string;
  warning: string;
  error: string;
}

export const DEFAULT_COLORS: Readonly<TtyColors> = { run: "\x1b[34m", cancel: "\x1b[33m", warning: "\x1b[33m", error: "\x1b[31m" };
export const NO_COLORS: Readonly<TtyColors> = { run: "", cancel: "", warning: "", error: "" };

const NAMED: Record<string, number> = {
  default: 39,
  black: 30,
  red: 31,
  green: 32,
  yellow: 33,
  blue: 34,
  magenta: 35,
  cyan: 36,
  white: 37,
  "light-black": 90,
  "light-red": 91,
  "light-green": 92,
  "light-yellow": 93,
  "light-blue": 94,
  "light-magenta": 95,
  "light-cyan": 96,
  "light-white": 97,
};

/**
 * BUILDKIT_COLORS: colon-separated `key=value` entries (CSV quoting), keys
 * run, cancel, error, warning; a value is a colour name or `R,G,B` (0-255,
 * drawn as the nearest of the 256-colour cube). Bad entries are skipped and
 * reported through `warn`, as progressui logs them.
 */
export function parseBuildkitColors(text: string, base: TtyColors = DEFAULT_COLORS, warn: (message: string) => void = () => {}): TtyColors {
  const out = { ...base };
  if (text === "") return out; // progressui reads only a non-empty BUILDKIT_COLORS
  let fields: string[];
  try {
    fields = csvFields(text, ":", "BUILDKIT_COLORS");
  } catch {
    warn(`could not parse BUILDKIT_COLORS "${text}"; using the default colours`);
    return out;
  }
  for (const field of fields) {
    if (field === "") continue;
    const eq = field.indexOf("=");
    const key = eq < 0 ? "" : field.slice(0, eq).toLowerCase();
    const value = eq < 0 ? "" : field.slice(eq + 1);
    if (eq < 0 || value.includes("=")) {
      warn(`BUILDKIT_COLORS entry "${field}" must be KEY=COLOR; skipped`);
      continue;
    }
    let sgr: string | undefined;
    const named = NAMED[value.toLowerCase()];
    if (named !== undefined) sgr = `\x1b[${named}m`;
    else if (value.includes(",")) {
      const parts = value.split(",");
      const nums = parts.map((p) => (/^[+-]?\d+$/.test(p.trim()) ? Number(p.trim()) : NaN));
      if (parts.length !== 3 || nums.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
        warn(`BUILDKIT_COLORS entry "${field}": an RGB colour is three whole numbers 0-255; skipped`);
        continue;
      }
      const [r, g, b] = nums.map((n) => Math.floor(n / 43)) as [number, number, number];
      sgr = `\x1b[38;5;${16 + 36 * r + 6 * g + b}m`;
    } else {
      warn(`BUILDKIT_COLORS entry "${field}": unknown colour (a name such as blue or light-red, or R,G,B); skipped`);
      continue;
    }
    if (key === "run" || key === "cancel" || key === "error" || key === "warning") out[key] = sgr;
    else warn(`BUILDKIT_COLORS entry "${field}": unknown key (expected run, cancel, error or warning); skipped`);
  }
  return out;
}

export interface TtyEnvOptions {
  colors: TtyColors;
  /** Log-tail height (BUILDKIT_TTY_LOG_LINES, default 6). */
  logLines: number;
  /** Redraw interval in ms (TTY_DISPLAY_RATE; progressui's ticker 150 ms, updates at most every 100 ms). */
  tickMs: number;
  updateMs: number;
}

/** The display settings an environment asks for, as progressui reads them. */
export function ttyOptionsFromEnv(env: Record<string, string | undefined>, warn?: (message: string) => void): TtyEnvOptions {
  let colors: TtyColors = { ...DEFAULT_COLORS };
  if (env["NO_COLOR"]) colors = { ...NO_COLORS };
  else if (env["BUILDKIT_COLORS"] !== undefined) colors = parseBuildkitColors(env["BUILDKIT_COLORS"], colors, warn);
  let logLines = 6;
  const ll = env["BUILDKIT_TTY_LOG_LINES"];
  if (ll && /^[+-]?\d+$/.test(ll) && Number(ll) > 0) logLines = Number(ll);
  let tickMs = 150;
  let updateMs = 100;
  const rate = env["TTY_DISPLAY_RATE"];
  if (rate && /^[+-]?\d+$/.test(rate) && Number(rate) > 0) tickMs = updateMs = Number(rate);
  return { colors, logLines, tickMs, updateMs };
}
