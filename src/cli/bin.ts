#!/bin/sh
// 2>/dev/null; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || { BK_BUILD_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export BK_BUILD_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; exec node -- "$0" "$@"
/**
 * (The two lines above run node with "--" before this file: without it,
 * Node 20 reads an --env-file anywhere in argv as its own option, so
 * `bk-build compose --env-file .env build` would load .env into Node, or
 * exit 9 when the file is missing, before bk-build runs: nodejs/node#54232.
 * They also move NODE_EXTRA_CA_CERTS aside, which Node would load into a
 * whole root store before any JavaScript runs, 24 to 53 ms of every start
 * here; it is put back below and read on the first TLS connection that
 * uses the default CAs (src/transport/extra-ca.ts). For sh, "//" is a
 * directory that fails to run, quietly, then the rest; for JavaScript the
 * line is a comment.)
 *
 * The `bk-build` executable: binds main() to this process. SIGINT, SIGTERM
 * and SIGHUP cancel the running command (the daemon's solve is cancelled
 * too) and exit with 130, 143 or 129; a second signal exits at once.
 */
import { Writable } from "node:stream";
import { main } from "./main.js";
import { DEFERRED_CA_ENV, deferExtraCaCerts } from "../internal.js";

const deferredCa = process.env[DEFERRED_CA_ENV];
if (deferredCa !== undefined) {
  // Back where child processes (credential helpers) and the user's env expect it.
  process.env["NODE_EXTRA_CA_CERTS"] = deferredCa;
  Reflect.deleteProperty(process.env, DEFERRED_CA_ENV);
  deferExtraCaCerts(deferredCa);
}

const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
const ac = new AbortController();
let code = 130;
const onSignal = (sig: NodeJS.Signals): void => {
  if (ac.signal.aborted) {
    process.stderr.write("error: interrupted again; exiting now\n");
    process.exit(codes[sig] ?? 130);
  }
  code = codes[sig] ?? 130;
  ac.abort(new Error(sig === "SIGINT" ? "interrupted" : `terminated by ${sig}`));
};
for (const sig of Object.keys(codes) as NodeJS.Signals[]) process.on(sig, onSignal);

// Not a top-level await: the bundle (scripts/bundle.mjs) runs this file as a
// script, to use a V8 code cache. As a pending top-level await would, a
// promise still unsettled when the event loop empties exits 13 (beforeExit:
// not on process.exit(), a second signal's).
let settled = false;
const onBeforeExit = (): void => {
  if (settled) return;
  process.stderr.write("Warning: Detected unsettled top-level await\n");
  process.exitCode = 13;
};
process.once("beforeExit", onBeforeExit);
void main(
  process.argv.slice(2),
  {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    stdout: {
      isTTY: process.stdout.isTTY,
      writable: () =>
        new Writable({
          write: (chunk: Buffer, _enc, cb) => {
            if (process.stdout.write(chunk)) cb();
            else process.stdout.once("drain", () => cb());
          },
          final: (cb) => {
            if (process.stdout.writableNeedDrain) process.stdout.once("drain", () => cb());
            else cb();
          },
        }),
    },
    stdin: { isTTY: process.stdin.isTTY, readable: () => process.stdin },
    stderr: {
      isTTY: process.stderr.isTTY,
      columns: () => process.stderr.columns,
      rows: () => process.stderr.rows,
      onResize: (fn) => {
        process.stderr.on("resize", fn);
        return () => void process.stderr.off("resize", fn);
      },
    },
    env: process.env,
    cwd: process.cwd(),
    signal: ac.signal,
  },
  () => code,
).then((exitCode) => {
  settled = true;
  process.off("beforeExit", onBeforeExit);
  process.exitCode = exitCode;
  for (const sig of Object.keys(codes) as NodeJS.Signals[]) process.off(sig, onSignal);
});
