import type { Writable } from "node:stream";

/** stdout for binary output: writes go through; ending it only waits for them (the fd stays open). */
export interface CliStdout {
  readonly isTTY: boolean;
  /** A new Writable onto stdout for one output. */
  writable(): Writable;
}

/** stderr's terminal, when it is one: its size, read at every redraw, and resizes. */
export interface CliTerminal {
  readonly isTTY: boolean;
  columns(): number | undefined;
  rows(): number | undefined;
  /** Calls `fn` on every resize (SIGWINCH); returns the unsubscribe. */
  onResize(fn: () => void): () => void;
}

/** stdin, for `build -` (a context archive or a Dockerfile) and `-f -`. */
export interface CliStdin {
  readonly isTTY: boolean;
  /** Its bytes (read once). */
  readable(): AsyncIterable<Uint8Array>;
}

/** What a CLI command gets from the process: output, environment, working directory, cancellation. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The process's stdout as a byte stream, for `--output -` (absent: refused). */
  stdout?: CliStdout | undefined;
  /** The process's stdin (absent: `-` and `-f -` are refused). */
  stdin?: CliStdin | undefined;
  /** stderr as a terminal (absent: not one, so progress is plain). */
  stderr?: CliTerminal | undefined;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted on SIGINT, SIGTERM or SIGHUP. */
  signal: AbortSignal;
}
