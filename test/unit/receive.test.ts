import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  close,
  closeSync,
  constants,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  open,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiveDiffCopy, type ReceiveStats } from "../../src/session/fsutil/receive.js";
import { utimeArg } from "../../src/files.js";
import { ModeCharDevice, ModeDevice, ModeDir, ModeIrregular, ModeNamedPipe, ModeSocket, ModeSymlink } from "../../src/session/fsutil/mode.js";
import { dataPacketHead, errPacket, finPacket, reqPacket, statPacket, decodePacket } from "../../src/session/fsutil/wire.js";
import { codec } from "../../src/grpc/codec.js";
import { FakeDaemon, data, scriptOf, stat, type FakeDaemonOptions } from "../helpers/fsutil-daemon.js";
import { comparable, snapshot } from "../helpers/tree.js";
import { tempDir } from "../helpers/files.js";

const DIR = (perm = 0o755): number => (ModeDir | perm) >>> 0;
const LINK = (ModeSymlink | 0o777) >>> 0;
const END = statPacket();
const isRoot = process.getuid?.() === 0;

/** Fails a test that would otherwise hang. */
async function bounded<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function receive(root: string, opts: FakeDaemonOptions, signal?: AbortSignal): Promise<{ d: FakeDaemon; stats: ReceiveStats }> {
  const d = new FakeDaemon(opts);
  const stats = await bounded(receiveDiffCopy(d.messages, d.send, signal ? { root, signal } : { root }));
  return { d, stats };
}

async function receiveError(root: string, opts: FakeDaemonOptions, signal?: AbortSignal): Promise<{ d: FakeDaemon; error: Error }> {
  const d = new FakeDaemon(opts);
  try {
    await bounded(receiveDiffCopy(d.messages, d.send, signal ? { root, signal } : { root }));
  } catch (e) {
    assert.ok(e instanceof Error, `rejects with an Error, not ${String(e)}`);
    return { d, error: e };
  }
  assert.fail("the receive succeeded");
}

/** Sets mtimes deepest first (a directory's after its children), µs values. */
function setTimes(root: string, rel: string[], base: number): void {
  for (const [i, r] of [...rel].reverse().entries()) {
    const t = base + i * 1000.123456;
    const p = join(root, r);
    if (lstatSync(p).isSymbolicLink()) lutimesSync(p, t, t);
    else utimesSync(p, t, t);
  }
}

test("a real tree arrives whole: dirs, files of every size, read-only, setuid/setgid/sticky, symlinks, hardlinks, mtimes", async (t) => {
  const src = tempDir("bk-rx-src-", t);
  const big = randomBytes((1 << 20) + 3);
  mkdirSync(join(src, "a"));
  writeFileSync(join(src, "a/big"), big);
  writeFileSync(join(src, "a/chunk"), randomBytes(32 * 1024));
  writeFileSync(join(src, "a/empty"), "");
  writeFileSync(join(src, "a/ro"), "read only");
  chmodSync(join(src, "a/ro"), 0o444);
  writeFileSync(join(src, "a/suid"), "#!/bin/sh\n");
  chmodSync(join(src, "a/suid"), 0o4755);
  writeFileSync(join(src, "a/sgid"), "x");
  chmodSync(join(src, "a/sgid"), 0o2711);
  linkSync(join(src, "a/big"), join(src, "a/hl"));
  linkSync(join(src, "a/empty"), join(src, "a/hl-empty"));
  mkdirSync(join(src, "b-ro"));
  writeFileSync(join(src, "b-ro/x"), "in a read-only dir");
  chmodSync(join(src, "b-ro/x"), 0o600);
  mkdirSync(join(src, "b-ro/deeper"));
  chmodSync(join(src, "b-ro/deeper"), 0o500);
  chmodSync(join(src, "b-ro"), 0o555);
  symlinkSync("/etc/passwd", join(src, "l-abs"));
  symlinkSync("a/big", join(src, "l-rel"));
  symlinkSync("nowhere/x", join(src, "l-dangling"));
  mkdirSync(join(src, "sticky"));
  chmodSync(join(src, "sticky"), 0o1777);
  writeFileSync(join(src, "\uffff"), "BMP last");
  writeFileSync(join(src, "😀"), "astral after it in UTF-8");
  const all = snapshot(src).map((e) => e.path);
  setTimes(src, all, 978307200.5);

  const { script, content } = await scriptOf(src);
  const dest = tempDir("bk-rx-dst-", t);
  const { d, stats } = await receive(dest, { script, content });

  assert.deepEqual(comparable(snapshot(dest)), comparable(snapshot(src)), "same entries, types, modes, sizes, content, link targets, mtimes");
  assert.equal(lstatSync(join(dest, "a/hl")).ino, lstatSync(join(dest, "a/big")).ino, "a hardlink is a link, not a copy");
  assert.equal(lstatSync(join(dest, "a/hl-empty")).ino, lstatSync(join(dest, "a/empty")).ino);
  assert.equal(statSync(join(dest, "a/suid")).mode & 0o7777, 0o4755, "setuid survives the writes");

  const files = snapshot(src).filter((e) => e.type === "file");
  const regular = new Set(files.map((e) => e.ino)).size;
  assert.deepEqual(stats, {
    entries: script.length - 1,
    files: regular,
    bytes: files.filter((e) => e.path !== "a/hl").reduce((n, e) => n + e.size, 0),
    xattrEntries: 0,
  });
  const nonEmpty = [...content].filter(([, p]) => statSync(p).size > 0).map(([id]) => id);
  assert.deepEqual(
    [...d.requested].sort((x, y) => x - y),
    nonEmpty,
    "every non-empty regular file requested once; no hardlink, empty file or directory",
  );
  assert.deepEqual(
    d.received.map((p) => p.type).filter((ty) => ty !== 1),
    [3],
    "one FIN, no ERR",
  );
});

test("mtimes: exact to the microsecond (libuv keeps no more), before 1970 too; directories set after their children", async (t) => {
  const dest = tempDir("bk-rx-", t);
  const script = [
    stat("d", DIR(), { modTime: 1_234_567_890_123_456_789n }),
    stat("d/f", 0o644, { modTime: -1_500_000_000n, size: 3n }),
    stat("d/sub", DIR(0o700), { modTime: 999n }),
    stat("d/sub/deep", 0o600, { modTime: 86_400_000_000_001n, size: 1n }),
    stat("d/sub/l", LINK, { linkname: "../f", modTime: 5_000_000_001n }),
    stat("e", DIR(), { modTime: -86_400_000_000_000n + 7000n }),
    END,
  ];
  await receive(dest, {
    script,
    content: new Map([
      [1, Buffer.from("abc")],
      [3, Buffer.from("z")],
    ]),
  });
  const m = (p: string): bigint => lstatSync(join(dest, p), { bigint: true }).mtimeNs;
  assert.equal(m("d"), 1_234_567_890_123_456_000n);
  assert.equal(m("d/f"), -1_500_000_000n);
  assert.equal(m("d/sub"), 0n);
  assert.equal(m("d/sub/deep"), 86_400_000_000_000n);
  assert.equal(m("d/sub/l"), 5_000_000_000n);
  assert.equal(m("e"), -86_400_000_000_000n + 7000n);
  assert.equal(lstatSync(join(dest, "d/sub")).mode & 0o777, 0o700);
});

test("utimeArg lands on the microsecond after libuv's truncation", (t) => {
  const dir = tempDir("bk-rx-", t);
  const f = join(dir, "f");
  writeFileSync(f, "");
  for (const ns of [
    0n,
    1n,
    999n,
    1000n,
    1_700_000_000_999_999_999n,
    -1n,
    -1000n,
    -1001n,
    -999_999_999n,
    -1_000_000_000n,
    -2_000_000_000_000_000_001n,
    4_102_444_800_000_001_000n,
  ]) {
    const arg = utimeArg(ns);
    utimesSync(f, arg, arg);
    const us = ns / 1000n - (ns % 1000n < 0n ? 1n : 0n);
    assert.equal(statSync(f, { bigint: true }).mtimeNs, us * 1000n, `${ns} ns`);
  }
});

test("xattrs and owners in the stream: owners become ours (as the Go client does), xattrs are counted for a warning (Node.js cannot set them)", async (t) => {
  const dest = tempDir("bk-rx-", t);
  const enc = codec("fsutil.types.Packet");
  const script = [
    enc.encode({
      type: "PACKET_STAT",
      stat: { path: "f", mode: 0o640, uid: 1234, gid: 5678, size: "2", xattrs: { "user.test": Buffer.from("v"), "security.selinux": Buffer.from("x") } },
    }),
    enc.encode({ type: "PACKET_STAT", stat: { path: "g", mode: DIR(), uid: 1, gid: 1, xattrs: { "trusted.x": Buffer.alloc(0) } } }),
    END,
  ];
  const { stats } = await receive(dest, { script, content: new Map([[0, Buffer.from("hi")]]) });
  assert.equal(stats.xattrEntries, 2);
  assert.equal(stats.xattrExample, '"f" ("user.test", "security.selinux")');
  const none = await receive(tempDir("bk-rx-", t), { script: [enc.encode({ type: "PACKET_STAT", stat: { path: "h", mode: 0o644, size: "0" } }), END] });
  assert.equal(none.stats.xattrEntries, 0);
  assert.equal(none.stats.xattrExample, undefined);
  for (const p of ["f", "g"]) {
    const st = lstatSync(join(dest, p));
    assert.equal(st.uid, process.getuid?.());
    assert.equal(st.gid, process.getgid?.());
  }
  assert.equal(readFileSync(join(dest, "f"), "utf8"), "hi");
});

test("FIN handshake: resolves on the daemon's FIN without waiting for the end of the call; a cancel after our FIN is the end too", async (t) => {
  for (const opts of [
    { afterFin: "hang" },
    { afterFin: "end" },
    { afterFin: "throw" },
    { answerFin: false, afterFin: "throw" },
    { answerFin: false, afterFin: "end" },
  ] as const) {
    const dest = tempDir("bk-rx-", t);
    const { d, stats } = await receive(dest, { script: [stat("f", 0o644, { size: 1n }), END], content: new Map([[0, Buffer.from("x")]]), ...opts });
    assert.deepEqual(stats, { entries: 1, files: 1, bytes: 1, xattrEntries: 0 }, JSON.stringify(opts));
    assert.equal(d.received.at(-1)?.type, 3, "FIN was the last thing sent");
  }
  // An empty export: FIN right after the end of the walk.
  const { d } = await receive(tempDir("bk-rx-", t), { script: [END] });
  assert.deepEqual(
    d.received.map((p) => p.type),
    [3],
  );
  // The daemon fails after our FIN instead of answering it.
  const { error } = await receiveError(tempDir("bk-rx-", t), { script: [END, errPacket("export failed late")], answerFin: false });
  assert.match(error.message, /^error from sender: export failed late$/);
});

test("two receivers into one root at the same time (multi-platform, with and without platform split)", async (t) => {
  const dest = tempDir("bk-rx-", t);
  const platform = (name: string, extra: string): FakeDaemonOptions => ({
    script: [
      stat(name, DIR(), { modTime: 1_000_000_000_000n }),
      stat(`${name}/usr`, DIR()),
      stat(`${name}/usr/bin`, DIR()),
      stat(`${name}/usr/bin/tool`, 0o755, { size: 4n }),
      stat(`${name}/usr/${extra}`, 0o644, { size: 100_000n }),
      END,
    ],
    content: new Map([
      [3, Buffer.from(name.slice(0, 4))],
      [4, Buffer.alloc(100_000, name.length)],
    ]),
  });
  const shared = (extra: string, n: number): FakeDaemonOptions => ({
    script: [stat("usr", DIR(), { modTime: 2_000_000_000_000n }), stat("usr/share", DIR()), stat(`usr/share/${extra}`, 0o644, { size: BigInt(n) }), END],
    content: new Map([[2, Buffer.alloc(n, 1)]]),
  });
  const results = await Promise.all([
    receive(dest, platform("linux_amd64", "x-a")),
    receive(dest, platform("linux_arm64", "x-b")),
    receive(dest, shared("from-amd64", 70_000)),
    receive(dest, shared("from-arm64", 50_000)),
  ]);
  assert.equal(results.length, 4);
  assert.equal(readFileSync(join(dest, "linux_amd64/usr/bin/tool"), "utf8"), "linu");
  assert.equal(readFileSync(join(dest, "linux_arm64/usr/x-b")).length, 100_000);
  assert.deepEqual(readdirSync(join(dest, "usr/share")).sort(), ["from-amd64", "from-arm64"]);
  assert.equal(lstatSync(join(dest, "linux_amd64"), { bigint: true }).mtimeNs, 1_000_000_000_000n);
  assert.equal(readdirSync(dest).filter((n) => n.startsWith(".tmp.")).length, 0, "no temporary entries left");
});

test("merging into an existing tree: symlinks there are replaced, never followed; file <-> dir swaps; nothing else removed", async (t) => {
  const base = tempDir("bk-rx-", t);
  const outside = join(base, "outside");
  const dest = join(base, "dest");
  mkdirSync(join(outside, "dir"), { recursive: true });
  writeFileSync(join(outside, "secret"), "secret");
  mkdirSync(dest);
  symlinkSync(join(outside, "secret"), join(dest, "sl-file"));
  symlinkSync(join(outside, "dir"), join(dest, "sl-dir"));
  symlinkSync("../outside", join(dest, "sl-rel"));
  writeFileSync(join(dest, "was-file"), "old file");
  mkdirSync(join(dest, "was-dir/sub"), { recursive: true });
  writeFileSync(join(dest, "was-dir/sub/old.txt"), "old");
  mkdirSync(join(dest, "keep"), 0o700);
  writeFileSync(join(dest, "keep/old"), "kept");
  linkSync(join(outside, "secret"), join(dest, "hard"));
  writeFileSync(join(dest, "ro-existing"), "old");
  chmodSync(join(dest, "ro-existing"), 0o444);
  writeFileSync(join(dest, "unrelated"), "stays");
  const outsideBefore = snapshot(outside);

  const script = [
    stat("hard", 0o644, { size: 8n }), // 0
    stat("keep", DIR(0o755), { modTime: 3_000_000_000_000n }), // 1
    stat("keep/new", 0o644, { size: 3n }), // 2
    stat("ro-existing", 0o644, { size: 3n }), // 3
    stat("sl-dir", DIR()), // 4
    stat("sl-dir/x", 0o644, { size: 1n }), // 5
    stat("sl-file", 0o600, { size: 3n }), // 6
    stat("sl-rel", DIR()), // 7
    stat("sl-rel/secret", 0o644, { size: 3n }), // 8
    stat("was-dir", 0o644, { size: 4n }), // 9
    stat("was-file", DIR()), // 10
    stat("was-file/child", LINK, { linkname: "/etc" }), // 11
    END,
  ];
  const content = new Map<number, Buffer>([
    [0, Buffer.from("replaced")],
    [2, Buffer.from("new")],
    [3, Buffer.from("abc")],
    [5, Buffer.from("x")],
    [6, Buffer.from("new")],
    [8, Buffer.from("own")],
    [9, Buffer.from("file")],
  ]);
  await receive(dest, { script, content });

  assert.deepEqual(comparable(snapshot(outside)), comparable(outsideBefore), "nothing outside the destination changed (but a link count)");
  assert.equal(readFileSync(join(outside, "secret"), "utf8"), "secret");
  assert.equal(readFileSync(join(dest, "hard"), "utf8"), "replaced");
  assert.notEqual(lstatSync(join(dest, "hard")).ino, lstatSync(join(outside, "secret")).ino, "a hardlink there is replaced, not written through");
  assert.deepEqual(readdirSync(join(dest, "keep")).sort(), ["new", "old"]);
  assert.equal(lstatSync(join(dest, "keep")).mode & 0o777, 0o755);
  assert.equal(lstatSync(join(dest, "keep"), { bigint: true }).mtimeNs, 3_000_000_000_000n);
  assert.equal(readFileSync(join(dest, "ro-existing"), "utf8"), "abc");
  for (const p of ["sl-dir", "sl-rel"]) assert.ok(lstatSync(join(dest, p)).isDirectory(), `${p} is a real directory now`);
  assert.ok(lstatSync(join(dest, "sl-file")).isFile());
  assert.equal(readFileSync(join(dest, "sl-file"), "utf8"), "new");
  assert.equal(readFileSync(join(dest, "sl-rel/secret"), "utf8"), "own");
  assert.equal(readFileSync(join(dest, "was-dir"), "utf8"), "file");
  assert.equal(readlinkSync(join(dest, "was-file/child")), "/etc");
  assert.equal(readFileSync(join(dest, "unrelated"), "utf8"), "stays");
  assert.equal(readdirSync(dest).filter((n) => n.startsWith(".tmp.")).length, 0);
});

interface BadCase {
  name: string;
  script: Buffer[];
  error: RegExp;
  opts?: Partial<FakeDaemonOptions>;
  /** The receiver legitimately sent FIN before the violation came. */
  fin?: true;
}

const F = 0o644;
const badCases: BadCase[] = [
  // paths, in fsutil's order of checks
  ...["a//b", "./a", "a/", "a/../b", "", "a/.", "/..", "//x"].map((p) => ({
    name: `unclean ${JSON.stringify(p)}`,
    script: [stat(p, F)],
    error: /^unclean path "/,
  })),
  { name: "absolute", script: [stat("/etc/passwd", F)], error: /^absolute path "\/etc\/passwd"$/ },
  { name: "root itself", script: [stat("/", DIR())], error: /^absolute path "\/"$/ },
  ...["..", "../x", "../../x", "../a/b"].map((p) => ({ name: `escape ${p}`, script: [stat(p, DIR())], error: /escapes the destination \(escape check\)$/ })),
  { name: "dot", script: [stat(".", DIR())], error: /^invalid path "\.": the destination root itself is never sent$/ },
  { name: "NUL", script: [stat("a\0b", F)], error: /^invalid path "a\\u0000b": it contains a NUL byte$/ },
  {
    name: "path over 4096 bytes",
    script: [stat(Array.from({ length: 30 }, () => "x".repeat(200)).join("/"), F)],
    error: /^path "x{200}…" is longer than 4096 bytes$/,
  },
  { name: "name over 255 bytes", script: [stat("n".repeat(256), F)], error: /^name "n{200}…" in "n{200}…" is longer than 255 bytes$/ },
  { name: "name over 255 bytes (UTF-8)", script: [stat(`d/${"é".repeat(128)}`, F)], error: /longer than 255 bytes$/ },
  { name: "parent name over 255 bytes", script: [stat(`${"p".repeat(300)}/f`, F)], error: /^name "p{200}…" in ".*" is longer than 255 bytes$/ },
  // order
  { name: "siblings backwards", script: [stat("b", F), stat("a", F)], error: /^changes out of order: "a" "b"$/ },
  { name: "duplicate", script: [stat("a", F), stat("a", F)], error: /^changes out of order: "a" "a"$/ },
  { name: "duplicate dir", script: [stat("a", DIR()), stat("a", DIR())], error: /^changes out of order: "a" "a"$/ },
  { name: "child before its parent", script: [stat("a/b", F)], error: /^changes out of order: "a\/b" ""$/ },
  { name: "child of a file", script: [stat("f", F), stat("f/x", F)], error: /^changes out of order: "f\/x" "f"$/ },
  { name: "child of a symlink", script: [stat("l", LINK, { linkname: "/etc" }), stat("l/passwd", F)], error: /^changes out of order: "l\/passwd" "l"$/ },
  { name: "child of a hardlink", script: [stat("f", F), stat("h", F, { linkname: "f" }), stat("h/x", F)], error: /^changes out of order: "h\/x" "h"$/ },
  { name: "back into a closed dir", script: [stat("a", DIR()), stat("b", F), stat("a/x", F)], error: /^changes out of order: "a\/x" "b"$/ },
  { name: "siblings backwards in a dir", script: [stat("a", DIR()), stat("a/y", F), stat("a/x", F)], error: /^changes out of order: "a\/x" "a\/y"$/ },
  { name: "UTF-16 order is not byte order", script: [stat("😀", F), stat("\uffff", F)], error: /^changes out of order: "\uffff" "😀"$/ },
  { name: "slash order", script: [stat("a", DIR()), stat("a-b", F), stat("a/c", F)], error: /^changes out of order: "a\/c" "a-b"$/ },
  // modes
  { name: "unknown mode bit", script: [stat("f", 0o644 | 0x200)], error: /^invalid mode 0x000003a4 for "f": unknown bits 0x200$/ },
  { name: "ModeAppend", script: [stat("f", (0x40000000 | 0o644) >>> 0)], error: /^invalid mode 0x400001a4 for "f": unknown bits 0x40000000$/ },
  { name: "dir and symlink", script: [stat("f", (ModeDir | ModeSymlink | 0o777) >>> 0)], error: /^invalid mode 0x880001ff for "f": more than one file type$/ },
  { name: "char bit alone", script: [stat("f", ModeCharDevice | 0o600)], error: /character device bit without the device bit$/ },
  {
    name: "block device",
    script: [stat("dev", ModeDevice | 0o600, { devmajor: 8, devminor: 1 })],
    error: /^cannot create "dev": it is a block device, and Node.js cannot create device nodes/,
  },
  {
    name: "char device",
    script: [stat("null", (ModeDevice | ModeCharDevice | 0o666) >>> 0, { devmajor: 1, devminor: 3 })],
    error: /it is a character device, and Node.js cannot create device nodes \(no mknod\); use type=tar/,
  },
  { name: "FIFO", script: [stat("p", ModeNamedPipe | 0o644)], error: /^cannot create "p": it is a named pipe \(FIFO\)/ },
  { name: "socket", script: [stat("s", ModeSocket | 0o755)], error: /^cannot create "s": it is a socket/ },
  { name: "irregular", script: [stat("i", ModeIrregular | 0o644)], error: /irregular file/ },
  // hardlinks
  {
    name: "hardlink to nothing",
    script: [stat("h", F, { linkname: "nope" })],
    error: /^invalid link "h" to unknown path: "nope" \(a hardlink must name a regular file sent earlier in this stream\)$/,
  },
  { name: "hardlink to a later file", script: [stat("a", F, { linkname: "b" }), stat("b", F)], error: /^invalid link "a" to unknown path: "b"/ },
  { name: "hardlink to a dir", script: [stat("d", DIR()), stat("e", F, { linkname: "d" })], error: /^invalid link "e" to unknown path: "d"/ },
  {
    name: "hardlink to a symlink",
    script: [stat("l", LINK, { linkname: "/etc/passwd" }), stat("m", F, { linkname: "l" })],
    error: /^invalid link "m" to unknown path: "l"/,
  },
  {
    name: "hardlink to a hardlink",
    script: [stat("a", F), stat("b", F, { linkname: "a" }), stat("c", F, { linkname: "b" })],
    error: /^invalid link "c" to unknown path: "b"/,
  },
  { name: "hardlink outside", script: [stat("h", F, { linkname: "../../etc/passwd" })], error: /^invalid link "h" to unknown path: "..\/..\/etc\/passwd"/ },
  { name: "hardlink absolute", script: [stat("h", F, { linkname: "/etc/passwd" })], error: /^invalid link "h" to unknown path: "\/etc\/passwd"/ },
  { name: "hardlink unclean", script: [stat("a", F), stat("h", F, { linkname: "./a" })], error: /^invalid link "h" to unknown path: ".\/a"/ },
  // other fields
  { name: "symlink without a target", script: [stat("l", LINK)], error: /^symlink "l" has an empty target$/ },
  { name: "symlink target with NUL", script: [stat("l", LINK, { linkname: "a\0b" })], error: /^symlink "l" has a target with a NUL byte$/ },
  {
    name: "symlink target over 4095 bytes",
    script: [stat("l", LINK, { linkname: "t".repeat(4096) })],
    error: /^symlink "l" has a target longer than 4095 bytes$/,
  },
  { name: "negative size", script: [stat("f", F, { size: -1n })], error: /^invalid size -1 for "f"$/ },
  { name: "size past 2^53", script: [stat("f", F, { size: 2n ** 60n })], error: /^invalid size 1152921504606846976 for "f"$/ },
  // data
  {
    name: "DATA for a directory id",
    script: [stat("d", DIR()), data(0, "x")],
    error: /^invalid file request 0: DATA for a file that was not requested or is already complete$/,
    opts: { after: "hang" },
  },
  { name: "DATA for an empty file (never requested)", script: [stat("f", F), data(0, "x")], error: /^invalid file request 0/, opts: { after: "hang" } },
  {
    name: "DATA for a hardlink id",
    script: [stat("f", F, { size: 1n }), stat("h", F, { linkname: "f" }), data(1, "x")],
    error: /^invalid file request 1/,
    opts: { after: "hang" },
  },
  { name: "DATA for an unknown id", script: [stat("f", F, { size: 1n }), data(99, "x")], error: /^invalid file request 99/, opts: { after: "hang" } },
  {
    name: "DATA after its end",
    script: [stat("f", F, { size: 3n }), data(0, "abc"), dataPacketHead(0, 0), data(0, "d")],
    error: /^invalid file request 0/,
    opts: { after: "end" },
  },
  {
    name: "EOF twice",
    script: [stat("f", F, { size: 3n }), data(0, "abc"), dataPacketHead(0, 0), dataPacketHead(0, 0)],
    error: /^invalid file request 0/,
    opts: { after: "end" },
  },
  {
    name: "more than the size",
    script: [stat("f", F, { size: 2n }), data(0, "abc")],
    error: /^received more than the 2 bytes announced for "f"$/,
    opts: { after: "end" },
  },
  {
    name: "less than the size",
    script: [stat("f", F, { size: 5n }), data(0, "abc"), dataPacketHead(0, 0)],
    error: /^received 3 of the 5 bytes announced for "f"$/,
    opts: { after: "end" },
  },
  // packets and the stream
  { name: "STAT after the end of the walk", script: [stat("a", DIR()), END, stat("b", F)], error: /^STAT for "b" after the end of the walk$/, fin: true },
  { name: "two ends of the walk", script: [END, END], error: /^buildkitd ended the walk twice$/, fin: true },
  {
    name: "FIN too early",
    script: [stat("f", F, { size: 3n }), END, finPacket()],
    error: /^buildkitd sent FIN before the transfer was complete$/,
    opts: { after: "end" },
  },
  { name: "ERR from the sender", script: [stat("a", DIR()), errPacket("failed to walk: boom")], error: /^error from sender: failed to walk: boom$/ },
  { name: "REQ from the sender", script: [reqPacket(0)], error: /^unexpected packet from buildkitd \(type REQ\)$/ },
  { name: "unknown packet type", script: [Buffer.from([0x08, 0x09])], error: /^unexpected packet from buildkitd \(type 9\)$/ },
  {
    name: "malformed packet",
    script: [Buffer.from([0x12, 0x05, 0x0a])],
    error: /^malformed packet from buildkitd: length-delimited field runs past the end of the message$/,
  },
  { name: "path not UTF-8", script: [Buffer.from([0x12, 0x03, 0x0a, 0x01, 0xff])], error: /^malformed packet from buildkitd: Stat.path is not valid UTF-8$/ },
  {
    name: "ends before the end of the walk",
    script: [stat("a", DIR())],
    error: /^the stream from buildkitd ended before the transfer was complete \(truncated: no FIN\)$/,
    opts: { after: "end" },
  },
  { name: "ends in the middle of a file", script: [stat("f", F, { size: 10n }), END, data(0, "abc")], error: /truncated: no FIN/, opts: { after: "end" } },
  { name: "ends with nothing at all", script: [], error: /truncated: no FIN/, opts: { after: "end" } },
  { name: "the stream fails", script: [stat("a", DIR())], error: /^the stream from buildkitd failed: stream reset by peer$/, opts: { after: "throw" } },
];

test("every validation error: rejected with its message, sent to the daemon as ERR, nothing written outside", async (t) => {
  const base = tempDir("bk-rx-bad-", t);
  mkdirSync(join(base, "outside"));
  writeFileSync(join(base, "outside/passwd"), "root:x:0:0");
  const before = snapshot(base);
  for (const [i, c] of badCases.entries()) {
    const root = join(base, `r${i}`);
    mkdirSync(root);
    const { d, error } = await receiveError(root, { script: c.script, ...c.opts });
    assert.match(error.message, c.error, c.name);
    assert.equal(d.receiverError, error.message, `${c.name}: the daemon got the same message`);
    assert.equal(d.received.filter((p) => p.type === 3).length, c.fin ? 1 : 0, `${c.name}: FIN only when the walk had ended`);
    assert.ok(!/\n/.test(error.message), `${c.name}: one line`);
    assert.deepEqual(
      snapshot(base).filter((e) => !/^r\d+(\/|$)/.test(e.path)),
      before,
      `${c.name}: nothing outside the root`,
    );
    assert.equal(readdirSync(root).filter((n) => n.startsWith(".tmp.")).length, 0, `${c.name}: no temporary entries`);
  }
});

test("a root that is not a directory is refused, with ERR", async (t) => {
  const base = tempDir("bk-rx-", t);
  writeFileSync(join(base, "file"), "");
  for (const [root, reason] of [
    [join(base, "missing"), /no such file or directory/],
    [join(base, "file"), /not a directory/],
  ] as const) {
    const { d, error } = await receiveError(root, { script: [END] });
    assert.match(
      error.message,
      new RegExp(`^cannot receive into ${JSON.stringify(root).replace(/[/.]/g, "\\$&")}: ${reason.source}; it must be an existing directory$`),
    );
    assert.equal(d.receiverError, error.message);
  }
});

test("cancelled through the signal: rejects, sends ERR, and leaves no write in flight", async (t) => {
  const dest = tempDir("bk-rx-", t);
  const ac = new AbortController();
  const d = new FakeDaemon({ script: [stat("f", F, { size: 1_000_000n }), data(0, Buffer.alloc(100_000))], after: "hang" });
  const p = receiveDiffCopy(d.messages, d.send, { root: dest, signal: ac.signal });
  setTimeout(() => ac.abort(new Error("user pressed ^C")), 50);
  await assert.rejects(bounded(p), (e: Error) => {
    assert.match(e.message, /^receiving into .* was cancelled$/);
    assert.equal((e.cause as Error).message, "user pressed ^C");
    return true;
  });
  assert.match(d.receiverError ?? "", /was cancelled/);
  // Already aborted before it starts.
  const d2 = new FakeDaemon({ script: [END] });
  await assert.rejects(bounded(receiveDiffCopy(d2.messages, d2.send, { root: dest, signal: AbortSignal.abort() })), /was cancelled/);
});

test("memory stays bounded: reading stops while more than 8 MiB wait to be written (a disk that does not write)", async (t) => {
  const dest = tempDir("bk-rx-", t);
  const total = 64 << 20;
  const chunk = 32 * 1024;
  let yielded = 0;
  let fin: () => void = () => undefined;
  const finSent = new Promise<void>((r) => (fin = r));
  // A sender as fast as memory: every DATA is ready the moment it is asked for.
  async function* messages(): AsyncGenerator<Buffer> {
    yield stat("big", F, { size: BigInt(total) });
    yield END;
    const body = Buffer.alloc(chunk, 1);
    for (let off = 0; off < total; off += chunk) {
      yielded += chunk;
      yield Buffer.concat([dataPacketHead(0, chunk), body]);
    }
    yield dataPacketHead(0, 0);
    await finSent;
    yield finPacket();
  }
  // The disk stops: every thread of libuv's pool, which runs the writes,
  // waits in open() on a FIFO until the test opens the other end.
  const fifos = [0, 1, 2, 3].map((i) => join(dest, `fifo${i}`));
  assert.equal(spawnSync("mkfifo", fifos).status, 0);
  const blocked = fifos.map((f) => new Promise<void>((resolve) => open(f, "r", (err, fd) => (err ? resolve() : close(fd, () => resolve())))));
  const release = (): void => {
    for (const f of fifos) closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
  };
  const receiving = receiveDiffCopy(
    messages(),
    async (p) => {
      if (decodePacket(p).type === 3) fin();
    },
    { root: dest },
  );
  await new Promise((r) => setTimeout(r, 300));
  const whileStopped = yielded;
  release();
  await Promise.all(blocked);
  const stats = await bounded(receiving, 60_000);
  assert.equal(stats.bytes, total);
  assert.equal(readFileSync(join(dest, "big")).length, total);
  assert.ok(whileStopped <= (8 << 20) + chunk, `at most 8 MiB + one chunk read while nothing could be written (was ${whileStopped})`);
  assert.ok(whileStopped >= 8 << 20, `it read up to the mark (${whileStopped})`);
});

test("as an unprivileged user: read-only files and directories still get their content, then their modes", async (t) => {
  const src = tempDir("bk-rx-src-", t);
  mkdirSync(join(src, "ro/sub"), { recursive: true });
  writeFileSync(join(src, "ro/f"), "content of a 0444 file");
  chmodSync(join(src, "ro/f"), 0o444);
  writeFileSync(join(src, "ro/sub/g"), "below a 0500 dir");
  chmodSync(join(src, "ro/sub/g"), 0o400);
  chmodSync(join(src, "ro/sub"), 0o500);
  chmodSync(join(src, "ro"), 0o555);
  chmodSync(src, 0o755);
  const dest = tempDir("bk-rx-dst-", t);
  // An existing read-only directory in the destination is entered too.
  mkdirSync(join(dest, "ro"));
  writeFileSync(join(dest, "ro/existing"), "x");
  const existingMode = statSync(join(dest, "ro/existing")).mode & 0o777;
  chmodSync(join(dest, "ro"), 0o555);
  if (isRoot) {
    spawnSync("chown", ["-R", "65534:65534", src]);
    chownSync(dest, 65534, 65534);
    chownSync(join(dest, "ro"), 65534, 65534);
    chownSync(join(dest, "ro/existing"), 65534, 65534);
  }
  t.after(() => spawnSync("chmod", ["-R", "u+rwX", src, dest]));
  const child = fileURLToPath(new URL("../helpers/receive-child.js", import.meta.url));
  const run = spawnSync(process.execPath, [child, src, dest], { encoding: "utf8", timeout: 30_000, ...(isRoot ? { uid: 65534, gid: 65534 } : {}) });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { ok: boolean; message?: string; uid: number };
  assert.ok(result.ok, result.message);
  assert.notEqual(result.uid, 0, "ran unprivileged");
  const modes = Object.fromEntries(snapshot(dest, { content: false }).map((e) => [e.path, e.mode]));
  assert.deepEqual(modes, { ro: 0o555, "ro/existing": existingMode, "ro/f": 0o444, "ro/sub": 0o500, "ro/sub/g": 0o400 });
  if (isRoot) {
    assert.equal(readFileSync(join(dest, "ro/f"), "utf8"), "content of a 0444 file");
    assert.equal(readFileSync(join(dest, "ro/sub/g"), "utf8"), "below a 0500 dir");
    assert.equal(lstatSync(join(dest, "ro/f")).uid, 65534, "owned by the user who received it");
  }
});
