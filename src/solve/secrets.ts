/**
 * Secret sources for builds. Files (and pipes) are read once, before the
 * build is sent, so a bad one fails the build at once and every step sees
 * the same value; functions are called when buildkitd asks.
 */
import { close, constants, open as openFd, read as readFd, type Stats } from "node:fs";
import { open, stat } from "node:fs/promises";
import { Socket } from "node:net";
import { BuildKitError, UsageError } from "../errors.js";
import { fileKind, fsFailure, inputFileError, tooLargeError, type InputFileOptions } from "../files.js";
import { MAX_SECRET_BYTES, SecretFailures, type SecretProvider } from "../session/secrets.js";

/**
 * A secret's value: a string or Buffer, a file (or a pipe, read once), an
 * environment variable, or a function called when a build step mounts the
 * secret.
 */
export type SecretSource = string | Buffer | { file: string } | { env: string } | (() => string | Buffer | Promise<string | Buffer>);

/** How long a secret function may take to answer, and a pipe's writer to finish. */
export const DEFAULT_SECRET_TIMEOUT_MS = 60_000;

export interface SecretOptions {
  /** Aborts reading pipes at the start of the build. */
  signal?: AbortSignal | undefined;
  /** Default DEFAULT_SECRET_TIMEOUT_MS. */
  secretTimeoutMs?: number | undefined;
}

export interface PreparedSecrets {
  providers: Map<string, SecretProvider>;
  /** What went wrong when buildkitd asked, for the build's error. */
  failures: SecretFailures;
}

/** How regular secret files are read; tests replace it to fail in ways a disk here will not (EIO). */
export interface SecretFileIo {
  /** Up to `limit` bytes of the regular file at `path`. */
  readRegular(path: string, limit: number): Promise<Buffer>;
}

const fileIo: SecretFileIo = {
  async readRegular(path, limit) {
    // O_NONBLOCK: should the file have become a FIFO since the stat, this open does not wait for a writer.
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      if (!(await fh.stat()).isFile()) throw new Error("it stopped being a regular file while being opened");
      const buf = Buffer.alloc(limit);
      let n = 0;
      for (let r; n < limit && (r = (await fh.read(buf, n, limit - n, null)).bytesRead) > 0;) n += r;
      return buf.subarray(0, n);
    } finally {
      await fh.close();
    }
  },
};

/**
 * Checks sources and reads files before the build is sent (missing or
 * unreadable file, directory, unset variable, too big), and turns them into
 * providers. Errors name the secret id and the source, never a value.
 */
export async function prepareSecrets(
  secrets: Record<string, SecretSource> | undefined,
  env: Record<string, string | undefined>,
  options: SecretOptions = {},
  io: SecretFileIo = fileIo,
): Promise<PreparedSecrets> {
  const timeoutMs = options.secretTimeoutMs ?? DEFAULT_SECRET_TIMEOUT_MS;
  // setTimeout takes at most 2^31-1 ms (about 24 days); more would fire at once.
  if (!(timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new UsageError(`invalid secretTimeoutMs ${String(timeoutMs)}: use milliseconds above 0 (default ${DEFAULT_SECRET_TIMEOUT_MS})`);
  }
  const providers = new Map<string, SecretProvider>();
  for (const [id, src] of Object.entries(secrets ?? {})) {
    if (id === "") throw new UsageError("a secret needs an id");
    if (typeof src === "string" || Buffer.isBuffer(src)) {
      const value = Buffer.from(src);
      if (value.length > MAX_SECRET_BYTES) throw new UsageError(`secret "${id}" is larger than 500 KiB`);
      providers.set(id, () => Promise.resolve(value));
    } else if (typeof src === "function") {
      providers.set(id, functionProvider(id, src, timeoutMs));
    } else if ("file" in src) {
      const value = await readSecretFile(id, src.file, timeoutMs, options.signal, io);
      providers.set(id, () => Promise.resolve(value));
    } else if ("env" in src) {
      if (env[src.env] === undefined) {
        throw new UsageError(`secret "${id}": environment variable ${src.env} is not set; set it, or remove the secret`);
      }
      const name = src.env;
      providers.set(id, () => Promise.resolve(Buffer.from(env[name] ?? "")));
    } else {
      throw new UsageError(`secret "${id}": unknown source`);
    }
  }
  return { providers, failures: new SecretFailures() };
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * Calls a secret function when buildkitd asks, bounded by `timeoutMs`. Its
 * error is only ever the cause of ours: its message could quote the value.
 */
function functionProvider(id: string, fn: () => string | Buffer | Promise<string | Buffer>, timeoutMs: number): SecretProvider {
  return (signal) =>
    new Promise<Buffer>((resolve, reject) => {
      const done = (e: BuildKitError | undefined, value?: Buffer): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (e) reject(e);
        else resolve(value!);
      };
      const timer = setTimeout(
        () =>
          done(
            new BuildKitError(
              `secret "${id}" could not be provided: its function did not answer within ${formatMs(timeoutMs)}; make it answer sooner, or raise secretTimeoutMs`,
              { code: "DEADLINE_EXCEEDED" },
            ),
          ),
        timeoutMs,
      );
      const onAbort = (): void => done(new BuildKitError(`secret "${id}": buildkitd stopped waiting for it`, { code: "CANCELLED" }));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      Promise.resolve()
        .then(fn)
        .then(
          (v: unknown) => {
            if (typeof v !== "string" && !(v instanceof Uint8Array)) {
              done(new BuildKitError(`secret "${id}" could not be provided: its function returned ${v === null ? "null" : typeof v}, not a string or Buffer`));
              return;
            }
            const value = Buffer.from(v);
            if (value.length > MAX_SECRET_BYTES) done(new UsageError(`secret "${id}" is larger than 500 KiB`));
            else done(undefined, value);
          },
          (e: unknown) =>
            done(
              new BuildKitError(
                `secret "${id}" could not be provided: its function failed (that error is this one's cause; its message is not shown, as it could quote the value)`,
                { cause: e },
              ),
            ),
        );
    });
}

/** A secret file or pipe over buildkit's limit. */
function secretTooLarge(path: string, o: InputFileOptions): UsageError {
  return tooLargeError(path, o, "buildkit takes secrets of up to 500 KiB");
}

/** Reads a `{ file }` secret once: a regular file, or a pipe such as `<(cmd)`. */
async function readSecretFile(id: string, path: string, timeoutMs: number, signal: AbortSignal | undefined, io: SecretFileIo): Promise<Buffer> {
  const o: InputFileOptions = { what: "file", subject: `secret "${id}"`, maxBytes: MAX_SECRET_BYTES };
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsFailure(path, o, e);
  }
  if (st.isFIFO()) return readPipe(id, path, o, timeoutMs, signal);
  if (st.isDirectory()) throw inputFileError(path, o, "is a directory", "pass a file");
  if (!st.isFile()) throw inputFileError(path, o, `not a regular file or a pipe (${fileKind(st)})`, "pass a regular file");
  if (st.size > MAX_SECRET_BYTES) throw secretTooLarge(path, o);
  let data: Buffer;
  try {
    data = await io.readRegular(path, MAX_SECRET_BYTES + 1);
  } catch (e) {
    throw fsFailure(path, o, e);
  }
  if (data.length > MAX_SECRET_BYTES) throw secretTooLarge(path, o);
  return data;
}

/**
 * Reads a pipe to its end, at most the secret limit, within `timeoutMs`,
 * abortable. Opened O_NONBLOCK (an open waits for a writer otherwise) and
 * read through a net.Socket, which waits for data without blocking a thread.
 */
function readPipe(id: string, path: string, o: InputFileOptions, timeoutMs: number, signal: AbortSignal | undefined): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let socket: Socket | undefined;
    let fd: number | undefined;
    let settled = false;
    const finish = (e: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (socket) socket.destroy();
      else if (fd !== undefined) close(fd, () => undefined);
      if (e) reject(e);
      else if (total === 0) {
        reject(
          inputFileError(
            path,
            o,
            "the pipe gave no data",
            "check the command that writes it (a secret is never sent empty from a pipe; use a regular file for an empty one)",
          ),
        );
      } else {
        resolve(Buffer.concat(chunks, total));
      }
    };
    const add = (b: Buffer): void => {
      total += b.length;
      if (total > MAX_SECRET_BYTES) finish(secretTooLarge(path, o));
      else chunks.push(b);
    };
    const onAbort = (): void => finish(new BuildKitError(`the build was aborted while reading secret "${id}" from "${path}"`, { code: "CANCELLED" }));
    const timer = setTimeout(
      () => finish(inputFileError(path, o, `its writer did not finish within ${formatMs(timeoutMs)}`, "make it finish sooner, or raise secretTimeoutMs")),
      timeoutMs,
    );
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });

    openFd(path, constants.O_RDONLY | constants.O_NONBLOCK, (err, opened) => {
      if (err) return finish(fsFailure(path, o, err));
      fd = opened;
      if (settled) {
        close(opened, () => undefined);
        return;
      }
      // One read first: 0 bytes with O_NONBLOCK means no writer and nothing
      // buffered (a socket would wait for the timeout); EAGAIN means "not yet".
      const first = Buffer.alloc(64 * 1024);
      readFd(opened, first, 0, first.length, null, (e, n) => {
        if (settled) return;
        if (e && e.code !== "EAGAIN") return finish(fsFailure(path, o, e));
        if (!e && n === 0) {
          return finish(inputFileError(path, o, "the pipe is empty and nothing writes to it", "start what writes it before the build, or pass a regular file"));
        }
        if (!e) add(first.subarray(0, n));
        // add() may have settled it (the value is over the limit).
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (settled) return;
        try {
          socket = new Socket({ fd: opened, readable: true, writable: false });
        } catch (se) {
          return finish(fsFailure(path, o, se));
        }
        socket.on("data", (d: Buffer) => add(d));
        socket.on("end", () => finish(undefined));
        socket.on("error", (se) => finish(fsFailure(path, o, se)));
      });
    });
  });
}
