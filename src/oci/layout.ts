/**
 * An OCI image layout directory used as a content store: `oci-layout`,
 * `index.json` and `blobs/<alg>/<hex>`, with partial writes under
 * `ingest/`. This is what the session's Content service serves (local cache
 * import and export, OCI-layout contexts, oci/docker exports to a
 * directory), and what the client edits index.json in after a build.
 *
 * Nothing is ever written outside the directory: digests are checked
 * before they become paths, refs never do (an ingest's file name is random),
 * and the blobs/ and ingest/ directories must not be symbolic links.
 *
 * index.json is written as Go's json.Marshal writes buildkit's structs
 * (client/ociindex), so the file is byte for byte what buildctl writes for
 * the same content. Edits take the lock file `index.json.lock` (created
 * with O_EXCL, holding the pid), and the file is replaced by a rename, so a
 * reader never sees half of it.
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { constants, promises as fsp, type Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { BuildKitError } from "../errors.js";
import { fsReason } from "../files.js";

/** `oci-layout`'s content, as Go marshals ocispecs.ImageLayout. */
export const OCI_LAYOUT_JSON = '{"imageLayoutVersion":"1.0.0"}';
export const MEDIA_TYPE_IMAGE_INDEX = "application/vnd.oci.image.index.v1+json";
/** containerd's annotation for an image's full name (docker.io/library/x:latest). */
export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";
/** OCI's annotation for a manifest's tag in a layout. */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/** Largest piece read() yields (the session's Read sends each as one message). */
export const READ_CHUNK_BYTES = 1 << 20;
/** How long updateIndex waits for another writer's lock before giving up. */
export const LOCK_TIMEOUT_MS = 30_000;
/** A lock file without a pid (being written, or left by a Go flock) older than this is stale. */
const UNNAMED_LOCK_STALE_MS = 10_000;

/** The gRPC status names a layout's errors carry (the session service answers with them). */
export type LayoutErrorCode = "INVALID_ARGUMENT" | "NOT_FOUND" | "ALREADY_EXISTS" | "UNAVAILABLE" | "OUT_OF_RANGE" | "FAILED_PRECONDITION" | "INTERNAL";

/** A failure of an OCI layout operation; `code` is the gRPC status it maps to. */
export class LayoutError extends BuildKitError {
  declare readonly code: LayoutErrorCode;
  constructor(code: LayoutErrorCode, message: string, cause?: unknown) {
    super(message, { code, cause });
  }
  override get name(): string {
    return "LayoutError";
  }
}

/** An OCI platform, with the JSON field names of the image spec. */
export interface OciPlatform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
}

/** An OCI content descriptor. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Embedded content, base64 as in the JSON. */
  data?: string;
  platform?: OciPlatform;
  artifactType?: string;
}

/** An OCI image index (index.json). Fields not in the image spec v1.1 are dropped, as Go drops them. */
export interface OciIndex {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  manifests: OciDescriptor[];
  subject?: OciDescriptor;
  annotations?: Record<string, string>;
}

/** What an ingest's commit did. */
export interface CommitResult {
  digest: string;
  size: number;
  /** The blob was already in the store; this ingest's bytes were dropped. */
  existed: boolean;
}

/**
 * One blob being written. Calls must not overlap (await each). write,
 * truncate and commit throw after the ingest ended (commit or abort).
 */
export interface Ingest {
  readonly ref: string;
  /** Bytes written so far. */
  readonly offset: number;
  /** The expected size, 0 when not known. */
  total: number;
  /** The digest the writer expects, "" when it named none. */
  expected: string;
  readonly startedAt: Date;
  readonly updatedAt: Date;
  /** The digest of the bytes written so far. */
  digest(): string;
  write(data: Uint8Array): Promise<void>;
  /** Drops everything written so far (a restart at offset 0). */
  truncate(): Promise<void>;
  /**
   * Checks the size (when `size` > 0) and the digest (when `expected` is
   * given), then moves the bytes to blobs/<alg>/<hex>, read-only. Ends the
   * ingest, also when it fails (FAILED_PRECONDITION on a mismatch).
   */
  commit(size: number, expected?: string): Promise<CommitResult>;
  /** Ends the ingest and removes its bytes; does nothing once ended. */
  abort(): Promise<void>;
}

const DIGEST_RE = /^(sha256):([a-f0-9]{64})$|^(sha512):([a-f0-9]{128})$/;

/** A digest as algorithm and hex; INVALID_ARGUMENT unless it is sha256:<64 hex> or sha512:<128 hex> (lower case). */
export function parseDigest(digest: string): { algorithm: "sha256" | "sha512"; hex: string } {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new LayoutError("INVALID_ARGUMENT", `invalid digest ${quote(digest)}: expected sha256:<64 lower-case hex digits> (or sha512:<128>)`);
  return m[1] ? { algorithm: "sha256", hex: m[2]! } : { algorithm: "sha512", hex: m[4]! };
}

/** A value for a message: JSON-quoted (no control characters), long ones cut. */
function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? s.slice(0, 200) + "…" : s);
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return errnoCode(e) === "EPERM";
  }
}

export interface OpenOptions {
  /** Create the directory (mkdir -p) and its oci-layout file when missing. */
  create: boolean;
  /** How long updateIndex waits for another writer (default LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
}

/** A ref held while its ingest file is being created. */
const PENDING = Symbol("pending");

export class OciLayout {
  readonly dir: string;
  readonly #lockTimeoutMs: number;
  /** The ingests open in this instance, by ref. */
  readonly #writing = new Map<string, IngestFile | typeof PENDING>();

  private constructor(dir: string, lockTimeoutMs: number) {
    this.dir = dir;
    this.#lockTimeoutMs = lockTimeoutMs;
  }

  /** Opens a layout at `dir`; with `create`, makes the directory and writes oci-layout if missing. */
  static async open(dir: string, opts: OpenOptions): Promise<OciLayout> {
    const layout = new OciLayout(dir, opts.lockTimeoutMs ?? LOCK_TIMEOUT_MS);
    if (opts.create) {
      try {
        await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
      } catch (e) {
        throw new LayoutError("INTERNAL", `cannot create OCI layout directory ${quote(dir)}: ${fsReason(e)}; check the path and its permissions`, e);
      }
      await layout.#writeLayoutFile(false);
    }
    let st: Stats;
    try {
      st = await fsp.stat(dir);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") throw new LayoutError("NOT_FOUND", `OCI layout ${quote(dir)} does not exist; check the path`, e);
      throw new LayoutError("INTERNAL", `cannot open OCI layout ${quote(dir)}: ${fsReason(e)}; check the path and its permissions`, e);
    }
    if (!st.isDirectory()) throw new LayoutError("INVALID_ARGUMENT", `OCI layout ${quote(dir)} is not a directory; pass a directory`);
    return layout;
  }

  /** The blob's size and times, or undefined when it is not in the store. */
  async info(digest: string): Promise<{ digest: string; size: number; createdAt: Date; updatedAt: Date } | undefined> {
    const path = this.#blobPath(digest);
    let st: Stats;
    try {
      st = await fsp.stat(path);
    } catch (e) {
      if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined;
      throw new LayoutError("INTERNAL", `cannot read blob ${digest} in ${quote(this.dir)}: ${fsReason(e)}`, e);
    }
    if (!st.isFile()) return undefined;
    // As containerd's local store: created = mtime, updated = atime.
    return { digest, size: st.size, createdAt: st.mtime, updatedAt: st.atime };
  }

  /**
   * Streams bytes [offset, offset+size) of a blob (size <= 0, or past the
   * end: to the end), in pieces of at most READ_CHUNK_BYTES. NOT_FOUND for
   * a missing blob, OUT_OF_RANGE when offset is past its end.
   */
  async *read(digest: string, offset: number, size: number): AsyncGenerator<Buffer, void, undefined> {
    const path = this.#blobPath(digest);
    let fh: FileHandle;
    try {
      // O_NONBLOCK: a FIFO put there must not hang the open.
      fh = await fsp.open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") throw new LayoutError("NOT_FOUND", `blob ${digest} not found in ${quote(this.dir)}`, e);
      throw new LayoutError("INTERNAL", `cannot read blob ${digest} in ${quote(this.dir)}: ${fsReason(e)}`, e);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new LayoutError("NOT_FOUND", `blob ${digest} not found in ${quote(this.dir)} (not a regular file)`);
      const start = Math.max(0, offset);
      if (start > st.size) throw new LayoutError("OUT_OF_RANGE", `read past object length ${st.size} bytes`);
      const end = size <= 0 || start + size > st.size ? st.size : start + size;
      for (let pos = start; pos < end;) {
        const want = Math.min(READ_CHUNK_BYTES, end - pos);
        const buf = Buffer.allocUnsafe(want);
        let bytesRead: number;
        try {
          ({ bytesRead } = await fh.read(buf, 0, want, pos));
        } catch (e) {
          throw new LayoutError("INTERNAL", `cannot read blob ${digest} in ${quote(this.dir)}: ${fsReason(e)}`, e);
        }
        if (bytesRead === 0) break;
        pos += bytesRead;
        yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * Starts writing one blob. The bytes go to a new file under ingest/ (a
   * random name: two builds writing the same ref never share one), hashed
   * as they come. ALREADY_EXISTS when `expected` is already stored,
   * UNAVAILABLE while this layout has an ingest of the same ref open.
   */
  async ingest(ref: string, expected?: string, total?: number): Promise<Ingest> {
    if (ref === "") throw new LayoutError("INVALID_ARGUMENT", "an ingest needs a ref");
    let algorithm: "sha256" | "sha512" = "sha256";
    if (expected !== undefined && expected !== "") {
      algorithm = parseDigest(expected).algorithm;
      if (await this.info(expected)) throw new LayoutError("ALREADY_EXISTS", `content ${expected}: already exists`);
    }
    if (this.#writing.has(ref)) throw new LayoutError("UNAVAILABLE", `ref ${ref} is being written`);
    // Held before the first await below: a second ingest of the ref meets UNAVAILABLE.
    this.#writing.set(ref, PENDING);
    try {
      const ingestDir = await this.#plainDir("ingest");
      // The ref's hash only names the file for whoever looks; the random part makes it unique.
      const name = `${createHash("sha256").update(ref).digest("hex").slice(0, 16)}-${randomBytes(8).toString("hex")}`;
      const path = join(ingestDir, name);
      let fh: FileHandle;
      try {
        fh = await fsp.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      } catch (e) {
        throw new LayoutError("INTERNAL", `cannot create an ingest file in ${quote(ingestDir)}: ${fsReason(e)}; check its permissions and free space`, e);
      }
      const ingest = new IngestFile(this.dir, ref, algorithm, total ?? 0, expected ?? "", path, fh, {
        store: (digest) => this.#commitBlob(path, digest),
        release: () => this.#writing.delete(ref),
      });
      this.#writing.set(ref, ingest);
      return ingest;
    } catch (e) {
      this.#writing.delete(ref);
      throw e;
    }
  }

  /** The open ingest of `ref` (containerd's Status), or undefined when there is none. */
  ingestStatus(ref: string): IngestStatus | undefined {
    const ingest = this.#writing.get(ref);
    return ingest === undefined || ingest === PENDING ? undefined : ingest.status();
  }

  /** Every open ingest whose ref `match` accepts, in ref order (containerd's ListStatuses). */
  ingestStatuses(match: (ref: string) => boolean = () => true): IngestStatus[] {
    const out: IngestStatus[] = [];
    for (const [ref, ingest] of this.#writing) if (ingest !== PENDING && match(ref)) out.push(ingest.status());
    return out.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  /**
   * Ends the open ingest of `ref` and removes its bytes (containerd's
   * Abort); its writer's next call fails. NOT_FOUND when there is none.
   */
  async abortIngest(ref: string): Promise<void> {
    const ingest = this.#writing.get(ref);
    if (ingest === undefined || ingest === PENDING) throw new LayoutError("NOT_FOUND", `ingest ref ${JSON.stringify(ref)}: not found`);
    await ingest.abort();
  }

  /** index.json, or undefined when there is none (or it is empty). */
  async readIndex(): Promise<OciIndex | undefined> {
    const path = join(this.dir, "index.json");
    let text: string;
    try {
      text = await fsp.readFile(path, "utf8");
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return undefined;
      throw new LayoutError("INTERNAL", `cannot read ${quote(path)}: ${fsReason(e)}; check its permissions`, e);
    }
    if (text === "") return undefined;
    try {
      return parseIndex(JSON.parse(text));
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new LayoutError("FAILED_PRECONDITION", `cannot parse ${quote(path)}: ${reason}; fix or remove it`, e);
    }
  }

  /**
   * Edits index.json under the lock: `edit` gets the current index (an
   * empty one, schemaVersion 2 and the OCI index media type, when there is
   * none) and returns the new one, which replaces the file atomically.
   * oci-layout is (re)written too, as Go's ociindex does.
   */
  async updateIndex(edit: (index: OciIndex) => OciIndex): Promise<void> {
    await this.#withLock(async () => {
      await this.#writeLayoutFile(true);
      const current = withIndexDefaults((await this.readIndex()) ?? { schemaVersion: 0, manifests: [] });
      await this.#writeAtomic("index.json", formatIndex(edit(current)));
    });
  }

  /** blobs/<alg>/<hex> for a checked digest. */
  #blobPath(digest: string): string {
    const d = parseDigest(digest);
    return join(this.dir, "blobs", d.algorithm, d.hex);
  }

  /** Moves a finished ingest file into blobs/; false when the blob was there already. */
  async #commitBlob(tempPath: string, digest: string): Promise<boolean> {
    const d = parseDigest(digest);
    await this.#plainDir("blobs");
    const dir = await this.#plainDir(join("blobs", d.algorithm));
    const target = join(dir, d.hex);
    try {
      await fsp.lstat(target);
      return false;
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw new LayoutError("INTERNAL", `cannot check ${quote(target)}: ${fsReason(e)}`, e);
    }
    try {
      await fsp.chmod(tempPath, 0o444);
      await fsp.rename(tempPath, target);
    } catch (e) {
      throw new LayoutError("INTERNAL", `cannot store blob ${digest} in ${quote(this.dir)}: ${fsReason(e)}; check its permissions and free space`, e);
    }
    return true;
  }

  /** `<dir>/<rel>`, made if missing, refused if it is a symbolic link or not a directory. */
  async #plainDir(rel: string): Promise<string> {
    const path = join(this.dir, rel);
    try {
      await fsp.mkdir(path, { mode: 0o755 });
    } catch (e) {
      if (errnoCode(e) !== "EEXIST")
        throw new LayoutError("INTERNAL", `cannot create ${quote(path)}: ${fsReason(e)}; check the permissions of ${quote(this.dir)}`, e);
    }
    const st = await fsp.lstat(path);
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new LayoutError(
        "FAILED_PRECONDITION",
        `${quote(path)} is ${st.isSymbolicLink() ? "a symbolic link" : "not a directory"}; an OCI layout's ${rel} must be a plain directory, remove it`,
      );
    }
    return path;
  }

  /** Writes oci-layout if missing (or, with `always`, if its content differs). */
  async #writeLayoutFile(always: boolean): Promise<void> {
    const path = join(this.dir, "oci-layout");
    try {
      const current = await fsp.readFile(path, "utf8");
      if (!always || current === OCI_LAYOUT_JSON) return;
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw new LayoutError("INTERNAL", `cannot read ${quote(path)}: ${fsReason(e)}; check its permissions`, e);
    }
    await this.#writeAtomic("oci-layout", OCI_LAYOUT_JSON);
  }

  /** Replaces `<dir>/<name>` with `text` by writing a new file and renaming it over the old one. */
  async #writeAtomic(name: string, text: string): Promise<void> {
    const path = join(this.dir, name);
    const temp = join(this.dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      const fh = await fsp.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(temp, path);
    } catch (e) {
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw new LayoutError("INTERNAL", `cannot write ${quote(path)}: ${fsReason(e)}; check its permissions and free space`, e);
    }
  }

  /**
   * Runs `fn` holding `index.json.lock`: created with O_EXCL and holding our
   * pid, removed after. A held lock is retried with back-off for up to the
   * lock timeout; a lock whose process is gone is stale and taken over.
   */
  async #withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lockPath = join(this.dir, "index.json.lock");
    const deadline = Date.now() + this.#lockTimeoutMs;
    let delay = 5;
    let ours: Stats | undefined;
    while (!ours) {
      try {
        const fh = await fsp.open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
        try {
          await fh.writeFile(`${process.pid}\n`);
          ours = await fh.stat();
        } catch (e) {
          await fsp.rm(lockPath, { force: true }).catch(() => undefined);
          throw e;
        } finally {
          await fh.close();
        }
      } catch (e) {
        if (errnoCode(e) !== "EEXIST")
          throw new LayoutError("INTERNAL", `cannot create ${quote(lockPath)}: ${fsReason(e)}; check the permissions of ${quote(this.dir)}`, e);
        const holder = await takeOverStale(lockPath);
        if (holder === "gone") continue;
        if (Date.now() >= deadline) {
          const who = holder === undefined ? "another process" : `process ${holder}`;
          throw new LayoutError(
            "UNAVAILABLE",
            `index.json of ${quote(this.dir)} is locked by ${who} (${quote(lockPath)}) for more than ${Math.round(this.#lockTimeoutMs / 1000)} s; if no build uses this directory, remove the lock file and try again`,
          );
        }
        await sleep(delay + Math.random() * delay);
        delay = Math.min(delay * 2, 250);
      }
    }
    try {
      return await fn();
    } finally {
      // Remove the lock only if it is still the file we made.
      try {
        const st = await fsp.lstat(lockPath);
        if (st.ino === ours.ino && st.dev === ours.dev) await fsp.unlink(lockPath);
      } catch {
        // Gone already.
      }
    }
  }
}

/**
 * Looks at a lock someone holds: "gone" when it was stale (its process is
 * dead, or it names none and is old) and has been removed, or vanished;
 * otherwise the holder's pid (undefined when it names none).
 *
 * Taking over renames the lock aside first and checks that what moved is
 * the file judged stale: if another process took the lock in between, its
 * file is put back.
 */
async function takeOverStale(lockPath: string): Promise<"gone" | number | undefined> {
  let st: Stats;
  let text: string;
  try {
    const fh = await fsp.open(lockPath, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    try {
      st = await fh.stat();
      text = await fh.readFile("utf8");
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return "gone";
    return undefined;
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = m ? Number(m[1]) : undefined;
  const stale = pid !== undefined && pid > 0 ? !isAlive(pid) : Date.now() - st.mtimeMs > UNNAMED_LOCK_STALE_MS;
  if (!stale) return pid;
  const aside = `${lockPath}.${process.pid}.${randomBytes(6).toString("hex")}.stale`;
  try {
    await fsp.rename(lockPath, aside);
  } catch (e) {
    return errnoCode(e) === "ENOENT" ? "gone" : pid;
  }
  const moved = await fsp.lstat(aside);
  if (moved.ino === st.ino && moved.dev === st.dev) {
    await fsp.unlink(aside).catch(() => undefined);
    return "gone";
  }
  // A live lock taken after our look: put it back (unless yet another lock is there now).
  try {
    await fsp.link(aside, lockPath);
  } catch {
    // EEXIST: a newer lock is in place; that one wins.
  }
  await fsp.unlink(aside).catch(() => undefined);
  return undefined;
}

/** An open ingest as containerd's Status reports it. */
export interface IngestStatus {
  ref: string;
  offset: number;
  total: number;
  expected: string;
  startedAt: Date;
  updatedAt: Date;
}

/** What an ingest needs from its layout: storing the finished file, and freeing the ref. */
interface IngestHooks {
  /** Moves the ingest file to blobs/ under `digest`; false when that blob was there already. */
  store(digest: string): Promise<boolean>;
  release(): void;
}

class IngestFile implements Ingest {
  readonly ref: string;
  readonly startedAt = new Date();
  updatedAt = this.startedAt;
  offset = 0;
  total: number;
  expected: string;
  readonly #dir: string;
  readonly #algorithm: "sha256" | "sha512";
  readonly #path: string;
  #fh: FileHandle | undefined;
  #hash: Hash;
  readonly #hooks: IngestHooks;

  constructor(dir: string, ref: string, algorithm: "sha256" | "sha512", total: number, expected: string, path: string, fh: FileHandle, hooks: IngestHooks) {
    this.#dir = dir;
    this.ref = ref;
    this.#algorithm = algorithm;
    this.total = total;
    this.expected = expected;
    this.#path = path;
    this.#fh = fh;
    this.#hash = createHash(algorithm);
    this.#hooks = hooks;
  }

  digest(): string {
    return `${this.#algorithm}:${this.#hash.copy().digest("hex")}`;
  }

  status(): IngestStatus {
    return { ref: this.ref, offset: this.offset, total: this.total, expected: this.expected, startedAt: this.startedAt, updatedAt: this.updatedAt };
  }

  #open(): FileHandle {
    if (!this.#fh) throw new LayoutError("FAILED_PRECONDITION", `ingest of ${this.ref} has ended`);
    return this.#fh;
  }

  async write(data: Uint8Array): Promise<void> {
    const fh = this.#open();
    if (data.length === 0) return;
    try {
      for (let done = 0; done < data.length;) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, this.offset + done);
        done += bytesWritten;
      }
    } catch (e) {
      throw new LayoutError("INTERNAL", `cannot write ingest of ${this.ref} in ${quote(this.#dir)}: ${fsReason(e)}; check free space`, e);
    }
    // Hashed per message (at most a few MiB): never a long stall of the event loop.
    this.#hash.update(data);
    this.offset += data.length;
    this.updatedAt = new Date();
  }

  async truncate(): Promise<void> {
    const fh = this.#open();
    try {
      await fh.truncate(0);
    } catch (e) {
      throw new LayoutError("INTERNAL", `cannot restart ingest of ${this.ref} in ${quote(this.#dir)}: ${fsReason(e)}`, e);
    }
    this.#hash = createHash(this.#algorithm);
    this.offset = 0;
    this.updatedAt = new Date();
  }

  async commit(size: number, expected?: string): Promise<CommitResult> {
    const fh = this.#open();
    this.#fh = undefined;
    try {
      try {
        await fh.sync();
      } catch (e) {
        throw new LayoutError("INTERNAL", `cannot write ingest of ${this.ref} in ${quote(this.#dir)}: ${fsReason(e)}; check free space`, e);
      } finally {
        await fh.close();
      }
      if (size > 0 && size !== this.offset) throw new LayoutError("FAILED_PRECONDITION", `unexpected commit size ${this.offset}, expected ${size}`);
      const digest = this.digest();
      if (expected !== undefined && expected !== "" && expected !== digest) {
        throw new LayoutError("FAILED_PRECONDITION", `unexpected commit digest ${digest}, expected ${expected}`);
      }
      const stored = await this.#hooks.store(digest);
      return { digest, size: this.offset, existed: !stored };
    } finally {
      await fsp.rm(this.#path, { force: true }).catch(() => undefined);
      this.#hooks.release();
    }
  }

  async abort(): Promise<void> {
    const fh = this.#fh;
    if (!fh) return;
    this.#fh = undefined;
    await fh.close().catch(() => undefined);
    await fsp.rm(this.#path, { force: true }).catch(() => undefined);
    this.#hooks.release();
  }
}

// ---------------------------------------------------------------------------
// index.json: parsing, Go-compatible formatting, and ociindex's edits.

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A string field as Go's Unmarshal takes it: absent or null → undefined. */
function str(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new Error(`${where}.${key} is not a string`);
  return v;
}

function strings(o: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new Error(`${where}.${key} is not a list of strings`);
  return v as string[];
}

function stringMap(o: Record<string, unknown>, key: string, where: string): Record<string, string> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.values(v).some((s) => typeof s !== "string")) throw new Error(`${where}.${key} is not an object of strings`);
  return { ...(v as Record<string, string>) };
}

function integer(o: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new Error(`${where}.${key} is not an integer`);
  return v;
}

/** Sets `key` only when `value` is defined (exactOptionalPropertyTypes). */
function put<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

/** A descriptor from parsed JSON: known fields only, types checked. */
export function parseDescriptor(v: unknown, where = "descriptor"): OciDescriptor {
  if (!isObject(v)) throw new Error(`${where} is not an object`);
  const desc: OciDescriptor = { mediaType: str(v, "mediaType", where) ?? "", digest: str(v, "digest", where) ?? "", size: integer(v, "size", where) ?? 0 };
  put(desc, "urls", strings(v, "urls", where));
  put(desc, "annotations", stringMap(v, "annotations", where));
  const data = str(v, "data", where);
  if (data !== undefined) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) throw new Error(`${where}.data is not base64`);
    desc.data = data;
  }
  const p = v["platform"];
  if (p !== undefined && p !== null) {
    if (!isObject(p)) throw new Error(`${where}.platform is not an object`);
    const w = `${where}.platform`;
    const platform: OciPlatform = { architecture: str(p, "architecture", w) ?? "", os: str(p, "os", w) ?? "" };
    put(platform, "os.version", str(p, "os.version", w));
    put(platform, "os.features", strings(p, "os.features", w));
    put(platform, "variant", str(p, "variant", w));
    desc.platform = platform;
  }
  put(desc, "artifactType", str(v, "artifactType", where));
  return desc;
}

/** An index from parsed JSON: known fields only, types checked. */
export function parseIndex(v: unknown): OciIndex {
  if (!isObject(v)) throw new Error("the index is not a JSON object");
  const manifests = v["manifests"];
  if (manifests !== undefined && manifests !== null && !Array.isArray(manifests)) throw new Error("manifests is not a list");
  const index: OciIndex = {
    schemaVersion: integer(v, "schemaVersion", "index") ?? 0,
    manifests: ((manifests ?? []) as unknown[]).map((m, i) => parseDescriptor(m, `manifests[${i}]`)),
  };
  put(index, "mediaType", str(v, "mediaType", "index"));
  put(index, "artifactType", str(v, "artifactType", "index"));
  const subject = v["subject"];
  if (subject !== undefined && subject !== null) index.subject = parseDescriptor(subject, "subject");
  put(index, "annotations", stringMap(v, "annotations", "index"));
  return index;
}

/** Go's setOCIIndexDefaults: schemaVersion 2 and the index media type where unset. */
function withIndexDefaults(index: OciIndex): OciIndex {
  return { ...index, schemaVersion: index.schemaVersion || 2, mediaType: index.mediaType || MEDIA_TYPE_IMAGE_INDEX };
}

/**
 * A JSON string as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and
 * U+2029 escaped as \u00XX / \u20XX; \b \f \n \r \t short; other control
 * characters \u00XX; a lone surrogate becomes U+FFFD (Go's decoder would
 * have replaced it already).
 */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else out += "\ufffd";
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) out += "\\u" + c.toString(16).padStart(4, "0");
        else out += s[i]!;
    }
  }
  return out + '"';
}

/** Go marshals a map with its keys sorted by their UTF-8 bytes. */
function goMap(m: Record<string, string>): string {
  const keys = Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return "{" + keys.map((k) => `${goJsonString(k)}:${goJsonString(m[k]!)}`).join(",") + "}";
}

/** Go's struct encoding: fields in declaration order, omitempty ones left out when empty. */
function goObject(fields: Array<[string, string | undefined]>): string {
  return (
    "{" +
    fields
      .filter((f): f is [string, string] => f[1] !== undefined)
      .map(([k, v]) => `"${k}":${v}`)
      .join(",") +
    "}"
  );
}

const omitEmptyString = (s: string | undefined): string | undefined => (s ? goJsonString(s) : undefined);
const omitEmptyList = (l: readonly string[] | undefined): string | undefined => (l?.length ? "[" + l.map(goJsonString).join(",") + "]" : undefined);
const omitEmptyMap = (m: Record<string, string> | undefined): string | undefined => (m && Object.keys(m).length ? goMap(m) : undefined);

function formatPlatform(p: OciPlatform): string {
  return goObject([
    ["architecture", goJsonString(p.architecture)],
    ["os", goJsonString(p.os)],
    ["os.version", omitEmptyString(p["os.version"])],
    ["os.features", omitEmptyList(p["os.features"])],
    ["variant", omitEmptyString(p.variant)],
  ]);
}

/** A descriptor as Go marshals ocispecs.Descriptor (image-spec v1.1). */
export function formatDescriptor(d: OciDescriptor): string {
  return goObject([
    ["mediaType", goJsonString(d.mediaType)],
    ["digest", goJsonString(d.digest)],
    ["size", String(Math.trunc(d.size))],
    ["urls", omitEmptyList(d.urls)],
    ["annotations", omitEmptyMap(d.annotations)],
    ["data", omitEmptyString(d.data)],
    ["platform", d.platform ? formatPlatform(d.platform) : undefined],
    ["artifactType", omitEmptyString(d.artifactType)],
  ]);
}

/** index.json's bytes as Go's json.Marshal of ocispecs.Index: compact, fields in struct order. */
export function formatIndex(index: OciIndex): string {
  return goObject([
    ["schemaVersion", String(Math.trunc(index.schemaVersion))],
    ["mediaType", omitEmptyString(index.mediaType)],
    ["artifactType", omitEmptyString(index.artifactType)],
    ["manifests", "[" + index.manifests.map(formatDescriptor).join(",") + "]"],
    ["subject", index.subject ? formatDescriptor(index.subject) : undefined],
    ["annotations", omitEmptyMap(index.annotations)],
  ]);
}

/**
 * Puts `desc` into the index as buildkit's ociindex does, returning the new
 * index:
 * - with `names` (an oci/docker export's image names): once per name, with
 *   annotations `io.containerd.image.name=<name>` and
 *   `org.opencontainers.image.ref.name=<the name's tag part>`, replacing
 *   entries that have the same pair;
 * - otherwise (`tag`, default "latest"; a cache export): once with
 *   `org.opencontainers.image.ref.name=<tag>`, replacing entries with that
 *   ref.name and no image name.
 * The new entries go last.
 */
export function putDescriptor(index: OciIndex, desc: OciDescriptor, opts: { names?: readonly string[]; tag?: string } = {}): OciIndex {
  const entries =
    opts.names && opts.names.length > 0 ? opts.names.map((n) => ({ image: n, ref: ociReferenceName(n) })) : [{ image: "", ref: opts.tag ?? "latest" }];
  let manifests = [...index.manifests];
  for (const { image, ref } of entries) {
    const annotations = { ...(desc.annotations ?? {}) };
    if (image !== "") annotations[ANNOTATION_IMAGE_NAME] = image;
    annotations[ANNOTATION_REF_NAME] = ref;
    manifests = manifests.filter((m) => (m.annotations?.[ANNOTATION_REF_NAME] ?? "") !== ref || (m.annotations?.[ANNOTATION_IMAGE_NAME] ?? "") !== image);
    manifests.push({ ...desc, annotations });
  }
  return { ...withIndexDefaults(index), manifests };
}

/** The first manifest whose io.containerd.image.name is `tag`, else the first whose ref.name is; as ociindex's Get. */
export function resolveTag(index: OciIndex, tag: string): OciDescriptor | undefined {
  const has = (m: OciDescriptor, key: string): boolean => m.annotations !== undefined && Object.hasOwn(m.annotations, key) && m.annotations[key] === tag;
  return index.manifests.find((m) => has(m, ANNOTATION_IMAGE_NAME)) ?? index.manifests.find((m) => has(m, ANNOTATION_REF_NAME));
}

/**
 * The ref.name containerd's exporters give an image name: the tag (and
 * digest) part of `docker.io/library/x:1.0` → `1.0`; the name itself when
 * it does not parse. This follows containerd's reference.Parse, which runs
 * Go's url.Parse on "dummy://" + name and takes the path from its first
 * ':' or '@'.
 */
export function ociReferenceName(name: string): string {
  return referenceObject(name) ?? name;
}

const USERINFO_RE = /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/;
/** Bytes Go's url accepts unescaped in a host (plus non-ASCII). */
const HOST_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"]|%[0-9A-Fa-f]{2}|[^\x00-\x7f])*$/;

function referenceObject(s: string): string | undefined {
  if (s.includes("://")) return undefined;
  if (/[\x00-\x1f\x7f]/.test(s)) return undefined;
  // url.Parse: '#' starts the fragment, then '?' the query; both are dropped here.
  let rest = s;
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    if (!validEscapes(rest.slice(hash + 1))) return undefined;
    rest = rest.slice(0, hash);
  }
  const q = rest.indexOf("?");
  if (q >= 0) rest = rest.slice(0, q);
  const slash = rest.indexOf("/");
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const rawPath = slash >= 0 ? rest.slice(slash) : "";
  const at = authority.lastIndexOf("@");
  if (at >= 0 && (!USERINFO_RE.test(authority.slice(0, at)) || !validEscapes(authority.slice(0, at)))) return undefined;
  const host = authority.slice(at + 1);
  if (!validHost(host)) return undefined;
  if (host === "") return undefined;
  let path: string;
  try {
    if (!validEscapes(rawPath)) return undefined;
    path = decodeURIComponentBytes(rawPath);
  } catch {
    return undefined;
  }
  const i = path.search(/[:@]/);
  if (i < 0) return "";
  const object = path.slice(i);
  return object.startsWith(":") ? object.slice(1) : object;
}

function validEscapes(s: string): boolean {
  return !/%(?![0-9A-Fa-f]{2})/.test(s);
}

function validHost(host: string): boolean {
  let port: string;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    if (close < 0) return false;
    port = host.slice(close + 1);
  } else {
    const colon = host.lastIndexOf(":");
    port = colon >= 0 ? host.slice(colon) : "";
  }
  if (port !== "" && !/^:\d*$/.test(port)) return false;
  // In a host, %-escapes may only stand for non-ASCII bytes (or be %25).
  if (/%(?:[0-7][0-9A-Fa-f])/.test(host.replace(/%25/g, ""))) return false;
  return HOST_RE.test(host);
}

/** Percent-decoding as Go's unescape: bytes, not necessarily valid UTF-8 (invalid sequences become U+FFFD). */
function decodeURIComponentBytes(s: string): string {
  if (!s.includes("%")) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, "utf8");
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16));
      i += 2;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString("utf8");
}
