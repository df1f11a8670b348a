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

const prelude = ["declare const token: string;", "declare function tooLate(): Promise<boolean>;", "export {};"].join("\n");

test("the README's ts code blocks compile against the public API", () => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 1, "the README has ts examples");
  const config = ts.getParsedCommandLineOfConfigFile(
    join(repoRoot, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    },
  )!;
  // "bk-build" is what a user imports: the package's own entry point.
  const options: ts.CompilerOptions = { ...config.options, noEmit: true, noUnusedLocals: false, baseUrl: repoRoot, paths: { "bk-build": ["src/index.ts"] } };
  const names = blocks.map((_, i) => join(repoRoot, `README.example-${i}.ts`));
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.readFile = (f) => {
    const i = names.indexOf(f);
    if (i < 0) return readFile(f);
    // Imports first, as the examples write them; the prelude after.
    const code = blocks[i]!;
    const imports = code.split("\n").filter((l) => l.startsWith("import "));
    const rest = code.split("\n").filter((l) => !l.startsWith("import "));
    return [...imports, prelude, ...rest].join("\n");
  };
  host.fileExists = (f) => names.includes(f) || exists(f);
  const program = ts.createProgram({ rootNames: names, options, host });
  const problems = names.flatMap((n) =>
    program.getSemanticDiagnostics(program.getSourceFile(n)).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return `example ${names.indexOf(n)} line ${line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    }),
  );
  assert.deepEqual(problems, []);
});
