import { test } from "node:test";
import assert from "node:assert/strict";
import { StatusLogDecoder, decodeStatusLog } from "../../src/history/log.js";
import { codec } from "../../src/grpc/codec.js";
import { BuildKitError } from "../../src/errors.js";

const status = codec("moby.buildkit.v1.StatusResponse");

/** One record of a status log: 4-byte little-endian length, then the message. */
function record(msg: object): Buffer {
  const body = status.encode(msg);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

const v1 = {
  vertexes: [
    {
      digest: "sha256:aa",
      name: "[1/2] FROM busybox",
      cached: true,
      started: { seconds: "1767225600", nanos: 0 },
      completed: { seconds: "1767225601", nanos: 0 },
    },
  ],
};
const v2 = { logs: [{ vertex: "sha256:aa", stream: "1", msg: Buffer.from("hello\n"), timestamp: { seconds: "1767225600", nanos: 5_000_000 } }] };
const v3 = { warnings: [{ vertex: "sha256:aa", level: "1", short: Buffer.from("careful"), detail: [Buffer.from("d")], url: "https://x" }] };

test("a status log decodes to the updates buildkitd stored, in order", () => {
  const out = decodeStatusLog(Buffer.concat([record(v1), record(v2), record(v3)]));
  assert.equal(out.length, 3);
  assert.equal(out[0]!.vertexes[0]!.name, "[1/2] FROM busybox");
  assert.equal(out[0]!.vertexes[0]!.cached, true);
  assert.deepEqual(out[0]!.vertexes[0]!.completed, new Date(1767225601000));
  assert.equal(out[1]!.logs[0]!.data.toString(), "hello\n");
  assert.equal(out[1]!.logs[0]!.stream, 1);
  assert.equal(out[2]!.warnings[0]!.short, "careful");
});

test("an empty log is no updates; an empty record is an empty update", () => {
  assert.deepEqual(decodeStatusLog(Buffer.alloc(0)), []);
  const out = decodeStatusLog(Buffer.from([0, 0, 0, 0]));
  assert.deepEqual(out, [{ vertexes: [], statuses: [], logs: [], warnings: [] }]);
});

test("pieces split anywhere (inside the length, inside the body) decode the same", () => {
  const whole = Buffer.concat([record(v1), record(v2), record(v3)]);
  for (const size of [1, 2, 3, 5, 7, 64]) {
    const d = new StatusLogDecoder();
    const out = [];
    for (let i = 0; i < whole.length; i += size) out.push(...d.push(whole.subarray(i, i + size)));
    d.end();
    assert.equal(out.length, 3, `pieces of ${size}`);
    assert.equal(d.records, 3);
    assert.equal(out[1]!.logs[0]!.data.toString(), "hello\n");
  }
});

test("a log cut inside a record body is a clear DATA_LOSS error naming the record and offset", () => {
  const whole = Buffer.concat([record(v1), record(v2)]);
  const cut = whole.subarray(0, whole.length - 3);
  assert.throws(
    () => decodeStatusLog(cut, "the log of build abc"),
    (e: unknown) => {
      assert.ok(e instanceof BuildKitError);
      assert.equal(e.code, "DATA_LOSS");
      assert.match(e.message, /^cannot read the log of build abc: it is truncated: record 2 at byte \d+ claims \d+ bytes but only \d+ follow$/);
      return true;
    },
  );
});

test("a log cut inside a length prefix is truncated, not silently short", () => {
  const cut = Buffer.concat([record(v1), Buffer.from([9, 0])]);
  assert.throws(() => decodeStatusLog(cut), /truncated: it ends 2 bytes into the length of record 2/);
});

test("a body that is not a StatusResponse is a clear error", () => {
  // Wire type 7 does not exist: protobuf cannot read it.
  const garbage = Buffer.from([0x0f, 0xff, 0xff, 0xff]);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(garbage.length);
  assert.throws(
    () => decodeStatusLog(Buffer.concat([record(v1), head, garbage])),
    (e: unknown) => e instanceof BuildKitError && e.code === "DATA_LOSS" && /record 2 at byte \d+ is not a status message/.test(e.message),
  );
});

test("an absurd length is corruption, reported before waiting for that many bytes", () => {
  const d = new StatusLogDecoder();
  assert.throws(() => d.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])), /record 1 at byte 0 claims 4294967295 bytes/);
});
