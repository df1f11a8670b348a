/**
 * The session's HTTP/2 server connection, driven frame by frame: the error
 * paths and flow control a daemon seldom shows. (grpc-server.test.ts drives
 * it with grpc-js' client; the integration tests with buildkitd's.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as turn } from "node:timers/promises";
import { H2Code, H2ServerConnection, type FrameSink, type H2Stream } from "../../src/grpc/h2-server.js";
import { HpackDecoder, encodeHeaders } from "../../src/grpc/hpack.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};
const settings = (entries: Array<[number, number]>): Buffer => {
  const b = Buffer.alloc(entries.length * 6);
  entries.forEach(([k, v], i) => {
    b.writeUInt16BE(k, i * 6);
    b.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(4, 0, 0, b);
};
const request = (stream: number, path: string, endStream = false): Buffer =>
  frame(
    1,
    0x4 | (endStream ? 1 : 0),
    stream,
    encodeHeaders([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "x"],
      ["content-type", "application/grpc"],
    ]),
  );

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A connection whose output is parsed back into frames; `release` holds writes until called. */
function harness(opts: { holdWrites?: boolean } = {}) {
  const out: Buffer[] = [];
  const heldWritten: Array<() => void> = [];
  const streams: H2Stream[] = [];
  const errors: string[] = [];
  let ended = false;
  let congested = false;
  let drain: (() => void) | undefined;
  const sink: FrameSink = {
    write(parts, size, written) {
      const joined = Buffer.concat(parts);
      assert.equal(joined.length, size);
      out.push(joined);
      if (written) {
        if (opts.holdWrites) heldWritten.push(written);
        else written();
      }
      return !congested;
    },
    onceDrained: (cb) => (drain = cb),
    end: () => (ended = true),
  };
  const conn = new H2ServerConnection(
    sink,
    (s) => streams.push(s),
    (m) => errors.push(m),
  );
  let parsed = 0;
  const decoder = new HpackDecoder();
  const frames = (): Frame[] => {
    const all = Buffer.concat(out);
    const got: Frame[] = [];
    let pos = parsed;
    while (pos + 9 <= all.length) {
      const len = all.readUIntBE(pos, 3);
      got.push({ type: all[pos + 3]!, flags: all[pos + 4]!, stream: all.readUInt32BE(pos + 5), payload: all.subarray(pos + 9, pos + 9 + len) });
      pos += 9 + len;
    }
    parsed = pos;
    return got;
  };
  return {
    conn,
    streams,
    errors,
    frames,
    decoder,
    heldWritten,
    get ended() {
      return ended;
    },
    congest(on: boolean) {
      congested = on;
      if (!on && drain) {
        const d = drain;
        drain = undefined;
        d();
      }
    },
    /** Preface and an empty SETTINGS, and what the server said first. */
    open(extra: Buffer[] = []): Frame[] {
      conn.receive(Buffer.concat([PREFACE, settings([]), ...extra]));
      return frames();
    },
  };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await turn();
};

test("the server greets with SETTINGS and a connection WINDOW_UPDATE, acks SETTINGS and answers PING", async () => {
  const h = harness();
  h.open([frame(6, 0, 0, Buffer.from("12345678"))]);
  await settle();
  const f = h.frames();
  const settingsFrame = f.find((x) => x.type === 4 && x.flags === 0)!;
  assert.equal(settingsFrame.payload.readUInt16BE(0), 0x4);
  assert.equal(settingsFrame.payload.readUInt32BE(2), 4 << 20);
  assert.equal(f.find((x) => x.type === 8 && x.stream === 0)!.payload.readUInt32BE(0), (16 << 20) - 65535);
  assert.ok(
    f.some((x) => x.type === 4 && x.flags === 1 && x.payload.length === 0),
    "SETTINGS ACK",
  );
  const pong = f.find((x) => x.type === 6)!;
  assert.equal(pong.flags, 1);
  assert.equal(pong.payload.toString(), "12345678");
});

test("a wrong preface, an oversized frame, PUSH_PROMISE and a bad SETTINGS each end the connection with GOAWAY", async () => {
  const cases: Array<[string, Buffer, number]> = [
    ["preface", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), H2Code.PROTOCOL_ERROR],
    ["oversized", Buffer.concat([PREFACE, frame(0, 0, 1, Buffer.alloc(16385))]), H2Code.FRAME_SIZE_ERROR],
    ["push", Buffer.concat([PREFACE, frame(5, 4, 1, Buffer.alloc(4))]), H2Code.PROTOCOL_ERROR],
    ["settings size", Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(5))]), H2Code.FRAME_SIZE_ERROR],
    ["window", Buffer.concat([PREFACE, settings([[4, 2 ** 31]])]), H2Code.FLOW_CONTROL_ERROR],
    ["hpack", Buffer.concat([PREFACE, frame(1, 5, 1, Buffer.from([0x80]))]), H2Code.COMPRESSION_ERROR],
    ["even stream", Buffer.concat([PREFACE, request(2, "/a", true)]), H2Code.PROTOCOL_ERROR],
    ["cut header block", Buffer.concat([PREFACE, frame(1, 0, 1, Buffer.from([0x82])), frame(6, 0, 0, Buffer.alloc(8))]), H2Code.PROTOCOL_ERROR],
  ];
  for (const [name, bytes, code] of cases) {
    const h = harness();
    h.conn.receive(bytes);
    const goaway = h.frames().find((x) => x.type === 7);
    assert.ok(goaway, `${name}: GOAWAY`);
    assert.equal(goaway.payload.readUInt32BE(4), code, name);
    assert.ok(h.ended, `${name}: the sink is ended`);
    assert.equal(h.errors.length, 1, name);
  }
});

test("frames split at every byte still make the same streams and data; CONTINUATION joins a header block", async () => {
  const block = encodeHeaders([
    [":method", "POST"],
    [":path", "/svc/M"],
    ["exclude-patterns", "x".repeat(40000)],
  ]);
  const bytes = Buffer.concat([
    PREFACE,
    settings([]),
    frame(1, 0, 1, block.subarray(0, 16000)),
    frame(9, 0, 1, block.subarray(16000, 32000)),
    frame(9, 4, 1, block.subarray(32000)),
    frame(0, 0x8, 1, Buffer.concat([Buffer.from([3]), Buffer.from("hello"), Buffer.alloc(3)])),
    frame(0, 1, 1, Buffer.from(" world")),
  ]);
  const h = harness();
  const data: string[] = [];
  let ended = false;
  for (let i = 0; i < bytes.length; i++) {
    h.conn.receive(bytes.subarray(i, i + 1));
    const s = h.streams[0];
    if (s && s.onData.name !== "collect") {
      s.onData = function collect(c) {
        data.push(c.toString());
      };
      s.onEnd = () => (ended = true);
    }
  }
  assert.equal(h.streams.length, 1);
  const raw = h.streams[0]!.rawHeaders;
  assert.equal(raw[raw.indexOf(":path") + 1], "/svc/M");
  assert.equal(raw[raw.indexOf("exclude-patterns") + 1], "x".repeat(40000));
  assert.equal(data.join(""), "hello world");
  assert.ok(ended);
  assert.equal(h.errors.length, 0);
});

test("DATA waits for the peer's windows, stream and connection, and goes on after WINDOW_UPDATE and a SETTINGS raise", async () => {
  const h = harness();
  h.open([settings([[4, 100]]), request(1, "/a", true)]);
  const s = h.streams[0]!;
  s.respond([[":status", "200"]]);
  s.write([Buffer.alloc(1000, 1)]);
  s.end([["grpc-status", "0"]]);
  await settle();
  const sent = (f: Frame[]): number => f.filter((x) => x.type === 0).reduce((n, x) => n + x.payload.length, 0);
  let f = h.frames();
  assert.equal(sent(f), 100, "the stream window");
  assert.ok(!f.some((x) => x.type === 1 && x.flags & 1), "no trailers before the data");
  h.conn.receive(frame(8, 0, 1, u32(400)));
  await settle();
  assert.equal(sent(h.frames()), 400);
  // Raising SETTINGS_INITIAL_WINDOW_SIZE adds the difference to open streams.
  h.conn.receive(settings([[4, 600]]));
  await settle();
  f = h.frames();
  assert.equal(sent(f), 500);
  const trailers = f.find((x) => x.type === 1);
  assert.ok(trailers && trailers.flags & 1, "trailers with END_STREAM after the last byte");
  assert.ok(s.closed);
});

test("the connection window holds every stream: 65,535 bytes until the peer's WINDOW_UPDATE on stream 0", async () => {
  const h = harness();
  h.open([settings([[4, 1 << 20]]), request(1, "/a", true), request(3, "/b", true)]);
  for (const s of h.streams) {
    s.respond([[":status", "200"]]);
    s.write([Buffer.alloc(50000)]);
  }
  await settle();
  const dataOf = (f: Frame[], id: number): number => f.filter((x) => x.type === 0 && x.stream === id).reduce((n, x) => n + x.payload.length, 0);
  let f = h.frames();
  assert.equal(dataOf(f, 1) + dataOf(f, 3), 65535);
  assert.ok(dataOf(f, 1) > 0 && dataOf(f, 3) > 0, "both streams get a turn");
  h.conn.receive(frame(8, 0, 0, u32(100000)));
  await settle();
  f = h.frames();
  assert.equal(dataOf(f, 1) + dataOf(f, 3), 100000 - 65535);
  // Frames respect the peer's SETTINGS_MAX_FRAME_SIZE (16384 by default).
  assert.ok(f.filter((x) => x.type === 0).every((x) => x.payload.length <= 16384));
});

test("released comes only after the sink has written the bytes, not when they are framed", async () => {
  const h = harness({ holdWrites: true });
  h.open([settings([[4, 1 << 20]]), frame(8, 0, 0, u32(1 << 20)), request(1, "/a", true)]);
  const s = h.streams[0]!;
  s.respond([[":status", "200"]]);
  let released = 0;
  s.write([Buffer.alloc(5000, 7), Buffer.alloc(3000, 8)], () => released++);
  await settle();
  const data = Buffer.concat(
    h
      .frames()
      .filter((x) => x.type === 0)
      .map((x) => x.payload),
  );
  assert.equal(data.length, 8000);
  assert.equal(released, 0, "framed but not yet written");
  for (const w of h.heldWritten) w();
  assert.equal(released, 1);
});

test("a congested sink holds DATA until drained; queued bytes tell senders to wait", async () => {
  const h = harness();
  h.open([settings([[4, 1 << 30]]), frame(8, 0, 0, u32(1 << 30)), request(1, "/a", true)]);
  const s = h.streams[0]!;
  s.respond([[":status", "200"]]);
  await settle();
  h.frames();
  h.congest(true);
  s.write([Buffer.alloc(600 * 1024)]);
  await settle();
  const first = h
    .frames()
    .filter((x) => x.type === 0)
    .reduce((n, x) => n + x.payload.length, 0);
  assert.ok(first > 0 && first < 600 * 1024, `one batch then a wait (${first})`);
  let below = false;
  s.onceBelow(0, () => (below = true));
  assert.equal(below, false);
  h.congest(false);
  await settle();
  const rest = h
    .frames()
    .filter((x) => x.type === 0)
    .reduce((n, x) => n + x.payload.length, 0);
  assert.equal(first + rest, 600 * 1024);
  assert.ok(below);
});

test("receiving: window is granted back as data arrives, held while paused; DATA past the window resets the stream", async () => {
  const h = harness();
  h.open([request(1, "/a")]);
  const s = h.streams[0]!;
  s.pause();
  const chunk = Buffer.alloc(16384);
  // 4 MiB is the stream window: all of it may arrive while paused, no grant.
  for (let i = 0; i < 256; i++) h.conn.receive(frame(0, 0, 1, chunk));
  await settle();
  let f = h.frames();
  assert.ok(!f.some((x) => x.type === 8 && x.stream === 1), "no stream WINDOW_UPDATE while paused");
  assert.ok(
    f.some((x) => x.type === 8 && x.stream === 0),
    "the connection window is granted regardless",
  );
  s.resume();
  await settle();
  f = h.frames();
  assert.equal(f.find((x) => x.type === 8 && x.stream === 1)?.payload.readUInt32BE(0), 4 << 20);
  // A second stream that overruns its window is reset, the connection lives on.
  h.conn.receive(request(3, "/b"));
  const s3 = h.streams[1]!;
  s3.pause();
  let closed: boolean | undefined;
  s3.onClose = (reset) => (closed = reset);
  for (let i = 0; i < 257; i++) h.conn.receive(frame(0, 0, 3, chunk));
  await settle();
  f = h.frames();
  const rst = f.find((x) => x.type === 3 && x.stream === 3);
  assert.equal(rst?.payload.readUInt32BE(0), H2Code.FLOW_CONTROL_ERROR);
  assert.equal(closed, true);
  assert.ok(!f.some((x) => x.type === 7), "no GOAWAY");
});

test("a response that ends before the client's side resets with NO_ERROR; RST_STREAM from the client closes the stream", async () => {
  const h = harness();
  h.open([request(1, "/a"), request(3, "/b")]);
  const [a, b] = h.streams as [H2Stream, H2Stream];
  let aClosed: boolean | undefined;
  let bClosed: boolean | undefined;
  a.onClose = (r) => (aClosed = r);
  b.onClose = (r) => (bClosed = r);
  a.respond([[":status", "200"]]);
  a.end([["grpc-status", "0"]]);
  await settle();
  const rst = h.frames().find((x) => x.type === 3 && x.stream === 1);
  assert.equal(rst?.payload.readUInt32BE(0), H2Code.NO_ERROR);
  assert.equal(aClosed, false);
  h.conn.receive(frame(3, 0, 3, u32(H2Code.CANCEL)));
  assert.equal(bClosed, true);
  assert.equal(h.conn.streams, 0);
  // After GOAWAY new streams are refused.
  h.conn.goaway();
  h.conn.receive(request(5, "/c", true));
  await settle();
  const refused = h.frames().find((x) => x.type === 3 && x.stream === 5);
  assert.equal(refused?.payload.readUInt32BE(0), H2Code.REFUSED_STREAM);
  assert.equal(h.streams.length, 2);
});

test("random frames after the preface end at worst in GOAWAY, never in a throw", () => {
  let seed = 11;
  const rand = (n: number): number => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / (2 ** 31 / n));
  for (let i = 0; i < 2000; i++) {
    const h = harness();
    const parts = [PREFACE, settings([])];
    for (let k = 0; k < 1 + rand(4); k++) {
      const payload = Buffer.from(Array.from({ length: rand(40) }, () => rand(256)));
      parts.push(frame(rand(11), rand(256), rand(6), payload));
    }
    h.conn.receive(Buffer.concat(parts));
    for (const s of h.streams) {
      s.respond([[":status", "200"]]);
      s.write([Buffer.from("x")]);
    }
  }
});
