/**
 * Compose variable interpolation: $VAR, ${VAR}, ${VAR:-default},
 * ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt},
 * and $$ for a literal $. Defaults, errors and alternatives are themselves
 * interpolated, so they may nest (${A:-${B:-c}}).
 */

/** A required variable (`:?` / `?`) without a value. */
export class InterpolationError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = "InterpolationError";
  }
}

type Lookup = (name: string) => string | undefined;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Finds the "}" closing a "${" that starts at `open`. As compose-go's
 * getFirstBraceClosingIndex: every "{" opens (and the character after it is
 * skipped), every "}" closes, so a default may hold braces:
 * ${JSON:-{"a":1}}.
 */
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === "}") {
      depth--;
      if (depth === 0) return i;
    }
    if (text[i] === "{") {
      depth++;
      i++;
    }
  }
  return -1;
}

function braced(body: string, lookup: Lookup, whole: string): string {
  const m = NAME.exec(body);
  if (!m) throw new InterpolationError(body, `invalid interpolation format for "${whole}": "\${${body}}" (use \${VAR}, \${VAR:-default}, ...)`);
  const name = m[0];
  const rest = body.slice(name.length);
  const value = lookup(name);
  if (rest === "") return value ?? "";
  const op = rest.startsWith(":") ? rest.slice(0, 2) : rest.slice(0, 1);
  const arg = rest.slice(op.length);
  const unsetOrEmpty = value === undefined || value === "";
  switch (op) {
    case ":-":
      return unsetOrEmpty ? interpolate(arg, lookup) : value;
    case "-":
      return value === undefined ? interpolate(arg, lookup) : value;
    case ":?":
      if (unsetOrEmpty) throw new InterpolationError(name, `required variable ${name} is missing a value${arg ? `: ${interpolate(arg, lookup)}` : ""}`);
      return value;
    case "?":
      if (value === undefined) throw new InterpolationError(name, `required variable ${name} is missing a value${arg ? `: ${interpolate(arg, lookup)}` : ""}`);
      return value;
    case ":+":
      return unsetOrEmpty ? "" : interpolate(arg, lookup);
    case "+":
      return value === undefined ? "" : interpolate(arg, lookup);
    default:
      throw new InterpolationError(name, `invalid interpolation format for "${whole}": "\${${body}}" (use \${VAR}, \${VAR:-default}, ...)`);
  }
}

/** Replaces variables in `text` with values from `lookup`. */
export function interpolate(text: string, lookup: Lookup): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== "$") {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      const end = closing(text, i);
      if (end < 0) throw new InterpolationError("", `invalid interpolation format for "${text}": a "\${" is never closed`);
      out += braced(text.slice(i + 2, end), lookup, text);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(text.slice(i + 1));
    if (m) {
      out += lookup(m[0]) ?? "";
      i += 1 + m[0].length;
      continue;
    }
    out += "$";
    i++;
  }
  return out;
}
