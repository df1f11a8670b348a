import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { MessageReader, frame } from "../../src/grpc/frame.js";

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
