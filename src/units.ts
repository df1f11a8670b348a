/** Pure parsers for durations and sizes as Go and docker write them, and the decimal size scaling. */
import { UsageError } from "./errors.js";

/** Go's strconv.ParseBool; undefined when it is not a boolean. */
export function parseBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  // Go's strconv.ParseBool: these spellings only (not "tRuE").
  if (/^(1|t|T|TRUE|true|True)$/.test(v)) return true;
  if (/^(0|f|F|FALSE|false|False)$/.test(v)) return false;
  return undefined;
}

const durationUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration ("24h", "1h30m", "500ms", "1.5s") into milliseconds.
 * `flag` names the input in the error.
 */
export function parseGoDuration(text: string, flag: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * durationUnits[m[2]!]!;
    matched = re.lastIndex;
  }
  if (s === "" || matched !== s.length) {
    throw new UsageError(`invalid duration "${text}" for ${flag}: use a Go duration such as 30s, 15m or 24h`);
  }
  return total;
}

/** The longest a Node timer waits (2^31-1 ms); a longer one fires at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * --timeout: whole seconds as buildctl ("5"), or a Go duration ("1500ms").
 * Returns milliseconds: more than zero, at most MAX_TIMEOUT_MS.
 */
export function parseTimeout(text: string): number {
  const s = text.trim();
  const tooSmall = (): UsageError => new UsageError(`invalid --timeout "${text}": must be more than zero (e.g. 5 or 10s)`);
  if (/^-\d+$/.test(s)) throw tooSmall();
  if (s.startsWith("-")) {
    // A negative Go duration ("-5s") is well formed, just not a timeout.
    try {
      parseGoDuration(s.slice(1), "--timeout");
    } catch {
      parseGoDuration(text, "--timeout");
    }
    throw tooSmall();
  }
  const ms = /^\+?\d+$/.test(s) ? Number(s) * 1000 : parseGoDuration(s.replace(/^\+/, ""), "--timeout");
  if (!(ms > 0)) throw tooSmall();
  if (ms > MAX_TIMEOUT_MS) throw new UsageError(`invalid --timeout "${text}": at most 596h31m23s (2^31-1 ms, the longest a timer can wait)`);
  return ms;
}

/**
 * Parses a byte size like docker's units.RAMInBytes (binary multiples):
 * "1024", "512k", "10GB", "1.5gib". Returns bytes.
 */
export function parseBytes(text: string, flag: string): bigint {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$/i.exec(text.trim());
  if (!m) {
    throw new UsageError(`invalid size "${text}" for ${flag}: use bytes or a unit such as 512MB or 10GB`);
  }
  const mult = { "": 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n }[(m[2] ?? "").toLowerCase()]!;
  const [whole, frac = ""] = m[1]!.split(".");
  const scale = 10n ** BigInt(frac.length);
  return (BigInt(whole! + frac) * mult) / scale;
}

const decimalUnits = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/** A byte count scaled to powers of 1000 as buildctl prints sizes: the value and its unit ("kB"). */
export function scaleDecimal(bytes: bigint | number): [number, string] {
  let v = Number(bytes);
  let i = 0;
  while (Math.abs(v) >= 1000 && i < decimalUnits.length - 1) {
    v /= 1000;
    i++;
  }
  return [v, decimalUnits[i]!];
}

const ULIMIT_NAMES = new Set([
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
]);

/** Go's strconv.ParseInt(s, 10, 64), or undefined. */
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = BigInt(s);
  return n >= -(2n ** 63n) && n < 2n ** 63n ? n : undefined;
}

/**
 * One ulimit as go-units' ParseUlimit reads it: NAME=SOFT[:HARD], NAME one
 * Linux limit (nofile, nproc, core, ...), SOFT <= HARD unless HARD is -1
 * (unlimited), a missing HARD the same as SOFT. Gives the NAME=SOFT:HARD
 * form buildx sends; throws UsageError naming `flag`.
 */
export function parseUlimit(text: string, flag: string): string {
  const bad = (why: string): never => {
    throw new UsageError(`invalid ${flag} "${text}": ${why}`);
  };
  const eq = text.indexOf("=");
  if (eq < 0) bad("use NAME=SOFT[:HARD], e.g. nofile=1024:2048");
  const name = text.slice(0, eq);
  if (!ULIMIT_NAMES.has(name)) bad(`unknown ulimit "${name}" (use one of ${[...ULIMIT_NAMES].join(", ")})`);
  const value = text.slice(eq + 1);
  const colon = value.indexOf(":");
  const softText = colon < 0 ? value : value.slice(0, colon);
  const hardText = colon < 0 ? undefined : value.slice(colon + 1);
  const hard = hardText === undefined ? undefined : (parseInt64(hardText) ?? bad(`"${hardText}" is not a whole number`));
  const soft = parseInt64(softText) ?? bad(`"${softText}" is not a whole number`);
  const h = hard ?? soft;
  if (h !== -1n) {
    if (soft === -1n) bad(`the soft limit -1 (unlimited) is above the hard limit ${h}`);
    if (soft > h) bad(`the soft limit ${soft} is above the hard limit ${h}`);
  }
  return `${name}=${soft}:${h}`;
}
