#!/usr/bin/env node
// Bundles the CLI (dist/src/cli/bin.js, as tsc wrote it) into one script,
// dist/src/cli/bin.bundle.cjs, and replaces bin.js with a small loader that
// runs it with a V8 code cache (src/cli/compile-cache.ts): `npm run build`
// runs this after tsc. Start-up is most of a cached build's cost. Node's ESM
// loader pays for every module it resolves, reads and links (about a hundred
// for `build`): one file saves about 45 to 85 ms of CPU per command here;
// the code cache (Node 20 has none for modules) saves about 25 ms more
// (issue 15). The library (dist/src/index.js) stays unbundled, module by
// module.
//
// The bundle is CommonJS because only a script can be compiled with a code
// cache on Node 20 (vm.Script); its code is the modules' own, strict as
// theirs, with `import.meta.url` given by the loader (the bundle's URL, in
// the same directory as bin.js). The commands' `await import()`s stay lazy
// inside it (esbuild evaluates a module when its import runs). ssh2 stays
// external (native addons; imported only for ssh://), and yaml is required
// at run time already. Every other dependency is bundled: protobufjs'
// minimal runtime (18 CommonJS files and `long`, about 15 ms through Node's
// loader; its require("long") is bundled too, so int64 stays exact), and
// tar-stream: an external imported statically by a lazily loaded module
// (the audit) would load on every start.
//
// Running tsc alone puts the unbundled bin.js back: it behaves the same, only
// starts slower.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cliDir = join(root, "dist", "src", "cli");
const bin = join(cliDir, "bin.js");
const bundle = join(cliDir, "bin.bundle.cjs");
const source = readFileSync(bin, "utf8");

// The sh/JavaScript polyglot head of bin.ts (see its comment): esbuild keeps
// a #! line but drops comments, so the two lines are put back as they are.
const head = source.split("\n", 3);
if (head[0] !== "#!/bin/sh" || !(head[1]?.startsWith("// 2>/dev/null; ") && head[1].endsWith(' exec node -- "$0" "$@"'))) {
  console.error("dist/src/cli/bin.js does not start with bin.ts's sh line; was it built from src/cli/bin.ts?");
  process.exit(1);
}
const marker = "// The bk-build CLI's loader, written by scripts/bundle.mjs";
if (head[2]?.startsWith(marker)) {
  console.error("dist/src/cli/bin.js is bundled already (tsc writes it anew)");
  process.exit(0);
}

// The bundle's dynamic imports of what is not bundled (ssh2, node:http) as
// require()s, lazy still: a script compiled from a code cache has no import()
// on Node 20 ("A dynamic import callback was not specified").
const importsAsRequires = {
  name: "dynamic-imports-as-requires",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== "dynamic-import" || !(args.path === "ssh2" || isBuiltin(args.path))) return undefined;
      return { path: args.path, namespace: "require" };
    });
    b.onLoad({ filter: /.*/, namespace: "require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
      resolveDir: cliDir,
    }));
  },
};

const common = { bundle: true, platform: "node", target: "node20", write: false, legalComments: "none", logLevel: "warning" };
const [code, map] = (
  await build({
    ...common,
    entryPoints: [bin],
    format: "cjs",
    external: ["ssh2"],
    plugins: [importsAsRequires],
    define: { "import.meta.url": "__bkImportMetaUrl" },
    outfile: bundle,
    sourcemap: "linked",
    sourcesContent: false,
  })
).outputFiles.sort((a, b) => (a.path.endsWith(".map") ? 1 : b.path.endsWith(".map") ? -1 : 0));
// The modules are ES modules, strict: so is the script (esbuild says so first; the loader puts it first in a function body).
if (!code.text.startsWith('#!/bin/sh\n"use strict";')) throw new Error('esbuild\'s output does not start with the #! line and "use strict"');
// The #! line goes (the loader runs the script); the map's lines move up one.
// ASCII, so that the loader reads it without UTF-8 decoding (about 3 of 4 ms
// for 1.4 MB): esbuild escapes strings and identifiers; what it leaves as it
// is (in regular expression literals and comments) is escaped here, the same
// to JavaScript there. A backslash before such a character (an identity
// escape in a regular expression) goes with it.
const script = code.text
  .slice("#!/bin/sh\n".length)
  .replace(/(\\*)([^\x00-\x7f])/g, (_, bs, ch) => (bs.length % 2 ? bs.slice(1) : bs) + "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));
const sourceMap = JSON.parse(map.text);
if (!sourceMap.mappings.startsWith(";")) throw new Error("unexpected source map: its first line has mappings");
sourceMap.mappings = sourceMap.mappings.slice(1);
if (/\bimport\(["'`]/.test(script)) throw new Error("the bundle has an import() left: bundle its target, or add it to dynamic-imports-as-requires");
const hash = createHash("sha256").update(script).digest("hex").slice(0, 16);

const loader = await build({
  ...common,
  stdin: {
    contents: `import { runBundle } from "./compile-cache.js";\nrunBundle(new URL("./bin.bundle.cjs", import.meta.url), ${JSON.stringify(hash)});\n`,
    resolveDir: cliDir,
    sourcefile: "bin.js",
  },
  format: "esm",
});

const put = (path, text) => {
  writeFileSync(path + ".tmp", text);
  renameSync(path + ".tmp", path);
};
put(bundle, script);
put(bundle + ".map", JSON.stringify(sourceMap));
put(bin, `${head[0]}\n${head[1]}\n${marker}: it runs bin.bundle.cjs, the modules under dist/src bundled (see src/cli/bin.ts).\n${loader.outputFiles[0].text}`);
// tsc's map of the unbundled bin.js would not fit the loader.
rmSync(bin + ".map", { force: true });
