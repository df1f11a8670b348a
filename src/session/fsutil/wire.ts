/**
 * Encoding of fsutil's Packet and Stat messages (fsutil/types wire.proto and
 * stat.proto), written by hand for the sender's hot path: a context of
 * 10,000 files is 10,000 STAT packets, and going through a generic encoder
 * (object conversion, int64 parsed from strings) cost more than the walk.
 *
 * Zero values are left out, as Go's proto3 encoder does. The output decodes
 * with the generated codec (unit test).
 */

import { Writer, varint64Size, varintSize } from "../../grpc/protobuf-writer.js";

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
