/**
 * The session's Content service driven as buildkitd drives it: a grpc-js
 * client (an independent gRPC implementation) against our SessionServer,
 * the store picked by the buildkit-attachable-store-id metadata.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { SessionServer } from "../../src/grpc/server.js";
import { contentService } from "../../src/session/content.js";
import { OciLayout } from "../../src/oci/layout.js";
import { serviceDefinition } from "../helpers/grpc-js.js";
import { tempDir } from "../helpers/files.js";
import { cleanup, leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

const SERVICE = "containerd.services.content.v1.Content";
const def = serviceDefinition(SERVICE);
const sha256 = (b: Buffer): string => "sha256:" + createHash("sha256").update(b).digest("hex");

interface Served {
  client: grpc.Client;
  /** How often each store's opener ran. */
  opens: Map<string, number>;
}

/** Serves the Content service over `stores` (id → layout dir, created on open) on a local port; grpc-js is the daemon. */
async function serve(t: TestContext, stores: Record<string, string | (() => Promise<OciLayout>)>): Promise<Served> {
  const opens = new Map<string, number>();
  const openers = new Map<string, () => Promise<OciLayout>>();
  for (const [id, s] of Object.entries(stores)) {
    openers.set(id, () => {
      opens.set(id, (opens.get(id) ?? 0) + 1);
      return typeof s === "string" ? OciLayout.open(s, { create: true }) : s();
    });
  }
  const server = new SessionServer([contentService(openers)]);
  const sockets = new Set<Socket>();
  const net = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    server.serve(socket);
  });
  await new Promise<void>((r) => net.listen(0, "127.0.0.1", r));
  const port = (net.address() as { port: number }).port;
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanup(t, async () => {
    client.close();
    server.close();
    // A test that failed midway leaves calls open; they must not hold the run.
    for (const s of sockets) s.destroy();
    await new Promise((r) => net.close(r));
  });
  return { client, opens };
}

function md(...storeIds: string[]): grpc.Metadata {
  const m = new grpc.Metadata();
  for (const id of storeIds) m.add("buildkit-attachable-store-id", id);
  return m;
}

interface InfoResponse {
  info: { digest: string; size: string; created_at: { seconds: string } | null };
}

function info(c: Served, metadata: grpc.Metadata, digest: string): Promise<InfoResponse> {
  const m = def["Info"]!;
  return new Promise((resolve, reject) =>
    c.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { digest }, metadata, (e, v) => (e ? reject(e) : resolve(v as InfoResponse))),
  );
}

/** A Read call: every response, and how it ended. */
function read(
  c: Served,
  metadata: grpc.Metadata,
  req: { digest: string; offset?: number; size?: number },
): Promise<{ chunks: Array<{ offset: string; data: Buffer }>; status: grpc.StatusObject }> {
  const m = def["Read"]!;
  const call = c.client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, req, metadata);
  const chunks: Array<{ offset: string; data: Buffer }> = [];
  call.on("data", (d: { offset: string; data: Buffer }) => chunks.push(d));
  call.on("error", () => undefined);
  return new Promise((resolve) => call.on("status", (status: grpc.StatusObject) => resolve({ chunks, status })));
}

function bytesOf(chunks: Array<{ data: Buffer }>): Buffer {
  return Buffer.concat(chunks.map((c) => c.data));
}

interface WriteRequest {
  action?: "STAT" | "WRITE" | "COMMIT";
  ref?: string;
  total?: number;
  expected?: string;
  offset?: number;
  data?: Buffer;
}
interface WriteResponse {
  action: string;
  offset: string;
  total: string;
  digest: string;
  started_at: { seconds: string } | null;
}

/** A Write stream as the daemon's proxy writer uses it: one request, then wait for its one response. */
class WriteStream {
  readonly #call: grpc.ClientDuplexStream<WriteRequest, WriteResponse>;
  readonly #responses: WriteResponse[] = [];
  #wake: (() => void) | undefined;
  readonly status: Promise<grpc.StatusObject>;
  ended = false;

  constructor(c: Served, metadata: grpc.Metadata) {
    const m = def["Write"]!;
    this.#call = c.client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, metadata) as grpc.ClientDuplexStream<
      WriteRequest,
      WriteResponse
    >;
    this.#call.on("data", (r: WriteResponse) => {
      this.#responses.push(r);
      this.#wake?.();
    });
    this.#call.on("error", () => undefined);
    this.status = new Promise((resolve) =>
      this.#call.on("status", (s: grpc.StatusObject) => {
        this.ended = true;
        this.#wake?.();
        resolve(s);
      }),
    );
  }

  /** Sends one request and returns its response, or undefined when the call ended instead. */
  async send(req: WriteRequest): Promise<WriteResponse | undefined> {
    const before = this.#responses.length;
    this.#call.write(req);
    while (this.#responses.length === before && !this.ended) await new Promise<void>((r) => (this.#wake = r));
    assert.ok(this.#responses.length <= before + 1, "one response per request");
    return this.#responses[before];
  }

  /** Half-closes and waits for the status; no response may be left over. */
  async end(): Promise<grpc.StatusObject> {
    const n = this.#responses.length;
    this.#call.end();
    const s = await this.status;
    assert.equal(this.#responses.length, n, "no response after the last request");
    return s;
  }

  get responses(): number {
    return this.#responses.length;
  }
}

function blobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return join(dir, "blobs", alg, hex);
}

function putBlob(dir: string, data: Buffer): string {
  const d = sha256(data);
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  writeFileSync(blobPath(dir, d), data);
  return d;
}

/** What is left in ingest/ (nothing, after every finished or dropped write). */
function ingestFiles(dir: string): string[] {
  return existsSync(join(dir, "ingest")) ? readdirSync(join(dir, "ingest")) : [];
}

/** The digests of the blobs stored. */
function storedBlobs(dir: string): string[] {
  const p = join(dir, "blobs", "sha256");
  return existsSync(p) ? readdirSync(p).map((hex) => "sha256:" + hex) : [];
}

test("Info: size of a stored blob; NOT_FOUND for a missing one; INVALID_ARGUMENT for malformed digests and path tricks", async (t) => {
  const dir = tempDir("bk-content-", t);
  const data = randomBytes(1234);
  const d = putBlob(dir, data);
  const c = await serve(t, { "local:cache": dir });
  const r = await info(c, md("local:cache"), d);
  assert.equal(r.info.digest, d);
  assert.equal(r.info.size, "1234");
  assert.ok(Number(r.info.created_at?.seconds) > 1_600_000_000, "a creation time");

  await assert.rejects(info(c, md("local:cache"), sha256(Buffer.from("absent"))), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    return true;
  });
  writeFileSync(join(dir, "x"), "outside blobs/");
  for (const bad of [
    "",
    "sha256:../x",
    "sha256:../../x",
    "sha256:" + "A".repeat(64),
    "sha256:" + "a".repeat(63),
    "sha256:" + "a".repeat(64) + "/",
    "md5:" + "a".repeat(32),
    "sha256/../../x",
    "../x",
  ]) {
    await assert.rejects(info(c, md("local:cache"), bad), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT, bad);
      return true;
    });
  }
});

test("Read: whole blobs in chunks of at most 1 MiB, ranges, reads past the end, OUT_OF_RANGE, NOT_FOUND", async (t) => {
  const dir = tempDir("bk-content-", t);
  const data = randomBytes(2.5 * (1 << 20) + 17);
  const d = putBlob(dir, data);
  const c = await serve(t, { "local:x": dir });
  const m = md("local:x");

  const all = await read(c, m, { digest: d });
  assert.equal(all.status.code, grpc.status.OK);
  assert.ok(bytesOf(all.chunks).equals(data));
  assert.deepEqual(
    all.chunks.map((ch) => ch.data.length),
    [1 << 20, 1 << 20, 0.5 * (1 << 20) + 17],
  );
  assert.deepEqual(
    all.chunks.map((ch) => Number(ch.offset)),
    [0, 1 << 20, 2 << 20],
    "each response carries its offset in the blob",
  );

  const mid = await read(c, m, { digest: d, offset: 100, size: 50 });
  assert.ok(bytesOf(mid.chunks).equals(data.subarray(100, 150)));
  assert.equal(mid.chunks[0]!.offset, "100");
  const tail = await read(c, m, { digest: d, offset: data.length - 10, size: 1000 });
  assert.ok(bytesOf(tail.chunks).equals(data.subarray(data.length - 10)), "size past the end reads to the end");
  const rest = await read(c, m, { digest: d, offset: (1 << 20) + 1, size: 0 });
  assert.ok(bytesOf(rest.chunks).equals(data.subarray((1 << 20) + 1)), "size 0 reads to the end");
  const negative = await read(c, m, { digest: d, offset: 5, size: -3 });
  assert.ok(bytesOf(negative.chunks).equals(data.subarray(5)), "a negative size reads to the end");
  const atEnd = await read(c, m, { digest: d, offset: data.length });
  assert.equal(atEnd.status.code, grpc.status.OK);
  assert.equal(bytesOf(atEnd.chunks).length, 0, "offset == size: nothing, OK");

  const past = await read(c, m, { digest: d, offset: data.length + 1 });
  assert.equal(past.status.code, grpc.status.OUT_OF_RANGE);
  assert.match(past.status.details, /read past object length/);
  const missing = await read(c, m, { digest: sha256(Buffer.from("nope")) });
  assert.equal(missing.status.code, grpc.status.NOT_FOUND);
  const bad = await read(c, m, { digest: "sha256:../../etc/passwd" });
  assert.equal(bad.status.code, grpc.status.INVALID_ARGUMENT);
});

test("Read: a daemon that cancels once it has enough ends the read", async (t) => {
  const dir = tempDir("bk-content-", t);
  const data = randomBytes(8 << 20);
  const d = putBlob(dir, data);
  const c = await serve(t, { s: dir });
  const m = def["Read"]!;
  const call = c.client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, { digest: d }, md("s"));
  call.on("error", () => undefined);
  const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
  await new Promise((r) => call.once("data", r));
  call.cancel();
  assert.equal((await status).code, grpc.status.CANCELLED);
});

test("Write: STAT, WRITE chunks and COMMIT store the blob read-only; one response per request", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { "local:out": dir });
  const data = randomBytes(3 * (1 << 20) + 5);
  const d = sha256(data);
  const w = new WriteStream(c, md("local:out"));

  const stat = await w.send({ action: "STAT", ref: "layer-" + d, total: data.length, expected: d });
  assert.equal(stat?.action, "STAT");
  assert.equal(stat.offset, "0");
  assert.equal(stat.total, String(data.length));
  assert.equal(stat.digest, sha256(Buffer.alloc(0)), "the digest of nothing yet");
  assert.ok(Number(stat.started_at?.seconds) > 1_600_000_000);
  const again = await w.send({ action: "STAT" });
  assert.equal(again?.offset, "0");
  assert.equal(ingestFiles(dir).length, 1, "one ingest file while writing");

  let offset = 0;
  for (const size of [1 << 20, 1 << 20, (1 << 20) + 5]) {
    const chunk = data.subarray(offset, offset + size);
    const r = await w.send({ action: "WRITE", offset, data: chunk });
    offset += size;
    assert.equal(r?.action, "WRITE");
    assert.equal(r.offset, String(offset));
    assert.equal(r.digest, sha256(data.subarray(0, offset)), "the running digest");
  }
  const statMid = await w.send({ action: "STAT" });
  assert.equal(statMid?.offset, String(data.length));
  const commit = await w.send({ action: "COMMIT", total: data.length, offset, expected: d });
  assert.equal(commit?.action, "COMMIT");
  assert.equal(commit.offset, String(data.length));
  assert.equal(commit.digest, d);
  assert.equal((await w.end()).code, grpc.status.OK);
  assert.equal(w.responses, 7);

  const p = blobPath(dir, d);
  assert.ok(readFileSync(p).equals(data));
  assert.equal(statSync(p).mode & 0o777, 0o444);
  assert.deepEqual(ingestFiles(dir), []);
  assert.equal((await info(c, md("local:out"), d)).info.size, String(data.length));
});

test("Write: a blob written in one COMMIT without STAT (small blobs), and a commit without expected digest", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir });
  const data = Buffer.from('{"schemaVersion":2}');
  const w = new WriteStream(c, md("s"));
  const r = await w.send({ action: "COMMIT", ref: sha256(data), total: data.length, data });
  assert.equal(r?.offset, String(data.length));
  assert.equal(r.digest, sha256(data));
  assert.equal((await w.end()).code, grpc.status.OK);
  assert.ok(readFileSync(blobPath(dir, sha256(data))).equals(data));
});

test("Write: offsets must follow on; offset 0 restarts; a wrong offset is OUT_OF_RANGE and drops the ingest", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir });
  const a = Buffer.from("aaaa");
  const b = Buffer.from("bbbbbb");
  const x = Buffer.from("the real content");

  const w = new WriteStream(c, md("s"));
  await w.send({ action: "STAT", ref: "r1" });
  assert.equal((await w.send({ action: "WRITE", offset: 0, data: a }))?.offset, "4");
  assert.equal((await w.send({ action: "WRITE", offset: 4, data: b }))?.offset, "10");
  const restart = await w.send({ action: "WRITE", offset: 0, data: x });
  assert.equal(restart?.offset, String(x.length), "offset 0 with data present starts over");
  assert.equal(restart.digest, sha256(x));
  const c1 = await w.send({ action: "COMMIT", offset: x.length, total: x.length, expected: sha256(x) });
  assert.equal(c1?.digest, sha256(x));
  assert.equal((await w.end()).code, grpc.status.OK);
  assert.ok(readFileSync(blobPath(dir, sha256(x))).equals(x));

  const w2 = new WriteStream(c, md("s"));
  await w2.send({ action: "STAT", ref: "r2" });
  await w2.send({ action: "WRITE", offset: 0, data: a });
  assert.equal(await w2.send({ action: "WRITE", offset: 3, data: b }), undefined, "no response: the call ended");
  const s = await w2.status;
  assert.equal(s.code, grpc.status.OUT_OF_RANGE);
  assert.equal(s.details, "write @3 must occur at current offset 4");
  const w3 = new WriteStream(c, md("s"));
  await w3.send({ action: "STAT", ref: "r3" });
  assert.equal(await w3.send({ action: "COMMIT", offset: 9 }), undefined);
  assert.equal((await w3.status).code, grpc.status.OUT_OF_RANGE, "COMMIT checks its offset too");
  assert.deepEqual(ingestFiles(dir), []);
  assert.deepEqual(storedBlobs(dir), [sha256(x)]);
});

test("Write: an expected digest that is already stored ends the stream ALREADY_EXISTS, on the first message or any later one", async (t) => {
  const dir = tempDir("bk-content-", t);
  const data = Buffer.from("cached layer");
  const d = putBlob(dir, data);
  const c = await serve(t, { s: dir });

  const w = new WriteStream(c, md("s"));
  assert.equal(await w.send({ action: "STAT", ref: "layer-" + d, total: data.length, expected: d }), undefined);
  const s = await w.status;
  assert.equal(s.code, grpc.status.ALREADY_EXISTS);
  assert.equal(w.responses, 0);

  const later = new WriteStream(c, md("s"));
  await later.send({ action: "STAT", ref: "layer-" + d });
  await later.send({ action: "WRITE", offset: 0, data });
  assert.equal(await later.send({ action: "COMMIT", offset: data.length, total: data.length, expected: d }), undefined);
  assert.equal((await later.status).code, grpc.status.ALREADY_EXISTS);

  // No expected digest, but the content turns out to be stored already.
  const same = new WriteStream(c, md("s"));
  await same.send({ action: "STAT", ref: "again" });
  await same.send({ action: "WRITE", data });
  assert.equal(await same.send({ action: "COMMIT", offset: data.length }), undefined);
  assert.equal((await same.status).code, grpc.status.ALREADY_EXISTS);
  assert.deepEqual(ingestFiles(dir), []);
  assert.ok(readFileSync(blobPath(dir, d)).equals(data), "the stored blob is untouched");
});

test("Write: COMMIT with the wrong digest or size is FAILED_PRECONDITION and stores nothing", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir });
  const data = Buffer.from("some bytes");
  const other = sha256(Buffer.from("other bytes"));

  const w = new WriteStream(c, md("s"));
  await w.send({ action: "STAT", ref: "x", expected: other });
  await w.send({ action: "WRITE", data });
  assert.equal(await w.send({ action: "COMMIT", offset: data.length }), undefined);
  const s = await w.status;
  assert.equal(s.code, grpc.status.FAILED_PRECONDITION);
  assert.equal(s.details, `unexpected commit digest ${sha256(data)}, expected ${other}`);

  const z = new WriteStream(c, md("s"));
  await z.send({ action: "STAT", ref: "y", total: data.length + 1 });
  await z.send({ action: "WRITE", data });
  assert.equal(await z.send({ action: "COMMIT", offset: data.length, expected: sha256(data) }), undefined);
  const s2 = await z.status;
  assert.equal(s2.code, grpc.status.FAILED_PRECONDITION);
  assert.equal(s2.details, `unexpected commit size ${data.length}, expected ${data.length + 1}`);

  const total = new WriteStream(c, md("s"));
  await total.send({ action: "STAT", ref: "z" });
  await total.send({ action: "WRITE", data });
  assert.equal(await total.send({ action: "COMMIT", offset: data.length, total: 3 }), undefined, "a COMMIT's total is checked too");
  assert.equal((await total.status).code, grpc.status.FAILED_PRECONDITION);

  assert.deepEqual(ingestFiles(dir), []);
  assert.deepEqual(storedBlobs(dir), []);
});

test("Write: a ref already being written is UNAVAILABLE; free again once that write ends", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir, other: tempDir("bk-content-other-", t) });
  const first = new WriteStream(c, md("s"));
  await first.send({ action: "STAT", ref: "layer-1" });
  const second = new WriteStream(c, md("s"));
  assert.equal(await second.send({ action: "STAT", ref: "layer-1" }), undefined);
  const s = await second.status;
  assert.equal(s.code, grpc.status.UNAVAILABLE);
  assert.match(s.details, /layer-1/);

  const elsewhere = new WriteStream(c, md("other"));
  assert.ok(await elsewhere.send({ action: "STAT", ref: "layer-1" }), "the same ref in another store is fine");
  assert.equal((await elsewhere.end()).code, grpc.status.OK);

  const data = Buffer.from("x");
  await first.send({ action: "COMMIT", data, total: 1, expected: sha256(data) });
  assert.equal((await first.end()).code, grpc.status.OK);
  const third = new WriteStream(c, md("s"));
  assert.ok(await third.send({ action: "STAT", ref: "layer-1" }));
  assert.equal((await third.end()).code, grpc.status.OK);
});

test("Write: half-closing without COMMIT ends OK and leaves no blob and no ingest", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir });
  const data = randomBytes(100_000);
  const w = new WriteStream(c, md("s"));
  await w.send({ action: "STAT", ref: "partial", total: data.length, expected: sha256(data) });
  await w.send({ action: "WRITE", data: data.subarray(0, 50_000) });
  assert.equal(ingestFiles(dir).length, 1);
  assert.equal((await w.end()).code, grpc.status.OK);
  assert.deepEqual(ingestFiles(dir), []);
  assert.equal(existsSync(blobPath(dir, sha256(data))), false);

  // A stream that ends before its first message is fine too.
  const empty = new WriteStream(c, md("s"));
  assert.equal((await empty.end()).code, grpc.status.OK);
});

test("Write: the first message needs a ref; bad expected digests are INVALID_ARGUMENT; a ref is never a path", async (t) => {
  const parent = tempDir("bk-content-parent-", t);
  const dir = join(parent, "store");
  const c = await serve(t, { s: dir });
  const w = new WriteStream(c, md("s"));
  assert.equal(await w.send({ action: "STAT", total: 3 }), undefined);
  const s = await w.status;
  assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(s.details, "first message must have a reference");

  for (const expected of ["sha256:../../../x", "sha256:" + "F".repeat(64), "sha1:" + "a".repeat(40)]) {
    const b = new WriteStream(c, md("s"));
    assert.equal(await b.send({ action: "STAT", ref: "r", expected }), undefined);
    assert.equal((await b.status).code, grpc.status.INVALID_ARGUMENT, expected);
  }

  const data = Buffer.from("payload");
  const trick = new WriteStream(c, md("s"));
  await trick.send({ action: "STAT", ref: "../../../escaped" });
  await trick.send({ action: "WRITE", data });
  await trick.send({ action: "COMMIT", offset: data.length, expected: sha256(data) });
  assert.equal((await trick.end()).code, grpc.status.OK);
  assert.deepEqual(readdirSync(parent), ["store"], "nothing written next to the store");
  assert.deepEqual(readdirSync(dir).sort(), ["blobs", "ingest", "oci-layout"]);
});

test("store ids: missing metadata INVALID_ARGUMENT, unknown NOT_FOUND, the first value counts, stores open lazily and once", async (t) => {
  const a = tempDir("bk-content-a-", t);
  const b = tempDir("bk-content-b-", t);
  const data = Buffer.from("in a");
  const d = putBlob(a, data);
  const missingDir = join(tempDir("bk-content-gone-", t), "not-yet");
  const c = await serve(t, {
    "local:a": a,
    "local:b": b,
    "oci:gone": () => OciLayout.open(missingDir, { create: false }),
    throws: () => {
      throw new Error("opener failed");
    },
  });
  assert.equal(c.opens.size, 0, "nothing opened before the daemon asks");

  await assert.rejects(info(c, new grpc.Metadata(), d), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /buildkit-attachable-store-id/);
    return true;
  });
  await assert.rejects(info(c, md("local:zzz"), d), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.equal(e.details, "unknown store local:zzz");
    return true;
  });
  const r = await read(c, new grpc.Metadata(), { digest: d });
  assert.equal(r.status.code, grpc.status.INVALID_ARGUMENT);
  const w = new WriteStream(c, md("nope"));
  assert.equal(await w.send({ action: "STAT", ref: "x" }), undefined);
  assert.equal((await w.status).code, grpc.status.NOT_FOUND);

  assert.equal((await info(c, md("local:a", "local:b"), d)).info.size, "4", "the first value picks the store");
  await assert.rejects(info(c, md("local:b", "local:a"), d), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  for (let i = 0; i < 3; i++) await info(c, md("local:a"), d);
  assert.equal(c.opens.get("local:a"), 1, "opened once for many calls");

  // An import store that does not exist: NOT_FOUND, and tried again on the next call.
  await assert.rejects(info(c, md("oci:gone"), d), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.match(e.details, /does not exist/);
    return true;
  });
  await assert.rejects(info(c, md("throws"), d), (e: grpc.ServiceError) => e.code === grpc.status.UNKNOWN && e.details === "opener failed");
  mkdirSync(missingDir);
  await assert.rejects(info(c, md("oci:gone"), d), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && /content/.test(e.details));
  assert.equal(c.opens.get("oci:gone"), 2);
  assert.equal(existsSync(join(missingDir, "oci-layout")), false, "an import store is not written to by reads");
});

function unary<T>(c: Served, method: string, req: object, metadata = md("s")): Promise<T> {
  const m = def[method]!;
  return new Promise((resolve, reject) =>
    c.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, metadata, (e, v) => (e ? reject(e) : resolve(v as T))),
  );
}

interface StatusMessage {
  ref: string;
  offset: string;
  total: string;
  expected: string;
  started_at: { seconds: string } | null;
  updated_at: { seconds: string } | null;
}

test("Status and ListStatuses report the writes in flight as containerd does; NOT_FOUND once a write ended", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir, other: tempDir("bk-content-other-", t) });
  const data = randomBytes(70_000);
  const a = new WriteStream(c, md("s"));
  await a.send({ action: "STAT", ref: "layer-a", total: data.length, expected: sha256(data) });
  await a.send({ action: "WRITE", data: data.subarray(0, 30_000) });
  const b = new WriteStream(c, md("s"));
  await b.send({ action: "STAT", ref: "config-b" });

  const { status } = await unary<{ status: StatusMessage }>(c, "Status", { ref: "layer-a" });
  assert.equal(status.ref, "layer-a");
  assert.equal(status.offset, "30000");
  assert.equal(status.total, String(data.length));
  assert.equal(status.expected, sha256(data));
  assert.ok(Number(status.started_at?.seconds) > 0 && Number(status.updated_at?.seconds) >= Number(status.started_at?.seconds));

  const list = async (filters: string[], metadata = md("s")): Promise<string[]> =>
    (await unary<{ statuses: StatusMessage[] }>(c, "ListStatuses", { filters }, metadata)).statuses.map((s) => s.ref);
  assert.deepEqual(await list([]), ["config-b", "layer-a"]);
  assert.deepEqual(await list(["ref==layer-a"]), ["layer-a"]);
  assert.deepEqual(await list(['ref=="config-b"']), ["config-b"]);
  assert.deepEqual(await list(["ref~=^layer-"]), ["layer-a"]);
  assert.deepEqual(await list(["ref!=layer-a"]), ["config-b"]);
  assert.deepEqual(await list(["ref==layer-a", "ref==config-b"]), ["config-b", "layer-a"], "filters are or-ed");
  assert.deepEqual(await list(["ref~=-,ref~=^c"]), ["config-b"], "terms are and-ed");
  assert.deepEqual(await list(["ref"]), ["config-b", "layer-a"], "a bare field asks that it is present");
  assert.deepEqual(await list(["labels.x==y"]), [], "unknown fields are absent");
  assert.deepEqual(await list([], md("other")), [], "stores do not share ingests");
  await assert.rejects(list(["ref~=("]), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /regular expression/.test(e.details));
  await assert.rejects(list(["==x"]), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /invalid filter/.test(e.details));

  await a.send({ action: "COMMIT", offset: 30_000, data: data.subarray(30_000) });
  assert.equal((await a.end()).code, grpc.status.OK);
  await assert.rejects(unary(c, "Status", { ref: "layer-a" }), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.equal(e.details, "ref layer-a: not found");
    return true;
  });
  assert.deepEqual(await list([]), ["config-b"]);
  assert.equal((await b.end()).code, grpc.status.OK);
  assert.deepEqual(await list([]), []);
});

test("Abort drops a write in flight and its bytes; the writer's next request fails; NOT_FOUND for a ref not being written", async (t) => {
  const dir = tempDir("bk-content-", t);
  const c = await serve(t, { s: dir });
  const data = randomBytes(50_000);
  const w = new WriteStream(c, md("s"));
  await w.send({ action: "STAT", ref: "doomed", total: data.length });
  await w.send({ action: "WRITE", data: data.subarray(0, 10_000) });
  assert.equal(ingestFiles(dir).length, 1);
  assert.deepEqual(await unary(c, "Abort", { ref: "doomed" }), {});
  assert.deepEqual(ingestFiles(dir), [], "the ingest's bytes are gone");
  await assert.rejects(unary(c, "Status", { ref: "doomed" }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  assert.equal(await w.send({ action: "WRITE", offset: 10_000, data: data.subarray(10_000) }), undefined);
  const s = await w.status;
  assert.equal(s.code, grpc.status.FAILED_PRECONDITION);
  assert.match(s.details, /ingest of doomed has ended/);
  assert.deepEqual(storedBlobs(dir), []);

  // The ref is free again.
  const again = new WriteStream(c, md("s"));
  const res = await again.send({ action: "COMMIT", ref: "doomed", data, total: data.length, expected: sha256(data) });
  assert.equal(res?.digest, sha256(data));
  assert.equal((await again.end()).code, grpc.status.OK);

  await assert.rejects(unary(c, "Abort", { ref: "never" }), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.equal(e.details, 'ingest ref "never": not found');
    return true;
  });
});

test("Update, List and Delete, which would edit a user's layout, answer UNIMPLEMENTED", async (t) => {
  const c = await serve(t, { s: tempDir("bk-content-", t) });
  for (const [method, req] of [
    ["Delete", { digest: sha256(Buffer.from("x")) }],
    ["Update", {}],
  ] as const) {
    await assert.rejects(unary(c, method, req), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED, method);
  }
  const m = def["List"]!;
  const call = c.client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {}, md("s"));
  call.on("data", () => assert.fail("List sent an item"));
  call.on("error", () => undefined);
  const st = await new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  assert.equal(st.code, grpc.status.UNIMPLEMENTED);
});
