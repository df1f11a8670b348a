/**
 * `-` and `-f -` without a daemon: telling an archive from a Dockerfile by
 * its first bytes (as buildx's isArchive), peeking at a stream without
 * losing bytes, what resolveBuild sends for a stream context and a
 * Dockerfile given as contents, the lowercase `dockerfile` fallback, the
 * CLI's stdin errors, and the Upload service against grpc-js.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { SNIFF_BYTES, isTarHeader, openContextArchive, peekStream, sniffStream } from "../../src/solve/context-stream.js";
import { resolveBuild } from "../../src/solve/options.js";
import { readStdinInputs, stdinUse } from "../../src/cli/stdin.js";
import { SessionServer } from "../../src/grpc/server.js";
import { MAX_UPLOAD_CHUNK, UploadFailures, uploadService } from "../../src/session/upload.js";
import { BuildKitError, UsageError } from "../../src/errors.js";
import type { BuildOptions } from "../../src/index.js";
import { serviceDefinition } from "../helpers/grpc-js.js";
import { fileTree } from "../helpers/files.js";

function tarBytes(files: Record<string, string>, compress?: string): Buffer {
  const dir = fileTree("bk-stdin-unit-", files);
  const r = spawnSync("tar", ["-c", ...(compress ? [compress] : []), "-C", dir, "."]);
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

test("sniffStream: tar, gzip, bzip2 and xz are archives; zstd, text and nothing are told apart", () => {
  const tar = tarBytes({ Dockerfile: "FROM scratch\n" });
  assert.equal(sniffStream(tar.subarray(0, SNIFF_BYTES)), "archive");
  for (const flag of ["-z", "-j", "-J"]) assert.equal(sniffStream(tarBytes({ a: "a" }, flag).subarray(0, SNIFF_BYTES)), "archive", flag);
  assert.equal(sniffStream(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00])), "zstd");
  assert.equal(sniffStream(Buffer.from("FROM alpine\nRUN echo hi\n")), "other");
  assert.equal(sniffStream(Buffer.alloc(0)), "empty");
  // Two zero blocks are a tar's end, not a header; a header with a wrong checksum is not one.
  assert.equal(sniffStream(Buffer.alloc(1024)), "other");
  const bad = Buffer.from(tar.subarray(0, 512));
  bad[0] = bad[0]! ^ 1;
  assert.equal(isTarHeader(bad), false);
  assert.equal(isTarHeader(tar.subarray(0, 511)), false);
  // Text that happens to be 512 bytes long is not a header.
  assert.equal(sniffStream(Buffer.from("x".repeat(1024))), "other");
});

test("peekStream: the head is read across small chunks and the stream gives every byte back, once", async () => {
  const data = randomBytes(5000);
  const p = await peekStream(pieces(data, 7), SNIFF_BYTES, "test stream");
  assert.ok(p.head.length >= SNIFF_BYTES && p.head.length < SNIFF_BYTES + 7);
  assert.equal(p.ended, false);
  const out: Buffer[] = [];
  for await (const c of p.stream) out.push(c);
  assert.deepEqual(Buffer.concat(out), data);
  assert.throws(() => p.stream[Symbol.asyncIterator](), /can be read once/);
  const short = await peekStream(pieces(Buffer.from("abc"), 2), SNIFF_BYTES, "short");
  assert.equal(short.ended, true);
  assert.equal(short.head.toString(), "abc");
  const strings = (async function* () {
    yield "text" as unknown as Uint8Array;
  })();
  await assert.rejects(
    peekStream(strings, 10, "the build context stream"),
    (e: Error) => e instanceof UsageError && /gave a string chunk, not bytes/.test(e.message),
  );
});

test("openContextArchive: an empty, zstd or non-archive stream is a UsageError naming it, and is let go", async () => {
  let returned = 0;
  const tracked = (chunks: Buffer[]): AsyncIterable<Uint8Array> => ({
    [Symbol.asyncIterator]: () => {
      const it = chunks[Symbol.iterator]();
      return {
        next: () => Promise.resolve(it.next()),
        return: () => {
          returned++;
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  });
  await assert.rejects(openContextArchive(tracked([]), "the build context stream"), /^UsageError: the build context stream is empty: give a tar archive/);
  await assert.rejects(
    openContextArchive(tracked([Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(2000)]), Buffer.from("more")]), "the build context stream"),
    /is zstd-compressed/,
  );
  await assert.rejects(
    openContextArchive(tracked([Buffer.from("FROM scratch\n")]), "the build context stream"),
    /is not a tar archive .*dockerfile: \{ contents \}/,
  );
  assert.equal(returned, 1, "the zstd stream, not read to its end, is closed (the other two had ended)");
  const ok = await openContextArchive(tracked([tarBytes({ a: "1" })]), "s");
  await ok.close();
  assert.equal(returned, 2);
});

test("resolveBuild: a stream context is an upload URL (no context local, -f is a path in it); contents are served from memory", () => {
  const stream = pieces(Buffer.alloc(0), 1);
  const r = resolveBuild({ context: stream, dockerfile: "sub/Other.Dockerfile" });
  assert.ok(r.upload);
  assert.equal(r.upload.source, stream);
  assert.match(r.upload.id, /^[a-z0-9]{25}$/);
  assert.equal(r.attrs["context"], `http://buildkit-session/${r.upload.id}`);
  assert.equal(r.attrs["filename"], "sub/Other.Dockerfile");
  assert.deepEqual([...r.dirs.keys()], []);

  const ctx = fileTree("bk-stdin-ctx-", { "a.txt": "a" });
  const c = resolveBuild({ context: ctx, dockerfile: { contents: "FROM scratch\n" } });
  assert.equal(c.dirs.get("context"), ctx);
  const df = c.dirs.get("dockerfile");
  assert.ok(df && typeof df === "object");
  assert.deepEqual([...df.files.entries()], [["Dockerfile", Buffer.from("FROM scratch\n")]]);
  assert.equal(c.attrs["filename"], "Dockerfile");
  assert.equal(c.attrs["dockerfilekey"], "dockerfile");
  assert.equal(c.upload, undefined);

  // No context: an empty one, as buildx's empty temp dir.
  const e = resolveBuild({ dockerfile: { contents: Buffer.from("FROM scratch\n") } });
  const empty = e.dirs.get("context");
  assert.ok(empty && typeof empty === "object");
  assert.equal(empty.files.size, 0);
  assert.notEqual(e.sharedKey, resolveBuild({ dockerfile: { contents: "FROM scratch\n" } }).sharedKey);

  assert.throws(() => resolveBuild({}), /^UsageError: no build context and no Dockerfile/);
  assert.throws(() => resolveBuild({ context: {} as unknown as string }), /^UsageError: build context must be a directory, a URL or an async iterable/);
  assert.throws(() => resolveBuild({ dockerfile: { contents: 5 as unknown as string } }), /^UsageError: dockerfile.contents must be a string or bytes/);
});

test("resolveBuild: 'dockerfile' is used when 'Dockerfile' is missing, as buildx (also for -f DIR/Dockerfile); 'Dockerfile' wins when both exist", () => {
  const lower = fileTree("bk-stdin-lower-", { dockerfile: "FROM scratch\n", "sub/dockerfile": "FROM scratch\n" });
  assert.equal(resolveBuild({ context: lower }).attrs["filename"], "dockerfile");
  assert.equal(resolveBuild({ context: lower, dockerfile: `${lower}/sub/Dockerfile` }).attrs["filename"], "dockerfile");
  const both = fileTree("bk-stdin-both-", { Dockerfile: "FROM scratch\n", dockerfile: "FROM scratch\n" });
  // On a case-insensitive file system both names are one file; here they are two.
  assert.equal(resolveBuild({ context: both }).attrs["filename"], "Dockerfile");
  const neither = fileTree("bk-stdin-neither-", { "Other.Dockerfile": "FROM scratch\n" });
  assert.throws(() => resolveBuild({ context: neither }), /^UsageError: Dockerfile ".*\/Dockerfile" not found/);
  // Only the name Dockerfile falls back.
  assert.throws(() => resolveBuild({ context: lower, dockerfile: `${lower}/Containerfile` }), /not found/);
});

test("CLI stdin: - and -f - together, a terminal, empty stdin, zstd, and a Dockerfile on stdin with -f are refused with one line", async () => {
  assert.throws(() => stdinUse("-", "-"), /^UsageError: can't use stdin for both build context and dockerfile/);
  assert.equal(stdinUse("-", "x"), "context");
  assert.equal(stdinUse(".", "-"), "dockerfile");
  assert.equal(stdinUse(".", undefined), undefined);
  const stdin = (data: Buffer | string, isTTY = false) => ({ isTTY, readable: () => pieces(Buffer.from(data), 100) });
  const opts = (o: Partial<BuildOptions> = {}): BuildOptions => ({ context: "-", ...o });
  await assert.rejects(readStdinInputs(opts(), "context", stdin("", true)), /^UsageError: build context - reads stdin, which is a terminal: pipe/);
  await assert.rejects(readStdinInputs(opts(), "dockerfile", stdin("", true)), /^UsageError: -f - reads the Dockerfile from stdin, which is a terminal/);
  await assert.rejects(readStdinInputs(opts(), "context", undefined), /reads stdin, and there is none here/);
  await assert.rejects(readStdinInputs(opts(), "context", stdin("")), /^UsageError: build context -: stdin is empty/);
  await assert.rejects(readStdinInputs(opts({ context: "." }), "dockerfile", stdin("")), /^UsageError: -f -: stdin is empty/);
  await assert.rejects(readStdinInputs(opts(), "context", stdin(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 9]))), /stdin is zstd-compressed/);
  await assert.rejects(readStdinInputs(opts({ dockerfile: "Dockerfile" }), "context", stdin("FROM scratch\n")), /^UsageError: ambiguous Dockerfile source/);

  const asDockerfile = opts();
  const text = "FROM scratch\n" + "# filler\n".repeat(500);
  await readStdinInputs(asDockerfile, "context", stdin(text));
  assert.equal("context" in asDockerfile, false);
  assert.deepEqual(asDockerfile.dockerfile, { contents: Buffer.from(text) });

  const tar = tarBytes({ Dockerfile: "FROM scratch\n" }, "-z");
  const asArchive = opts();
  await readStdinInputs(asArchive, "context", stdin(tar));
  assert.equal(asArchive.dockerfile, undefined);
  const back: Buffer[] = [];
  for await (const c of asArchive.context as AsyncIterable<Buffer>) back.push(c);
  assert.deepEqual(Buffer.concat(back), tar);

  const f = opts({ context: "." });
  await readStdinInputs(f, "dockerfile", stdin("FROM scratch\n"));
  assert.deepEqual(f, { context: ".", dockerfile: { contents: Buffer.from("FROM scratch\n") } });
});

test("Upload/Pull: the id from urlpath's last element, ≤ 3 MiB messages, OK at the end; an id serves once; a failing source is recorded", async () => {
  const big = randomBytes(MAX_UPLOAD_CHUNK * 2 + 12345);
  const failures = new UploadFailures();
  const failing = (async function* () {
    yield Buffer.from("partial");
    throw new Error("disk on fire");
  })();
  const server = new SessionServer([
    uploadService(
      new Map<string, AsyncIterable<Buffer>>([
        ["abc", pieces(big, big.length)],
        ["bad", failing],
      ]),
      failures,
    ),
  ]);
  const net = createServer((socket) => server.serve(socket));
  await new Promise<void>((r) => net.listen(0, "127.0.0.1", r));
  const client = new grpc.Client(`127.0.0.1:${(net.address() as { port: number }).port}`, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 4 << 20,
  });
  const def = serviceDefinition("moby.upload.v1.Upload")["Pull"]!;
  const pull = (path: string): Promise<{ chunks: Buffer[]; error?: grpc.ServiceError }> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      md.set("urlpath", path);
      md.set("urlhost", "buildkit-session");
      const call = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, md);
      const chunks: Buffer[] = [];
      call.on("data", (m: { data: Buffer }) => chunks.push(m.data));
      call.on("error", (error: grpc.ServiceError) => resolve({ chunks, error }));
      call.on("end", () => resolve({ chunks }));
      call.end();
    });
  try {
    const r = await pull("/abc");
    assert.equal(r.error, undefined);
    assert.ok(r.chunks.every((c) => c.length <= MAX_UPLOAD_CHUNK));
    assert.equal(r.chunks.length, 3);
    assert.deepEqual(Buffer.concat(r.chunks), big);
    const again = await pull("/abc");
    assert.equal(again.error?.code, grpc.status.NOT_FOUND);
    const bad = await pull("/x/bad");
    assert.equal(bad.error?.code, grpc.status.UNKNOWN);
    const failure = failures.first();
    assert.ok(failure instanceof BuildKitError);
    assert.equal(failure.message, "the build context stream failed: disk on fire");
  } finally {
    client.close();
    server.close();
    await new Promise((r) => net.close(r));
  }
});
