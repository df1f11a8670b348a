import { test } from "node:test";
import assert from "node:assert/strict";
import { codec } from "../../src/grpc/codec.js";
import { dataPacketHead, errPacket, finPacket, statPacket, type WireStat } from "../../src/session/fsutil/wire.js";

interface Decoded {
  type: string;
  ID: number;
  data: Buffer;
  stat: null | { path: string; mode: number; uid: number; gid: number; size: string; modTime: string; linkname: string; devmajor: string; devminor: string };
}
const packet = codec<Decoded>("fsutil.types.Packet");

test("STAT packets decode with the generated codec, int64 values exact", () => {
  const stats: WireStat[] = [
    { path: "a", mode: 0o644, uid: 0, gid: 0, size: 4n, modTime: 1_700_000_000_123_456_789n, linkname: "", devmajor: 0, devminor: 0 },
    { path: "dir/名前 ü", mode: 2147484141, uid: 1000, gid: 1000, size: 0n, modTime: 0n, linkname: "", devmajor: 0, devminor: 0 },
    { path: "l", mode: 134218239, uid: 0, gid: 0, size: 2n ** 53n + 1n, modTime: -5n, linkname: "../target", devmajor: 8, devminor: 1 },
  ];
  for (const s of stats) {
    const d = packet.decode(statPacket(s));
    assert.equal(d.type, "PACKET_STAT");
    assert.deepEqual(d.stat, {
      path: s.path,
      mode: s.mode,
      uid: s.uid,
      gid: s.gid,
      size: String(s.size),
      modTime: String(s.modTime),
      linkname: s.linkname,
      devmajor: String(s.devmajor),
      devminor: String(s.devminor),
      xattrs: {},
    });
  }
  assert.equal(packet.decode(statPacket()).stat, null, "the end-of-walk STAT has no stat");
});

test("DATA, FIN and ERR packets", () => {
  const body = Buffer.from("hello");
  const d = packet.decode(Buffer.concat([dataPacketHead(300, body.length), body]));
  assert.equal(d.type, "PACKET_DATA");
  assert.equal(d.ID, 300);
  assert.equal(d.data.toString(), "hello");
  const end = packet.decode(dataPacketHead(0, 0));
  assert.equal(end.type, "PACKET_DATA");
  assert.equal(end.ID, 0);
  assert.equal(end.data.length, 0);
  assert.equal(packet.decode(finPacket()).type, "PACKET_FIN");
  const err = packet.decode(errPacket("cannot read /x: EACCES"));
  assert.equal(err.type, "PACKET_ERR");
  assert.equal(err.data.toString(), "cannot read /x: EACCES");
});
