/**
 * A Build as a resource, against a node:http2 stand-in for buildkitd's
 * Control service whose Solve and Status the test steers: cancel(),
 * `await using`, client.close() mid-build, one progress reader,
 * backpressure, and how long status is waited for after Solve.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { fileTree } from "../helpers/files.js";
import { BuildKitClient } from "../../src/client.js";
import { BuildKitError, ConnectionError, UsageError } from "../../src/errors.js";
import { codec } from "../../src/grpc/codec.js";
import { encodeGrpcMessage, frame } from "../../src/grpc/frame.js";

const info = codec("moby.buildkit.v1.InfoResponse");
const statusCodec = codec("moby.buildkit.v1.StatusResponse");
const solveRes = codec("moby.buildkit.v1.SolveResponse");

interface Daemon {
  address: string;
  /** Solve calls, in arrival order, with a way to finish each. */
  solves: Array<{ ok: (resp?: Record<string, string>) => void; fail: (code: number, msg: string) => void; cancelled: Promise<void> }>;
  /** Status streams, in arrival order. */
  statuses: http2.ServerHttp2Stream[];
  sessions: number;
  waitFor: (what: () => boolean) => Promise<void>;
  close: () => Promise<void>;
}

function respond(stream: http2.ServerHttp2Stream): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
}

function finish(stream: http2.ServerHttp2Stream, code = 0, msg = ""): void {
  if (stream.closed) return;
  stream.once("wantTrailers", () =>
    stream.sendTrailers(code ? { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(msg) } : { "grpc-status": "0" }),
  );
  stream.end();
}

/** Control's Info answers; Session is held open; Status and Solve wait for the test. */
async function daemon(opts: { statusOnConnect?: (s: http2.ServerHttp2Stream) => void } = {}): Promise<Daemon> {
  const server = http2.createServer();
  const sockets = new Set<net.Socket>();
  const d: Daemon = {
    address: "",
    solves: [],
    statuses: [],
    sessions: 0,
    waitFor: async (what) => {
      for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(what(), "the stand-in daemon never saw what the test waited for");
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", (s) => s.on("error", () => undefined));
  server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    const method = String(headers[":path"]).split("/").pop();
    if (method === "Info") {
      respond(stream);
      const b = info.encode({ buildkitVersion: { version: "v0.0.0-fake" } });
      stream.write(frame([b], b.length));
      finish(stream);
    } else if (method === "Session") {
      d.sessions++;
      respond(stream);
      // As buildkitd: the session ends when the client half-closes it.
      stream.on("end", () => finish(stream));
      stream.resume();
    } else if (method === "Status") {
      respond(stream);
      d.statuses.push(stream);
      opts.statusOnConnect?.(stream);
    } else if (method === "Solve") {
      let cancelled!: () => void;
      const c = new Promise<void>((r) => (cancelled = r));
      stream.on("close", () => cancelled());
      stream.on("aborted", () => cancelled());
      d.solves.push({
        ok: (resp = {}) => {
          respond(stream);
          const b = solveRes.encode({ ExporterResponse: resp });
          stream.write(frame([b], b.length));
          finish(stream);
        },
        fail: (code, msg) => {
          stream.respond(
            { ":status": 200, "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeGrpcMessage(msg) },
            { endStream: true },
          );
        },
        cancelled: c,
      });
    } else {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  d.address = `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return d;
}

/** A stand-in daemon and a client connected to it, both closed when `t` ends (closing twice is harmless). */
async function connected(t: TestContext, opts?: Parameters<typeof daemon>[0]): Promise<{ d: Daemon; client: BuildKitClient }> {
  const d = await daemon(opts);
  const client = await BuildKitClient.connect({ address: d.address, env: {} });
  t.after(async () => {
    await client.close();
    await d.close();
  });
  return { d, client };
}

function context(t: TestContext): string {
  return fileTree("bk-lifecycle-", { Dockerfile: "FROM scratch\n" }, t);
}

test("cancel() cancels the solve on the daemon and rejects result with CANCELLED; progress ends", async (t) => {
  const { d, client } = await connected(t);
  const build = client.build({ context: context(t), env: {} });
  await d.waitFor(() => d.solves.length === 1);
  const reader = (async () => {
    for await (const _ of build.progress) void _;
  })();
  build.cancel();
  await assert.rejects(build.result, (e: unknown) => e instanceof BuildKitError && e.code === "CANCELLED" && e.message === "the build was cancelled");
  await d.solves[0]!.cancelled;
  await reader;
});

test("await using a build cancels it when the scope is left, and waits for its end", async (t) => {
  const { d, client } = await connected(t);
  let settled = "pending";
  try {
    {
      await using build = client.build({ context: context(t), env: {} });
      build.result.then(
        () => (settled = "ok"),
        () => (settled = "rejected"),
      );
      await d.waitFor(() => d.solves.length === 1);
    }
    // Disposal has awaited the end: result has settled already.
    assert.equal(settled, "rejected");
    await d.solves[0]!.cancelled;
  } finally {
    await client.close();
    await d.close();
  }
});

test("client.close() while a build is still preparing (no session yet) ends result and progress, and waits for them", async (t) => {
  const { d, client } = await connected(t);
  // A secret provider is only called on demand; a slow `{ env }` check would be
  // synchronous, so close right away: run() has not opened the session yet.
  const build = client.build({ context: context(t), env: {}, secrets: { s: "v" } });
  const progress = (async () => {
    let n = 0;
    for await (const _ of build.progress) n++;
    return n;
  })();
  const t0 = Date.now();
  await client.close();
  assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms`);
  const settled = await Promise.race([
    build.result.then(
      () => "ok",
      (e: unknown) => e,
    ),
    new Promise((r) => setTimeout(() => r("pending"), 10)),
  ]);
  assert.ok(settled instanceof BuildKitError, `result after close(): ${String(settled)}`);
  assert.match(settled.message, /closed/);
  assert.equal(await progress, 0);
  assert.equal(d.solves.length, 0, "no solve was sent after close()");
  await d.close();
});

test("client.close() mid-build cancels the solve and resolves once it has ended", async (t) => {
  const { d, client } = await connected(t);
  const build = client.build({ context: context(t), env: {} });
  await d.waitFor(() => d.solves.length === 1 && d.sessions === 1);
  await client.close();
  await assert.rejects(build.result, (e: unknown) => e instanceof BuildKitError && /the BuildKitClient was closed/.test(e.message));
  await d.solves[0]!.cancelled;
  assert.throws(() => client.build({ context: context(t), env: {} }), UsageError);
  await d.close();
});

test("progress has one reader: a second concurrent reader gets a UsageError", async (t) => {
  const { d, client } = await connected(t);
  const build = client.build({ context: context(t), env: {} });
  const first = build.progress[Symbol.asyncIterator]();
  const pending = first.next();
  const second = build.progress[Symbol.asyncIterator]();
  await assert.rejects(second.next(), (e: unknown) => e instanceof UsageError && /build\.progress is already being read/.test(e.message));
  await d.waitFor(() => d.solves.length === 1);
  d.solves[0]!.ok({ "containerimage.digest": "sha256:x" });
  assert.deepEqual((await build.result).exporterResponse, { "containerimage.digest": "sha256:x" });
  await pending;
});

test("a reader that does not read slows the status stream; result does not wait for it", async (t) => {
  let written = 0;
  let blocked = false;
  const big = Buffer.alloc(64 * 1024, 0x61);
  const d = await daemon({
    statusOnConnect: (s) => {
      const msg = statusCodec.encode({ logs: [{ vertex: "v", msg: big }] });
      const f = frame([msg], msg.length);
      const pump = (): void => {
        while (written < 2000) {
          written++;
          if (!s.write(f)) {
            blocked = true;
            s.once("drain", pump);
            return;
          }
        }
      };
      pump();
    },
  });
  const client = await BuildKitClient.connect({ address: d.address, env: {} });
  try {
    const build = client.build({ context: context(t), env: {} });
    await d.waitFor(() => d.solves.length === 1 && blocked);
    await new Promise((r) => setTimeout(r, 300));
    // 64 updates queued plus what HTTP/2's windows and socket buffers hold
    // (about 20 MiB here): well short of the 2000 (125 MiB) on offer.
    assert.ok(written < 600, `the daemon could write ${written} updates nobody read`);
    d.solves[0]!.ok();
    finish(d.statuses[0]!);
    const t0 = Date.now();
    await build.result;
    assert.ok(Date.now() - t0 < 8000);
  } finally {
    await client.close();
    await d.close();
  }
});

test("an early solve failure is reported at once, not after a 5 s status wait", async (t) => {
  const { d, client } = await connected(t);
  const build = client.build({ context: context(t), env: {} });
  await d.waitFor(() => d.solves.length === 1);
  const t0 = Date.now();
  d.solves[0]!.fail(3, "invalid cache export type bogus");
  await assert.rejects(build.result, /failed to solve: invalid cache export type bogus/);
  const ms = Date.now() - t0;
  assert.ok(ms < 1500, `the error took ${ms} ms to arrive`);
});

test("a build against a daemon that went down says the connection was refused, like info()", async (t) => {
  const { d, client } = await connected(t);
  await d.close();
  await assert.rejects(client.info(), (e: unknown) => e instanceof ConnectionError && /connection refused/.test(e.message));
  const build = client.build({ context: context(t), env: {} });
  await assert.rejects(build.result, (e: unknown) => {
    assert.ok(e instanceof ConnectionError, String(e));
    assert.match(e.message, /^cannot connect to buildkitd at tcp:\/\/127\.0\.0\.1:\d+: connection refused/);
    return true;
  });
});

test("options objects passed to build() are not changed", async (t) => {
  const { d, client } = await connected(t);
  const outputs = [{ type: "image", attrs: { "registry.insecure": "true" } }];
  const opts = { context: context(t), env: {}, tags: ["127.0.0.1:5000/x:1"], push: true, outputs };
  const snapshot = JSON.stringify(opts);
  const build = client.build(opts);
  await d.waitFor(() => d.solves.length === 1);
  d.solves[0]!.ok();
  await build.result;
  assert.equal(JSON.stringify(opts), snapshot);
});
