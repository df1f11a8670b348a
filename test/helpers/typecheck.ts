/**
 * Type-checking code that is not on disk as written (the README's examples,
 * a test file with its @ts-expect-error lines removed) with the project's
 * own tsconfig.json, in memory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import ts from "typescript";
import { repoRoot } from "./env.js";

/**
 * A program over `sources` (absolute path -> text; they may replace files on
 * disk or stand for files that do not exist), with tsconfig.json's options
 * plus `options`. Nothing is emitted.
 */
export function typecheck(sources: ReadonlyMap<string, string>, options: ts.CompilerOptions = {}): ts.Program {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(repoRoot, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    },
  )!;
  const all = { ...config.options, noEmit: true, ...options };
  const host = ts.createCompilerHost(all);
  const readFile = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.readFile = (f) => sources.get(f) ?? readFile(f);
  host.fileExists = (f) => sources.has(f) || exists(f);
  return ts.createProgram({ rootNames: [...sources.keys()], options: all, host });
}
