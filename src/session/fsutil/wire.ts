/**
 * Encoding of fsutil's Packet and Stat messages (fsutil/types wire.proto and
 * stat.proto), written by hand for the sender's hot path: a context of
 * 10,000 files is 10,000 STAT packets, and going through a generic encoder
 * (object conversion, int64 parsed from strings) cost more than the walk.
 *
 * Zero values are left out, as Go's proto3 encoder does. The output decodes
 * with the generated codec (unit test).
 */

import { isUtf8 } from "node:buffer";
import { Writer, varint64Size, varintSize } from "../../grpc/protobuf-writer.js";
import type { FrameBatch } from "../../grpc/frame.js";

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

/** The size of a Stat message whose path and link name are `pathLen` and `linkLen` UTF-8 bytes. */
function statSize(s: WireStat, pathLen: number, linkLen: number): number {
  let n = 0;
  if (pathLen) n += 1 + varintSize(pathLen) + pathLen;
  if (s.mode) n += 1 + varintSize(s.mode);
  if (s.uid) n += 1 + varintSize(s.uid);
  if (s.gid) n += 1 + varintSize(s.gid);
  if (s.size) n += 1 + varint64Size(s.size);
  if (s.modTime) n += 1 + varint64Size(s.modTime);
  if (linkLen) n += 1 + varintSize(linkLen) + linkLen;
  if (s.devmajor) n += 1 + varintSize(s.devmajor);
  if (s.devminor) n += 1 + varintSize(s.devminor);
  return n;
}

/** Packet{type: STAT, stat}: its size and the writer of its bytes. */
function statPacketParts(s: WireStat): { size: number; write: (w: Writer) => void } {
  const pathLen = Buffer.byteLength(s.path, "utf8");
  const linkLen = Buffer.byteLength(s.linkname, "utf8");
  const inner = statSize(s, pathLen, linkLen);
  return {
    size: 1 + varintSize(inner) + inner,
    write(w) {
      w.buf[w.pos++] = 0x12;
      w.varint(inner);
      if (pathLen) w.utf8(0x0a, s.path, pathLen);
      w.uint(0x10, s.mode);
      w.uint(0x18, s.uid);
      w.uint(0x20, s.gid);
      w.int64(0x28, s.size);
      w.int64(0x30, s.modTime);
      if (linkLen) w.utf8(0x3a, s.linkname, linkLen);
      w.uint(0x40, s.devmajor);
      w.uint(0x48, s.devminor);
    },
  };
}

/** Packet{type: STAT, stat}; `undefined` gives the empty STAT that ends the walk. */
export function statPacket(stat?: WireStat): Buffer {
  if (!stat) return Buffer.alloc(0);
  const { size, write } = statPacketParts(stat);
  const w = new Writer(Buffer.allocUnsafe(size));
  write(w);
  return w.buf;
}

/** Packet{type: STAT, stat} framed straight into `batch`, with no buffer of its own (the walk's hot path). */
export function addStatPacket(batch: FrameBatch, stat: WireStat): void {
  const { size, write } = statPacketParts(stat);
  write(batch.message(size));
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

/** Packet{type: REQ, ID: id}: the receiver asks for one file's content. */
export function reqPacket(id: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(2 + 1 + 5));
  w.buf[w.pos++] = 0x08;
  w.varint(PacketType.REQ);
  w.uint(0x18, id);
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

/** A decoded Stat: WireStat plus the extended attributes (name -> value; values are views into the packet). */
export interface DecodedStat extends WireStat {
  xattrs: Map<string, Buffer>;
}

/** A decoded Packet. `data` is a view into the decoded buffer (no copy): keep the buffer as long as `data` is used. */
export interface DecodedPacket {
  /** PacketType value; unknown values are kept as they are. */
  type: number;
  id: number;
  /** Present when the packet carried a stat (the end-of-walk STAT carries none). */
  stat?: DecodedStat;
  data: Buffer;
}

/**
 * Reads protobuf fields from one message body. Every read checks the bounds
 * and throws on a truncated or malformed message; wire types are checked
 * against the fields' declared types as Go's decoder does.
 */
class Fields {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as its low 32 bits, unsigned (uint32 fields; enums take `| 0`). */
  uint32(): number {
    const { buf, end } = this;
    let v = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= end) throw new Error("truncated varint");
      const b = buf[this.pos++]!;
      if (shift < 32) v |= (b & 0x7f) << shift;
      if (b < 0x80) {
        if (shift === 63 && b > 1) throw new Error("varint overflows 64 bits");
        return v >>> 0;
      }
    }
    throw new Error("varint longer than 10 bytes");
  }

  /** A varint as a signed 64-bit value (int64 fields). */
  int64(): bigint {
    const { buf, end } = this;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new Error("truncated varint");
      const b = buf[this.pos++]!;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) {
        if (i === 9 && b > 1) throw new Error("varint overflows 64 bits");
        if (hi === 0) return BigInt(lo >>> 0);
        return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
      }
    }
    throw new Error("varint longer than 10 bytes");
  }

  /** The bounds of a length-delimited field's body; moves past it. */
  span(): [number, number] {
    const n = this.length();
    const start = this.pos;
    if (n > this.end - start) throw new Error("length-delimited field runs past the end of the message");
    this.pos = start + n;
    return [start, start + n];
  }

  /** A varint read whole, as a length or tag (values past 2^53 become MAX_SAFE_INTEGER, which no bounds check passes). */
  length(): number {
    const v = BigInt.asUintN(64, this.int64());
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  bytes(): Buffer {
    const [s, e] = this.span();
    return this.buf.subarray(s, e);
  }

  string(what: string): string {
    const [s, e] = this.span();
    const view = this.buf.subarray(s, e);
    if (!isUtf8(view)) throw new Error(`${what} is not valid UTF-8`);
    return view.toString("utf8");
  }

  /** Skips a field of `wireType` (field number `field`, for groups). */
  skip(wireType: number, field: number, depth = 0): void {
    switch (wireType) {
      case 0:
        this.int64();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.span();
        return;
      case 5:
        this.advance(4);
        return;
      case 3:
        if (depth >= 64) throw new Error("groups nested too deeply");
        for (;;) {
          if (this.done) throw new Error(`group ${field} is not closed`);
          const [f, wt] = this.rawTag();
          if (wt === 4) {
            if (f !== field) throw new Error(`group ${field} closed as ${f}`);
            return;
          }
          this.skip(wt, f, depth + 1);
        }
      default:
        throw new Error(`invalid wire type ${wireType}`);
    }
  }

  advance(n: number): void {
    if (n > this.end - this.pos) throw new Error("truncated fixed-size field");
    this.pos += n;
  }

  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const [field, wireType] = this.rawTag();
    if (wireType === 4) throw new Error(`end of group ${field} without its start`);
    return [field, wireType];
  }

  rawTag(): [number, number] {
    const tag = this.length();
    const field = Math.floor(tag / 8);
    if (field === 0 || field > 0x1fffffff) throw new Error(`field number ${field} out of range`);
    return [field, tag % 8];
  }
}

const WIRE_TYPE_OF: Record<number, number> = { 1: 0, 2: 2, 3: 0, 4: 2 };
const STAT_WIRE_TYPE_OF: Record<number, number> = { 1: 2, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 2, 8: 0, 9: 0, 10: 2 };

function expect(declared: Record<number, number>, field: number, wireType: number, message: string): boolean {
  const want = declared[field];
  if (want === undefined) return false;
  if (want !== wireType) throw new Error(`${message} field ${field} has wire type ${wireType}, want ${want}`);
  return true;
}

function emptyStat(): DecodedStat {
  return { path: "", mode: 0, uid: 0, gid: 0, size: 0n, modTime: 0n, linkname: "", devmajor: 0, devminor: 0, xattrs: new Map() };
}

/** Decodes a Stat body into `into` (a repeated stat field merges, as protobuf specifies). */
function decodeStat(r: Fields, into: DecodedStat): void {
  while (!r.done) {
    const [field, wireType] = r.tag();
    if (!expect(STAT_WIRE_TYPE_OF, field, wireType, "Stat")) {
      r.skip(wireType, field);
      continue;
    }
    switch (field) {
      case 1:
        into.path = r.string("Stat.path");
        break;
      case 2:
        into.mode = r.uint32();
        break;
      case 3:
        into.uid = r.uint32();
        break;
      case 4:
        into.gid = r.uint32();
        break;
      case 5:
        into.size = r.int64();
        break;
      case 6:
        into.modTime = r.int64();
        break;
      case 7:
        into.linkname = r.string("Stat.linkname");
        break;
      case 8:
        into.devmajor = Number(r.int64());
        break;
      case 9:
        into.devminor = Number(r.int64());
        break;
      default: {
        // 10: map<string, bytes> entry {key = 1, value = 2}
        const [s, e] = r.span();
        const entry = new Fields(r.buf, s, e);
        let key = "";
        let value = r.buf.subarray(s, s);
        while (!entry.done) {
          const [f, wt] = entry.tag();
          if (f === 1 && wt === 2) key = entry.string("Stat.xattrs key");
          else if (f === 2 && wt === 2) value = entry.bytes();
          else if (f === 1 || f === 2) throw new Error(`Stat.xattrs entry field ${f} has wire type ${wt}, want 2`);
          else entry.skip(wt, f);
        }
        into.xattrs.set(key, value);
      }
    }
  }
}

/**
 * Decodes an fsutil Packet without copying: `data` and xattr values are
 * views into `buf`. Unknown fields are skipped (groups included); a
 * truncated or malformed message, a field of the wrong wire type or a string
 * that is not UTF-8 throws an Error saying what is wrong.
 */
export function decodePacket(buf: Buffer): DecodedPacket {
  const r = new Fields(buf, 0, buf.length);
  const p: DecodedPacket = { type: 0, id: 0, data: buf.subarray(0, 0) };
  while (!r.done) {
    const [field, wireType] = r.tag();
    if (!expect(WIRE_TYPE_OF, field, wireType, "Packet")) {
      r.skip(wireType, field);
      continue;
    }
    switch (field) {
      case 1:
        p.type = r.uint32() | 0;
        break;
      case 2: {
        const [s, e] = r.span();
        p.stat ??= emptyStat();
        decodeStat(new Fields(buf, s, e), p.stat);
        break;
      }
      case 3:
        p.id = r.uint32();
        break;
      default:
        p.data = r.bytes();
    }
  }
  return p;
}
