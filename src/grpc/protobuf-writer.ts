/**
 * The few protobuf encoding pieces the session's hand-written hot paths need
 * (fsutil packets, the session pipe's BytesMessage): varints and fields
 * written into a buffer sized in advance.
 */

/** Size of an unsigned varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Size of a 64-bit varint; negative values take ten bytes as in Go. */
export function varint64Size(n: bigint): number {
  if (n < 0n) return 10;
  if (n < 0x20000000000000n) return varintSize(Number(n));
  // Past 2^53 (a modification time in nanoseconds), in Numbers: 5 bytes hold the low word and 3 bits of the high one, 7 bits a byte for the rest.
  const hi = Number(n >> 32n);
  return 5 + varintSize(Math.floor(hi / 8));
}

export class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  varint64(n: bigint): void {
    if (n >= 0n && n < 0x20000000000000n) {
      this.varint(Number(n));
      return;
    }
    // The two 32-bit halves as Numbers: two BigInt operations instead of two per byte.
    const u = BigInt.asUintN(64, n);
    let lo = Number(u & 0xffffffffn);
    let hi = Number(u >> 32n);
    while (hi > 0) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi = Math.floor(hi / 128);
    }
    while (lo >= 0x80) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }

  /** A varint field, left out when zero. */
  uint(tag: number, n: number): void {
    if (!n) return;
    this.buf[this.pos++] = tag;
    this.varint(n);
  }

  /** An int64 varint field, left out when zero. */
  int64(tag: number, n: bigint): void {
    if (!n) return;
    this.buf[this.pos++] = tag;
    this.varint64(n);
  }

  /** A length-delimited field. */
  bytes(tag: number, b: Buffer): void {
    this.buf[this.pos++] = tag;
    this.varint(b.length);
    this.raw(b);
  }

  /** A length-delimited field holding `s` as UTF-8, `len` being its byte length (Buffer.byteLength). */
  utf8(tag: number, s: string, len: number): void {
    this.buf[this.pos++] = tag;
    this.varint(len);
    this.pos += this.buf.write(s, this.pos, len, "utf8");
  }

  /** Bytes as they are (the body of a field whose head was written). */
  raw(b: Buffer): void {
    this.pos += b.copy(this.buf, this.pos);
  }
}
