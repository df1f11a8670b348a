#!/usr/bin/env node
// Bundles the CLI (dist/src/cli/bin.js, as tsc wrote it) into that one file,
// in place: `npm run build` runs it after tsc. Start-up is most of a cached
// build's cost, and Node's ESM loader pays for every module it resolves,
// reads and links (about a hundred for `build`); one file saves about 45 to
// 85 ms of CPU per command here (issue 15). The library (dist/src/index.js)
// stays unbundled, module by module.
//
// The commands' `await import()`s stay lazy inside the bundle (esbuild
// evaluates a module when its import runs). ssh2 stays external (native
// addons; imported only for ssh://), and yaml is required at run time
// already. Every other dependency is bundled: protobufjs' minimal runtime
// (18 CommonJS files and `long`, about 15 ms through Node's loader; its
// require("long") is bundled too, so int64 stays exact), and tar-stream: an
// external imported statically by a lazily loaded module (the audit) would
// become a top-level import and load on every start.
//
// Running tsc alone puts the unbundled bin.js back: it behaves the same, only
// starts slower.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = join(root, "dist", "src", "cli", "bin.js");
const source = readFileSync(bin, "utf8");

// The sh/JavaScript polyglot head of bin.ts (see its comment): esbuild keeps
// a #! line but drops comments, so the two lines are put back as they are.
const head = source.split("\n", 3);
if (head[0] !== "#!/bin/sh" || !head[1]?.startsWith("// 2>/dev/null; exec node ")) {
  console.error("dist/src/cli/bin.js does not start with bin.ts's sh line; was it built from src/cli/bin.ts?");
  process.exit(1);
}
const marker = "// The bk-build CLI, bundled by scripts/bundle.mjs";
if (head[2]?.startsWith(marker)) {
  console.error("dist/src/cli/bin.js is bundled already (tsc writes it anew)");
  process.exit(0);
}

const result = await build({
  entryPoints: [bin],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["ssh2"],
  // Bundled CommonJS (tar-stream's streamx) requires Node builtins: esbuild's
  // require shim in an ES module needs a `require` to call.
  banner: { js: 'import { createRequire as __bkCreateRequire } from "node:module";\nconst require = __bkCreateRequire(import.meta.url);' },
  write: false,
  outfile: bin,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "none",
  logLevel: "warning",
});

for (const f of result.outputFiles) {
  let text = f.text;
  if (f.path.endsWith(".js")) {
    if (!text.startsWith("#!/bin/sh\n")) throw new Error("esbuild's output does not start with the #! line");
    text = text.slice("#!/bin/sh\n".length);
    text = `${head[0]}\n${head[1]}\n${marker} from the modules under dist/src (see src/cli/bin.ts).\n${text}`;
  } else {
    // esbuild's first line (#!) is replaced by three: the map's lines start two further down.
    const map = JSON.parse(text);
    map.mappings = ";;" + map.mappings;
    text = JSON.stringify(map);
  }
  writeFileSync(f.path + ".tmp", text);
  renameSync(f.path + ".tmp", f.path);
}
