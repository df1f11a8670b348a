import { test } from "node:test";
import { tempDir } from "../helpers/files.js";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_TEXT_FILE_BYTES, errnoProblem, readInputFile } from "../../src/files.js";
import { resolveBuild } from "../../src/solve/options.js";
import { runModule } from "../helpers/child.js";

function fifoIn(dir: string, name: string): string {
  const p = join(dir, name);
  execFileSync("mkfifo", [p]);
  return p;
}

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

test("readInputFile: reads a regular file; a directory, a missing file or one over the limit is one line naming input, path and reason", () => {
  const dir = tempDir("bk-files-");
  const file = join(dir, "ok.txt");
  writeFileSync(file, "content");
  assert.equal(readInputFile(file, { what: "Dockerfile", flag: "-f", maxBytes: 100 }).toString(), "content");

  const o = { what: "Dockerfile", flag: "-f", maxBytes: MAX_TEXT_FILE_BYTES };
  assert.throws(() => readInputFile(dir, o), new RegExp(`^UsageError: cannot read Dockerfile "${re(dir)}" \\(-f\\): is a directory; pass a file$`));
  assert.throws(
    () => readInputFile(join(dir, "nope"), o),
    new RegExp(`^UsageError: cannot read Dockerfile "${re(dir)}/nope" \\(-f\\): no such file; check the path$`),
  );
  assert.throws(() => readInputFile(join(file, "below"), o), /: a parent is not a directory; check the path$/);
  const big = join(dir, "big");
  writeFileSync(big, "");
  truncateSync(big, MAX_TEXT_FILE_BYTES + 1);
  assert.throws(
    () => readInputFile(big, o),
    new RegExp(`^UsageError: cannot read Dockerfile "${re(big)}" \\(-f\\): larger than 10 MiB; is it the right file\\?$`),
  );
  truncateSync(big, MAX_TEXT_FILE_BYTES);
  assert.equal(readInputFile(big, o).length, MAX_TEXT_FILE_BYTES, "exactly the limit is allowed");
  // A subject goes first; no flag, no parentheses.
  assert.throws(
    () => readInputFile(dir, { what: "key file", subject: 'SSH agent "x"', maxBytes: 10 }),
    /^UsageError: SSH agent "x": cannot read key file ".*": is a directory; pass a file$/,
  );
});

test("errnoProblem: permission denied and I/O errors as a short reason with what to do", () => {
  const eacces = Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: "EACCES" });
  assert.deepEqual(errnoProblem(eacces), { reason: "permission denied", fix: "check its permissions" });
  const eio = Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
  assert.deepEqual(errnoProblem(eio), { reason: "i/o error", fix: "check the file and try again" });
});

test("a FIFO as --tlscacert, compose -f, --env-file, --ssh-key or -f fails at once instead of blocking", () => {
  const dir = tempDir("bk-fifo-");
  const fifo = fifoIn(dir, "pipe");
  const reason = "not a regular file (a FIFO); pass a regular file";
  // Each call runs in a child: before the fix each blocked its event loop for good.
  const cases: Array<[string, string]> = [
    [
      `const { resolveTls, parseAddress } = await import(process.env.SRC + "transport/address.js");
       resolveTls({ caFile: process.env.FIFO }, parseAddress("tcp://127.0.0.1:1"));`,
      `UsageError: cannot read CA certificate "${fifo}" (--tlscacert): ${reason}`,
    ],
    [
      `const { loadCompose } = await import(process.env.SRC + "compose/load.js");
       loadCompose({ files: [process.env.FIFO], env: {} });`,
      `UsageError: cannot read compose file "${fifo}" (-f): ${reason}`,
    ],
    [
      `const { writeFileSync } = await import("node:fs");
       writeFileSync(process.env.DIR + "/compose.yaml", "services: {}\\n");
       const { loadCompose } = await import(process.env.SRC + "compose/load.js");
       loadCompose({ workingDir: process.env.DIR, envFiles: [process.env.FIFO], env: {} });`,
      `UsageError: cannot read env file "${fifo}" (--env-file): ${reason}`,
    ],
    [
      `const { sshDialer } = await import(process.env.SRC + "transport/ssh-dial.js");
       sshDialer({ user: "u", host: "127.0.0.1", port: 22, socketPath: "/s", address: "ssh://127.0.0.1" }, { identityFile: process.env.FIFO }, {}, 1000);`,
      `UsageError: cannot read SSH key "${fifo}" (--ssh-key): ${reason}`,
    ],
    [
      `const { sshDialer } = await import(process.env.SRC + "transport/ssh-dial.js");
       sshDialer({ user: "u", host: "127.0.0.1", port: 22, socketPath: "/s", address: "ssh://127.0.0.1" }, { knownHostsFile: process.env.FIFO }, { HOME: process.env.DIR }, 1000);`,
      `UsageError: cannot read known_hosts file "${fifo}" (--ssh-known-hosts): ${reason}`,
    ],
  ];
  const got = cases.map(([call]) => {
    const r = runModule(`try { ${call} console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message); }`, { env: { FIFO: fifo, DIR: dir } });
    return r.signal ? `blocked until killed (${r.ms} ms)` : r.stdout.trim() || r.stderr;
  });
  assert.deepEqual(
    got,
    cases.map(([, expected]) => expected),
  );

  // The library's Dockerfile check says what the file is, not "not found".
  const ctx = join(dir, "ctx");
  mkdirSync(ctx);
  assert.throws(
    () => resolveBuild({ context: ctx, dockerfile: fifo }),
    new RegExp(`^UsageError: cannot read Dockerfile "${re(fifo)}" \\(-f\\): ${re(reason)}$`),
  );
  assert.throws(() => resolveBuild({ context: ctx, dockerfile: ctx }), /^UsageError: cannot read Dockerfile ".*" \(-f\): is a directory; pass a file$/);
  assert.throws(() => resolveBuild({ context: ctx }), /^UsageError: Dockerfile ".*\/Dockerfile" not found; pass its path with -f\/--file$/);
});
