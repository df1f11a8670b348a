import { test } from "node:test";
import { tempDir } from "../helpers/files.js";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkOutputFile, writeOutputFile } from "../../src/cli/output-file.js";
import { BuildKitError, UsageError } from "../../src/errors.js";

function scratch(): string {
  return tempDir("bk-outfile-");
}

function usage(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes(".tmp"), String(re));
}

test("the destination is checked before any work: directories, missing parents, pipes, links", () => {
  const dir = scratch();
  try {
    mkdirSync(join(dir, "out"));
    writeFileSync(join(dir, "file"), "x");
    execFileSync("mkfifo", [join(dir, "fifo")]);
    symlinkSync(join(dir, "file"), join(dir, "link"));
    usage(
      () => checkOutputFile(join(dir, "out"), "--metadata-file"),
      /^--metadata-file ".*\/out" is a directory; give a file path, e\.g\. .*\/out\/metadata\.json$/,
    );
    usage(
      () => checkOutputFile(join(dir, "nope", "m.json"), "--metadata-file"),
      /^--metadata-file ".*\/nope\/m\.json": directory ".*\/nope" does not exist; create it first$/,
    );
    usage(() => checkOutputFile(join(dir, "file", "m.json"), "--metadata-file"), /^--metadata-file ".*\/file\/m\.json": ".*\/file" is not a directory$/);
    usage(() => checkOutputFile(join(dir, "fifo"), "--metadata-file"), /^--metadata-file ".*\/fifo" is a FIFO, not a regular file; give a file path$/);
    usage(() => checkOutputFile(join(dir, "link"), "--metadata-file"), /is a symbolic link; give the path of the file it points to$/);
    usage(() => checkOutputFile("", "--metadata-file"), /^--metadata-file needs a file path$/);
    checkOutputFile(join(dir, "file"), "--metadata-file");
    checkOutputFile(join(dir, "new.json"), "--metadata-file");
    assert.deepEqual(readdirSync(dir).sort(), ["fifo", "file", "link", "out"], "checking writes nothing");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the file is replaced whole, and a failed write leaves nothing behind", () => {
  const dir = scratch();
  try {
    const dest = join(dir, "m.json");
    writeFileSync(dest, "old\n");
    writeOutputFile(dest, '{"a":1}\n', "--metadata-file");
    assert.equal(readFileSync(dest, "utf8"), '{"a":1}\n');
    assert.deepEqual(readdirSync(dir), ["m.json"]);

    // The destination turned into a directory while the build ran.
    const late = join(dir, "late");
    mkdirSync(late);
    writeFileSync(join(late, "keep"), "k");
    assert.throws(
      () => writeOutputFile(late, "{}\n", "--metadata-file"),
      (e: unknown) => e instanceof BuildKitError && /^cannot write --metadata-file ".*\/late": it is a directory$/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir).sort(), ["late", "m.json"], "no temporary file is left");
    assert.deepEqual(readdirSync(late), ["keep"]);

    assert.throws(
      () => writeOutputFile(join(dir, "gone", "m.json"), "{}\n", "--metadata-file"),
      (e: unknown) => e instanceof BuildKitError && /^cannot write --metadata-file ".*\/gone\/m\.json": its directory does not exist$/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
