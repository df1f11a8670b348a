/**
 * Generated malicious and malformed streams against the fsutil receiver.
 * Every case runs against a real directory and must end with: nothing
 * created or changed outside the receive root, a clear one-line Error (the
 * same text sent to the daemon as ERR) when the stream is bad, and no crash,
 * unhandled rejection or hang. Most cases receive into the temporary of
 * prepareDirectoryOutput(dest) and discard it: dest must be as before.
 * The rest receive straight into a root that holds symlinks pointing
 * outside, which must be replaced, never followed.
 *
 * The PRNG is seeded (BK_FUZZ_SEED overrides the default); a failure names
 * the seed and the case so it can be replayed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { receiveDiffCopy } from "../../src/session/fsutil/receive.js";
import { prepareDirectoryOutput } from "../../src/outputs/directory.js";
import {
  ModeCharDevice,
  ModeDevice,
  ModeDir,
  ModeIrregular,
  ModeNamedPipe,
  ModeSetgid,
  ModeSetuid,
  ModeSocket,
  ModeSticky,
  ModeSymlink,
} from "../../src/session/fsutil/mode.js";
import { dataPacketHead, errPacket, finPacket, reqPacket, statPacket, type WireStat } from "../../src/session/fsutil/wire.js";
import { FakeDaemon, data, stat, type FakeDaemonOptions } from "../helpers/fsutil-daemon.js";
import { comparable, snapshot } from "../helpers/tree.js";
import { tempDir } from "../helpers/files.js";

const SEED = Number(process.env.BK_FUZZ_SEED ?? 20240611);
const CASES = Number(process.env.BK_FUZZ_CASES ?? 10_000);
const END = statPacket();
const DIR = (ModeDir | 0o755) >>> 0;
const LINK = (ModeSymlink | 0o777) >>> 0;
const F = 0o644;

class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed | 0;
  }
  /** [0, 1) (mulberry32). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#s ^ (this.#s >>> 15), 1 | this.#s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
}

interface Case {
  kind: string;
  script: Buffer[];
  content?: Map<number, Buffer>;
  opts?: Partial<FakeDaemonOptions>;
  /** "error": the stream is bad and must be refused; "ok": it is good and must be received; "any": it may or may not be valid. */
  expect: "error" | "ok" | "any";
  /** Receive straight into a root holding symlinks that point outside (instead of a prepareDirectoryOutput temporary). */
  direct?: boolean;
  /** After a success, what must hold in the root. */
  check?: (root: string) => void;
}

/** Names that are fine on their own. */
const NAMES = ["a", "b", "etc", "passwd", "...", ".a", "a b", "ü", "😀", "\uffff", "-", "x.tmp", "Z", "a-b", "a.b"];
/** Path pieces that are not. */
const NASTY = ["..", ".", "", "/", "\\..", "..\\..", "a\0b", "%2e%2e", "../..", "a/../..", "/etc", "//", "./"];

function st(path: string, mode: number, more: Partial<WireStat> = {}): Buffer {
  return stat(path, mode, more);
}

function traversal(r: Rng): Case {
  const parts = Array.from({ length: 1 + r.int(4) }, () => (r.chance(0.6) ? r.pick(NASTY) : r.pick(NAMES)));
  if (!parts.some((p) => NASTY.includes(p) && p !== "\\..")) parts[r.int(parts.length)] = r.pick(["..", ".", "", "/etc", "../.."]);
  const path = (r.chance(0.2) ? "/" : "") + parts.join("/");
  const mode = r.pick([DIR, F, LINK]);
  const script = [st(path, mode, { linkname: mode === LINK ? "/etc/passwd" : "", size: mode === F ? 3n : 0n }), st(`${path}/x`, F, { size: 1n }), END];
  return { kind: "traversal", script, content: new Map([[0, Buffer.from("abc")]]), expect: path === "\\.." || path === "..\\.." ? "any" : "error" };
}

function absolute(r: Rng): Case {
  const path = r.pick(["/", "//", "/etc/passwd", "/tmp", `/${r.pick(NAMES)}`, `//${r.pick(NAMES)}/x`, "/.."]);
  return { kind: "absolute", script: [st(path, r.pick([DIR, F])), END], expect: "error" };
}

function symlinkParent(r: Rng): Case {
  const target = r.pick(["/", "/etc", "..", "../..", "../outside", "/tmp", ".", "x/../../.."]);
  const l = r.pick(NAMES);
  const below = `${l}/${r.pick(NAMES)}`;
  const script = [st(l, LINK, { linkname: target }), st(below, r.pick([DIR, F]), { size: 4n }), st(`${below}/deeper`, F), END];
  if (r.chance(0.3)) script.splice(1, 0, st(l, DIR)); // the same name again, as a directory
  return { kind: "symlink-parent", script, content: new Map([[1, Buffer.from("pwnd")]]), expect: "error" };
}

/** Valid streams over a root whose entries are symlinks pointing outside: they must be replaced. */
function preexistingSymlink(r: Rng, outside: string): Case {
  const which = r.pick(["esc-dir", "esc-abs", "esc-file"]);
  const asDir = r.chance(0.6);
  const script = asDir ? [st(which, DIR), st(`${which}/pwned`, F, { size: 5n }), END] : [st(which, F, { size: 5n }), END];
  return {
    kind: `preexisting-symlink(${which},${asDir ? "dir" : "file"})`,
    script,
    content: new Map([[asDir ? 1 : 0, Buffer.from("pwned")]]),
    expect: "ok",
    direct: true,
    check: (root) => {
      const p = asDir ? join(root, which, "pwned") : join(root, which);
      assert.equal(readFileSync(p, "utf8"), "pwned");
      assert.ok(!lstatSync(join(root, which)).isSymbolicLink(), "the symlink was replaced");
      assert.ok(readdirSync(outside).every((n) => n !== "pwned"));
    },
  };
}

function hardlink(r: Rng, outside: string): Case {
  const target = r.pick([
    "../outside/secret",
    join(outside, "secret"),
    "/etc/passwd",
    "later",
    "dir",
    "link",
    "hl",
    "",
    ".",
    "..",
    "file/..",
    "./file",
    "nope",
    "dir/",
  ]);
  const script = [
    st("dir", DIR),
    st("file", F, { size: 2n }),
    st("hl", F, { linkname: "file" }),
    st("link", LINK, { linkname: "file" }),
    st("x", F, { linkname: target }),
    st("y", F, { size: 1n }),
    END,
  ];
  if (target === "")
    return {
      kind: "hardlink(empty)",
      script,
      content: new Map([
        [1, Buffer.from("hi")],
        [5, Buffer.from("y")],
      ]),
      expect: "any",
    };
  return {
    kind: `hardlink(${target})`,
    script,
    content: new Map([
      [1, Buffer.from("hi")],
      [5, Buffer.from("y")],
    ]),
    expect: "error",
  };
}

/** A small valid tree, shuffled or with entries repeated. */
function order(r: Rng): Case {
  const tree: Array<[string, number]> = [
    ["a", DIR],
    ["a/b", DIR],
    ["a/b/c", F],
    ["a/d", F],
    ["a-b", F],
    ["b", DIR],
    ["b/x", LINK],
  ];
  let entries = [...tree];
  const how = r.int(3);
  if (how === 0) {
    // swap two
    const i = r.int(entries.length);
    let j = r.int(entries.length);
    if (i === j) j = (j + 1) % entries.length;
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  } else if (how === 1) {
    // duplicate one
    const i = r.int(entries.length);
    entries.splice(i + 1, 0, entries[i]!);
  } else {
    // drop a directory its children need
    const gone = r.pick(["a", "a/b", "b"]);
    entries = entries.filter(([p]) => p !== gone);
  }
  const script = [...entries.map(([p, m]) => st(p, m, { linkname: m === LINK ? "../a" : "" })), END];
  // A swap of two siblings that happen to stay in order is valid.
  return { kind: `order(${how})`, script, expect: how === 0 ? "any" : "error" };
}

function hugeName(r: Rng): Case {
  const n = r.pick([256, 300, 1000, 4097, 5000, 70_000]);
  const long = "n".repeat(n);
  const path = r.chance(0.5) ? long : Array.from({ length: Math.ceil(n / 200) + 20 }, () => "d".repeat(200)).join("/");
  return { kind: `huge(${n})`, script: [st(path, r.pick([DIR, F])), END], expect: "error" };
}

function badMode(r: Rng): Case {
  const perm = r.int(0o1000);
  const modes = [
    (0x200 << r.int(10)) | perm, // unknown bits 9..18
    0x40000000 | perm, // ModeAppend
    0x20000000 | perm, // ModeExclusive
    0x10000000 | perm, // ModeTemporary
    ModeDir | ModeSymlink | perm,
    ModeDir | ModeNamedPipe | perm,
    ModeSymlink | ModeSocket | perm,
    ModeCharDevice | perm,
    ModeIrregular | perm,
    (r.int(0x100000000) | 0x7fe00) >>> 0, // random, surely with an unknown bit
  ];
  return { kind: "bad-mode", script: [st("f", modes[r.int(modes.length)]! >>> 0, { size: 1n }), END], expect: "error" };
}

function device(r: Rng): Case {
  const mode = r.pick([ModeDevice, ModeDevice | ModeCharDevice, ModeNamedPipe, ModeSocket]) | r.int(0o1000);
  const flags = r.pick([0, ModeSetuid, ModeSetgid, ModeSticky]);
  return { kind: "device", script: [st(r.pick(NAMES), (mode | flags) >>> 0, { devmajor: r.int(300), devminor: r.int(300) }), END], expect: "error" };
}

/** A valid stream, cut short. */
function truncated(r: Rng): Case {
  const body = Buffer.alloc(100 + r.int(100_000), 7);
  const full = [st("d", DIR), st("d/f", F, { size: BigInt(body.length) }), st("d/g", F, { size: 3n }), END];
  const served = [Buffer.concat([dataPacketHead(1, body.length), body]), dataPacketHead(1, 0), data(2, "abc"), dataPacketHead(2, 0)];
  const all = [...full, ...served];
  const cut = r.int(all.length); // never the whole thing: no FIN
  return { kind: `truncated(${cut})`, script: all.slice(0, cut), opts: { after: r.pick(["end", "throw"] as const) }, expect: "error" };
}

function garbage(r: Rng): Case {
  const valid = [st("a", DIR), st("a/f", F, { size: 3n }), data(1, "abc"), dataPacketHead(1, 0), END];
  const script: Buffer[] = [];
  for (const p of valid) {
    if (r.chance(0.3)) {
      const b = Buffer.from(p);
      for (let k = 0; k < 1 + r.int(3); k++)
        if (b.length) {
          const at = r.int(b.length);
          b[at] = b[at]! ^ (1 << r.int(8));
        }
      script.push(b);
    } else if (r.chance(0.2)) {
      script.push(r.bytes(r.int(40)));
    } else script.push(p);
  }
  return { kind: "garbage", script, opts: { after: r.pick(["end", "hang"] as const) }, expect: "any" };
}

function dataMisuse(r: Rng): Case {
  const variants: Buffer[][] = [
    [data(0, "x")], // before any STAT
    [st("d", DIR), data(0, "x")],
    [st("f", F, { size: 2n }), data(0, "abc")],
    [st("f", F, { size: 2n }), data(0, "ab"), dataPacketHead(0, 0), data(0, "c")],
    [st("f", F, { size: 4n }), data(0, "ab"), dataPacketHead(0, 0)],
    [st("f", F, { size: 1n }), data(r.int(1000) + 1, "x")],
    [st("f", F, { size: 1n }), END, finPacket()],
    [END, st("late", F)],
    [reqPacket(r.int(5))],
    [errPacket(r.bytes(20).toString("latin1"))],
    [Buffer.from([0x08, 5 + r.int(100)])],
  ];
  return { kind: "data-misuse", script: [...r.pick(variants)], opts: { after: r.pick(["end", "hang"] as const) }, expect: "error" };
}

/** Random packets from a palette, in random order. */
function mixture(r: Rng): Case {
  const palette = (): Buffer => {
    const name = Array.from({ length: 1 + r.int(3) }, () => (r.chance(0.15) ? r.pick(NASTY) : r.pick(NAMES))).join("/");
    switch (r.int(8)) {
      case 0:
        return st(name, DIR);
      case 1:
        return st(name, F, { size: BigInt(r.int(5)) });
      case 2:
        return st(name, LINK, { linkname: r.pick(["/", "..", "../outside", "x"]) });
      case 3:
        return st(name, F, { linkname: r.pick(NAMES) });
      case 4:
        return data(r.int(6), r.bytes(r.int(5)));
      case 5:
        return dataPacketHead(r.int(6), 0);
      case 6:
        return END;
      default:
        return r.bytes(r.int(12));
    }
  };
  return {
    kind: "mixture",
    script: Array.from({ length: 1 + r.int(10) }, palette),
    opts: { after: r.pick(["end", "serve", "throw"] as const) },
    expect: "any",
  };
}

function generate(r: Rng, outside: string): Case {
  switch (r.int(13)) {
    case 0:
    case 1:
      return traversal(r);
    case 2:
      return absolute(r);
    case 3:
      return symlinkParent(r);
    case 4:
      return preexistingSymlink(r, outside);
    case 5:
      return hardlink(r, outside);
    case 6:
      return order(r);
    case 7:
      return hugeName(r);
    case 8:
      return badMode(r);
    case 9:
      return device(r);
    case 10:
      return truncated(r);
    case 11:
      return r.chance(0.5) ? garbage(r) : dataMisuse(r);
    default:
      return mixture(r);
  }
}

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (hang)`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test(`${CASES} generated malicious or malformed streams (seed ${SEED}): nothing outside the root, a clear error, no crash or hang`, async (t) => {
  const base = tempDir("bk-rx-fuzz-", t);
  const outside = join(base, "outside");
  const dest = join(base, "dest");
  const roots = join(base, "roots");
  mkdirSync(join(outside, "dir"), { recursive: true });
  writeFileSync(join(outside, "secret"), "secret");
  mkdirSync(join(dest, "sub"), { recursive: true });
  writeFileSync(join(dest, "sub/kept"), "the previous export");
  symlinkSync("../outside", join(dest, "escape"));
  mkdirSync(roots);
  const sentinel = (): unknown => comparable(snapshot(base).filter((e) => e.path !== "roots" && !e.path.startsWith("roots/")));
  const before = sentinel();

  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  process.on("unhandledRejection", onUnhandled);
  t.after(() => process.off("unhandledRejection", onUnhandled));

  const rng = new Rng(SEED);
  const counts = new Map<string, { n: number; errors: number }>();
  const runCase = async (i: number, c: Case): Promise<void> => {
    const where = `seed ${SEED} case ${i} (${c.kind}); replay with BK_FUZZ_SEED=${SEED} BK_FUZZ_CASES=${i + 1}`;
    let root: string;
    let out: Awaited<ReturnType<typeof prepareDirectoryOutput>> | undefined;
    if (c.direct) {
      root = join(roots, `r${i}`);
      mkdirSync(root);
      mkdirSync(join(root, "esc-dir-real"));
      symlinkSync(join(outside, "dir"), join(root, "esc-abs"));
      symlinkSync("../../outside/dir", join(root, "esc-dir"));
      symlinkSync(join(outside, "secret"), join(root, "esc-file"));
    } else {
      out = await prepareDirectoryOutput(dest);
      root = out.temp;
    }
    const d = new FakeDaemon({ script: c.script, ...(c.content ? { content: c.content } : {}), ...c.opts });
    // A stream left open with nothing more to come would wait forever, as
    // it would for a daemon that stalls: once the daemon is idle, it goes
    // away, and the receiver must then settle at once.
    // A valid stream ends with the FIN exchange; a receiver still writing
    // (a loaded machine) must not be cut off, so good cases get no watchdog.
    let idleTicks = 0;
    const watchdog = setInterval(() => {
      idleTicks = d.idle && c.expect !== "ok" ? idleTicks + 1 : 0;
      if (idleTicks >= 2) d.end();
    }, 10);
    let error: unknown;
    try {
      await bounded(receiveDiffCopy(d.messages, d.send, { root }), 5000, where);
    } catch (e) {
      error = e;
    } finally {
      clearInterval(watchdog);
    }
    d.end();
    const kind = c.kind.replace(/\(.*/, "");
    const tally = counts.get(kind) ?? { n: 0, errors: 0 };
    counts.set(kind, tally);
    tally.n++;
    if (error !== undefined) {
      tally.errors++;
      assert.ok(error instanceof Error, `${where}: rejected with a non-Error ${JSON.stringify(error)}`);
      assert.notEqual(c.expect, "ok", `${where}: a good stream was refused: ${error.message}`);
      assert.doesNotMatch(error.message, /no answer within/, where);
      assert.ok(error.message.length > 0 && !error.message.includes("\n"), `${where}: one clear line, got ${JSON.stringify(error.message)}`);
      assert.equal(d.receiverError, error.message, `${where}: the daemon got the error as ERR`);
    } else {
      assert.notEqual(c.expect, "error", `${where}: a bad stream was accepted`);
      c.check?.(root);
    }
    if (out) await out.discard();
    else rmSync(root, { recursive: true, force: true });
  };

  // Cases run eight at a time (their file system waits overlap); between
  // batches, nothing may be left anywhere but where it was.
  const started = performance.now();
  for (let first = 0; first < CASES; first += 8) {
    const batch: Array<[number, Case]> = [];
    for (let i = first; i < Math.min(first + 8, CASES); i++) batch.push([i, generate(rng, outside)]);
    await Promise.all(batch.map(([i, c]) => runCase(i, c)));
    assert.deepEqual(
      sentinel(),
      before,
      `seed ${SEED} cases ${first}..${first + batch.length - 1} (${batch.map(([, c]) => c.kind).join(", ")}): something outside the roots changed, or dest after discard, or a temporary was left`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(unhandled, [], `seed ${SEED}: unhandled rejections`);
  assert.equal(readFileSync(join(outside, "secret"), "utf8"), "secret");
  assert.deepEqual(readdirSync(roots), []);
  t.diagnostic(`${CASES} cases in ${seconds.toFixed(1)} s: ${[...counts].map(([k, v]) => `${k} ${v.n} (${v.errors} refused)`).join(", ")}`);
  assert.ok(counts.size >= 13, "every kind of case ran");
});
