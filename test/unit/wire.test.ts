import { test } from "node:test";
import assert from "node:assert/strict";
import { codec } from "../../src/grpc/codec.js";
import { addStatPacket, dataPacketHead, decodePacket, errPacket, finPacket, reqPacket, statPacket, type WireStat } from "../../src/session/fsutil/wire.js";
import { FrameBatch, MessageReader, frame } from "../../src/grpc/frame.js";
import { varintBytes as varint } from "../helpers/protobuf.js";

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

test("STAT packets framed into a FrameBatch are the same bytes as each framed alone, across its growth", () => {
  const names = ["a", "dir/名前 ü", "😀/f", "x".repeat(4000), "", "l"];
  const stats: WireStat[] = Array.from({ length: 300 }, (_, i) => ({
    path: `${names[i % names.length]!}${i}`,
    mode: i % 2 ? 0o644 : 2147484141,
    uid: 0,
    gid: i % 3,
    size: BigInt(i) * 1_000_003n,
    modTime: 1_700_000_000_123_456_789n + BigInt(i),
    linkname: i % 5 ? "" : `../t${names[i % names.length]!}`,
    devmajor: 0,
    devminor: i % 7,
  }));
  const batch = new FrameBatch();
  for (const s of stats) addStatPacket(batch, s);
  assert.equal(batch.count, stats.length);
  const framed = batch.take();
  assert.ok(framed.equals(Buffer.concat(stats.map((s) => frame([statPacket(s)], statPacket(s).length)))));
  assert.deepEqual(
    new MessageReader().push(framed).map((m) => packet.decode(m).stat?.path),
    stats.map((s) => s.path),
  );
  assert.equal(batch.take().length, 0, "take() starts afresh");
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

// ---- decodePacket: the receiver's hand-written decoder, checked against the generated codec ----

/** Protobuf pieces for building messages by hand, field by field. */
const key = (field: number, wireType: number): Buffer => varint(BigInt(field * 8 + wireType));
const vField = (field: number, n: bigint | number): Buffer => Buffer.concat([key(field, 0), varint(BigInt(n))]);
const lField = (field: number, body: Buffer | string): Buffer => {
  const b = Buffer.from(body);
  return Buffer.concat([key(field, 2), varint(BigInt(b.length)), b]);
};
/** One unknown field of each wire type (numbers not used by Packet, Stat or a map entry). */
const unknowns = (): Buffer[] => [
  vField(90, 12345678901234n),
  Buffer.concat([key(91, 1), Buffer.alloc(8, 0xab)]),
  lField(92, "ignored"),
  Buffer.concat([key(93, 5), Buffer.alloc(4, 0xcd)]),
  Buffer.concat([key(94, 3), vField(1, 5), lField(2, "in a group"), Buffer.concat([key(95, 3), vField(3, 1), key(95, 4)]), key(94, 4)]),
];

/** The generated codec's view (int64 as strings, enums as names) -> ours. */
function fromCodec(d: Decoded & { stat: (Decoded["stat"] & { xattrs: Record<string, Buffer> }) | null }): unknown {
  const types = ["PACKET_STAT", "PACKET_REQ", "PACKET_DATA", "PACKET_FIN", "PACKET_ERR"];
  const out: Record<string, unknown> = { type: types.indexOf(d.type), id: d.ID, data: Buffer.from(d.data) };
  if (d.stat) {
    out.stat = {
      path: d.stat.path,
      mode: d.stat.mode,
      uid: d.stat.uid,
      gid: d.stat.gid,
      size: BigInt(d.stat.size),
      modTime: BigInt(d.stat.modTime),
      linkname: d.stat.linkname,
      devmajor: Number(d.stat.devmajor),
      devminor: Number(d.stat.devminor),
      xattrs: new Map(Object.entries(d.stat.xattrs).map(([k, v]) => [k, Buffer.from(v)])),
    };
  }
  return out;
}
function ours(buf: Buffer): unknown {
  const p = decodePacket(buf);
  const out: Record<string, unknown> = { type: p.type, id: p.id, data: Buffer.from(p.data) };
  if (p.stat) out.stat = { ...p.stat, xattrs: new Map([...p.stat.xattrs].map(([k, v]) => [k, Buffer.from(v)])) };
  return out;
}
const generated = (buf: Buffer): unknown => fromCodec(packet.decode(buf) as never);

/** A seeded PRNG (mulberry32), so a failing shuffle can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffle<T>(a: T[], rnd: () => number): T[] {
  const b = [...a];
  for (let i = b.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [b[i], b[j]] = [b[j]!, b[i]!];
  }
  return b;
}

test("decodePacket agrees with the generated codec on everything the codec encodes", () => {
  const full = codec("fsutil.types.Packet").encode({
    type: "PACKET_STAT",
    ID: 4_000_000_000,
    data: Buffer.from("x"),
    stat: {
      path: "dir/名前 ü😀",
      mode: 2147484141,
      uid: 4294967295,
      gid: 1000,
      size: "9223372036854775807",
      modTime: "-1234567890123456789",
      linkname: "../t",
      devmajor: "259",
      devminor: "-1",
      xattrs: { "user.a": Buffer.from([0, 1, 2]), "security.capability": Buffer.alloc(0) },
    },
  });
  const cases = [
    full,
    statPacket(),
    statPacket({ path: "a", mode: 0o644, uid: 0, gid: 0, size: 4n, modTime: 1_700_000_000_123_456_789n, linkname: "", devmajor: 0, devminor: 0 }),
    reqPacket(0),
    reqPacket(7),
    reqPacket(2 ** 32 - 1),
    Buffer.concat([dataPacketHead(300, 5), Buffer.from("hello")]),
    dataPacketHead(0, 0),
    finPacket(),
    errPacket("cannot read /x: EACCES"),
  ];
  for (const c of cases) assert.deepEqual(ours(c), generated(c), c.toString("hex"));
  const p = decodePacket(full);
  assert.equal(p.stat?.size, 2n ** 63n - 1n);
  assert.equal(p.stat?.modTime, -1234567890123456789n);
  assert.equal(p.stat?.devminor, -1);
});

test("reqPacket is Packet{type: REQ, ID}", () => {
  assert.deepEqual(packet.decode(reqPacket(12345)), { type: "PACKET_REQ", ID: 12345, stat: null, data: Buffer.alloc(0) });
  assert.deepEqual(packet.decode(reqPacket(0)), { type: "PACKET_REQ", ID: 0, stat: null, data: Buffer.alloc(0) });
});

test("decodePacket: fields in any order, unknown fields of every wire type skipped (as the codec does)", () => {
  const rnd = prng(0x5eed);
  for (let round = 0; round < 200; round++) {
    const entry = shuffle([lField(1, `user.k${round}`), lField(2, Buffer.from([round & 0xff])), ...unknowns().slice(0, round % 6)], rnd);
    const statFields = shuffle(
      [
        lField(1, `p/${round}`),
        vField(2, 0x80000000 + round),
        vField(3, round),
        vField(4, round * 7),
        vField(5, BigInt(round) * 1_000_000_007n),
        vField(6, -BigInt(round)),
        lField(7, round % 2 ? "" : "target"),
        vField(8, round % 5),
        vField(9, round % 3),
        lField(10, Buffer.concat(entry)),
        ...unknowns().slice(0, round % 6),
      ],
      rnd,
    );
    const fields = shuffle(
      [vField(1, round % 5), lField(2, Buffer.concat(statFields)), vField(3, round * 1000), lField(4, `data ${round}`), ...unknowns()],
      rnd,
    );
    const buf = Buffer.concat(fields);
    assert.deepEqual(ours(buf), generated(buf), `round ${round}: ${buf.toString("hex")}`);
  }
});

test("decodePacket: data and xattr values are views into the message, not copies", () => {
  const body = Buffer.alloc(64 * 1024, 9);
  const msg = Buffer.concat([dataPacketHead(3, body.length), body]);
  const p = decodePacket(msg);
  assert.equal(p.data.buffer, msg.buffer);
  assert.equal(p.data.byteOffset, msg.byteOffset + msg.length - body.length);
  assert.equal(p.data.length, body.length);
  const x = codec("fsutil.types.Packet").encode({ type: "PACKET_STAT", stat: { path: "a", xattrs: { "user.v": Buffer.from("value") } } });
  assert.equal(decodePacket(x).stat?.xattrs.get("user.v")?.buffer, x.buffer);
});

test("decodePacket: a repeated stat merges, as protobuf says (the daemon never sends one)", () => {
  const buf = Buffer.concat([lField(2, Buffer.concat([lField(1, "a"), vField(2, 0o644)])), lField(2, Buffer.concat([vField(3, 5)]))]);
  const p = decodePacket(buf);
  assert.equal(p.stat?.path, "a");
  assert.equal(p.stat?.mode, 0o644);
  assert.equal(p.stat?.uid, 5);
});

test("decodePacket: malformed messages throw an Error saying what is wrong", () => {
  const bad: Array<[string, Buffer, RegExp]> = [
    ["truncated varint", Buffer.from([0x08, 0x80]), /truncated varint/],
    ["varint over 10 bytes", Buffer.concat([Buffer.from([0x08]), Buffer.alloc(11, 0xff)]), /longer than 10 bytes|overflows/],
    ["length past the end", Buffer.from([0x22, 0x05, 0x61]), /runs past the end/],
    ["huge length", Buffer.concat([Buffer.from([0x22]), varint(2n ** 62n)]), /runs past the end/],
    ["field number 0", Buffer.from([0x00, 0x01]), /field number 0/],
    ["wrong wire type for type", lField(1, "x"), /Packet field 1 has wire type 2, want 0/],
    ["wrong wire type for stat", vField(2, 1), /Packet field 2 has wire type 0, want 2/],
    ["wrong wire type in Stat", lField(2, lField(2, "x")), /Stat field 2 has wire type 2, want 0/],
    ["path not UTF-8", lField(2, lField(1, Buffer.from([0x61, 0xff, 0x62]))), /Stat.path is not valid UTF-8/],
    ["linkname not UTF-8", lField(2, lField(7, Buffer.from([0xc3]))), /Stat.linkname is not valid UTF-8/],
    ["xattr key not UTF-8", lField(2, lField(10, lField(1, Buffer.from([0xfe])))), /xattrs key is not valid UTF-8/],
    ["unclosed group", Buffer.concat([key(50, 3), vField(1, 1)]), /group 50 is not closed/],
    ["group closed by another", Buffer.concat([key(50, 3), key(51, 4)]), /group 50 closed as 51/],
    ["stray end of group", key(50, 4), /end of group 50 without its start/],
    ["wire type 6", key(50, 6), /invalid wire type 6/],
    ["truncated fixed64", Buffer.concat([key(50, 1), Buffer.alloc(3)]), /truncated fixed-size field/],
    ["deep groups", Buffer.concat([...Array.from({ length: 100 }, () => key(50, 3))]), /nested too deeply/],
  ];
  for (const [what, buf, re] of bad) assert.throws(() => decodePacket(buf), re, what);
});

test("decodePacket: random bytes give a packet or an Error, never anything else", () => {
  const rnd = prng(42);
  let errors = 0;
  for (let i = 0; i < 20_000; i++) {
    const buf = Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
    try {
      decodePacket(buf);
    } catch (e) {
      assert.ok(e instanceof Error, `seed 42 case ${i}: threw ${String(e)}`);
      errors++;
    }
  }
  assert.ok(errors > 1000, `most random inputs are malformed (${errors})`);
});
