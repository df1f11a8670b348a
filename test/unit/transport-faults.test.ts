/**
 * The transport under faults, against node:http2 servers that misbehave on
 * purpose: GOAWAY with a call open, refused and reset streams, a socket lost
 * mid-call, a peer that stops answering pings, oversized requests. Each
 * failure must be classified from facts (phase, reset code, Node's code),
 * never as "not buildkitd".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { Connection } from "../../src/transport/connection.js";
import { parseAddress } from "../../src/transport/address.js";
import { codec } from "../../src/grpc/codec.js";
import { grpcTimeout } from "../../src/grpc/client.js";
import { MAX_MESSAGE_BYTES, frame } from "../../src/grpc/frame.js";
import { BuildKitError, ConnectionError } from "../../src/errors.js";

const C = http2.constants;
const info = codec("moby.buildkit.v1.InfoResponse");
const status = codec("moby.buildkit.v1.StatusResponse");

interface Fake {
  port: number;
  /** Sessions the server has seen, in order. */
  sessions: http2.ServerHttp2Session[];
  /** Calls per path. */
  calls: Map<string, number>;
  pings: number[];
  close: () => Promise<void>;
}

type Handler = (stream: http2.ServerHttp2Stream, path: string, call: number, session: http2.ServerHttp2Session, sockets: Set<net.Socket>) => void;

/** A node:http2 server whose streams go to `handler`; counts sessions, calls and pings. */
async function fake(handler: Handler): Promise<Fake> {
  const server = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  const calls = new Map<string, number>();
  const pings: number[] = [];
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", (s) => {
    sessions.push(s);
    s.on("error", () => undefined);
    s.on("ping", () => pings.push(Date.now()));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    const path = String(headers[":path"]);
    const n = (calls.get(path) ?? 0) + 1;
    calls.set(path, n);
    handler(stream, path, n, stream.session as http2.ServerHttp2Session, sockets);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sessions,
    calls,
    pings,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Answers a unary call with `body` and status OK. */
function answer(stream: http2.ServerHttp2Stream, body: Buffer): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(frame([body], body.length));
}

function conn(port: number, keepalive?: { intervalMs: number; timeoutMs: number }): Connection {
  return new Connection(parseAddress(`tcp://127.0.0.1:${port}`), undefined, { keepalive });
}

const INFO = "/moby.buildkit.v1.Control/Info";
const STATUS = "/moby.buildkit.v1.Control/Status";

test("GOAWAY with a call open: that call finishes on the old connection, the next goes to a new one", async () => {
  let release: () => void = () => undefined;
  const f = await fake((stream, path, n, session) => {
    if (path === STATUS) {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      const m = status.encode({ logs: [{ vertex: "v", msg: Buffer.from("before goaway") }] });
      stream.write(frame([m], m.length));
      // Graceful shutdown of this connection: no new streams, this one may finish.
      session.goaway(C.NGHTTP2_NO_ERROR, stream.id);
      release = () => {
        const last = status.encode({ logs: [{ vertex: "v", msg: Buffer.from("after goaway") }] });
        stream.end(frame([last], last.length));
      };
      return;
    }
    answer(stream, info.encode({ buildkitVersion: { version: `v${n}` } }));
  });
  const c = conn(f.port);
  try {
    const it = c.serverStream("Control.Status", { Ref: "r" });
    assert.equal((await it.next()).value?.logs[0]?.msg.toString(), "before goaway");
    await new Promise((r) => setTimeout(r, 50));
    // A new call after GOAWAY: a second connection takes it.
    const res = await c.unary("Control.Info", {});
    assert.equal(res.buildkitVersion?.version, "v1");
    assert.equal(f.sessions.length, 2, "the call after GOAWAY used a new connection");
    // The open call still completes, on the first connection.
    release();
    const rest = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.logs[0]?.msg.toString());
    assert.deepEqual(rest, ["after goaway"]);
  } finally {
    await c.close();
    await f.close();
  }
});

test("a refused stream (REFUSED_STREAM or past GOAWAY's last stream) is retried on a new connection", async () => {
  const f = await fake((stream, _path, n, session) => {
    if (n === 1) {
      // As a server that is going away: refuse before doing any work.
      session.goaway(C.NGHTTP2_NO_ERROR, 0);
      stream.close(C.NGHTTP2_REFUSED_STREAM);
      return;
    }
    answer(stream, info.encode({ buildkitVersion: { version: "v-retried" } }));
  });
  const c = conn(f.port);
  try {
    const res = await c.unary("Control.Info", {});
    assert.equal(res.buildkitVersion?.version, "v-retried");
    assert.equal(f.calls.get(INFO), 2);
  } finally {
    await c.close();
    await f.close();
  }
});

test("a server that keeps refusing is reported as refusing, with the address", async () => {
  const f = await fake((stream) => stream.close(C.NGHTTP2_REFUSED_STREAM));
  const c = conn(f.port);
  try {
    await assert.rejects(c.unary("Control.Info", {}), (e: unknown) => {
      assert.ok(e instanceof ConnectionError, String(e));
      assert.equal(e.code, "UNAVAILABLE");
      assert.match(e.message, /^buildkitd at tcp:\/\/127\.0\.0\.1:\d+ refused the call: it is shutting down or restarting; try again$/);
      return true;
    });
    assert.equal(f.calls.get(INFO), 3, "tried three times");
  } finally {
    await c.close();
    await f.close();
  }
});

test("RST_STREAM CANCEL mid-stream is a reset by the server, not 'not buildkitd'", async () => {
  // Once the request side is half-closed, Node reports no RST code (a reset
  // shows as a plain end): the error says the stream was reset without a status.
  const f = await fake((stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    const m = status.encode({});
    stream.write(frame([m], m.length));
    setTimeout(() => stream.close(C.NGHTTP2_CANCEL), 30);
  });
  const c = conn(f.port);
  try {
    const it = c.serverStream("Control.Status", { Ref: "r" });
    await it.next();
    await assert.rejects(it.next(), (e: unknown) => {
      assert.ok(e instanceof BuildKitError && !(e instanceof ConnectionError), String(e));
      assert.equal(e.code, "CANCELLED");
      assert.match(e.message, /^buildkitd at tcp:\/\/127\.0\.0\.1:\d+ reset the call during the build \(RST_STREAM without a status\)$/);
      assert.doesNotMatch(e.message, /not buildkitd|did not answer/);
      return true;
    });
  } finally {
    await c.close();
    await f.close();
  }
});

test("reset codes before an answer map to their gRPC status (ENHANCE_YOUR_CALM, INTERNAL_ERROR, CANCEL)", async () => {
  const codes = [C.NGHTTP2_ENHANCE_YOUR_CALM, C.NGHTTP2_INTERNAL_ERROR, C.NGHTTP2_CANCEL];
  const f = await fake((stream, _p, n) => stream.close(codes[n - 1]));
  const c = conn(f.port);
  try {
    await assert.rejects(
      c.unary("Control.Info", {}),
      (e: unknown) => e instanceof BuildKitError && e.code === "RESOURCE_EXHAUSTED" && /reset the call \(RST_STREAM ENHANCE_YOUR_CALM\)$/.test(e.message),
    );
    await assert.rejects(
      c.unary("Control.Info", {}),
      (e: unknown) => e instanceof BuildKitError && e.code === "INTERNAL" && /reset the call \(RST_STREAM INTERNAL_ERROR\)$/.test(e.message),
    );
    await assert.rejects(
      c.unary("Control.Info", {}),
      (e: unknown) => e instanceof BuildKitError && e.code === "CANCELLED" && /reset the call \(RST_STREAM CANCEL\)$/.test(e.message),
    );
  } finally {
    await c.close();
    await f.close();
  }
});

test("a socket lost mid-call (closed, or reset) is a lost connection that names the address", async () => {
  for (const how of ["end", "reset"] as const) {
    const f = await fake((stream, _p, _n, _session, sockets) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      const m = status.encode({});
      stream.write(frame([m], m.length));
      setTimeout(() => {
        for (const s of sockets) {
          if (how === "end") s.destroy();
          else s.resetAndDestroy();
        }
      }, 30);
    });
    const c = conn(f.port);
    try {
      const it = c.serverStream("Control.Status", { Ref: "r" });
      await it.next();
      await assert.rejects(it.next(), (e: unknown) => {
        assert.ok(e instanceof ConnectionError, `${how}: ${String(e)}`);
        assert.equal(e.code, "UNAVAILABLE");
        assert.match(e.message, /^connection to buildkitd at tcp:\/\/127\.0\.0\.1:\d+ lost during the build: /);
        assert.doesNotMatch(e.message, /not buildkitd|did not answer/);
        return true;
      });
      // The next call dials again.
      await assert.rejects(c.unary("Control.Info", {}), () => true);
      assert.equal(f.sessions.length, 2, `${how}: a new connection was dialled`);
    } finally {
      await c.close();
      await f.close();
    }
  }
});

/** A TCP proxy that can stop forwarding in both directions, as a dead NAT mapping or a frozen host would. */
async function freezableProxy(target: number): Promise<{ port: number; freeze: () => void; close: () => Promise<void> }> {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("data", (d) => void (frozen || upstream.write(d)));
    upstream.on("data", (d) => void (frozen || client.write(d)));
    for (const s of [client, upstream]) {
      s.on("error", () => undefined);
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze: () => (frozen = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

test("keepalive: a peer that stops answering is detected within interval + timeout, not after a hang", async () => {
  const f = await fake((stream) => {
    // A silent long call, like a Status stream during a quiet RUN step.
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
  });
  const proxy = await freezableProxy(f.port);
  const c = conn(proxy.port, { intervalMs: 200, timeoutMs: 300 });
  try {
    const it = c.serverStream("Control.Status", { Ref: "r" });
    const pending = it.next();
    await new Promise((r) => setTimeout(r, 100));
    proxy.freeze();
    const t = Date.now();
    await assert.rejects(pending, (e: unknown) => {
      assert.ok(e instanceof ConnectionError, String(e));
      assert.match(e.message, /^connection to buildkitd at tcp:\/\/127\.0\.0\.1:\d+ lost during the build: .*no answer to a keepalive ping within 300 ms/);
      return true;
    });
    const ms = Date.now() - t;
    assert.ok(ms < 2500, `detected after ${ms} ms`);
  } finally {
    await c.close();
    await proxy.close();
    await f.close();
  }
});

test("keepalive backs off on a silent connection: at most 2 pings within 5 minutes after the first", async () => {
  const f = await fake((stream) => stream.respond({ ":status": 200, "content-type": "application/grpc" }));
  const c = conn(f.port, { intervalMs: 50, timeoutMs: 1000 });
  try {
    const it = c.serverStream("Control.Status", { Ref: "r" });
    const pending = it.next();
    pending.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1200));
    // Pings after 50, +100 and +200 ms of silence; the next would come ~5 minutes later.
    assert.equal(f.pings.length, 3, `pings at ${f.pings.map((p) => p - f.pings[0]!).join(", ")} ms`);
    const gaps = f.pings.slice(1).map((p, i) => p - f.pings[i]!);
    assert.ok(gaps[0]! >= 90 && gaps[1]! >= 180, `gaps ${gaps.join(", ")}`);
  } finally {
    await c.close();
    await f.close();
  }
});

test("no keepalive pings while no call is open, and none when keepalive is off", async () => {
  const f = await fake((stream) => answer(stream, info.encode({})));
  const on = conn(f.port, { intervalMs: 30, timeoutMs: 1000 });
  const off = conn(f.port);
  try {
    await on.unary("Control.Info", {});
    const it = off.serverStream("Control.Status", { Ref: "r" });
    void it.next().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(f.pings.length, 0);
  } finally {
    await on.close();
    await off.close();
    await f.close();
  }
});

test("a request over the 16 MiB message limit fails here, before anything is sent", async () => {
  const f = await fake((stream) => answer(stream, Buffer.alloc(0)));
  const c = conn(f.port);
  try {
    const big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    await assert.rejects(c.unary("Control.Solve", { FrontendAttrs: { "build-arg:BIG": big } }), (e: unknown) => {
      assert.ok(e instanceof BuildKitError);
      assert.equal(e.code, "RESOURCE_EXHAUSTED");
      assert.match(e.message, /^the Solve request is \d+ bytes, over buildkitd's 16 MiB message limit/);
      return true;
    });
    assert.equal(f.sessions.length, 0, "nothing was dialled");
  } finally {
    await c.close();
    await f.close();
  }
});

test("grpc-timeout stays within 8 digits for any deadline", () => {
  assert.equal(grpcTimeout(5000), "5000m");
  assert.equal(grpcTimeout(99_999_999), "99999999m");
  assert.equal(grpcTimeout(100_000_000), "100000S");
  assert.equal(grpcTimeout(2 ** 31 - 1), "2147484S");
  assert.equal(grpcTimeout(1e12), "16666667M");
  assert.equal(grpcTimeout(1e13), "2777778H");
  assert.equal(grpcTimeout(1e20), "99999999H");
  assert.equal(grpcTimeout(0.2), "1m");
});

test("a deadline past 2^31-1 ms is waited for, not fired at once", async () => {
  const f = await fake((stream) => setTimeout(() => answer(stream, info.encode({ buildkitVersion: { version: "slow" } })), 50));
  const c = conn(f.port);
  try {
    const res = await c.unary("Control.Info", {}, { deadline: new Date(Date.now() + 3e9) });
    assert.equal(res.buildkitVersion?.version, "slow");
  } finally {
    await c.close();
    await f.close();
  }
});

test("calls on a closed connection fail with a BuildKitError, never a raw transport error", async () => {
  const f = await fake((stream) => answer(stream, info.encode({})));
  const c = conn(f.port);
  await c.unary("Control.Info", {});
  await c.close();
  await assert.rejects(c.unary("Control.Info", {}), (e: unknown) => e instanceof BuildKitError && /closed/.test(e.message));
  assert.throws(
    () => c.bidi("Control.Session", {}),
    (e: unknown) => e instanceof BuildKitError,
  );
  const it = c.serverStream("Control.Status", { Ref: "r" });
  await assert.rejects(it.next(), (e: unknown) => e instanceof BuildKitError);
  await f.close();
});
