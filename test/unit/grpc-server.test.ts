import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { GrpcStatusError, SessionServer, Status, defineService, encodeGrpcMessage, type SessionService } from "../../src/grpc/server.js";
import { serviceDefinition } from "../helpers/grpc-js.js";
import { Writer, varintSize } from "../../src/grpc/protobuf-writer.js";

/** Serves `services` on a local TCP port with SessionServer; grpc-js is the client. */
async function serve(services: SessionService[]): Promise<{ client: grpc.Client; server: SessionServer; close: () => Promise<void> }> {
  const server = new SessionServer(services);
  const net: Server = createServer((socket) => server.serve(socket));
  await new Promise<void>((r) => net.listen(0, "127.0.0.1", r));
  const port = (net.address() as { port: number }).port;
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    client,
    server,
    close: async () => {
      client.close();
      server.close();
      await new Promise((r) => net.close(r));
    },
  };
}

function unary(client: grpc.Client, service: string, method: string, request: object, metadata = new grpc.Metadata()): Promise<unknown> {
  const def = serviceDefinition(service)[method]!;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, metadata, (e, v) => (e ? reject(e) : resolve(v))),
  );
}

const health = defineService("grpc.health.v1.Health", { unary: { Check: () => Promise.resolve({ status: "SERVING" }) } });

test("unary calls answer; handler errors become statuses with their message", async () => {
  const secrets = defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      GetSecret: (req) => {
        const id = req.ID;
        if (id === "missing") return Promise.reject(new GrpcStatusError(Status.NOT_FOUND, "secret missing not found: ünïcode 100%"));
        return Promise.resolve({ data: Buffer.from(`value of ${id}`) });
      },
    },
  });
  const s = await serve([health, secrets]);
  try {
    assert.deepEqual(await unary(s.client, "grpc.health.v1.Health", "Check", {}), { status: "SERVING" });
    const r = (await unary(s.client, "moby.buildkit.secrets.v1.Secrets", "GetSecret", { ID: "a" })) as { data: Buffer };
    assert.equal(r.data.toString(), "value of a");
    await assert.rejects(unary(s.client, "moby.buildkit.secrets.v1.Secrets", "GetSecret", { ID: "missing" }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.NOT_FOUND);
      assert.equal(e.details, "secret missing not found: ünïcode 100%");
      return true;
    });
    await assert.rejects(unary(s.client, "moby.buildkit.v1.Control", "DiskUsage", {}), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED);
    assert.deepEqual(s.server.methods, ["/grpc.health.v1.Health/Check", "/moby.buildkit.secrets.v1.Secrets/GetSecret"]);
  } finally {
    await s.close();
  }
});

test('repeated request headers arrive as sent, also values containing ", "', async () => {
  const seen: Record<string, string[]> = {};
  const secrets = defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      GetSecret: (_req, call) => {
        for (const k of ["exclude-patterns", "followpaths", "dir-name", "absent"]) seen[k] = call.metadata(k);
        return Promise.resolve({});
      },
    },
  });
  const s = await serve([secrets]);
  try {
    const md = new grpc.Metadata();
    // .dockerignore patterns may contain ", " (ASCII, so sent unescaped).
    md.add("exclude-patterns", "a, b");
    md.add("exclude-patterns", "c");
    md.add("exclude-patterns", "d,e, f");
    md.add("followpaths", "x, y");
    md.add("dir-name", "context");
    await unary(s.client, "moby.buildkit.secrets.v1.Secrets", "GetSecret", { ID: "a" }, md);
    assert.deepEqual(seen, {
      "exclude-patterns": ["a, b", "c", "d,e, f"],
      followpaths: ["x, y"],
      "dir-name": ["context"],
      absent: [],
    });
  } finally {
    await s.close();
  }
});

test("streams: many small messages and large ones arrive whole and in order, both ways", async () => {
  const echo = defineService("moby.sshforward.v1.SSH", {
    streams: {
      ForwardAgent: async (call) => {
        for await (const { data } of call) {
          if (data.length > 100) await call.sendEncoded([fieldHead(data.length), data]);
          else await call.send({ data });
        }
      },
    },
  });
  const s = await serve([echo]);
  try {
    const def = serviceDefinition("moby.sshforward.v1.SSH")["ForwardAgent"]!;
    const call = s.client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize);
    const sent: Buffer[] = [];
    for (let i = 0; i < 3000; i++) sent.push(Buffer.from(`m${i}`));
    sent.push(Buffer.alloc(3 << 20, 7), Buffer.from("last"));
    const got: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (m: { data: Buffer }) => got.push(m.data));
      call.on("error", reject);
      call.on("status", (st: grpc.StatusObject) => (st.code === grpc.status.OK ? resolve() : reject(new Error(st.details))));
    });
    for (const b of sent) call.write({ data: b });
    call.end();
    await done;
    assert.equal(got.length, sent.length);
    for (let i = 0; i < sent.length; i++) assert.ok(got[i]!.equals(sent[i]!), `message ${i}`);
  } finally {
    await s.close();
  }
});

test("sendEncoded: released comes once the parts are written, so one buffer refilled after it carries every message intact", async () => {
  const rounds = 40;
  let smallReleasedAtOnce = false;
  const echo = defineService("moby.sshforward.v1.SSH", {
    streams: {
      ForwardAgent: async (call) => {
        let small = false;
        await call.sendEncoded([fieldHead(3), Buffer.from("abc")], () => (small = true));
        smallReleasedAtOnce = small;
        // One 256 KiB buffer, refilled for each message only once the last one released it.
        const buf = Buffer.alloc(256 * 1024);
        for (let i = 0; i < rounds; i++) {
          buf.fill(i);
          const free = new Promise<void>((resolve) => void call.sendEncoded([fieldHead(buf.length), buf], resolve));
          await free;
        }
      },
    },
  });
  const s = await serve([echo]);
  try {
    const def = serviceDefinition("moby.sshforward.v1.SSH")["ForwardAgent"]!;
    const call = s.client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize);
    const got: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (m: { data: Buffer }) => got.push(m.data));
      call.on("error", reject);
      call.on("status", (st: grpc.StatusObject) => (st.code === grpc.status.OK ? resolve() : reject(new Error(st.details))));
    });
    call.end();
    await done;
    assert.ok(smallReleasedAtOnce, "a small message is copied into its frame: released before sendEncoded resolves");
    assert.equal(got.length, rounds + 1);
    assert.equal(got[0]!.toString(), "abc");
    for (let i = 0; i < rounds; i++) {
      const m = got[i + 1]!;
      assert.equal(m.length, 256 * 1024);
      assert.ok(
        m.every((b) => b === i),
        `message ${i} holds bytes of a later fill: released came before the write`,
      );
    }
  } finally {
    await s.close();
  }
});

test("a handler's plain Error ends the call UNKNOWN with its message; cancelling aborts the handler", async () => {
  let aborted = false;
  const failing = defineService("moby.sshforward.v1.SSH", { streams: { ForwardAgent: () => Promise.reject(new Error("boom")) } });
  const waiting = defineService("moby.filesync.v1.FileSync", {
    streams: {
      DiffCopy: async (call) => {
        await call.send({ type: "PACKET_STAT" });
        await new Promise<void>((r) => call.signal.addEventListener("abort", () => r()));
        aborted = true;
      },
    },
  });
  const s = await serve([failing, waiting]);
  try {
    const fa = serviceDefinition("moby.sshforward.v1.SSH")["ForwardAgent"]!;
    const c1 = s.client.makeBidiStreamRequest(fa.path, fa.requestSerialize, fa.responseDeserialize);
    const st1 = await new Promise<grpc.StatusObject>((r) => c1.on("status", r).on("error", () => undefined));
    assert.equal(st1.code, grpc.status.UNKNOWN);
    assert.equal(st1.details, "boom");

    const tu = serviceDefinition("moby.filesync.v1.FileSync")["DiffCopy"]!;
    const c2 = s.client.makeBidiStreamRequest(tu.path, tu.requestSerialize, tu.responseDeserialize);
    await new Promise((r) => c2.once("data", r));
    c2.on("error", () => undefined);
    c2.cancel();
    for (let i = 0; i < 100 && !aborted; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(aborted, "the handler saw the cancel");
  } finally {
    await s.close();
  }
});

test("grpc-message is percent-encoded", () => {
  assert.equal(encodeGrpcMessage("a b%c"), "a b%25c");
  assert.equal(encodeGrpcMessage("é\n"), "%C3%A9%0A");
});

/** The tag and length of BytesMessage.data, for sending the data itself uncopied. */
function fieldHead(length: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(length)));
  w.buf[w.pos++] = 0x0a;
  w.varint(length);
  return w.buf;
}
