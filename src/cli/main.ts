/**
 * The bk-build CLI's entry: parses argv, runs one command, maps errors to
 * one line and an exit code. It writes only through `io`; bin.ts binds it
 * to the process (argv, stdout/stderr, signals, the exit code).
 *
 * Commands are loaded with `await import()` on purpose: `--help`, usage
 * errors and `info` then load only what they use (start-up time is most of
 * a cached build's cost). Keep them dynamic.
 */
import { readFileSync } from "node:fs";
import { parseCommandLine, type Values } from "./args.js";
import type { CliIo } from "./io.js";

export type { CliIo } from "./io.js";

export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
/** --audit-secrets found a secret in the build's output. */
export const EXIT_LEAK = 3;

/** A command resolves with its exit code when it is not 0 without an error (`--call check` with warnings). */
type Runner = (values: Values, positionals: string[], io: CliIo) => Promise<unknown>;

const runners: Record<string, () => Promise<Runner>> = {
  build: async () => (await import("./commands/build.js")).runBuildCommand,
  compose: async () => (await import("./commands/compose.js")).runComposeCommand,
  info: async () => (await import("./commands/info.js")).runInfo,
  workers: async () => (await import("./commands/workers.js")).runWorkers,
  du: async () => (await import("./commands/du.js")).runDu,
  prune: async () => (await import("./commands/prune.js")).runPrune,
  history: async () => (await import("./commands/history.js")).runHistory,
  builder: async () => (await import("./commands/builder.js")).runBuilder,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * Runs the CLI; resolves with the exit code. When `io.signal` aborts, the
 * command is cancelled and the code is `interruptedCode` (130 for SIGINT,
 * 143 for SIGTERM, 129 for SIGHUP, as shells report them).
 */
export async function main(argv: string[], io: CliIo, interruptedCode: () => number = () => 130): Promise<number> {
  const debug = argv.includes("--debug");
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === "version") {
      io.out(`bk-build ${version()}\n`);
      return 0;
    }
    if (parsed.kind === "help") {
      io.out(parsed.text);
      return 0;
    }
    const run = await runners[parsed.spec.name]!();
    const code = await run(parsed.values, parsed.positionals, io);
    return typeof code === "number" ? code : 0;
  } catch (e) {
    const err = e as { name?: string; message?: string; stack?: string; code?: string };
    if (io.signal.aborted) {
      io.err(`error: ${io.signal.reason instanceof Error ? io.signal.reason.message : "interrupted"}\n`);
      if (debug && err.stack) io.err(err.stack + "\n");
      return interruptedCode();
    }
    const message = err.message ?? String(e);
    io.err(`error: ${message}\n`);
    if (debug && err.stack) io.err(err.stack + "\n");
    return err.code === "USAGE" ? EXIT_USAGE : err.code === "SECRET_LEAK" ? EXIT_LEAK : EXIT_ERROR;
  }
}
