/**
 * Files the user names for the CLI to write (--metadata-file): checked
 * before any work starts, then replaced atomically (a temporary file in the
 * same directory, renamed over the destination), so a reader sees the old
 * file or the new one, and a failure leaves nothing behind. Messages name
 * the path as the user gave it, never the temporary file.
 */
import { accessSync, closeSync, constants, fsyncSync, lstatSync, openSync, renameSync, rmSync, statSync, writeSync, type Stats } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { BuildKitError, UsageError, fileKind } from "../internal.js";

/** What the destination is when it is not a regular file (undefined when it is). */
function kind(st: Stats): string | undefined {
  return st.isFile() ? undefined : fileKind(st);
}

function code(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

/** What an fs error means, without the (temporary) path Node puts in its message. */
function reason(e: unknown): string {
  switch (code(e)) {
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOENT":
      return "its directory does not exist";
    case "ENOTDIR":
      return "a part of its path is not a directory";
    case "EISDIR":
    case "ENOTEMPTY":
    case "EEXIST":
      return "it is a directory";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "disk quota exceeded";
    case "EROFS":
      return "the file system is read-only";
    default:
      return code(e) ?? (e instanceof Error ? e.message : String(e));
  }
}

/**
 * Checks that `path` can be written as a regular file: it is one, or does
 * not exist in an existing, writable directory. Throws UsageError naming
 * `flag` and `path`.
 */
export function checkOutputFile(path: string, flag: string): void {
  const where = `${flag} ${JSON.stringify(path)}`;
  if (path === "") throw new UsageError(`${flag} needs a file path`);
  const abs = resolve(path);
  let st: Stats | undefined;
  try {
    st = lstatSync(abs);
  } catch (e) {
    if (code(e) !== "ENOENT" && code(e) !== "ENOTDIR") throw new UsageError(`${where}: cannot be checked (${reason(e)})`, { cause: e });
  }
  if (st) {
    const k = kind(st);
    if (k === "a directory") throw new UsageError(`${where} is a directory; give a file path, e.g. ${join(path, "metadata.json")}`);
    if (k === "a symbolic link") throw new UsageError(`${where} is a symbolic link; give the path of the file it points to`);
    if (k) throw new UsageError(`${where} is ${k}, not a regular file; give a file path`);
  }
  const dir = dirname(abs);
  let dirSt: Stats;
  try {
    dirSt = statSync(dir);
  } catch (e) {
    const shown = dirname(path);
    if (code(e) === "ENOENT") throw new UsageError(`${where}: directory ${JSON.stringify(shown)} does not exist; create it first`, { cause: e });
    throw new UsageError(`${where}: directory ${JSON.stringify(shown)} cannot be used (${reason(e)})`, { cause: e });
  }
  if (!dirSt.isDirectory()) throw new UsageError(`${where}: ${JSON.stringify(dirname(path))} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`${where}: cannot write in directory ${JSON.stringify(dirname(path))} (${reason(e)})`, { cause: e });
  }
}

/**
 * Replaces `path` with `data` atomically: a temporary file beside it,
 * flushed, then renamed over it. On any failure the temporary file is
 * removed and the error (a BuildKitError) names `flag` and `path`.
 */
export function writeOutputFile(path: string, data: string, flag: string): void {
  const abs = resolve(path);
  const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    const existing = lstatSync(abs, { throwIfNoEntry: false });
    if (existing && kind(existing)) throw Object.assign(new Error("not a regular file"), { code: existing.isDirectory() ? "EISDIR" : "EINVAL" });
    fd = openSync(tmp, "wx", 0o644);
    created = true;
    const bytes = Buffer.from(data);
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, abs);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing
      }
    }
    if (created) rmSync(tmp, { force: true });
    throw new BuildKitError(`cannot write ${flag} ${JSON.stringify(path)}: ${code(e) === "EINVAL" ? "it is not a regular file" : reason(e)}`, { cause: e });
  }
}
