/**
 * The Docker Engine's JSON-message streams (the answers of /images/load,
 * /images/{name}/push, /build): JSON objects one after another, as Go's
 * json.Encoder writes them (each followed by "\n", though json.Decoder on
 * the reading side accepts any whitespace, or none, between them).
 */

/** One message of the stream (moby api/types/jsonstream.Message, plus the legacy `error` string). */
export interface JsonMessage {
  status?: string;
  id?: string;
  /** Progress bar text (older engines). */
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  /** Legacy copy of errorDetail.message. */
  error?: string;
  errorDetail?: { code?: number; message?: string };
  /** Out-of-band data: a push's {Tag, Digest, Size}, a load's image id. */
  aux?: unknown;
}

/** Largest single message accepted (a guard against a stream that never closes its object). */
export const MAX_JSON_MESSAGE_BYTES = 16 << 20;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Thrown for a stream that is not a sequence of JSON objects. */
export class JsonMessageSyntaxError extends Error {
  override get name(): string {
    return "JsonMessageSyntaxError";
  }
}

/**
 * Splits a byte stream into JSON objects incrementally: messages may be
 * split across chunks, several may arrive in one, separated by any JSON
 * whitespace or by nothing at all. Structural bytes are ASCII and never
 * occur inside a UTF-8 sequence, so the scan works on bytes and a message
 * is decoded only once it is complete (a character split across chunks is
 * never decoded in halves). Each byte is scanned once.
 */
export class JsonMessageParser {
  #parts: Buffer[] = [];
  #partBytes = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;

  /** Feeds a chunk; returns the messages it completed, in order. */
  push(chunk: Buffer | string): JsonMessage[] {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    const out: JsonMessage[] = [];
    let start = this.#depth > 0 ? 0 : -1;
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i]!;
      if (this.#depth === 0) {
        if (isSpace(b)) continue;
        if (b !== OPEN_BRACE) throw new JsonMessageSyntaxError(`expected a JSON object in the message stream, found ${JSON.stringify(String.fromCharCode(b))}`);
        start = i;
        this.#depth = 1;
        continue;
      }
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (b === BACKSLASH) this.#escaped = true;
        else if (b === QUOTE) this.#inString = false;
        continue;
      }
      if (b === QUOTE) this.#inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.#depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.#depth--;
        if (this.#depth === 0) {
          out.push(this.#complete(buf.subarray(start, i + 1)));
          start = -1;
        }
      }
    }
    if (this.#depth > 0 && start >= 0) {
      const rest = buf.subarray(start);
      this.#partBytes += rest.length;
      if (this.#partBytes > MAX_JSON_MESSAGE_BYTES) {
        throw new JsonMessageSyntaxError(`a message in the JSON message stream is over ${MAX_JSON_MESSAGE_BYTES >> 20} MiB`);
      }
      this.#parts.push(rest);
    }
    return out;
  }

  /** Whether the stream ended between messages; false when a message was cut off. */
  get idle(): boolean {
    return this.#depth === 0;
  }

  /** Call at the end of the stream: throws when it ended inside a message. */
  end(): void {
    if (this.#depth > 0) throw new JsonMessageSyntaxError("the JSON message stream ended inside a message");
  }

  #complete(last: Buffer): JsonMessage {
    const bytes = this.#parts.length ? Buffer.concat([...this.#parts, last]) : last;
    this.#parts = [];
    this.#partBytes = 0;
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      throw new JsonMessageSyntaxError(`malformed message in the JSON message stream: ${e instanceof Error ? e.message : String(e)}`);
    }
    return toMessage(value);
  }
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** The known fields of a decoded message, each only when it has the right type (as Go's decoder would insist). */
function toMessage(value: unknown): JsonMessage {
  const o = record(value);
  if (!o) throw new JsonMessageSyntaxError("a message in the JSON message stream is not an object");
  const m: JsonMessage = {};
  for (const k of ["status", "id", "progress", "stream", "error"] as const) {
    const s = str(o[k]);
    if (s !== undefined) m[k] = s;
  }
  const pd = record(o["progressDetail"]);
  if (pd) {
    const detail: NonNullable<JsonMessage["progressDetail"]> = {};
    const current = num(pd["current"]);
    const total = num(pd["total"]);
    if (current !== undefined) detail.current = current;
    if (total !== undefined) detail.total = total;
    m.progressDetail = detail;
  }
  const ed = record(o["errorDetail"]);
  if (ed) {
    const detail: NonNullable<JsonMessage["errorDetail"]> = {};
    const code = num(ed["code"]);
    const message = str(ed["message"]);
    if (code !== undefined) detail.code = code;
    if (message !== undefined) detail.message = message;
    m.errorDetail = detail;
  }
  if (o["aux"] !== undefined && o["aux"] !== null) m.aux = o["aux"];
  return m;
}

/** The failure a message reports, if it is one: errorDetail.message, else the legacy error string. */
export function messageError(m: JsonMessage): string | undefined {
  if (m.errorDetail) return m.errorDetail.message || m.error || "unknown error";
  return m.error || undefined;
}
