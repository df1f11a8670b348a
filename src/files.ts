/**
 * Reading the files a user names (Dockerfile, compose and env files, TLS
 * PEMs, SSH keys, known_hosts). A FIFO or device is refused after a stat,
 * before it is opened: opening or reading one can block forever, and a
 * synchronous read blocks the whole event loop, signals included. Errors
 * are one line naming the input, the path, the reason and what to do.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { UsageError } from "./errors.js";

/** Dockerfiles, compose files and env files: far above any real one. */
export const MAX_TEXT_FILE_BYTES = 10 * 1024 * 1024;
/** TLS certificates and keys, SSH keys. */
export const MAX_PEM_BYTES = 1024 * 1024;

export interface InputFileOptions {
  /** What the file is, for errors: "Dockerfile", "CA certificate". */
  what: string;
  /** The flag that named it, when one did: "-f", "--tlscacert". */
  flag?: string | undefined;
  /** What the file belongs to, put before the message: `secret "npmrc"`. */
  subject?: string | undefined;
  /** Files larger than this are refused. */
  maxBytes: number;
}

/**
 * An fs error as one short clause, without Node's repeated path:
 * "EACCES: permission denied, open '/x'" -> "permission denied".
 */
export function fsReason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (!(e as NodeJS.ErrnoException).code) return e.message;
  return e.message.replace(/^[A-Z0-9_]+: /, "").replace(/, \w+ '.*'$/s, "");
}

/**
 * A time argument for utimes/futimes/lutimes from nanoseconds. libuv keeps
 * microseconds (it drops the rest), so this is exact to the microsecond:
 * half a microsecond is added (or, below zero, taken) so that the
 * truncation lands on the right one, and times before 1970 go as a string
 * because Node replaces a negative number with the current time.
 */
export function utimeArg(ns: bigint): number | string {
  let us = ns / 1000n;
  if (ns % 1000n < 0n) us -= 1n;
  let sec = us / 1_000_000n;
  if (us % 1_000_000n < 0n) sec -= 1n;
  const frac = Number(us - sec * 1_000_000n);
  if (sec >= 0n) return Number(sec) + (frac + 0.5) / 1e6;
  if (frac === 0) return String(Number(sec));
  return String(Number(sec) + (frac - 0.5) / 1e6);
}

/** "10 MiB", "500 KiB", "100 bytes". */
export function formatLimit(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/** What a non-regular file is, for "not a regular file (a FIFO)"; lstat's symbolic links too. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a file";
}

/** An fs error as a reason and what to do about it. */
export function errnoProblem(e: unknown): { reason: string; fix: string } {
  switch ((e as NodeJS.ErrnoException | undefined)?.code) {
    case "ENOENT":
      return { reason: "no such file", fix: "check the path" };
    case "ENOTDIR":
      return { reason: "a parent is not a directory", fix: "check the path" };
    case "EACCES":
    case "EPERM":
      return { reason: "permission denied", fix: "check its permissions" };
    case "EISDIR":
      return { reason: "is a directory", fix: "pass a file" };
    default:
      // "EIO: i/o error, read" -> "i/o error" (fsReason keeps a syscall without a path).
      return { reason: fsReason(e).replace(/, [a-z]+$/, ""), fix: "check the file and try again" };
  }
}

/** The one-line error for an input file; never quotes its content. */
export function inputFileError(path: string, o: Pick<InputFileOptions, "what" | "flag" | "subject">, reason: string, fix: string, cause?: unknown): UsageError {
  const where = `cannot read ${o.what} "${path}"${o.flag ? ` (${o.flag})` : ""}`;
  return new UsageError(`${o.subject ? `${o.subject}: ` : ""}${where}: ${reason}; ${fix}`, cause === undefined ? {} : { cause });
}

/** The one-line error for an fs failure on an input file (errnoProblem's reason and fix). */
export function fsFailure(path: string, o: Pick<InputFileOptions, "what" | "flag" | "subject">, e: unknown): UsageError {
  const p = errnoProblem(e);
  return inputFileError(path, o, p.reason, p.fix, e);
}

/** The error for an input file over `maxBytes`; `fix` says what to do. */
export function tooLargeError(path: string, o: InputFileOptions, fix = "is it the right file?"): UsageError {
  return inputFileError(path, o, `larger than ${formatLimit(o.maxBytes)}`, fix);
}

/** Throws unless `st` is a regular file of at most `maxBytes`. */
export function checkStats(path: string, st: Stats, o: InputFileOptions): void {
  if (st.isDirectory()) throw inputFileError(path, o, "is a directory", "pass a file");
  if (!st.isFile()) throw inputFileError(path, o, `not a regular file (${fileKind(st)})`, "pass a regular file");
  if (st.size > o.maxBytes) throw tooLargeError(path, o);
}

/** Throws a UsageError unless `path` is a readable-looking regular file within the limit; never opens it. */
export function checkInputFile(path: string, o: InputFileOptions): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw fsFailure(path, o, e);
  }
  checkStats(path, st, o);
}

/**
 * Reads a regular file of at most `maxBytes`, synchronously. It is checked
 * by path before it is opened, and again by descriptor after (it may have
 * been swapped); O_NONBLOCK keeps even that open from waiting on a FIFO.
 */
export function readInputFile(path: string, o: InputFileOptions): Buffer {
  checkInputFile(path, o);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw fsFailure(path, o, e);
  }
  try {
    checkStats(path, fstatSync(fd), o);
    // Read to the end, not to the size stat gave: the file may have grown.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, o.maxBytes + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > o.maxBytes) throw tooLargeError(path, o);
    }
    return Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw fsFailure(path, o, e);
  } finally {
    closeSync(fd);
  }
}
