/**
 * Path B, native gRPC on the Engine's API socket (Engine 29.2+, API 1.53),
 * which the test Engine (20.10) cannot show. A stand-in Engine on a unix
 * socket answers the REST API itself (`/_ping` says API 1.53) and passes
 * every HTTP/2 connection (prior knowledge) to the real buildkitd, as
 * dockerd 29.2 hands them to its BuildKit; `POST /grpc` upgrades are passed
 * there too. A second stand-in closes HTTP/2 connections (a socket proxy
 * that only knows HTTP/1.1): the client must fall back to the upgrades.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCliAsync, testEnv } from "../helpers/env.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { tempDir } from "../helpers/files.js";

leakCheckEachTest();

const env = testEnv();
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

interface StandIn {
  socket: string;
  /** What arrived: "h2" per HTTP/2 connection, "METHOD /path" per HTTP/1.1 request. */
  seen: string[];
  close(): Promise<void>;
}

async function standIn(native: boolean): Promise<StandIn> {
  const buildkitd = env.buildkitHost.replace(/^unix:\/\//, "");
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const toBuildkitd = (client: Socket, head: Buffer): void => {
    const up = connect(buildkitd);
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
    if (head.length) up.write(head);
    client.pipe(up).pipe(client);
  };
  const api = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const json = (v: unknown): void => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(v));
    };
    if (req.url === "/_ping") {
      res.setHeader("Api-Version", "1.53");
      res.setHeader("Ostype", "linux");
      res.setHeader("Server", "Docker/29.2.0 (linux)");
      res.end(req.method === "HEAD" ? undefined : "OK");
    } else if (req.url === "/version") json({ Version: "29.2.0", ApiVersion: "1.53", MinAPIVersion: "1.44", Os: "linux", Arch: "amd64", Components: [] });
    else {
      res.statusCode = 404;
      json({ message: `page not found: ${req.url}` });
    }
  });
  api.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    seen.push(`${req.method} ${req.url} upgrade`);
    if (req.url !== "/grpc") {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    socket.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
    toBuildkitd(socket, head);
  });
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.once("readable", function sniff() {
      const first = (client.read(PREFACE.length) as Buffer | null) ?? (client.read() as Buffer | null);
      if (!first) {
        client.once("readable", sniff);
        return;
      }
      if (first.toString("latin1") === PREFACE.slice(0, first.length) && first.length === PREFACE.length) {
        seen.push("h2");
        if (native) toBuildkitd(client, first);
        else client.destroy();
        return;
      }
      client.unshift(first);
      api.emit("connection", client);
    });
  });
  const socket = join(tempDir("bk-native-"), "docker.sock");
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test("an Engine that serves gRPC on its API socket (API 1.53) is used natively: info, and a build whose session runs over Control.Session", async () => {
  const engine = await standIn(true);
  try {
    const addr = `docker+unix://${engine.socket}`;
    const info = await runCliAsync(["info", "--format", "json", "--addr", addr]);
    assert.equal(info.code, 0, info.stderr);
    const j = JSON.parse(info.stdout) as {
      engine: { version: string; apiVersion: string; transport: string; imageStore: string };
      buildkit: { version: string };
    };
    assert.deepEqual([j.engine.version, j.engine.apiVersion, j.engine.transport], ["29.2.0", "1.51", "native"]);
    // The stand-in's worker is buildkitd's own, which carries the snapshotter label as a containerd-store Engine's does (the real 20.10 Engine's does not: classic).
    assert.equal(j.engine.imageStore, "containerd", "the image store from the worker's snapshotter label");
    assert.equal(j.buildkit.version, "v0.24.0", "Control.Info answered over the API socket");

    const ctx = tempDir("bk-native-ctx-");
    const secret = `native-${randomBytes(8).toString("hex")}`;
    writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len\n`);
    const out = join(tempDir("bk-native-out-"), "image.tar");
    const r = await runCliAsync(["build", "--addr", addr, "--secret", "id=tok,env=TOK", "-o", `type=tar,dest=${out}`, ctx], {
      env: { TOK: secret },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes(secret));
    assert.ok(!engine.seen.some((s) => s.includes("/grpc") || s.includes("/session")), `no upgrade was used: ${engine.seen.join(", ")}`);
    assert.ok(engine.seen.includes("h2"));
  } finally {
    await engine.close();
  }
});

test("an Engine that says API 1.53 but refuses HTTP/2 on its socket (a proxy): the client falls back to the /grpc upgrade", async () => {
  const engine = await standIn(false);
  try {
    const info = await runCliAsync(["info", "--format", "json", "--addr", `docker+unix://${engine.socket}`]);
    assert.equal(info.code, 0, info.stderr);
    const j = JSON.parse(info.stdout) as { engine: { transport: string } };
    assert.equal(j.engine.transport, "hijack");
    assert.ok(engine.seen.includes("h2"), "native gRPC was tried first");
    assert.ok(engine.seen.includes("POST /grpc upgrade"), `then the upgrade: ${engine.seen.join(", ")}`);
  } finally {
    await engine.close();
  }
});

test("an Engine whose API is older than 1.39 (no BuildKit endpoints) is one line naming its API and the one needed, exit 1", async () => {
  const socket = join(tempDir("bk-old-engine-"), "docker.sock");
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url?.endsWith("/version")) {
      res.writeHead(200, { "Api-Version": "1.38", "Content-Type": "application/json" });
      res.end(JSON.stringify({ Version: "18.06.3-ce", ApiVersion: "1.38", MinAPIVersion: "1.12", Os: "linux", Arch: "amd64" }));
      return;
    }
    res.writeHead(200, { "Api-Version": "1.38", Server: "Docker/18.06.3-ce (linux)" });
    res.end(req.method === "HEAD" ? undefined : "OK");
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const r = await runCliAsync(["info", "--addr", `docker+unix://${socket}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(
      r.stderr,
      `error: the Docker Engine at docker+unix://${socket} speaks API 1.38, and BuildKit through an Engine needs API 1.39 (Docker 18.09) or newer: upgrade it, or give a buildkitd address\n`,
    );
    assert.ok(!seen.some((s) => s.includes("/grpc") || s.includes("/session")), `no upgrade was tried: ${seen.join(", ")}`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
