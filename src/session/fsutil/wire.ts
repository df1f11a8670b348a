/**
 * Encoding of fsutil's Packet and Stat messages (fsutil/types wire.proto and
 * stat.proto), written by hand for the sender's hot path: a context of
 * 10,000 files is 10,000 STAT packets, and going through a generic encoder
 * (object conversion, int64 parsed from strings) cost more than the walk.
 *
 * Zero values are left out, as Go's proto3 encoder does. The output decodes
 * with the generated codec (unit test).
 */

/** One entry as fsutil sends it. */
export interface WireStat {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  /** Nanoseconds since the epoch. */
  modTime: bigint;
  linkname: string;
  devmajor: number;
  devminor: number;
}

export const PacketType = { STAT: 0, REQ: 1, DATA: 2, FIN: 3, ERR: 4 } as const;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Size of a 64-bit varint; negative values take ten bytes as in Go. */
function varint64Size(n: bigint): number {
  if (n < 0n) return 10;
  if (n < 0x20000000000000n) return varintSize(Number(n));
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}

class Writer {
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

  bytes(tag: number, b: Buffer): void {
    this.buf[this.pos++] = tag;
    this.varint(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }
}

/** Encodes a Stat message. */
function statSize(s: WireStat, path: Buffer, link: Buffer): number {
  let n = 0;
  if (path.length) n += 1 + varintSize(path.length) + path.length;
  if (s.mode) n += 1 + varintSize(s.mode);
  if (s.uid) n += 1 + varintSize(s.uid);
  if (s.gid) n += 1 + varintSize(s.gid);
  if (s.size) n += 1 + varint64Size(s.size);
  if (s.modTime) n += 1 + varint64Size(s.modTime);
  if (link.length) n += 1 + varintSize(link.length) + link.length;
  if (s.devmajor) n += 1 + varintSize(s.devmajor);
  if (s.devminor) n += 1 + varintSize(s.devminor);
  return n;
}

function writeStat(w: Writer, s: WireStat, path: Buffer, link: Buffer): void {
  if (path.length) w.bytes(0x0a, path);
  w.uint(0x10, s.mode);
  w.uint(0x18, s.uid);
  w.uint(0x20, s.gid);
  w.int64(0x28, s.size);
  w.int64(0x30, s.modTime);
  if (link.length) w.bytes(0x3a, link);
  w.uint(0x40, s.devmajor);
  w.uint(0x48, s.devminor);
}

/** Packet{type: STAT, stat}; `undefined` gives the empty STAT that ends the walk. */
export function statPacket(stat?: WireStat): Buffer {
  if (!stat) return Buffer.alloc(0);
  const path = Buffer.from(stat.path, "utf8");
  const link = Buffer.from(stat.linkname, "utf8");
  const inner = statSize(stat, path, link);
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(inner) + inner));
  w.buf[w.pos++] = 0x12;
  w.varint(inner);
  writeStat(w, stat, path, link);
  return w.buf;
}

/**
 * The start of Packet{type: DATA, ID: id, data}: everything before the data
 * bytes themselves, which follow on the wire without being copied.
 */
export function dataPacketHead(id: number, dataLength: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(2 + 1 + 5 + 1 + 5));
  w.buf[w.pos++] = 0x08;
  w.varint(PacketType.DATA);
  if (id) {
    w.buf[w.pos++] = 0x18;
    w.varint(id);
  }
  if (dataLength) {
    w.buf[w.pos++] = 0x22;
    w.varint(dataLength);
  }
  return w.buf.subarray(0, w.pos);
}

/** Packet{type: FIN}. */
export function finPacket(): Buffer {
  return Buffer.from([0x08, PacketType.FIN]);
}

/** Packet{type: ERR, data: message}. */
export function errPacket(message: string): Buffer {
  const data = Buffer.from(message, "utf8");
  const w = new Writer(Buffer.allocUnsafe(2 + 1 + 5 + data.length));
  w.buf[w.pos++] = 0x08;
  w.varint(PacketType.ERR);
  w.bytes(0x22, data);
  return w.buf.subarray(0, w.pos);
}
