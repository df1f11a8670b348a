import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import * as tls from "node:tls";
import { join } from "node:path";
import { Readable, type Duplex } from "node:stream";
import { inspect } from "node:util";
import {
  EngineApi,
  EngineApiError,
  JsonMessageParser,
  StdcopyDemuxer,
  compareApiVersions,
  encodeRegistryAuth,
  negotiateApiVersion,
  stdcopyFrame,
  type JsonMessage,
  type RegistryAuth,
} from "../../src/docker/api.js";
import { BuildKitError, ConnectionError, UsageError } from "../../src/errors.js";
import { tempDir } from "../helpers/files.js";
import { cleanup, leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

/** Every test ends well within this; one that waits for something that never comes fails instead of hanging the run. */
const T = { timeout: 30_000 };

// ---------------------------------------------------------------- helpers

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

interface Fake {
  api: EngineApi;
  address: string;
  seen: Seen[];
  /** Sockets the server accepted (to see them close). */
  sockets: net.Socket[];
  /** Streams the client dialed. */
  dialed: net.Socket[];
}

interface FakeOptions {
  /** Api-Version in /_ping; null: no header. Default 1.51. */
  apiVersion?: string | null;
  /** What /_ping answers a HEAD with (default 200). */
  headStatus?: number;
  request?: Handler;
  upgrade?: UpgradeHandler;
  /** Listen on a unix socket at this path instead of 127.0.0.1:0. */
  socketPath?: string;
}

/** A fake Docker Engine: /_ping built in, everything else to the handlers, 404 JSON otherwise. */
async function fakeEngine(t: TestContext, o: FakeOptions = {}): Promise<Fake> {
  const seen: Seen[] = [];
  const sockets: net.Socket[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders });
    if (req.url === "/_ping") {
      const headers: Record<string, string> = {
        "Builder-Version": "2",
        "Docker-Experimental": "false",
        Ostype: "linux",
        Server: "Docker/20.10.24+dfsg1 (linux)",
      };
      if (o.apiVersion !== null) headers["Api-Version"] = o.apiVersion ?? "1.51";
      const status = req.method === "HEAD" ? (o.headStatus ?? 200) : 200;
      res.writeHead(status, headers);
      res.end(req.method === "HEAD" ? undefined : "OK");
      return;
    }
    if (o.request) {
      o.request(req, res);
      return;
    }
    sendJson(res, 404, { message: "page not found" });
  });
  server.on("connection", (s: net.Socket) => sockets.push(s));
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders });
    if (o.upgrade) o.upgrade(req, socket, head);
    else socket.end(rawResponse(404, { message: "page not found" }));
  });
  const dialed: net.Socket[] = [];
  let dial: () => net.Socket;
  let address: string;
  let host: string;
  if (o.socketPath) {
    const path = o.socketPath;
    await new Promise<void>((resolve) => server.listen(path, resolve));
    dial = () => net.connect(path);
    address = `unix://${path}`;
    host = "api.moby.localhost";
  } else {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    dial = () => net.connect(port, "127.0.0.1");
    address = `tcp://127.0.0.1:${port}`;
    host = `127.0.0.1:${port}`;
  }
  cleanup(t, async () => {
    // Every stream the client dialed is closed by the client itself (hijacked ones by the test, as a caller would).
    for (let i = 0; i < 100 && dialed.some((s) => !s.destroyed); i++) await new Promise((r) => setTimeout(r, 10));
    const open = dialed.filter((s) => !s.destroyed).length;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    assert.equal(open, 0, `${open} of the ${dialed.length} streams the client dialed are still open`);
  });
  const api = new EngineApi({
    dial: () => {
      const s = dial();
      dialed.push(s);
      return s;
    },
    host,
    address,
  });
  return { api, address, seen, sockets, dialed };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** A whole HTTP/1.1 response as bytes (for upgrade handlers, which answer on the raw socket). */
function rawResponse(status: number, body: unknown, contentType = "application/json"): string {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const reason = http.STATUS_CODES[status] ?? "Unknown";
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`;
}

async function readAll(req: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    return e;
  }
  assert.fail("expected a rejection");
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `buf` at `cuts` random places. */
function randomSplit(buf: Buffer, rand: () => number, cuts: number): Buffer[] {
  const points = [...new Set(Array.from({ length: cuts }, () => Math.floor(rand() * (buf.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

/** A JSON-message stream as the Engine writes it (json.Encoder: one object per line). */
function messageStream(res: http.ServerResponse, messages: unknown[]): void {
  res.writeHead(200, { "Content-Type": "application/json" });
  for (const m of messages) res.write(`${JSON.stringify(m)}\r\n`);
  res.end();
}

// ---------------------------------------------------------------- ping and versions

test("ping: HEAD /_ping, its headers parsed; Host and User-Agent sent", T, async (t) => {
  const f = await fakeEngine(t);
  const p = await f.api.ping();
  assert.deepEqual(p, { apiVersion: "1.51", builderVersion: "2", osType: "linux", server: "Docker/20.10.24+dfsg1 (linux)", experimental: false });
  assert.deepEqual(
    f.seen.map((s) => `${s.method} ${s.url}`),
    ["HEAD /_ping"],
  );
  assert.equal(f.seen[0]!.headers.host, f.address.replace("tcp://", ""));
  assert.equal(f.seen[0]!.headers["user-agent"], "bk-build");
});

test("ping: a HEAD that is not answered 200 is tried again as GET, as the Go client does", T, async (t) => {
  const f = await fakeEngine(t, { headStatus: 405 });
  const p = await f.api.ping();
  assert.equal(p.apiVersion, "1.51");
  assert.deepEqual(
    f.seen.map((s) => `${s.method} ${s.url}`),
    ["HEAD /_ping", "GET /_ping"],
  );
});

test("ping: a HEAD whose connection is cut falls back to GET too", T, async (t) => {
  let heads = 0;
  const f = await fakeEngine(t, { apiVersion: "1.41" });
  // The first connection is closed without an answer.
  f.api = new EngineApi({
    dial: () => {
      const s = f.dialed.length === 0 ? cutOnFirstWrite() : net.connect(Number(f.address.split(":")[2]), "127.0.0.1");
      f.dialed.push(s);
      return s;
    },
    host: "x",
    address: f.address,
  });
  function cutOnFirstWrite(): net.Socket {
    heads++;
    const s = net.connect(Number(f.address.split(":")[2]), "127.0.0.1");
    s.once("connect", () => {
      const server = f.sockets.at(-1);
      server?.destroy();
    });
    return s;
  }
  const p = await f.api.ping();
  assert.equal(heads, 1);
  assert.equal(p.apiVersion, "1.41");
  assert.equal(f.seen.at(-1)!.method, "GET");
});

test("ping on a unix socket; a missing socket is named with the fix", T, async (t) => {
  const dir = tempDir("bk-engine-", t);
  const f = await fakeEngine(t, { socketPath: join(dir, "docker.sock") });
  assert.equal((await f.api.ping()).osType, "linux");
  assert.equal(f.seen[0]!.headers.host, "api.moby.localhost");

  const missing = join(dir, "nope.sock");
  const api = new EngineApi({ dial: () => net.connect(missing), host: "api.moby.localhost", address: `unix://${missing}` });
  const e = await rejection(api.ping());
  assert.ok(e instanceof ConnectionError);
  assert.equal(e.message, `cannot connect to the Docker Engine at unix://${missing}: no such socket; is dockerd running?`);
});

test("a refused TCP connection is named, with one dial (no GET retry of a dial that failed)", T, async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  let dials = 0;
  const api = new EngineApi({ dial: () => (dials++, net.connect(port, "127.0.0.1")), host: `127.0.0.1:${port}`, address: `tcp://127.0.0.1:${port}` });
  const e = await rejection(api.apiVersion());
  assert.equal(e.message, `cannot connect to the Docker Engine at tcp://127.0.0.1:${port}: connection refused; is dockerd running?`);
  assert.equal(dials, 1);
});

test("a server that closes without answering, and one that is not HTTP, are told apart", T, async (t) => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.once("data", () => {
      if (sockets.length % 2 === 1) s.destroy();
      else s.end("SSH-2.0-OpenSSH_9.2\r\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup(t, async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as net.AddressInfo).port;
  const api = new EngineApi({ dial: () => net.connect(port, "127.0.0.1"), host: "h", address: `tcp://127.0.0.1:${port}` });
  const closed = await rejection(api.version());
  assert.match(closed.message, /^the Docker Engine at tcp:\/\/127\.0\.0\.1:\d+ closed the connection before answering GET \/version; check the address$/);
  const notHttp = await rejection(api.version());
  assert.match(notHttp.message, /^tcp:\/\/127\.0\.0\.1:\d+ did not answer GET \/version as a Docker Engine \(.+\); check the address$/);
});

test("API version negotiation: min(1.51, the Engine's), 1.24 without the header, asked once", T, async (t) => {
  assert.equal(negotiateApiVersion("1.41"), "1.41");
  assert.equal(negotiateApiVersion("1.55"), "1.51");
  assert.equal(negotiateApiVersion("1.51"), "1.51");
  assert.equal(negotiateApiVersion("2.0"), "1.51");
  assert.equal(negotiateApiVersion(undefined), "1.24");
  assert.ok(compareApiVersions("1.9", "1.41") < 0, "numeric, not string, comparison");
  assert.ok(compareApiVersions("1.41", "1.41.0") === 0);

  for (const [engine, want] of [
    ["1.41", "1.41"],
    ["1.55", "1.51"],
    [null, "1.24"],
  ] as const) {
    const f = await fakeEngine(t, {
      apiVersion: engine,
      request: (req, res) => sendJson(res, 200, { DriverStatus: [], url: req.url }),
    });
    assert.equal(await f.api.apiVersion(), want);
    assert.equal(await f.api.apiVersion(), want);
    await f.api.info();
    assert.deepEqual(
      f.seen.map((s) => `${s.method} ${s.url}`),
      ["HEAD /_ping", `GET /v${want}/info`],
      `engine ${engine}`,
    );
  }
});

test("version and info: fields parsed; containerdStore from DriverStatus driver-type", T, async (t) => {
  let containerd = false;
  const f = await fakeEngine(t, {
    apiVersion: "1.41",
    request: (req, res) => {
      if (req.url === "/version") {
        sendJson(res, 200, {
          Version: "20.10.24+dfsg1",
          ApiVersion: "1.41",
          MinAPIVersion: "1.12",
          Os: "linux",
          Arch: "amd64",
          Components: [
            { Name: "Engine", Version: "20.10.24+dfsg1", Details: {} },
            { Name: "containerd", Version: "1.6.20" },
          ],
        });
      } else if (req.url === "/v1.41/info") {
        sendJson(res, 200, {
          ServerVersion: "20.10.24",
          Driver: containerd ? "overlayfs" : "overlay2",
          DriverStatus: containerd
            ? [["driver-type", "io.containerd.snapshotter.v1"]]
            : [
                ["Backing Filesystem", "extfs"],
                ["Supports d_type", "true"],
              ],
          OSType: "linux",
          Architecture: "x86_64",
        });
      } else sendJson(res, 404, { message: "page not found" });
    },
  });
  assert.deepEqual(await f.api.version(), {
    version: "20.10.24+dfsg1",
    apiVersion: "1.41",
    minApiVersion: "1.12",
    os: "linux",
    arch: "amd64",
    components: [
      { name: "Engine", version: "20.10.24+dfsg1" },
      { name: "containerd", version: "1.6.20" },
    ],
  });
  const classic = await f.api.info();
  assert.equal(classic.containerdStore, false);
  assert.deepEqual(classic.driverStatus[0], ["Backing Filesystem", "extfs"]);
  assert.equal(classic.serverVersion, "20.10.24");
  containerd = true;
  assert.equal((await f.api.info()).containerdStore, true);
});

test("error answers: the Engine's JSON message quoted; a non-JSON body with its status, trimmed; a 200 that is not JSON", T, async (t) => {
  let mode = "json";
  const f = await fakeEngine(t, {
    request: (_req, res) => {
      if (mode === "json") sendJson(res, 500, { message: "Error response from daemon:\n  something broke" });
      else if (mode === "html") {
        res.writeHead(502, "Bad Gateway", { "Content-Type": "text/html" });
        res.end(`<html>\n<body>bad gateway ${"x".repeat(1000)}</body></html>`);
      } else {
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.end("hello");
      }
    },
  });
  const json = await rejection(f.api.version());
  assert.ok(json instanceof EngineApiError);
  assert.equal(json.status, 500);
  assert.equal(json.request, "GET /version");
  assert.equal(json.message, `the Docker Engine at ${f.address} answered GET /version with 500: Error response from daemon: something broke`);
  mode = "html";
  const html = await rejection(f.api.version());
  assert.ok(html instanceof EngineApiError);
  assert.equal(html.status, 502);
  assert.match(html.message, /answered GET \/version with 502 Bad Gateway: <html> <body>bad gateway x+…; is it a Docker Engine\?$/);
  assert.ok(html.message.length < 500, "trimmed");
  assert.ok(!html.message.includes("\n"));
  mode = "text";
  assert.match((await rejection(f.api.version())).message, /answered GET \/version with a body that is not JSON \(hello\); is it a Docker Engine\?/);
});

test("a TLS Engine spoken to in plain HTTP says to use TLS", T, async (t) => {
  const f = await fakeEngine(t, {
    request: (_req, res) => {
      // What Go's TLS server answers a plain HTTP request.
      res.writeHead(400, "Bad Request");
      res.end("Client sent an HTTP request to an HTTPS server.\n");
    },
  });
  const e = await rejection(f.api.version());
  assert.ok(e instanceof EngineApiError);
  assert.equal(e.message, `the Docker Engine at ${f.address} expects TLS; connect with TLS (DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH) or use its plain port`);
});

test("TLS to a plain-TCP Engine says it does not speak TLS there", T, async (t) => {
  const f = await fakeEngine(t);
  const port = Number(f.address.split(":")[2]);
  const api = new EngineApi({
    dial: () => {
      const s = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
      f.dialed.push(s);
      return s;
    },
    host: `127.0.0.1:${port}`,
    address: f.address,
  });
  const e = await rejection(api.ping());
  assert.ok(e instanceof ConnectionError);
  assert.equal(e.message, `TLS connection to the Docker Engine at ${f.address} failed: it does not speak TLS there; connect without TLS or use its TLS port`);
});

test("a dialer's own error is kept; a header Node refuses is a usage error, sent nowhere", T, async () => {
  const own = new ConnectionError("cannot connect to the Docker Engine at ssh://me@host: ssh exited with 255", "ssh://me@host");
  const api = new EngineApi({
    dial: () => {
      throw own;
    },
    host: "api.moby.localhost",
    address: "ssh://me@host",
  });
  assert.equal(await rejection(api.ping()), own);
  let dials = 0;
  const never = new EngineApi({ dial: () => (dials++, net.connect(1, "127.0.0.1")), host: "h", address: "tcp://127.0.0.1:1" });
  const e = await rejection(never.hijack("/session", [["X-Docker-Expose-Session-Uuid", "a\r\nInjected: yes"]]));
  assert.ok(e instanceof UsageError, String(e));
  assert.match(e.message, /^invalid request to the Docker Engine \(POST \/session\): /);
  assert.equal(dials, 0);
});

// ---------------------------------------------------------------- hijack

test("hijack: Upgrade request headers, and the bytes sent in the same write as the 101 are not lost", T, async (t) => {
  const preface = Buffer.from("\x00\x00\x06\x04\x00\x00\x00\x00\x00SERVER-SETTINGS-FRAME", "latin1");
  let serverSide: Duplex | undefined;
  const f = await fakeEngine(t, {
    upgrade: (_req, socket) => {
      serverSide = socket;
      // One write: the 101 and the first bytes of the new protocol.
      socket.write(Buffer.concat([Buffer.from("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"), preface]));
      socket.on("data", (d: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), d])));
    },
  });
  const keepalive: Array<[boolean | undefined, number | undefined]> = [];
  const port = Number(f.address.split(":")[2]);
  const api = new EngineApi({
    dial: () => {
      const s = net.connect(port, "127.0.0.1");
      const orig = s.setKeepAlive.bind(s);
      s.setKeepAlive = (enable?: boolean, delay?: number) => {
        keepalive.push([enable, delay]);
        return orig(enable, delay);
      };
      f.dialed.push(s);
      return s;
    },
    host: "api.moby.localhost",
    address: f.address,
  });
  // Let the first chunk through before anyone reads: it must wait in the stream.
  const socket = await api.hijack("/session", [
    ["X-Docker-Expose-Session-Uuid", "sess1"],
    ["X-Docker-Expose-Session-Grpc-Method", "/grpc.health.v1.Health/Check"],
    ["X-Docker-Expose-Session-Grpc-Method", "/moby.filesync.v1.FileSync/DiffCopy"],
  ]);
  await new Promise((r) => setTimeout(r, 50));
  const first = await new Promise<Buffer>((resolve) => socket.once("data", resolve));
  assert.deepEqual(first, preface);

  const req = f.seen.at(-1)!;
  assert.equal(req.method, "POST");
  assert.equal(req.url, "/session");
  assert.equal(req.headers.connection, "Upgrade");
  assert.equal(req.headers.upgrade, "h2c");
  assert.equal(req.headers["content-length"], "0");
  assert.equal(req.headers.host, "api.moby.localhost");
  const methods = req.rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === "x-docker-expose-session-grpc-method");
  assert.deepEqual(methods, ["/grpc.health.v1.Health/Check", "/moby.filesync.v1.FileSync/DiffCopy"]);
  assert.deepEqual(keepalive, [[true, 30_000]]);

  // The socket is ours now, both ways.
  socket.write("ping");
  const echoed = await new Promise<Buffer>((resolve) => socket.once("data", resolve));
  assert.equal(echoed.toString(), "echo:ping");
  socket.destroy();
  serverSide?.destroy();
});

test("hijack errors: 404 on /grpc is 'does not serve BuildKit'; 400 quotes the Engine; 500 with text", T, async (t) => {
  let answer = "";
  const f = await fakeEngine(t, { upgrade: (_req, socket) => socket.end(answer) });
  answer = rawResponse(404, { message: "page not found" });
  const notFound = await rejection(f.api.hijack("/grpc", []));
  assert.ok(notFound instanceof EngineApiError);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.code, "NOT_FOUND");
  assert.equal(notFound.message, `the Docker Engine at ${f.address} does not serve BuildKit (POST /grpc answered 404)`);

  answer = rawResponse(400, { message: "client version 1.52 is too new. Maximum supported API version is 1.41" });
  const tooNew = await rejection(f.api.hijack("/v1.52/grpc", []));
  assert.ok(tooNew instanceof EngineApiError);
  assert.equal(tooNew.status, 400);
  assert.equal(
    tooNew.message,
    `the Docker Engine at ${f.address} refused API version 1.52 for POST /grpc: client version 1.52 is too new. Maximum supported API version is 1.41`,
  );

  answer = rawResponse(400, { message: "session sess1 already exists" });
  const exists = await rejection(f.api.hijack("/session", [["X-Docker-Expose-Session-Uuid", "sess1"]]));
  assert.equal(exists.message, `the Docker Engine at ${f.address} answered POST /session with 400: session sess1 already exists`);

  answer = rawResponse(500, "upgrade required\n", "text/plain");
  const plain = await rejection(f.api.hijack("/grpc", []));
  assert.ok(plain instanceof EngineApiError);
  assert.equal(plain.status, 500);
  assert.equal(plain.message, `the Docker Engine at ${f.address} answered POST /grpc with 500 Internal Server Error: upgrade required; is it a Docker Engine?`);
});

test("hijack: an abort before the 101 rejects and closes the connection", T, async (t) => {
  let ended: Promise<void> | undefined;
  const f = await fakeEngine(t, {
    upgrade: (_req, socket) => {
      // No answer; the client's end of the connection is what the test waits for.
      ended = new Promise<void>((resolve) => socket.once("end", () => (socket.destroy(), resolve())));
    },
  });
  const ac = new AbortController();
  const p = f.api.hijack("/grpc", [], ac.signal);
  while (!ended) await new Promise((r) => setTimeout(r, 5));
  ac.abort();
  const e = await rejection(p);
  assert.ok(e instanceof BuildKitError);
  assert.equal(e.code, "CANCELLED");
  await ended;
});

// ---------------------------------------------------------------- load

test("loadImage streams a large tarball with backpressure and returns the loaded names", T, async (t) => {
  const total = 48 << 20;
  const chunk = 64 << 10;
  let produced = 0;
  const sent = createHash("sha256");
  const tar = new Readable({
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const b = Buffer.alloc(chunk, (produced / chunk) % 251);
      produced += b.length;
      sent.update(b);
      this.push(b);
    },
  });
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  let received = "";
  let receivedBytes = 0;
  const f = await fakeEngine(t, {
    request: (req, res) => {
      req.pause(); // a slow reader: nothing is read until released
      void released.then(async () => {
        const h = createHash("sha256");
        for await (const c of req) {
          h.update(c as Buffer);
          receivedBytes += (c as Buffer).length;
        }
        received = h.digest("hex");
        messageStream(res, [
          { status: "Loading layer", progressDetail: { current: 32768, total: total }, progress: "[>   ]", id: "abc" },
          { stream: "Loaded image: example/app:latest\n" },
          { stream: "Loaded image ID: sha256:0123456789abcdef\n" },
        ]);
      });
    },
  });
  const messages: JsonMessage[] = [];
  const loading = f.api.loadImage(tar, { onMessage: (m) => messages.push(m) });
  // Wait for the sender to stall against the slow reader.
  let last = -1;
  for (let i = 0; i < 200 && produced !== last; i++) {
    last = produced;
    await new Promise((r) => setTimeout(r, 60));
  }
  assert.ok(produced < total / 2, `${produced >> 20} MiB of ${total >> 20} MiB read from the source before the server read anything`);
  assert.equal(receivedBytes, 0);
  release();
  const result = await loading;
  assert.deepEqual(result.images, ["example/app:latest", "sha256:0123456789abcdef"]);
  assert.equal(receivedBytes, total);
  assert.equal(received, sent.digest("hex"));
  assert.equal(messages.length, 3);
  assert.equal(messages[0]!.progressDetail?.current, 32768);
  const req = f.seen.at(-1)!;
  assert.equal(req.url, "/v1.51/images/load?quiet=0");
  assert.equal(req.headers["content-type"], "application/x-tar");
  assert.equal(req.headers["transfer-encoding"], "chunked");
});

test("loadImage: an errorDetail in the answer rejects with its message", T, async (t) => {
  const f = await fakeEngine(t, {
    request: (req, res) => {
      void readAll(req).then(() =>
        messageStream(res, [
          { status: "Loading layer", id: "abc" },
          { errorDetail: { message: "open /var/lib/docker/tmp/docker-import-1/repositories: no such file or directory" }, error: "ignored legacy copy" },
          { stream: "never seen\n" },
        ]),
      );
    },
  });
  const tar = Readable.from([Buffer.alloc(1024)]);
  const e = await rejection(f.api.loadImage(tar));
  assert.ok(e instanceof BuildKitError);
  assert.equal(
    e.message,
    `loading the image on the Docker Engine at ${f.address} failed: open /var/lib/docker/tmp/docker-import-1/repositories: no such file or directory`,
  );
});

test("loadImage: an abort mid-upload closes the connection (the server sees it) and stops the source", T, async (t) => {
  let serverGot = 0;
  let gotSome: () => void = () => undefined;
  const some = new Promise<void>((r) => (gotSome = r));
  let serverClosed: Promise<void> | undefined;
  const f = await fakeEngine(t, {
    request: (req) => {
      serverClosed = new Promise<void>((r) => req.socket.once("close", () => r()));
      req.on("data", (c: Buffer) => {
        serverGot += c.length;
        if (serverGot >= 1 << 20) gotSome();
      });
      req.on("error", () => undefined);
    },
  });
  let produced = 0;
  const tar = new Readable({
    read() {
      produced += 64 << 10;
      this.push(Buffer.alloc(64 << 10));
    },
  });
  const ac = new AbortController();
  const loading = f.api.loadImage(tar, { signal: ac.signal });
  await some;
  ac.abort();
  const e = await rejection(loading);
  assert.ok(e instanceof BuildKitError);
  assert.equal(e.code, "CANCELLED");
  await serverClosed;
  assert.ok(tar.destroyed, "the source is destroyed");
  const after = produced;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(produced, after, "nothing read from the source after the abort");
});

test("loadImage: a connection lost mid-answer is named", T, async (t) => {
  const f = await fakeEngine(t, {
    request: (req, res) => {
      void readAll(req).then(() => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.write('{"status":"Loading layer"}\n{"stream":"Loa');
        setTimeout(() => req.socket.destroy(), 20);
      });
    },
  });
  const e = await rejection(f.api.loadImage(Readable.from([Buffer.from("x")])));
  assert.ok(e instanceof ConnectionError);
  assert.match(e.message, new RegExp(`^connection to the Docker Engine at ${f.address.replace(/[.]/g, "\\.")} lost during POST /images/load: `));
});

// ---------------------------------------------------------------- push

function decodeAuth(header: string | string[] | undefined): unknown {
  assert.equal(typeof header, "string");
  assert.match(header as string, /^[A-Za-z0-9_-]+=*$/, "base64url");
  return JSON.parse(Buffer.from(header as string, "base64url").toString("utf8"));
}

test("pushImage: path, tag and X-Registry-Auth; the final aux digest and size", T, async (t) => {
  const f = await fakeEngine(t, {
    apiVersion: "1.41",
    request: (req, res) => {
      void readAll(req).then((body) => {
        assert.equal(body.length, 0);
        messageStream(res, [
          { status: "The push refers to repository [registry.example:5000/team/app]" },
          { status: "Pushing", progressDetail: { current: 512, total: 1024 }, id: "5f70bf18a086" },
          { status: "Pushed", progressDetail: {}, id: "5f70bf18a086" },
          { status: "v1: digest: sha256:aaaa size: 528" },
          { progressDetail: {}, aux: { Tag: "v1", Digest: "sha256:aaaa", Size: 528 } },
        ]);
      });
    },
  });
  const messages: JsonMessage[] = [];
  const r = await f.api.pushImage(
    "registry.example:5000/team/app",
    "v1",
    { username: "me", password: "s3cret", serverAddress: "registry.example:5000" },
    {
      onMessage: (m) => messages.push(m),
    },
  );
  assert.deepEqual(r, { digest: "sha256:aaaa", size: 528 });
  assert.equal(messages.length, 5);
  const req = f.seen.at(-1)!;
  assert.equal(req.method, "POST");
  assert.equal(req.url, "/v1.41/images/registry.example:5000/team/app/push?tag=v1");
  assert.deepEqual(decodeAuth(req.headers["x-registry-auth"]), { username: "me", password: "s3cret", serveraddress: "registry.example:5000" });
});

test("pushImage without credentials sends the empty auth document", T, async (t) => {
  const f = await fakeEngine(t, { request: (req, res) => void readAll(req).then(() => messageStream(res, [{ status: "done" }])) });
  assert.deepEqual(await f.api.pushImage("docker.io/library/app", "latest", undefined), {});
  assert.equal(f.seen.at(-1)!.headers["x-registry-auth"], "e30=");
});

test("pushImage: an errorDetail with HTTP 200 is a failure", T, async (t) => {
  const f = await fakeEngine(t, {
    request: (req, res) =>
      void readAll(req).then(() =>
        messageStream(res, [
          { status: "The push refers to repository [docker.io/library/app]" },
          { errorDetail: { message: "denied: requested access to the resource is denied" }, error: "denied: requested access to the resource is denied" },
        ]),
      ),
  });
  const e = await rejection(f.api.pushImage("docker.io/library/app", "latest", { username: "u", password: "p" }));
  assert.ok(e instanceof BuildKitError);
  assert.equal(
    e.message,
    `pushing docker.io/library/app:latest on the Docker Engine at ${f.address} failed: denied: requested access to the resource is denied`,
  );
});

test("credentials never appear in an error or a message, even when the Engine echoes them", T, async (t) => {
  const password = "hunter2-PASSWORD-Zq9";
  const token = "eyJ-IDENTITY-TOKEN-xx";
  let mode = "";
  const f = await fakeEngine(t, {
    request: (req, res) => {
      const header = String(req.headers["x-registry-auth"]);
      const decoded = Buffer.from(header, "base64url").toString("utf8");
      void readAll(req).then(() => {
        const echo = `header ${header} decoded ${decoded} secret ${mode === "token" ? token : password}`;
        if (mode === "status") sendJson(res, 401, { message: `unauthorized: ${echo}` });
        // The secret across the point where long messages are cut.
        else if (mode === "long") sendJson(res, 401, { message: `${"x".repeat(290)} ${password} ${"y".repeat(50)}` });
        else if (mode === "text") {
          res.writeHead(403, { "Content-Type": "text/plain" });
          res.end(echo);
        } else messageStream(res, [{ status: echo, id: echo }, { aux: { Note: echo } }, { errorDetail: { message: echo }, error: echo }]);
      });
    },
  });
  const auths: Array<[string, RegistryAuth, string]> = [
    ["status", { username: "me", password }, password],
    ["text", { username: "me", password }, password],
    ["long", { username: "me", password }, password],
    ["stream", { username: "me", password }, password],
    ["token", { identityToken: token, serverAddress: "registry.example" }, token],
  ];
  for (const [m, auth, secret] of auths) {
    mode = m;
    const messages: JsonMessage[] = [];
    const e = await rejection(f.api.pushImage("registry.example/app", "v1", auth, { onMessage: (x) => messages.push(x) }));
    const header = encodeRegistryAuth(auth);
    for (const text of [e.message, String(e), e.stack ?? "", inspect(e, { depth: Infinity, showHidden: true }), JSON.stringify(messages)]) {
      assert.ok(!text.includes(secret), `${m}: the secret leaked: ${text}`);
      assert.ok(!text.includes(header), `${m}: the header leaked: ${text}`);
      for (let i = 0; i + 8 <= secret.length; i++) assert.ok(!text.includes(secret.slice(i, i + 8)), `${m}: part of the secret leaked: ${text}`);
    }
    assert.match(e.message, /<redacted/, `${m}: ${e.message}`);
  }
});

test("encodeRegistryAuth is Go's registry.EncodeAuthConfig: json.Marshal field order, omitempty, HTML escapes, padded base64url", T, () => {
  // Expected values: base64.URLEncoding of the JSON Go's json.Marshal writes for these AuthConfigs.
  assert.equal(encodeRegistryAuth({ username: "u", password: "p" }), "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifQ==");
  assert.equal(
    Buffer.from(encodeRegistryAuth({ username: "u", password: "p<&>", serverAddress: "https://index.docker.io/v1/" }), "base64url").toString(),
    '{"username":"u","password":"p\\u003c\\u0026\\u003e","serveraddress":"https://index.docker.io/v1/"}',
  );
  assert.equal(
    encodeRegistryAuth({ identityToken: "tok", serverAddress: "r.example" }),
    "eyJzZXJ2ZXJhZGRyZXNzIjoici5leGFtcGxlIiwiaWRlbnRpdHl0b2tlbiI6InRvayJ9",
  );
  // Here standard base64 would have a "/": the URL alphabet has "_".
  assert.equal(encodeRegistryAuth({ username: "??", password: "" }), "eyJ1c2VybmFtZSI6Ij8_In0=");
  assert.equal(encodeRegistryAuth(undefined), "e30=");
});

// ---------------------------------------------------------------- JSON-message streams

const MESSAGES: JsonMessage[] = [
  { status: "Loading layer", id: "5f70bf18a086", progress: "[==>      ]  1.2MB/5MB", progressDetail: { current: 1200000, total: 5000000 } },
  { stream: "Loaded image: example/app:latest\n" },
  { status: 'braces } { and "quotes" and \\ backslashes \\" ] [', id: "é中文😀" },
  { aux: { Tag: "v1", Digest: "sha256:abcd", Size: 528, nested: { a: [1, { b: "}" }], c: null } } },
  {},
  { errorDetail: { code: 1, message: "boom\nsecond line" }, error: "boom" },
];

test("JsonMessageParser: random chunk splits of a stream give the same messages, whatever the separators", T, () => {
  const rand = prng(0x5eed);
  const separators = ["\n", "\r\n", "", " \t\n", "\n\n"];
  for (let round = 0; round < 400; round++) {
    const sep = separators[round % separators.length]!;
    const text = MESSAGES.map((m) => JSON.stringify(m)).join(sep) + sep;
    const bytes = Buffer.from(text, "utf8");
    const parser = new JsonMessageParser();
    const out: JsonMessage[] = [];
    for (const piece of randomSplit(bytes, rand, 1 + Math.floor(rand() * 40))) out.push(...parser.push(piece));
    parser.end();
    assert.deepEqual(out, MESSAGES, `round ${round}, separator ${JSON.stringify(sep)}`);
  }
  // Every single-cut position, byte by byte (cuts inside multi-byte characters included).
  const bytes = Buffer.from(MESSAGES.map((m) => JSON.stringify(m)).join(""), "utf8");
  for (let i = 0; i <= bytes.length; i++) {
    const parser = new JsonMessageParser();
    assert.deepEqual([...parser.push(bytes.subarray(0, i)), ...parser.push(bytes.subarray(i))], MESSAGES, `cut at ${i}`);
  }
});

test("JsonMessageParser: unknown or mistyped fields are dropped; garbage and a cut-off stream are errors", T, () => {
  const p = new JsonMessageParser();
  assert.deepEqual(p.push('{"status":5,"id":"x","progressDetail":{"current":"1","total":2},"extra":true}'), [{ id: "x", progressDetail: { total: 2 } }]);
  assert.throws(() => new JsonMessageParser().push("not json"), /expected a JSON object in the message stream/);
  assert.throws(() => new JsonMessageParser().push('{"a":tru}'), /malformed message/);
  const cut = new JsonMessageParser();
  cut.push('{"status":"x"');
  assert.equal(cut.idle, false);
  assert.throws(() => cut.end(), /ended inside a message/);
});

// ---------------------------------------------------------------- exec

test("StdcopyDemuxer: frames split at every byte boundary come out whole and in order", T, () => {
  const frames = [
    stdcopyFrame(1, "hello "),
    stdcopyFrame(2, "warning: x\n"),
    stdcopyFrame(1, ""),
    stdcopyFrame(0, "stdin-as-stdout "),
    stdcopyFrame(1, Buffer.alloc(300, 0x61)),
  ];
  const stream = Buffer.concat(frames);
  const want = { stdout: `hello stdin-as-stdout ${"a".repeat(300)}`, stderr: "warning: x\n" };
  const run = (pieces: Buffer[]): { stdout: string; stderr: string } => {
    const got = { stdout: "", stderr: "" };
    const d = new StdcopyDemuxer((s, payload) => {
      assert.notEqual(s, "system");
      got[s as "stdout" | "stderr"] += payload.toString();
    });
    for (const p of pieces) d.push(p);
    assert.ok(d.idle);
    return got;
  };
  for (let i = 0; i <= stream.length; i++) {
    for (const j of [i, Math.min(stream.length, i + 1), Math.min(stream.length, i + 7)]) {
      assert.deepEqual(run([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]), want, `cuts at ${i}, ${j}`);
    }
  }
  assert.deepEqual(run([...stream].map((b) => Buffer.from([b]))), want, "one byte at a time");

  const system: string[] = [];
  const d = new StdcopyDemuxer((s, p) => s === "system" && system.push(p.toString()));
  for (const b of stdcopyFrame(3, "exec failed: no such file")) d.push(Buffer.from([b]));
  assert.deepEqual(system, ["exec failed: no such file"]);
  assert.throws(() => new StdcopyDemuxer(() => undefined).push(Buffer.from([7, 0, 0, 0, 0, 0, 0, 1, 0x41])), /unrecognized stream type 7/);
});

/** Reads `n` bytes of body after an upgrade request head (some may be in `head`). */
async function readUpgradeBody(socket: Duplex, head: Buffer, n: number): Promise<Buffer> {
  let buf = head;
  while (buf.length < n) {
    const d = await new Promise<Buffer>((resolve) => socket.once("data", resolve));
    buf = Buffer.concat([buf, d]);
  }
  if (buf.length > n) socket.unshift(buf.subarray(n));
  return buf.subarray(0, n);
}

test("exec: inspect, create, start hijacked; stdout demultiplexed, stderr apart, stdin written, exit code", T, async (t) => {
  let createBody: unknown;
  let startBody: unknown;
  let serverSide: Duplex | undefined;
  const f = await fakeEngine(t, {
    request: (req, res) => {
      void readAll(req).then((body) => {
        if (req.method === "GET" && req.url === "/v1.51/containers/buildx_buildkit_builder0/json")
          sendJson(res, 200, { Id: "c0ffee", State: { Running: true, Status: "running" } });
        else if (req.method === "POST" && req.url === "/v1.51/containers/buildx_buildkit_builder0/exec") {
          createBody = JSON.parse(body.toString());
          sendJson(res, 201, { Id: "exec1" });
        } else if (req.url === "/v1.51/exec/exec1/json") sendJson(res, 200, { Running: false, ExitCode: 3 });
        else sendJson(res, 404, { message: "page not found" });
      });
    },
    upgrade: (req, socket, head) => {
      serverSide = socket;
      void (async () => {
        assert.equal(req.url, "/v1.51/exec/exec1/start");
        assert.equal(req.headers.upgrade, "tcp");
        startBody = JSON.parse((await readUpgradeBody(socket, head, Number(req.headers["content-length"]))).toString());
        const out = Buffer.concat([stdcopyFrame(1, "first "), stdcopyFrame(2, "buildctl: starting\n"), stdcopyFrame(1, "second")]);
        socket.write(
          Buffer.concat([
            Buffer.from("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"),
            out.subarray(0, 3),
          ]),
        );
        for (const b of out.subarray(3)) {
          socket.write(Buffer.from([b]));
          await new Promise((r) => setImmediate(r));
        }
        let stdin = "";
        socket.on("data", (d: Buffer) => {
          stdin += d.toString();
          socket.write(stdcopyFrame(1, ` echo(${d.toString()})`));
        });
        socket.on("end", () => {
          socket.end(stdcopyFrame(2, `stdin was ${stdin}`));
        });
      })();
    },
  });
  const stderrChunks: string[] = [];
  const s = await f.api.exec("buildx_buildkit_builder0", ["buildctl", "dial-stdio"], { onStderr: (c) => stderrChunks.push(c.toString()) });
  assert.deepEqual(createBody, { AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: ["buildctl", "dial-stdio"] });
  assert.deepEqual(startBody, { Detach: false, Tty: false });
  let stdout = "";
  s.stream.on("data", (d: Buffer) => (stdout += d.toString()));
  while (!stdout.includes("second")) await new Promise((r) => setTimeout(r, 5));
  s.stream.write("abc");
  while (!stdout.includes("echo(abc)")) await new Promise((r) => setTimeout(r, 5));
  s.stream.end();
  await new Promise((resolve) => s.stream.on("end", resolve));
  assert.equal(stdout, "first second echo(abc)");
  assert.equal(s.stderr(), "buildctl: starting\nstdin was abc");
  assert.equal(stderrChunks.join(""), s.stderr());
  assert.equal(await s.exitCode(), 3);
  s.stream.destroy();
  serverSide?.destroy();
});

test("exec: a missing container and one that is not running are clear errors", T, async (t) => {
  const f = await fakeEngine(t, {
    request: (req, res) => {
      if (req.url === "/v1.51/containers/gone/json") sendJson(res, 404, { message: "No such container: gone" });
      else if (req.url === "/v1.51/containers/stopped/json") sendJson(res, 200, { State: { Running: false, Status: "exited" } });
      else sendJson(res, 404, { message: "page not found" });
    },
  });
  const gone = await rejection(f.api.exec("gone", ["true"]));
  assert.ok(gone instanceof EngineApiError);
  assert.equal(gone.status, 404);
  assert.equal(gone.message, `the Docker Engine at ${f.address} has no container gone (No such container: gone); check the name (docker ps)`);
  const stopped = await rejection(f.api.exec("stopped", ["true"]));
  assert.ok(stopped instanceof BuildKitError);
  assert.equal(stopped.code, "FAILED_PRECONDITION");
  assert.equal(stopped.message, `container stopped on the Docker Engine at ${f.address} is not running (exited); start it (docker start stopped)`);
});

test(
  "prepareLoad (--load from buildkitd): a containerd-store Engine gets an oci tarball, multi-platform too; the classic store gets docker and refuses several platforms",
  T,
  async (t) => {
    const { prepareLoad } = await import("../../src/docker/load.js");
    for (const containerd of [true, false]) {
      const socket = join(tempDir("bk-load-"), "docker.sock");
      let loadedBody = "";
      await fakeEngine(t, {
        socketPath: socket,
        request: (req, res) => {
          if (req.url?.endsWith("/info")) {
            sendJson(res, 200, {
              ServerVersion: "29.2.0",
              DriverStatus: containerd ? [["driver-type", "io.containerd.snapshotter.v1"]] : [["Backing Filesystem", "extfs"]],
            });
          } else if (req.url?.endsWith("/images/load?quiet=0")) {
            void (async () => {
              for await (const c of req) loadedBody += (c as Buffer).toString();
              messageStream(res, [{ stream: "Loaded image: example/app:latest\n" }]);
            })();
          } else sendJson(res, 404, { message: "page not found" });
        },
      });
      const env = { DOCKER_HOST: `unix://${socket}`, HOME: tempDir("bk-load-home-") };
      const ac = new AbortController();
      for (const platforms of [1, 2]) {
        const exp = { type: "docker", attrs: {}, target: "load" as const };
        const prepared = prepareLoad(exp, { env, timeoutMs: 5000, signal: ac.signal, platforms });
        if (!containerd && platforms > 1) {
          await assert.rejects(
            prepared,
            /^BuildKitError: --load of a multi-platform image needs the containerd image store, and the Docker Engine at docker\+unix:\/\/.* uses the classic store: build one platform, or push instead$/,
          );
          continue;
        }
        const target = await prepared;
        assert.equal(exp.type, containerd ? "oci" : "docker", `containerd=${containerd} platforms=${platforms}`);
        assert.equal(exp.target, "stream");
        loadedBody = "";
        (exp as { stream?: NodeJS.WritableStream }).stream!.end("tar bytes");
        assert.deepEqual(await target.loaded, ["example/app:latest"]);
        assert.equal(loadedBody, "tar bytes");
      }
    }
  },
);
