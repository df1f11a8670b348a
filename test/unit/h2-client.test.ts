import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Connection } from "../../src/transport/connection.js";
import { parseAddress } from "../../src/transport/address.js";
import { codec } from "../../src/grpc/codec.js";
import { SolveError, BuildKitError } from "../../src/errors.js";
import { serviceDefinition } from "../helpers/grpc-js.js";

type Handlers = Partial<Record<string, grpc.UntypedHandleCall>>;

/** A grpc-js server with a stand-in Control service; our client talks to it. */
async function control(handlers: Handlers): Promise<{ conn: Connection; close: () => Promise<void> }> {
  const server = new grpc.Server();
  const def = serviceDefinition("moby.buildkit.v1.Control");
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(def)) {
    impl[name] = handlers[name] ?? ((_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.NOT_FOUND, details: `${name} not here` }));
  }
  server.addService(def, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const conn = new Connection(parseAddress(`tcp://127.0.0.1:${port}`), undefined);
  return {
    conn,
    close: async () => {
      await conn.close();
      server.forceShutdown();
    },
  };
}

test("unary calls: request and response round-trip, metadata-free", async () => {
  let seen: unknown;
  const s = await control({
    Info: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen = call.request;
      cb(null, { buildkitVersion: { package: "p", version: "v9", revision: "r" } });
    },
  });
  try {
    const r = await s.conn.unary("Control.Info", {});
    assert.equal(r.buildkitVersion?.version, "v9");
    assert.deepEqual(seen, {});
    // A second call reuses the connection.
    assert.equal((await s.conn.unary("Control.Info", {})).buildkitVersion?.version, "v9");
  } finally {
    await s.close();
  }
});

test("server streams deliver every message in order, then end", async () => {
  const s = await control({
    Status: (call: grpc.ServerWritableStream<{ Ref: string }, unknown>) => {
      for (let i = 0; i < 500; i++) call.write({ logs: [{ vertex: call.request.Ref, msg: Buffer.from(`line ${i}`) }] });
      call.end();
    },
  });
  try {
    const got: string[] = [];
    for await (const r of s.conn.serverStream("Control.Status", { Ref: "abc" })) {
      got.push(`${r.logs[0]!.vertex} ${r.logs[0]!.msg.toString()}`);
    }
    assert.equal(got.length, 500);
    assert.equal(got[0], "abc line 0");
    assert.equal(got[499], "abc line 499");
  } finally {
    await s.close();
  }
});

test("a failed Solve keeps its message and decodes grpc-status-details-bin", async () => {
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const details = codec("google.rpc.Status").encode({
    code: 2,
    message: "x",
    details: [{ type_url: "github.com/moby/buildkit/gatewayapi.ExitMessage+json", value: json({ Code: 7 }) }],
  });
  const s = await control({
    Solve: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
      const md = new grpc.Metadata();
      md.set("grpc-status-details-bin", details);
      cb({ code: grpc.status.UNKNOWN, details: 'process "/bin/sh -c exit 7" did not complete: ünïcode 100%', metadata: md });
    },
  });
  try {
    await assert.rejects(s.conn.unary("Control.Solve", {}), (e: unknown) => {
      assert.ok(e instanceof SolveError);
      assert.equal(e.message, 'failed to solve: process "/bin/sh -c exit 7" did not complete: ünïcode 100%');
      assert.equal(e.exitCode, 7);
      return true;
    });
    await assert.rejects(
      s.conn.unary("Control.DiskUsage", {}),
      (e: unknown) => e instanceof BuildKitError && e.code === "NOT_FOUND" && e.message === "DiskUsage not here",
    );
  } finally {
    await s.close();
  }
});

test("aborting a call cancels it on the server; a deadline ends it", async () => {
  let cancelled = false;
  const s = await control({
    Status: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.write({});
      call.on("cancelled", () => (cancelled = true));
    },
    Info: () => undefined,
  });
  try {
    const ac = new AbortController();
    const it = s.conn.serverStream("Control.Status", { Ref: "x" }, { signal: ac.signal });
    await it.next();
    const pending = it.next();
    ac.abort();
    await assert.rejects(pending, (e: unknown) => e instanceof BuildKitError && e.code === "CANCELLED");
    for (let i = 0; i < 50 && !cancelled; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cancelled, "the server saw the cancellation");

    const t = Date.now();
    await assert.rejects(s.conn.unary("Control.Info", {}, { deadline: new Date(Date.now() + 300) }), /no answer from buildkitd .* before the timeout/);
    assert.ok(Date.now() - t < 2000);
  } finally {
    await s.close();
  }
});

test("close() waits for the teardowns a build left running (Connection.ending), and a failed one does not fail it", async () => {
  const s = await control({});
  let finished = false;
  s.conn.ending(
    new Promise<void>((resolve) =>
      setTimeout(() => {
        finished = true;
        resolve();
      }, 60),
    ),
  );
  s.conn.ending(Promise.reject(new Error("the session ended badly")));
  await s.close();
  assert.ok(finished, "close() resolved before the teardown it was given");
});
