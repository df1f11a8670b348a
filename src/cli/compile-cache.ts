/**
 * Runs the bundled CLI (scripts/bundle.mjs) with a V8 code cache, as Node
 * 22's module.enableCompileCache() would (Node 20 has no such thing):
 * compiling the ~1.4 MB bundle and the functions a command runs is a fifth
 * of a cached build's CPU time (issue 15). The first run of a command writes
 * what V8 compiled for it; later runs of that command read it. The cache
 * lives where tools keep theirs, in `node_modules/.cache/bk-build` (the
 * nearest node_modules above the bundle, as installed or in a checkout),
 * never in the user's home or the working directory; where that cannot be
 * written there is no cache. NODE_DISABLE_COMPILE_CACHE=1 turns it off, as
 * for Node's own.
 *
 * A file is used only when its name holds the bundle's content hash, the
 * Node version and the architecture, and V8 checks the rest (its version,
 * flags and the source's length) and rejects a cache that does not fit: then
 * the bundle is compiled as without a cache and the file written anew. Every
 * failure to read or write the cache is ignored: it only costs time.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as vm from "node:vm";

/** The commands that get a cache of their own (what one compiles is not what another runs); the rest share one. */
const COMMANDS = new Set(["build", "compose", "info", "workers", "du", "prune", "history", "builder"]);

/** The cache's directory for the bundle at `file`, or undefined when there is none or it is turned off. */
export function compileCacheDir(file: string, env: Record<string, string | undefined>): string | undefined {
  if (env["NODE_DISABLE_COMPILE_CACHE"]) return undefined;
  for (let dir = dirname(file); dirname(dir) !== dir; dir = dirname(dir)) {
    if (basename(dir) === "node_modules") return join(dir, ".cache", "bk-build");
    if (existsSync(join(dir, "node_modules"))) return join(dir, "node_modules", ".cache", "bk-build");
  }
  return undefined;
}

/** The cache file's name for this bundle (content hash), Node, architecture and command. */
export function compileCacheName(hash: string, argv: readonly string[]): string {
  const command = argv.find((a) => COMMANDS.has(a)) ?? "other";
  return `${hash}-${process.version}-${process.arch}-${command}.cache`;
}

/**
 * Runs `bundle`, a CommonJS script, in this context with the cache;
 * `hash` is its content hash (written into bin.js by scripts/bundle.mjs).
 * The bundle's `import.meta.url` is its own URL.
 */
export function runBundle(bundle: URL, hash: string): void {
  const file = fileURLToPath(bundle);
  // ASCII (scripts/bundle.mjs escapes the rest): latin1 is the same text, without UTF-8 decoding.
  const source = readFileSync(file, "latin1");
  const dir = compileCacheDir(file, process.env);
  const name = compileCacheName(hash, process.argv.slice(2));
  let cachedData: Buffer | undefined;
  if (dir) {
    try {
      cachedData = readFileSync(join(dir, name));
    } catch {
      // No cache yet (or unreadable): compiled as without one.
    }
  }
  // One line, so that the bundle's line numbers (and its source map) hold.
  const wrapped = `(function (exports, require, module, __filename, __dirname, __bkImportMetaUrl) {${source}\n})`;
  // No import() in it (scripts/bundle.mjs checks): a script from a code cache has no dynamic import callback on Node 20.
  const script = new vm.Script(wrapped, { filename: file, cachedData });
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  if (dir && (!cachedData || script.cachedDataRejected === true)) {
    // At exit V8 has compiled what this command ran: that goes in the cache.
    process.once("exit", () => writeCache(dir, name, hash, script));
  }
  const module = { exports: {} };
  run(module.exports, createRequire(bundle), module, file, dirname(file), bundle.href);
}

function writeCache(dir: string, name: string, hash: string, script: vm.Script): void {
  const tmp = join(dir, `.${name}.${process.pid}`);
  let fd: number | undefined;
  try {
    mkdirSync(dir, { recursive: true });
    // Opened before V8 serializes anything: where it cannot be written, a run pays only this.
    fd = openSync(tmp, "wx", 0o644);
    writeSync(fd, script.createCachedData());
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, join(dir, name));
    // Caches of other bundles (an older build) go: one bundle's at a time.
    for (const f of readdirSync(dir)) {
      if (f.endsWith(".cache") && !f.startsWith(`${hash}-`)) rmSync(join(dir, f), { force: true });
    }
  } catch {
    // Not writable, a full disk: the next run compiles again.
    if (fd !== undefined) {
      try {
        closeSync(fd);
        rmSync(tmp, { force: true });
      } catch {
        // Nothing more to do at exit.
      }
    }
  }
}
