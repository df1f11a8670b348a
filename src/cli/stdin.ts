/**
 * `build -` and `-f -`, as buildx reads stdin: `-` is a context archive
 * (tar, gzip, bzip2 or xz, told by its first bytes) or, when it is not one,
 * a Dockerfile built with an empty context; `-f -` is the Dockerfile.
 */
import type { BuildOptions } from "../index.js";
import { MAX_TEXT_FILE_BYTES, SNIFF_BYTES, UsageError, peekStream, readAll, sniffStream } from "../internal.js";
import type { CliStdin } from "./io.js";

/** What stdin stands for in a build's arguments. */
export type StdinUse = "context" | "dockerfile";

/** Which of the build's inputs read stdin; both at once is refused, as buildx does. */
export function stdinUse(context: string, dockerfile: string | undefined): StdinUse | undefined {
  if (context === "-" && dockerfile === "-") {
    throw new UsageError("can't use stdin for both build context and dockerfile: give a context directory with -f -, or an archive holding the Dockerfile");
  }
  if (context === "-") return "context";
  if (dockerfile === "-") return "dockerfile";
  return undefined;
}

function openStdin(stdin: CliStdin | undefined, use: StdinUse): AsyncIterable<Uint8Array> {
  if (!stdin) throw new UsageError(`${use === "context" ? "build context -" : "-f -"} reads stdin, and there is none here`);
  if (stdin.isTTY) {
    throw new UsageError(
      use === "context"
        ? "build context - reads stdin, which is a terminal: pipe a tar archive or a Dockerfile into it (bk-build build - < context.tar)"
        : "-f - reads the Dockerfile from stdin, which is a terminal: pipe it in (bk-build build -f - . < Dockerfile)",
    );
  }
  return stdin.readable();
}

/**
 * Reads stdin into `options` (the library's forms): a context archive
 * becomes `context` (a stream, read by the daemon as the build goes), a
 * Dockerfile becomes `dockerfile: { contents }`, with no context (an empty
 * one) for `-`. Throws UsageError for an empty stdin, a zstd archive, or a
 * Dockerfile on stdin together with -f.
 */
export async function readStdinInputs(options: BuildOptions, use: StdinUse, stdin: CliStdin | undefined): Promise<void> {
  const source = openStdin(stdin, use);
  if (use === "dockerfile") {
    const contents = await readAll(source, MAX_TEXT_FILE_BYTES, "the Dockerfile on stdin (-f -)");
    if (!contents.length) throw new UsageError("-f -: stdin is empty: pipe the Dockerfile into it");
    options.dockerfile = { contents };
    return;
  }
  const peeked = await peekStream(source, SNIFF_BYTES, "stdin");
  const kind = sniffStream(peeked.head);
  if (kind === "archive") {
    options.context = peeked.stream;
    return;
  }
  if (kind === "empty") throw new UsageError("build context -: stdin is empty: pipe a tar archive or a Dockerfile into it");
  if (kind === "zstd") {
    throw new UsageError("build context -: stdin is zstd-compressed, which BuildKit does not unpack: decompress it (zstd -dc) or use gzip, bzip2 or xz");
  }
  // Not an archive: the Dockerfile, with an empty context.
  if (options.dockerfile !== undefined) {
    throw new UsageError("ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles (stdin is not an archive): drop -f, or pipe an archive");
  }
  options.dockerfile = { contents: await readAll(peeked.stream, MAX_TEXT_FILE_BYTES, "the Dockerfile on stdin") };
  delete options.context;
}
