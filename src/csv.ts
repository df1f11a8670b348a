import { UsageError } from "./errors.js";

/** Splits one CSV record the way Go's encoding/csv does (quotes, "" escapes); `comma` as its Comma. */
export function csvFields(text: string, comma = ","): string[] {
  const out: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  let atStart = true;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && atStart) {
      quoted = true;
      atStart = false;
      i++;
      continue;
    }
    if (ch === comma) {
      out.push(field);
      field = "";
      atStart = true;
      i++;
      continue;
    }
    field += ch;
    atStart = false;
    i++;
  }
  if (quoted) throw new UsageError(`unterminated quote in "${text}"`);
  out.push(field);
  return out;
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
  for (const f of csvFields(spec)) {
    const [k, v] = keyValue(f, flag, spec);
    if (k === "type") type = v;
    else attrs[k] = v;
  }
  return { type, attrs };
}
