/**
 * `.env` and `--env-file` in compose's dialect (compose-go's dotenv):
 *
 * - `KEY=VALUE`, `KEY = VALUE`, `KEY: VALUE` (YAML style), `export KEY=...`;
 *   a bare `KEY` takes the value from the lookup (the shell) or is left out.
 * - Keys: letters, digits, `_ . - [ ]`; a space inside one is an error.
 * - Unquoted values run to the end of the line, cut at ` #` (an inline
 *   comment) and trimmed on the right; `${VAR}` / `$VAR` / `${VAR:-d}` ... are
 *   expanded (from the lookup first, then from earlier keys).
 * - 'single quotes' keep their text as it is (they may span lines).
 * - "double quotes" may span lines; `\a \b \c \f \n \r \t \v \" \\` and octal
 *   `\0NNN` are unescaped, `\$` is a literal `$`, other escapes stay as
 *   written; then variables are expanded.
 * - `#` lines are comments; a UTF-8 BOM is skipped; CRLF line ends work.
 * - An unterminated quote is an error naming the line.
 */
import { interpolate, InterpolationError } from "./interpolate.js";

export class DotenvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = "DotenvError";
  }
}

/** Space that is not a line break (compose-go's isSpace). */
const isSpace = (c: string): boolean => c === "\t" || c === "\v" || c === "\f" || c === "\r" || c === " " || c === "\u0085" || c === "\u00a0";
/** Go's unicode.IsSpace. */
const isUnicodeSpace = (c: string): boolean => /\s/u.test(c) || c === "\u0085";
const isKeyChar = (c: string): boolean => /[\p{L}\p{N}_.\-[\]]/u.test(c);

const SIMPLE_ESCAPES: Record<string, string> = { a: "\x07", b: "\b", c: "\\c", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", '"': '"', "\\": "\\" };

/** compose-go's expandEscapes: only the escapes it knows; `\$` becomes `$$` (a literal $ for interpolation). */
function expandEscapes(s: string): string {
  return s.replace(/\\(?:[abcfnrtv$"\\]|0\d{0,3})/g, (m) => {
    if (m === "\\$") return "$$";
    if (m.startsWith("\\0")) {
      // Go's UnquoteChar of "\NNN": exactly three octal digits, at most 255.
      // (What Go cannot unquote comes back without the 0, as compose-go's
      // rewrite leaves it: "\08" is "\8".)
      const oct = m.slice(2);
      if (oct.length !== 3 || !/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return `\\${oct}`;
      return String.fromCharCode(parseInt(oct, 8));
    }
    const c = SIMPLE_ESCAPES[m[1]!];
    // Go's UnquoteChar rejects \c: it stays as written.
    return c === undefined || c === "\\c" ? m : c;
  });
}

export type DotenvLookup = (key: string) => string | undefined;

/**
 * Parses one env file's text into `out` (later keys win; `out` is also what
 * values expand from after `lookup`). Throws DotenvError, naming the line,
 * for a bad line, an unterminated quote, or a required variable without a
 * value (`${VAR:?msg}`).
 */
export function parseDotenv(text: string, lookup: DotenvLookup = () => undefined, out: Record<string, string> = {}): Record<string, string> {
  let src = text.startsWith("\ufeff") ? text.slice(1) : text;
  let line = 1;
  const expand = (value: string, at: number): string => {
    try {
      return interpolate(value, (k) => lookup(k) ?? (Object.hasOwn(out, k) ? out[k] : undefined));
    } catch (e) {
      if (e instanceof InterpolationError) throw new DotenvError(at, e.message);
      throw e;
    }
  };

  /** Skips blank space and comment lines; "" at the end. */
  const statementStart = (s: string): string => {
    for (;;) {
      let i = 0;
      while (i < s.length && isUnicodeSpace(s[i]!)) {
        if (s[i] === "\n") line++;
        i++;
      }
      if (i >= s.length) return "";
      s = s.slice(i);
      if (s[0] !== "#") return s;
      const nl = s.indexOf("\n");
      if (nl < 0) return "";
      s = s.slice(nl);
    }
  };

  for (;;) {
    src = statementStart(src);
    if (src === "") break;

    // The key.
    let s = src;
    if (/^export\s+/.test(s)) {
      s = s.slice("export".length);
      let k = 0;
      while (k < s.length && isSpace(s[k]!)) k++;
      s = s.slice(k);
    }
    let key: string | undefined;
    let offset = 0;
    let inherited = false;
    for (const c of s) {
      if (isSpace(c)) {
        offset += c.length;
        continue;
      }
      if (c === "=" || c === ":" || c === "\n") {
        key = s.slice(0, offset);
        inherited = c === "\n";
        offset += 1;
        break;
      }
      if (!isKeyChar(c)) {
        throw new DotenvError(line, `unexpected character "${c}" in variable name "${s.split("\n")[0]}"`);
      }
      offset += c.length;
    }
    if (key === undefined) {
      // The last line: a bare key without a line break after it.
      key = s;
      inherited = true;
      offset = s.length;
    }
    if (inherited && !key.includes(" ")) line++;
    key = key.replace(/\s+$/u, "");
    let rest = s.slice(offset);
    let k = 0;
    while (k < rest.length && isSpace(rest[k]!)) k++;
    rest = rest.slice(k);
    if (key.includes(" ")) throw new DotenvError(line, "key cannot contain a space");

    if (inherited) {
      const v = lookup(key);
      if (v !== undefined) out[key] = v;
      src = rest;
      continue;
    }

    // The value.
    const valueLine = line;
    const quote = rest[0] === '"' || rest[0] === "'" ? rest[0] : undefined;
    if (!quote) {
      const nl = rest.indexOf("\n");
      let value = nl < 0 ? rest : rest.slice(0, nl);
      src = nl < 0 ? "" : rest.slice(nl + 1);
      line++;
      const hash = value.indexOf(" #");
      if (hash >= 0) value = value.slice(0, hash);
      value = value.replace(/\s+$/u, "");
      out[key] = expand(value, valueLine);
      continue;
    }
    let chars = "";
    let escaped = false;
    let end = -1;
    for (let i = 1; i < rest.length; i++) {
      const c = rest[i]!;
      if (c === "\n") line++;
      if (c !== quote) {
        if (!escaped && c === "\\") {
          escaped = true;
          continue;
        }
        if (escaped) {
          escaped = false;
          chars += "\\";
        }
        chars += c;
        continue;
      }
      if (escaped) {
        // \" in double quotes, \' in single: the quote itself.
        escaped = false;
        chars += c;
        continue;
      }
      end = i;
      break;
    }
    if (end < 0) {
      const nl = rest.indexOf("\n");
      throw new DotenvError(line, `unterminated quoted value ${nl < 0 ? rest : rest.slice(0, nl)}`);
    }
    out[key] = quote === '"' ? expand(expandEscapes(chars), valueLine) : chars;
    src = rest.slice(end + 1);
  }
  return out;
}
