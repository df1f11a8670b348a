/** Pure parsers and formatters for CLI values (durations, sizes, times). */
import { UsageError } from "./errors.js";

const durationUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
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

/** --timeout: whole seconds as buildctl ("5"), or a Go duration ("1500ms"). Returns milliseconds. */
export function parseTimeout(text: string): number {
  const ms = /^\d+$/.test(text.trim()) ? Number(text.trim()) * 1000 : parseGoDuration(text, "--timeout");
  if (!(ms > 0)) throw new UsageError(`invalid --timeout "${text}": must be more than zero (e.g. 5 or 10s)`);
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

function scaleDecimal(bytes: bigint): [number, string] {
  let v = Number(bytes);
  let i = 0;
  while (v >= 1000 && i < decimalUnits.length - 1) {
    v /= 1000;
    i++;
  }
  return [v, decimalUnits[i]!];
}

/** Decimal size with two decimals, as buildctl prints cache records ("4.10kB"). */
export function formatSize(bytes: bigint): string {
  const [v, unit] = scaleDecimal(bytes);
  return `${v.toFixed(2)}${unit}`;
}

/** Decimal size with up to four significant digits ("512MB", "51.23GB"), as buildctl prints GC policies. */
export function formatSizeShort(bytes: bigint): string {
  const [v, unit] = scaleDecimal(bytes);
  return `${Number(v.toPrecision(4))}${unit}`;
}

/** Go's time.Duration String() for a nanosecond count ("48h0m0s", "1.5s"). */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  let n = neg ? -ns : ns;
  let out: string;
  if (n < 1_000_000_000n) {
    if (n < 1000n) out = `${n}ns`;
    else if (n < 1_000_000n) out = `${trimZeros(Number(n) / 1e3)}µs`;
    else out = `${trimZeros(Number(n) / 1e6)}ms`;
  } else {
    const h = n / 3_600_000_000_000n;
    n -= h * 3_600_000_000_000n;
    const m = n / 60_000_000_000n;
    n -= m * 60_000_000_000n;
    const s = trimZeros(Number(n) / 1e9);
    out = h > 0n ? `${h}h${m}m${s}s` : m > 0n ? `${m}m${s}s` : `${s}s`;
  }
  return (neg ? "-" : "") + out;
}

function trimZeros(v: number): string {
  return String(Number(v.toFixed(9)));
}

/** docker's units.HumanDuration, for "LAST ACCESSED" columns. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}
