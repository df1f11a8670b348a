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
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
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
    let u = BigInt.asUintN(64, n);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
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

  /** Bytes as they are (the body of a field whose head was written). */
  raw(b: Buffer): void {
    this.pos += b.copy(this.buf, this.pos);
  }
}
