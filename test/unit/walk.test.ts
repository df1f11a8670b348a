import { test } from "node:test";
import assert from "node:assert/strict";
import { linkSync, mkdirSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { walk, type WalkOptions } from "../../src/session/fsutil/walk.js";
import { ModeDir, ModeSetuid, ModeSymlink } from "../../src/session/fsutil/mode.js";
import { mdValues } from "../../src/session/filesync.js";
import { headerValues } from "../../src/grpc/server.js";
import { tempDir } from "../helpers/files.js";

async function paths(root: string, opts: WalkOptions = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const e of walk(root, opts)) out.push(e.stat.path);
  return out;
}

function tree(): string {
  const root = tempDir("bk-walk-");
  for (const d of ["a", "a/b", "a.b", "a-b", "z", "empty", "ü", "😀"]) mkdirSync(join(root, d));
  for (const f of ["a/b/c.txt", "a/x.log", "a.b/f", "a-b/f", "z/keep.log", "B", "ü/f", "😀/f", "￿"]) writeFileSync(join(root, f), f);
  return root;
}

test("walk order: UTF-8 byte order, parents first, children before the next sibling", async () => {
  const root = tree();
  assert.deepEqual(await paths(root), [
    "B",
    "a",
    "a/b",
    "a/b/c.txt",
    "a/x.log",
    "a-b",
    "a-b/f",
    "a.b",
    "a.b/f",
    "empty",
    "z",
    "z/keep.log",
    "ü",
    "ü/f",
    "￿",
    "😀",
    "😀/f",
  ]);
});

test("include patterns emit a directory only before its first included child", async () => {
  const root = tree();
  assert.deepEqual(await paths(root, { includePatterns: ["a/b/c.txt", "z"] }), ["a", "a/b", "a/b/c.txt", "z", "z/keep.log"]);
  assert.deepEqual(await paths(root, { includePatterns: ["**/*.log"] }), ["a", "a/x.log", "z", "z/keep.log"]);
});

test("exclude patterns with exceptions descend into excluded directories", async () => {
  const root = tree();
  assert.deepEqual(await paths(root, { excludePatterns: ["a", "z", "!z/keep.log", "ü", "😀", "￿", "a-b", "a.b", "B", "empty"] }), ["z", "z/keep.log"]);
  assert.deepEqual(await paths(root, { excludePatterns: ["**/*.log", "a*", "ü", "😀", "￿", "B"] }), ["empty", "z"]);
});

test("followpaths resolve symlinks inside the root", async () => {
  const root = tree();
  symlinkSync("a/b/c.txt", join(root, "Dockerfile"));
  assert.deepEqual(await paths(root, { followPaths: ["Dockerfile", "missing"] }), ["Dockerfile", "a", "a/b", "a/b/c.txt"]);
});

test("stat fields: Go modes, links not followed, hardlinks, sockets skipped, uid/gid 0", async () => {
  const root = tempDir("bk-walk-");
  const outside = tempDir("bk-out-");
  writeFileSync(join(outside, "secret"), "x");
  writeFileSync(join(root, "h1"), "same");
  linkSync(join(root, "h1"), join(root, "h2"));
  symlinkSync(join(outside, "secret"), join(root, "out"));
  writeFileSync(join(root, "suid"), "");
  chmodSync(join(root, "suid"), 0o4755);
  const server = createServer();
  await new Promise<void>((r) => server.listen(join(root, "sock"), r));
  try {
    const entries = new Map<string, Awaited<ReturnType<typeof walk>> extends AsyncGenerator<infer E> ? E : never>();
    for await (const e of walk(root)) entries.set(e.stat.path, e);
    assert.deepEqual([...entries.keys()], ["h1", "h2", "out", "suid"], "the socket is skipped");
    assert.equal(entries.get("h2")!.stat.linkname, "h1");
    assert.equal(entries.get("h2")!.stat.size, 0n);
    assert.equal(entries.get("h1")!.stat.size, 4n);
    const link = entries.get("out")!;
    assert.equal(link.stat.mode, (ModeSymlink | 0o777) >>> 0);
    assert.equal(link.stat.linkname, join(outside, "secret"));
    assert.equal(link.requestable, false, "a symlink's target is never read");
    assert.equal(entries.get("suid")!.stat.mode, (ModeSetuid | 0o755) >>> 0);
    assert.ok(/^\d{19}$/.test(String(entries.get("h1")!.stat.modTime)), "mtime in nanoseconds");
    for (const e of entries.values()) assert.equal(e.stat.uid + e.stat.gid, 0);
  } finally {
    server.close();
  }
  const d = tempDir("bk-walk-");
  mkdirSync(join(d, "x"));
  chmodSync(join(d, "x"), 0o755);
  const [first] = await paths(d).then(async () => {
    const out = [];
    for await (const e of walk(d)) out.push(e.stat.mode);
    return out;
  });
  assert.equal(first, (ModeDir | 0o755) >>> 0);
  assert.equal(first, 2147484141);
});

test("metadata lists: repeated fields in order, -encoded values unescaped", () => {
  const call = (rawHeaders: string[]) => ({
    metadata: (k: string) => headerValues(rawHeaders, k),
    metadataKeys: () => [],
    signal: new AbortController().signal,
  });
  const md = call(["followpaths", "Dockerfile", ":path", "/x", "followpaths", "Dockerfile.dockerignore", "followpaths", "a, b"]);
  assert.deepEqual(mdValues(md, "followpaths"), ["Dockerfile", "Dockerfile.dockerignore", "a, b"]);
  const enc = call(["exclude-patterns", "%E5%90%8D%E5%89%8D%2F%2A.txt", "exclude-patterns", "a+b", "exclude-patterns-encoded", "1"]);
  assert.deepEqual(mdValues(enc, "exclude-patterns"), ["名前/*.txt", "a b"]);
});

test("walk across batches: 700 ASCII names in order, and an include pattern that skips all but one", async () => {
  const root = tempDir("bk-walk-");
  const names = Array.from({ length: 700 }, (_, i) => `f${String(i).padStart(3, "0")}${i % 2 ? "_" : "-"}`);
  for (const n of names) writeFileSync(join(root, n), n);
  mkdirSync(join(root, "zz"));
  writeFileSync(join(root, "zz/last"), "x");
  const byteOrder = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(await paths(root), [...byteOrder, "zz", "zz/last"]);
  assert.deepEqual(await paths(root, { includePatterns: ["zz/last"] }), ["zz", "zz/last"]);
});
