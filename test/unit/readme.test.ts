/**
 * The README's TypeScript examples type-check against the public API, so
 * they cannot drift from it (a renamed option or a prune() that changed
 * shape fails here). The few names an example leaves to the reader are
 * declared in a prelude.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { repoRoot } from "../helpers/env.js";
import { typecheck } from "../helpers/typecheck.js";

const prelude = ["declare const token: string;", "declare const url: string;", "declare function tooLate(): Promise<boolean>;", "export {};"].join("\n");

test("the README's ts code blocks compile against the public API", () => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 1, "the README has ts examples");
  const names = blocks.map((_, i) => join(repoRoot, `README.example-${i}.ts`));
  // Imports first, as the examples write them; the prelude after.
  const sources = new Map(
    blocks.map((code, i) => {
      const lines = code.split("\n");
      return [names[i]!, [...lines.filter((l) => l.startsWith("import ")), prelude, ...lines.filter((l) => !l.startsWith("import "))].join("\n")];
    }),
  );
  // "bk-build" is what a user imports: the package's own entry point.
  const program = typecheck(sources, { noUnusedLocals: false, baseUrl: repoRoot, paths: { "bk-build": ["src/index.ts"] } });
  const problems = names.flatMap((n) =>
    program.getSemanticDiagnostics(program.getSourceFile(n)).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return `example ${names.indexOf(n)} line ${line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    }),
  );
  assert.deepEqual(problems, []);
});
