/** Sizes and durations as buildctl and docker print them. */
import { scaleDecimal } from "../internal.js";

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
