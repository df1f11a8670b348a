import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { prepareDirectoryOutput, prepareFileOutput } from "../../src/outputs/directory.js";
import { comparable, snapshot } from "../helpers/tree.js";
import { tempDir } from "../helpers/files.js";

const isRoot = process.getuid?.() === 0;

/** Names of our temporaries in `dir`. */
function temps(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.includes(".bk-build-"));
}

test("prepareDirectoryOutput: a private temporary beside the destination; commit renames it into place", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "out");
  const out = await prepareDirectoryOutput(dest);
  assert.equal(out.dest, dest);
  assert.match(out.temp, new RegExp(`^${base.replace(/[.]/g, "\\.")}/\\.out\\.bk-build-[0-9a-f]{12}$`));
  const st = lstatSync(out.temp);
  assert.ok(st.isDirectory());
  assert.equal(st.mode & 0o777, 0o700);
  assert.throws(() => lstatSync(dest), /ENOENT/, "nothing at dest before the commit");
  mkdirSync(join(out.temp, "sub"));
  writeFileSync(join(out.temp, "sub/f"), "hello");
  await out.commit();
  assert.equal(readFileSync(join(dest, "sub/f"), "utf8"), "hello");
  assert.equal(lstatSync(dest).mode & 0o777, 0o700, "a new destination is 0700, as buildctl makes it");
  assert.deepEqual(temps(base), []);
  await out.discard(); // after a commit: nothing to do
  assert.equal(readFileSync(join(dest, "sub/f"), "utf8"), "hello");
  await assert.rejects(out.commit(), /^UsageError: destination directory ".*" was already committed$/);
});

test("prepareDirectoryOutput: missing parents are made (mkdir -p, 0700)", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "a/b/out");
  const out = await prepareDirectoryOutput(dest);
  assert.equal(lstatSync(join(base, "a/b")).mode & 0o777, 0o700);
  writeFileSync(join(out.temp, "f"), "x");
  await out.commit();
  assert.equal(readFileSync(join(dest, "f"), "utf8"), "x");
  assert.deepEqual(temps(join(base, "a/b")), []);
});

test("commit merges into an existing directory as buildctl does: nothing deleted, entries replaced by rename, symlinks not followed", async (t) => {
  const base = tempDir("bk-out-", t);
  const outside = join(base, "outside");
  mkdirSync(join(outside, "dir"), { recursive: true });
  writeFileSync(join(outside, "secret"), "secret");
  const dest = join(base, "dest");
  mkdirSync(join(dest, "both/old-sub"), { recursive: true });
  chmodSync(dest, 0o751);
  writeFileSync(join(dest, "both/old"), "kept");
  writeFileSync(join(dest, "keep"), "kept too");
  writeFileSync(join(dest, "same"), "old");
  linkSync(join(outside, "secret"), join(dest, "hard"));
  symlinkSync(join(outside, "secret"), join(dest, "sl-file"));
  symlinkSync(join(outside, "dir"), join(dest, "sl-dir"));
  writeFileSync(join(dest, "file-to-dir"), "old");
  mkdirSync(join(dest, "dir-to-file/deep"), { recursive: true });
  writeFileSync(join(dest, "dir-to-file/deep/x"), "old");
  const outsideBefore = comparable(snapshot(outside));

  const out = await prepareDirectoryOutput(dest);
  const tmp = out.temp;
  mkdirSync(join(tmp, "both/new-sub"), { recursive: true });
  writeFileSync(join(tmp, "both/new"), "new");
  writeFileSync(join(tmp, "same"), "new");
  writeFileSync(join(tmp, "hard"), "replaced");
  writeFileSync(join(tmp, "sl-file"), "a file now");
  mkdirSync(join(tmp, "sl-dir"));
  writeFileSync(join(tmp, "sl-dir/inside"), "in a real dir");
  mkdirSync(join(tmp, "file-to-dir"));
  writeFileSync(join(tmp, "file-to-dir/child"), "c");
  writeFileSync(join(tmp, "dir-to-file"), "a file");
  symlinkSync("/etc", join(tmp, "new-link"));
  utimesSync(join(tmp, "both"), 1_000_000_000.25, 1_000_000_000.25);
  chmodSync(join(tmp, "both"), 0o555); // read-only incoming dir: its children still move
  await out.commit();

  assert.deepEqual(comparable(snapshot(outside)), outsideBefore, "nothing outside changed");
  assert.deepEqual(readdirSync(join(dest, "both")).sort(), ["new", "new-sub", "old", "old-sub"]);
  assert.equal(lstatSync(join(dest, "both")).mode & 0o777, 0o555, "the incoming mode");
  assert.equal(lstatSync(join(dest, "both"), { bigint: true }).mtimeNs, 1_000_000_000_250_000_000n, "the incoming mtime, after its children moved");
  assert.equal(lstatSync(dest).mode & 0o777, 0o751, "the destination itself keeps its mode");
  assert.equal(readFileSync(join(dest, "keep"), "utf8"), "kept too");
  assert.equal(readFileSync(join(dest, "same"), "utf8"), "new");
  assert.equal(readFileSync(join(dest, "hard"), "utf8"), "replaced");
  assert.equal(readFileSync(join(outside, "secret"), "utf8"), "secret");
  assert.ok(lstatSync(join(dest, "sl-file")).isFile());
  assert.ok(lstatSync(join(dest, "sl-dir")).isDirectory());
  assert.deepEqual(readdirSync(join(outside, "dir")), []);
  assert.equal(readFileSync(join(dest, "file-to-dir/child"), "utf8"), "c");
  assert.equal(readFileSync(join(dest, "dir-to-file"), "utf8"), "a file");
  assert.equal(readlinkSync(join(dest, "new-link")), "/etc");
  assert.deepEqual(temps(base), []);
  chmodSync(join(dest, "both"), 0o755);
});

test("discard removes the temporary (read-only directories too) and leaves the destination alone; it is idempotent", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "dest");
  mkdirSync(dest);
  writeFileSync(join(dest, "f"), "before");
  const before = snapshot(base);
  const out = await prepareDirectoryOutput(dest);
  mkdirSync(join(out.temp, "ro/deeper"), { recursive: true });
  writeFileSync(join(out.temp, "ro/deeper/x"), "x");
  writeFileSync(join(out.temp, "f"), "would replace");
  chmodSync(join(out.temp, "ro/deeper"), 0o500);
  chmodSync(join(out.temp, "ro"), 0o555);
  symlinkSync(dest, join(out.temp, "link-to-dest"));
  await out.discard();
  await out.discard();
  assert.deepEqual(snapshot(base), before);
  await assert.rejects(out.commit(), /was already discarded/);
});

test("a destination that is not a directory is refused before the build, and at commit", async (t) => {
  const base = tempDir("bk-out-", t);
  writeFileSync(join(base, "file"), "x");
  await assert.rejects(prepareDirectoryOutput(join(base, "file")), (e: Error) => {
    assert.equal(e.name, "UsageError");
    assert.equal(e.message, `destination directory ${JSON.stringify(join(base, "file"))} is a file`);
    return true;
  });
  assert.equal(spawnSync("mkfifo", [join(base, "fifo")]).status, 0);
  await assert.rejects(prepareDirectoryOutput(join(base, "fifo")), /^UsageError: destination directory ".*fifo" is a FIFO, not a directory$/);
  await assert.rejects(
    prepareDirectoryOutput(join(base, "file/below")),
    /^UsageError: cannot create destination directory ".*file\/below": a parent of it is not a directory$/,
  );
  symlinkSync(join(base, "nowhere"), join(base, "dangling"));
  await assert.rejects(prepareDirectoryOutput(join(base, "dangling")), /is a symbolic link to a missing path/);
  await assert.rejects(prepareDirectoryOutput(""), /empty/);
  // It becomes a file while the build runs.
  const out = await prepareDirectoryOutput(join(base, "late"));
  writeFileSync(join(out.temp, "f"), "x");
  writeFileSync(join(base, "late"), "a file now");
  await assert.rejects(out.commit(), /^UsageError: destination directory ".*late" is a file$/);
  assert.equal(readFileSync(join(base, "late"), "utf8"), "a file now");
  assert.deepEqual(temps(base), [], "no temporary left after a failed commit");
});

test("a destination that is a symlink to a directory is written through (the user named it); the link stays", async (t) => {
  const base = tempDir("bk-out-", t);
  mkdirSync(join(base, "real"));
  writeFileSync(join(base, "real/old"), "old");
  symlinkSync("real", join(base, "link"));
  const out = await prepareDirectoryOutput(join(base, "link"));
  assert.match(out.temp, /\/\.real\.bk-build-/, "beside the real directory");
  writeFileSync(join(out.temp, "new"), "new");
  await out.commit();
  assert.equal(readlinkSync(join(base, "link")), "real");
  assert.deepEqual(readdirSync(join(base, "real")).sort(), ["new", "old"]);
  assert.deepEqual(temps(base), []);
});

/** Runs `code` (an ES module body) as nobody when we are root, else as ourselves; returns what it printed. */
function runUnprivileged(code: string): string {
  const mod = pathToFileURL(join(import.meta.dirname, "../../src/outputs/directory.js")).href;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", `import * as o from ${JSON.stringify(mod)};\n${code}`], {
    encoding: "utf8",
    timeout: 30_000,
    ...(isRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("a destination whose directory is not writable: one clear error, nothing left", async (t) => {
  const base = tempDir("bk-out-", t);
  chmodSync(base, 0o755);
  const locked = join(base, "locked");
  mkdirSync(locked, 0o555);
  chmodSync(locked, 0o555);
  const printed = runUnprivileged(`
    const r = [];
    for (const f of [o.prepareDirectoryOutput, o.prepareFileOutput]) {
      try { await f(${JSON.stringify(join(locked, "out"))}); r.push("no error"); } catch (e) { r.push(e.message); }
    }
    try { await o.prepareDirectoryOutput(${JSON.stringify(join(locked, "sub/out"))}); r.push("no error"); } catch (e) { r.push(e.message); }
    try { await o.prepareDirectoryOutput(${JSON.stringify(locked)}); r.push("no error"); } catch (e) { r.push(e.message); }
    console.log(JSON.stringify(r));`);
  const [dir, file, deeper, existing] = JSON.parse(printed) as string[];
  const shown = JSON.stringify(join(locked, "out"));
  assert.equal(dir, `cannot write destination directory ${shown}: permission denied; check that ${JSON.stringify(locked)} is writable`);
  assert.equal(file, `cannot write destination file ${shown}: permission denied; check that ${JSON.stringify(locked)} is writable`);
  assert.match(deeper ?? "", /^cannot write destination directory ".*sub\/out": permission denied; check that ".*sub" can be created and written$/);
  assert.equal(
    existing,
    `cannot write destination directory ${JSON.stringify(locked)}: permission denied; check its permissions`,
    "an existing directory we cannot write into",
  );
  assert.deepEqual(readdirSync(locked), []);
});

test("as an unprivileged user: read-only directories in the temporary are merged and discarded all the same", async (t) => {
  const base = tempDir("bk-out-", t);
  chmodSync(base, 0o755);
  const dest = join(base, "dest");
  mkdirSync(join(dest, "ro"), { recursive: true });
  writeFileSync(join(dest, "ro/old"), "old");
  if (isRoot) spawnSync("chown", ["-R", "65534:65534", base]);
  const printed = runUnprivileged(`
    import { mkdirSync, writeFileSync, chmodSync, readdirSync } from "node:fs";
    const fill = (t) => {
      mkdirSync(t + "/ro/deeper", { recursive: true });
      writeFileSync(t + "/ro/deeper/x", "x");
      writeFileSync(t + "/ro/new", "new");
      chmodSync(t + "/ro/deeper", 0o500);
      chmodSync(t + "/ro", 0o555);
    };
    const a = await o.prepareDirectoryOutput(${JSON.stringify(dest)});
    fill(a.temp);
    await a.discard();
    const b = await o.prepareDirectoryOutput(${JSON.stringify(dest)});
    fill(b.temp);
    await b.commit();
    console.log(JSON.stringify({ left: readdirSync(${JSON.stringify(base)}), ro: readdirSync(${JSON.stringify(join(dest, "ro"))}).sort() }));`);
  const r = JSON.parse(printed) as { left: string[]; ro: string[] };
  assert.deepEqual(r.left, ["dest"], "no temporary left");
  assert.deepEqual(r.ro, ["deeper", "new", "old"]);
  assert.equal(lstatSync(join(dest, "ro")).mode & 0o777, 0o555);
  assert.equal(lstatSync(join(dest, "ro/deeper")).mode & 0o777, 0o500);
  spawnSync("chmod", ["-R", "u+rwX", dest]);
});

test("prepareFileOutput: write, finish, commit renames over the destination; the old file's mode is kept", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "out.tar");
  writeFileSync(dest, "old content");
  chmodSync(dest, 0o640);
  const out = await prepareFileOutput(dest);
  assert.match(out.temp, /\/\.out\.tar\.bk-build-[0-9a-f]{12}$/);
  await out.write(Buffer.from("new "));
  await out.write(Buffer.alloc(3 << 20, 0x61));
  assert.equal(readFileSync(dest, "utf8"), "old content", "the destination is untouched until commit");
  await out.finish();
  await out.finish();
  await assert.rejects(out.write(Buffer.from("late")), /already finished/);
  await out.commit();
  const got = readFileSync(dest);
  assert.equal(got.length, 4 + (3 << 20));
  assert.equal(got.subarray(0, 4).toString(), "new ");
  assert.equal(statSync(dest).mode & 0o777, 0o640);
  assert.deepEqual(temps(base), []);
  await out.discard();
  assert.equal(readFileSync(dest).length, 4 + (3 << 20), "discard after commit does nothing");
});

test("prepareFileOutput: chunks written while earlier ones are on disk keep their order; discard mid-write leaves nothing", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "out.tar");
  const out = await prepareFileOutput(dest);
  // Not awaited one by one: the queue coalesces them into writev calls, past the in-memory cap.
  const chunks = Array.from({ length: 700 }, (_, i) => Buffer.alloc(17_000 + (i % 13), i % 251));
  await Promise.all(chunks.map((c) => out.write(c)));
  await out.commit();
  assert.ok(readFileSync(dest).equals(Buffer.concat(chunks)), "every byte, in the order written");
  assert.deepEqual(temps(base), []);

  const cut = await prepareFileOutput(join(base, "cut.tar"));
  const pending = chunks.map((c) => cut.write(c).catch((e: unknown) => e));
  await cut.discard();
  await Promise.all(pending);
  assert.deepEqual(readdirSync(base), ["out.tar"], "no temporary and no destination after a discard in the middle");
});

test("prepareFileOutput: a new file in a new directory; commit without finish", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "x/y/image.tar");
  const out = await prepareFileOutput(dest);
  await out.write(Buffer.from("tar"));
  await out.commit();
  assert.equal(readFileSync(dest, "utf8"), "tar");
  assert.deepEqual(temps(join(base, "x/y")), []);
});

test("prepareFileOutput: discard leaves the destination as it was; a directory or FIFO destination is refused", async (t) => {
  const base = tempDir("bk-out-", t);
  const dest = join(base, "out.tar");
  writeFileSync(dest, "old");
  const out = await prepareFileOutput(dest);
  await out.write(Buffer.from("partial"));
  await out.discard();
  await out.discard();
  assert.equal(readFileSync(dest, "utf8"), "old");
  assert.deepEqual(temps(base), []);
  await assert.rejects(out.commit(), /was already discarded/);

  mkdirSync(join(base, "dir"));
  await assert.rejects(prepareFileOutput(join(base, "dir")), (e: Error) => {
    assert.equal(e.name, "UsageError");
    assert.equal(e.message, `destination file ${JSON.stringify(join(base, "dir"))} is a directory`);
    return true;
  });
  assert.equal(spawnSync("mkfifo", [join(base, "fifo")]).status, 0);
  await assert.rejects(prepareFileOutput(join(base, "fifo")), /^UsageError: destination file ".*fifo" is a FIFO, not a regular file; give a file path$/);
  // It becomes a directory while the build runs.
  const late = await prepareFileOutput(join(base, "late"));
  await late.write(Buffer.from("x"));
  mkdirSync(join(base, "late"));
  await assert.rejects(late.commit(), /^UsageError: destination file ".*late" is a directory$/);
  assert.deepEqual(temps(base), []);
  // A symlink to a file: the file is replaced, the link stays.
  writeFileSync(join(base, "target"), "old");
  symlinkSync("target", join(base, "link"));
  const viaLink = await prepareFileOutput(join(base, "link"));
  await viaLink.write(Buffer.from("new"));
  await viaLink.commit();
  assert.equal(readlinkSync(join(base, "link")), "target");
  assert.equal(readFileSync(join(base, "target"), "utf8"), "new");
});
