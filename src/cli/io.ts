import type { Writable } from "node:stream";

/** stdout for binary output: writes go through; ending it only waits for them (the fd stays open). */
export interface CliStdout {
  readonly isTTY: boolean;
  /** A new Writable onto stdout for one output. */
  writable(): Writable;
}

/** What a CLI command gets from the process: output, environment, working directory, cancellation. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The process's stdout as a byte stream, for `--output -` (absent: refused). */
  stdout?: CliStdout | undefined;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted on SIGINT, SIGTERM or SIGHUP. */
  signal: AbortSignal;
}
