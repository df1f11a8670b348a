import { UsageError } from "./errors.js";

const BARE_QUOTE = 'bare " in non-quoted field: put the whole field in quotes and write each " inside it as ""';
const QUOTE = 'extraneous or missing " in quoted field: a quoted field ends with " followed by the separator or the end, and a " inside it is written ""';

/**
 * Splits one CSV record exactly as go-csvvalue's Fields (what buildx and
 * buildkit parse their CSV flags with): a field that starts with `"` is
 * quoted (`""` inside it is one quote, and its closing quote must be
 * followed by `comma` or the end); a `"` anywhere in an unquoted field, an
 * unterminated quote, and an empty record (go-csvvalue's io.EOF) are
 * UsageErrors naming `input` (e.g. `--output`) and the 1-based column, in
 * UTF-8 bytes as Go counts it. One trailing `\n` or `\r\n` is dropped.
 * `comma` is one character other than `"`, `\r` and `\n`.
 */
export function csvFields(text: string, comma = ",", input = "CSV value"): string[] {
  // go-csvvalue's validDelim: one valid rune, not NUL, a quote, CR, LF or U+FFFD.
  const rune = comma.codePointAt(0) ?? 0;
  if (String.fromCodePoint(rune) !== comma || [0, 0x22, 0x0d, 0x0a, 0xfffd].includes(rune) || (rune >= 0xd800 && rune <= 0xdfff)) {
    throw new TypeError(`csvFields: invalid separator ${JSON.stringify(comma)}`);
  }
  const line = text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
  if (line === "") throw new UsageError(`${input} is empty: give a value`);
  const fail = (at: number, what: string): never => {
    const column = Buffer.byteLength(line.slice(0, at)) + 1;
    throw new UsageError(`invalid ${input} ${JSON.stringify(text)}: column ${column}: ${what}`);
  };
  const out: string[] = [];
  let pos = 0;
  for (;;) {
    if (line[pos] !== '"') {
      // An unquoted field runs to the next separator and may hold no quote.
      const end = line.indexOf(comma, pos);
      const field = end < 0 ? line.slice(pos) : line.slice(pos, end);
      const q = field.indexOf('"');
      if (q >= 0) fail(pos + q, BARE_QUOTE);
      out.push(field);
      if (end < 0) return out;
      pos = end + comma.length;
      continue;
    }
    // A quoted field: up to a quote that is not doubled.
    pos++;
    let field = "";
    for (;;) {
      const q = line.indexOf('"', pos);
      if (q < 0) fail(pos, QUOTE);
      field += line.slice(pos, q);
      pos = q + 1;
      if (line[pos] === '"') {
        field += '"';
        pos++;
        continue;
      }
      if (pos === line.length) {
        out.push(field);
        return out;
      }
      if (line.startsWith(comma, pos)) {
        out.push(field);
        pos += comma.length;
        break;
      }
      fail(pos - 1, QUOTE);
    }
  }
}

/** Splits `key=value` (the key trimmed and lower-cased); a field without "=" is a usage error naming the flag. */
export function keyValue(field: string, flag: string, whole: string): [string, string] {
  const eq = field.indexOf("=");
  if (eq < 0) throw new UsageError(`invalid field '${field}' in ${flag} "${whole}": must be a key=value pair`);
  return [field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1)];
}

/** A `type=T,key=value,...` flag value: the type (empty when missing) and the other fields. */
export function typedFields(spec: string, flag: string): { type: string; attrs: Record<string, string> } {
  const attrs: Record<string, string> = {};
  let type = "";
  for (const f of csvFields(spec, ",", flag)) {
    const [k, v] = keyValue(f, flag, spec);
    if (k === "type") type = v;
    else attrs[k] = v;
  }
  return { type, attrs };
}
