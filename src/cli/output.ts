/** Table and JSON rendering for CLI output. */

/** Left-aligned columns separated by three spaces (like Go's tabwriter output). */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return (
    all
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join("   ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

/** Aligned "Key: value" lines. */
export function keyValues(pairs: Array<[string, string]>, indent = ""): string {
  const w = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${indent}${(k + ":").padEnd(w)} ${v}`.trimEnd()).join("\n") + "\n";
}

/**
 * JSON with bigints written as exact JSON numbers and Dates as RFC 3339
 * strings, two-space indented.
 */
export function toJson(value: unknown): string {
  const marker = "__bk_build_bigint__:";
  const text = JSON.stringify(
    value,
    function (this: Record<string, unknown>, key, v: unknown) {
      const raw = this[key];
      if (raw instanceof Date) return raw.toISOString();
      if (typeof v === "bigint") return marker + v.toString();
      return v;
    },
    2,
  );
  return text.replace(new RegExp(`"${marker}(-?\\d+)"`, "g"), "$1") + "\n";
}
