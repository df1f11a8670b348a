/** What a CLI command gets from the process: output, environment, working directory, cancellation. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted on SIGINT, SIGTERM or SIGHUP. */
  signal: AbortSignal;
}
