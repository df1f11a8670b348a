/**
 * BytesMessage (field 1, bytes) read by hand: the session tunnel and
 * exports carry hundreds of MB of them, and a generic decoder copies.
 */
import { GrpcStatusError, Status } from "./frame.js";
import { Writer, varintSize } from "./protobuf-writer.js";

/** The head of a BytesMessage (field 1, bytes) whose data is `size` bytes: what precedes the data on the wire. */
export function bytesMessageHead(size: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(size)));
  w.buf[w.pos++] = 0x0a;
  w.varint(size);
  return w.buf;
}

/**
 * `data` of a BytesMessage (field 1, bytes), as a view into `body` (no
 * copy). Other fields are skipped; a repeated field 1 keeps the last, as
 * protobuf decoders do.
 */
export function bytesMessageData(body: Buffer): Buffer {
  let pos = 0;
  let data = body.subarray(0, 0);
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= body.length) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "truncated BytesMessage");
      const b = body[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
      if (mul > 2 ** 56) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "bad varint in BytesMessage");
    }
  };
  while (pos < body.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      if (pos + len > body.length) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "truncated BytesMessage");
      if (tag >>> 3 === 1) data = body.subarray(pos, pos + len);
      pos += len;
    } else throw new GrpcStatusError(Status.INVALID_ARGUMENT, `bad wire type ${wire} in BytesMessage`);
    if (pos > body.length) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "truncated BytesMessage");
  }
  return data;
}

/**
 * The data of a BytesMessage that arrives in pieces (views of DATA chunks),
 * as pieces too: the common shape (field 1 first, and nothing else) is
 * trimmed in place; anything else is joined and read by bytesMessageData.
 */
export function bytesMessagePieces(pieces: readonly Buffer[]): Buffer[] {
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const first = pieces[0];
  if (total === 0 || !first) return [];
  if (first.length >= 11 && first[0] === 0x0a) {
    let pos = 1;
    let len = 0;
    let mul = 1;
    for (; pos < 11; pos++) {
      const b = first[pos]!;
      len += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) break;
    }
    pos++;
    if (pos <= 11 && pos + len === total) {
      const out = [first.subarray(pos), ...pieces.slice(1)];
      return out[0]!.length ? out : out.slice(1);
    }
  }
  const data = bytesMessageData(Buffer.concat(pieces, total));
  return data.length ? [data] : [];
}
