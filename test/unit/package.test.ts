/**
 * What a user installs: the .d.ts files reachable from the package's entry
 * import only node:* and the runtime dependencies (a type from a dev-only
 * package, such as @grpc/grpc-js or @types/ssh2, would break a user's type
 * check), and the build does not ship the generators' output for grpc-js.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { repoRoot } from "../helpers/env.js";

function hasOwnTypes(name: string): boolean {
  const dir = join(repoRoot, "node_modules", name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { types?: string; typings?: string; exports?: unknown };
  return Boolean(pkg.types ?? pkg.typings) || existsSync(join(dir, "index.d.ts")) || JSON.stringify(pkg.exports ?? {}).includes('"types"');
}

test("the shipped .d.ts graph imports only node:* and runtime dependencies", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { dependencies: Record<string, string>; types: string };
  const allowed = new Set(Object.keys(pkg.dependencies));
  const entry = join(repoRoot, pkg.types);
  const seen = new Set<string>();
  const stack = [entry];
  const outside: string[] = [];
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    // Comments hold examples ("from \"bk-build\""), not imports.
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
    for (const m of text.matchAll(/(?:from\s+|import\()\s*["']([^"']+)["']/g)) {
      const spec = m[1]!;
      if (spec.startsWith(".")) {
        const next = resolve(dirname(file), spec.replace(/\.js$/, ".d.ts"));
        assert.ok(existsSync(next), `${file} imports ${spec}, which was not built`);
        stack.push(next);
      } else if (!spec.startsWith("node:")) {
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        const where = file.slice(repoRoot.length + 1);
        if (!allowed.has(name)) outside.push(`${where} imports ${spec}, which is not a dependency`);
        // A dependency without types of its own is typed by @types/NAME, which must then ship too.
        else if (!hasOwnTypes(name) && !allowed.has(`@types/${name}`))
          outside.push(`${where} imports types of ${spec}, which come from @types/${name}, not a dependency`);
      }
    }
  }
  assert.ok(seen.size > 10, `walked ${seen.size} files from ${pkg.types}`);
  assert.deepEqual(outside, []);
});
