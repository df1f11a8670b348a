import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { BuildKitClient } from "../../src/client.js";
import { ConnectionError, UsageError } from "../../src/errors.js";
import { tlsReason } from "../../src/transport/connection.js";
import { serviceDefinition } from "../helpers/grpc-js.js";

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

async function connectError(address: string, timeoutMs = 5000): Promise<{ err: ConnectionError; ms: number }> {
  const t = Date.now();
  try {
    const c = await BuildKitClient.connect({ address, timeoutMs, env: {} });
    await c.close();
  } catch (e) {
    assert.ok(e instanceof ConnectionError, `expected ConnectionError, got ${String(e)}`);
    return { err: e, ms: Date.now() - t };
  }
  assert.fail(`connect to ${address} succeeded`);
}

test("a gRPC server without the Control service is named as not buildkitd", async () => {
  const server = new grpc.Server();
  server.addService(serviceDefinition("grpc.health.v1.Health"), {
    Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: "SERVING" }),
    Watch: () => undefined,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  try {
    const { err } = await connectError(`tcp://127.0.0.1:${port}`);
    assert.match(err.message, /^tcp:\/\/127\.0\.0\.1:\d+ is a gRPC server but not buildkitd/);
    assert.equal(err.address, `tcp://127.0.0.1:${port}`);
  } finally {
    server.forceShutdown();
  }
});

test("a listener that never answers fails within the timeout", async () => {
  const sockets: Socket[] = [];
  const server = createServer((s) => void sockets.push(s));
  const port = await listen(server);
  try {
    const { err, ms } = await connectError(`tcp://127.0.0.1:${port}`, 700);
    assert.match(err.message, /no answer from buildkitd at tcp:\/\/127\.0\.0\.1:\d+ before the timeout/);
    assert.ok(ms >= 600 && ms < 3000, `took ${ms} ms with a 700 ms timeout`);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test("an HTTP/1 server is named as not buildkitd", async () => {
  const server = createHttpServer((_req, res) => res.end("hello"));
  const port = await listen(server);
  try {
    const { err } = await connectError(`tcp://127.0.0.1:${port}`);
    assert.match(err.message, /did not answer as buildkitd|closed the connection before answering as buildkitd/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("bad options fail before any network I/O", async () => {
  await assert.rejects(BuildKitClient.connect({ address: "ftp://x", env: {} }), UsageError);
  await assert.rejects(BuildKitClient.connect({ address: "tcp://x:1", timeoutMs: 0, env: {} }), /invalid timeout 0/);
  await assert.rejects(BuildKitClient.connect({ address: "unix:///nope.sock", tls: { caFile: "/x.pem" }, env: {} }), /TLS options are only used with tcp:\/\//);
});

test("the environment default is only used when no address is given", async () => {
  await assert.rejects(
    BuildKitClient.connect({ env: { BUILDKIT_HOST: "unix:///bk-build-test/does-not-exist.sock" } }),
    /cannot connect to buildkitd at unix:\/\/\/bk-build-test\/does-not-exist\.sock: no such socket/,
  );
});

test("TLS failures map to actionable reasons", () => {
  assert.match(
    tlsReason("No connection established. Last error: Error: unable to verify the first certificate")!,
    /not signed by the trusted CA; check --tlscacert/,
  );
  assert.match(tlsReason("SSL routines:ssl3_read_bytes:tlsv13 alert certificate required")!, /requires a client certificate; pass --tlscert and --tlskey/);
  assert.match(tlsReason("Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list")!, /--tlsservername/);
  assert.match(tlsReason("SSL alert number 48 tlsv1 alert unknown ca")!, /rejected the client certificate/);
  assert.equal(tlsReason("connect ECONNREFUSED 127.0.0.1:1"), undefined);
});
