import { UsageError } from "./errors.js";

/** Splits one CSV record the way Go's encoding/csv does (quotes, "" escapes). */
export function csvFields(text: string): string[] {
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
    if (ch === ",") {
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
