import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { MessageReader, frame } from "../../src/grpc/frame.js";
import { varintBytes } from "../helpers/protobuf.js";

test("MessageReader: any split of a stream of messages gives the same messages, each exactly its own bytes", () => {
  for (let round = 0; round < 200; round++) {
    const messages = Array.from({ length: randomInt(1, 12) }, () => randomBytes(randomInt(0, 70_000)));
    const stream = Buffer.concat(messages.map((m) => frame([m], m.length)));
    const reader = new MessageReader();
    const got: Buffer[] = [];
    for (let at = 0; at < stream.length;) {
      const n = Math.min(stream.length - at, [1, 2, 3, 5, 7, 16_384, 40_000][randomInt(0, 7)]!);
      got.push(...reader.push(stream.subarray(at, at + n)));
      at += n;
    }
    assert.equal(got.length, messages.length);
    for (let i = 0; i < messages.length; i++) {
      assert.ok(got[i]!.equals(messages[i]!), `message ${i} of round ${round}`);
      // Either a view of the input, or gathered into a buffer of exactly its size (not a join with the next message's bytes).
      const g = got[i]!;
      if (g.length > 4096)
        assert.ok(g.buffer === stream.buffer || g.buffer.byteLength === g.length, `message ${i}: ${g.buffer.byteLength} bytes held for ${g.length}`);
    }
  }
});

test("MessageReader: a message split inside its 5-byte prefix, and empty messages", () => {
  const r = new MessageReader();
  const f = Buffer.concat([frame([Buffer.from("abc")], 3), frame([], 0), frame([Buffer.from("z")], 1)]);
  const out: Buffer[] = [];
  for (const b of f) out.push(...r.push(Buffer.from([b])));
  assert.deepEqual(
    out.map((b) => b.toString()),
    ["abc", "", "z"],
  );
});

test("pushPieces: each message as views of its chunks, equal to what push gathers; BytesMessage data taken from pieces", async () => {
  const { bytesMessagePieces, bytesMessageData } = await import("../../src/grpc/bytes-message.js");
  const { Writer, varintSize } = await import("../../src/grpc/protobuf-writer.js");
  const bytesMessage = (data: Buffer, extra = false): Buffer => {
    const w = new Writer(Buffer.alloc(1 + varintSize(data.length) + data.length + (extra ? 2 : 0)));
    if (extra) w.raw(Buffer.from([0x10, 0x01])); // field 2 (varint) before field 1: not the fast path
    w.buf[w.pos++] = 0x0a;
    w.varint(data.length);
    w.raw(data);
    return w.buf;
  };
  for (let round = 0; round < 200; round++) {
    const datas = Array.from({ length: randomInt(1, 8) }, () => randomBytes([0, 1, 5, 200, 16_384, 70_000][randomInt(0, 6)]!));
    const bodies = datas.map((d, i) => bytesMessage(d, i % 3 === 2));
    const stream = Buffer.concat(bodies.map((b) => frame([b], b.length)));
    const a = new MessageReader();
    const b = new MessageReader();
    const whole: Buffer[] = [];
    const pieced: Buffer[][] = [];
    for (let at = 0; at < stream.length;) {
      const n = Math.min(stream.length - at, [1, 3, 9, 4096, 16_393][randomInt(0, 5)]!);
      const c = stream.subarray(at, at + n);
      whole.push(...a.push(c));
      pieced.push(...b.pushPieces(c));
      at += n;
    }
    assert.equal(pieced.length, bodies.length);
    for (let i = 0; i < bodies.length; i++) {
      assert.ok(Buffer.concat(pieced[i]!).equals(whole[i]!), `message ${i}`);
      const data = Buffer.concat(bytesMessagePieces(pieced[i]!));
      assert.ok(data.equals(datas[i]!), `data ${i} (${datas[i]!.length} bytes)`);
      assert.ok(data.equals(bytesMessageData(whole[i]!)));
    }
  }
  assert.throws(() => bytesMessagePieces([Buffer.from([0x0a, 5, 1])]), /truncated/);
});

test("varint64 and varint64Size match a byte-by-byte BigInt encoder over boundaries, nanosecond times and negatives", async () => {
  const { Writer, varint64Size } = await import("../../src/grpc/protobuf-writer.js");
  const reference = (n: bigint): number[] => [...varintBytes(n)];
  const values = [
    0n,
    1n,
    127n,
    128n,
    (1n << 53n) - 1n,
    1n << 53n,
    (1n << 56n) - 1n,
    1n << 56n,
    (1n << 63n) - 1n,
    -1n,
    -(1n << 63n),
    1_764_748_800_123_456_789n,
  ];
  for (let k = 0; k < 64; k++) values.push(1n << BigInt(k), (1n << BigInt(k)) - 1n, (1n << BigInt(k)) + 1n);
  for (let i = 0; i < 2000; i++) values.push(BigInt.asIntN(64, BigInt(`0x${randomBytes(8).toString("hex")}`)));
  for (const v of values) {
    const w = new Writer(Buffer.alloc(10));
    w.varint64(v);
    assert.deepEqual([...w.buf.subarray(0, w.pos)], reference(v), `varint64(${v})`);
    assert.equal(varint64Size(v), reference(v).length, `varint64Size(${v})`);
  }
});
