import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileCacheDir, compileCacheName } from "../../src/cli/compile-cache.js";
import { repoRoot } from "../helpers/env.js";
import { tempDir } from "../helpers/files.js";

test("compile cache: in the nearest node_modules above the bundle, off with NODE_DISABLE_COMPILE_CACHE", () => {
  const dir = tempDir("bk-cc-dir-");
  mkdirSync(join(dir, "app", "node_modules", "bk-build", "dist", "src", "cli"), { recursive: true });
  const installed = join(dir, "app", "node_modules", "bk-build", "dist", "src", "cli", "bin.bundle.cjs");
  assert.equal(compileCacheDir(installed, {}), join(dir, "app", "node_modules", ".cache", "bk-build"));
  mkdirSync(join(dir, "checkout", "node_modules"), { recursive: true });
  mkdirSync(join(dir, "checkout", "dist", "src", "cli"), { recursive: true });
  assert.equal(compileCacheDir(join(dir, "checkout", "dist", "src", "cli", "bin.bundle.cjs"), {}), join(dir, "checkout", "node_modules", ".cache", "bk-build"));
  assert.equal(compileCacheDir(installed, { NODE_DISABLE_COMPILE_CACHE: "1" }), undefined);
});

test("compile cache: one file per bundle hash, Node version, architecture and command", () => {
  const tail = `${process.version}-${process.arch}`;
  assert.equal(compileCacheName("0123abcd", ["--addr", "tcp://x:1", "build", "."]), `0123abcd-${tail}-build.cache`);
  assert.equal(compileCacheName("0123abcd", ["history", "ls"]), `0123abcd-${tail}-history.cache`);
  assert.equal(compileCacheName("0123abcd", ["--version"]), `0123abcd-${tail}-other.cache`);
});

test("compile cache: the first run writes it, later runs use it, a newer bundle replaces an older one's", () => {
  const dir = tempDir("bk-cc-run-");
  mkdirSync(join(dir, "node_modules"));
  mkdirSync(join(dir, "cli"));
  const bundle = join(dir, "cli", "bin.bundle.cjs");
  // What the loader gives the script, as the CLI bundle uses it.
  writeFileSync(bundle, '"use strict";\nprocess.stdout.write([typeof require("node:fs").readFileSync, __bkImportMetaUrl, typeof module.exports].join(" "));\n');
  const loader = pathToFileURL(join(repoRoot, "dist", "src", "cli", "compile-cache.js")).href;
  const run = (hash: string, env: Record<string, string> = {}): string => {
    const script = `import(${JSON.stringify(loader)}).then((m) => m.runBundle(new URL(${JSON.stringify(pathToFileURL(bundle).href)}), ${JSON.stringify(hash)}))`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, "--", "(argv[1])", "build"], {
      encoding: "utf8",
      env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const cache = join(dir, "node_modules", ".cache", "bk-build");
  assert.equal(run("aaaa", { NODE_DISABLE_COMPILE_CACHE: "1" }), `function ${pathToFileURL(bundle).href} object`);
  assert.equal(existsSync(cache), false, "no cache when it is turned off");
  run("aaaa");
  const name = `aaaa-${process.version}-${process.arch}-build.cache`;
  assert.deepEqual(readdirSync(cache), [name]);
  assert.equal(run("aaaa"), `function ${pathToFileURL(bundle).href} object`);
  run("bbbb");
  assert.deepEqual(readdirSync(cache), [name.replace("aaaa", "bbbb")]);
});
