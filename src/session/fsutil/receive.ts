/**
 * The fsutil receiver, for BuildKit's `local` exporter: buildkitd calls
 * FileSend/DiffCopy and runs fsutil's sender over it, we write the tree.
 *
 * Protocol (as fsutil's receive.go): STAT packets in walk order, then an
 * empty STAT; every non-empty STAT takes the next id; we send REQ{id} for
 * the regular files we want, the daemon answers with DATA chunks and an
 * empty DATA per file; once the walk ended and every requested file is on
 * disk we set the directories' modes and mtimes and send FIN; the daemon
 * answers FIN (and then cancels the call, so we never wait for its end).
 *
 * Every STAT is validated before anything is written (fsutil's validator
 * and hardlink rules, plus ours for what Go leaves open), and the tree is
 * written without ever following a symlink that is in the destination:
 *  - an entry's parent is always a directory this stream sent earlier, and
 *    handling that directory made sure it is a real directory on disk
 *    (lstat; a symlink or file there is replaced, never entered);
 *  - new entries are made with O_EXCL / mkdir / symlink / link, which do
 *    not follow a symlink in the last component; an existing entry is
 *    replaced by making the new one under `.tmp.<random>` beside it and
 *    renaming it over (rm -rf first only when one is a directory and the
 *    other is not), so a symlink there is replaced, not written through;
 *  - files are reopened with O_NOFOLLOW and checked to be the inode we
 *    made; a hardlink is checked to be the inode of its target; directory
 *    metadata at the end goes through lstat and lutimes.
 * Node has no openat(), so a local process racing us by swapping a parent
 * directory between our check and our use is not excluded; the inode checks
 * catch it for file content and hardlinks.
 *
 * Metadata ops (lstat, mkdir, open, rename) are synchronous, one STAT at a
 * time, cut into time slices so the event loop keeps turning; file content
 * is written asynchronously, in order per file, with writev batching the
 * chunks that wait. Reading stops while more than a few MiB wait to be
 * written, so a slow disk holds the daemon back through HTTP/2 flow control
 * instead of filling memory.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  open,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writev,
  type BigIntStats,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { fsReason, utimeArg } from "../../files.js";
import { timeSlicer } from "../slices.js";
import {
  ModeCharDevice,
  ModeDevice,
  ModeDir,
  ModeIrregular,
  ModeNamedPipe,
  ModeSetgid,
  ModeSetuid,
  ModeSocket,
  ModeSticky,
  ModeSymlink,
  ModeType,
} from "./mode.js";
import { PacketType, decodePacket, errPacket, finPacket, reqPacket, type DecodedStat } from "./wire.js";

export interface ReceiveOptions {
  /** An existing directory to write into (the caller's temporary directory). Other receivers may write into it at the same time (multi-platform). */
  root: string;
  signal?: AbortSignal;
}

export interface ReceiveStats {
  /** Entries received (every non-empty STAT). */
  entries: number;
  /** Regular files created (hardlinks not counted). */
  files: number;
  /** Bytes of file content written. */
  bytes: number;
  /**
   * Entries that came with extended attributes, which were not set: Node.js
   * has no setxattr (buildctl sets them, security.capability included).
   */
  xattrEntries: number;
  /** The first of them, as `"path" ("name", ...)`, for the warning. */
  xattrExample?: string;
}

/** Longest path and name we accept (Linux PATH_MAX and NAME_MAX). */
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
/** Longest symlink target Linux stores. */
const MAX_LINK_BYTES = 4095;
/** Reading pauses while more than this waits to be written, and resumes below half of it. */
const HIGH_WATER_BYTES = 8 << 20;
/** Files kept open from creation until their data arrives; the others are reopened. */
const FD_BUDGET = 64;
/** writev takes at most IOV_MAX (1024) buffers. */
const MAX_IOV = 1024;
/** How long a failing receiver waits for its ERR packet to be sent. */
const ERR_SEND_MS = 1000;

/** Go FileMode bits we know what to do with. */
const KNOWN_MODE_BITS = (ModeType | ModeSetuid | ModeSetgid | ModeSticky | 0o777) >>> 0;
/** Type bits of which at most one may be set (ModeCharDevice goes with ModeDevice). */
const TYPE_BITS = [ModeDir, ModeSymlink, ModeNamedPipe, ModeSocket, ModeDevice, ModeIrregular];

/** A path as shown in errors: JSON-quoted (control characters visible), long ones cut. */
function show(p: string): string {
  return JSON.stringify(p.length > 200 ? `${p.slice(0, 200)}…` : p);
}

/** Text from the other side (or the transport) as one line of bounded length: control characters escaped. */
function oneLine(text: string): string {
  const cut = text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Go FileMode → POSIX permission bits with setuid/setgid/sticky. */
function posixMode(goMode: number): number {
  let m = goMode & 0o777;
  if (goMode & ModeSetuid) m |= 0o4000;
  if (goMode & ModeSetgid) m |= 0o2000;
  if (goMode & ModeSticky) m |= 0o1000;
  return m;
}

/**
 * Whether `p` equals Go's filepath.Clean(p) (Unix rules): no empty, "."
 * or trailing components, ".." only at the start of a relative path.
 */
function isClean(p: string): boolean {
  if (p === "" || p === "/") return p === "/";
  const rooted = p.startsWith("/");
  const parts = (rooted ? p.slice(1) : p).split("/");
  let sawName = false;
  for (const c of parts) {
    if (c === "") return false;
    if (c === ".") return p === ".";
    if (c === "..") {
      if (sawName || rooted) return false;
      continue;
    }
    sawName = true;
  }
  return true;
}

type Kind = "dir" | "symlink" | "file" | "hardlink";

interface Entry {
  id: number;
  rel: string;
  abs: string;
  kind: Kind;
  stat: DecodedStat;
}

/** A requested file whose content is on its way. */
interface FileState {
  id: number;
  rel: string;
  abs: string;
  size: number;
  mode: number;
  modTime: bigint;
  dev: bigint;
  ino: bigint;
  fd: number | undefined;
  /** Bytes taken from DATA packets (checked against size as they come). */
  received: number;
  /** Bytes on disk. */
  written: number;
  queue: Buffer[];
  writing: boolean;
  eof: boolean;
}

interface DirRecord {
  rel: string;
  abs: string;
  mode: number;
  modTime: bigint;
  dev: bigint;
  ino: bigint;
}

/** Validation state of one open directory: its path and the last name seen in it. */
interface OpenDir {
  dir: string;
  last: Buffer | undefined;
}

function openAsync(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function writevAsync(fd: number, buffers: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, buffers, position, (err, n) => (err ? reject(err) : resolve(n))));
}

class Receiver {
  readonly #root: string;
  /** The root as shown in errors. */
  readonly #where: string;
  readonly #send: (packet: Buffer) => Promise<void>;
  readonly #signal: AbortSignal | undefined;
  readonly #asRoot: boolean;
  readonly #uid: number;
  readonly #gid: number;

  // Validation
  #nextId = 0;
  #stack: OpenDir[] = [{ dir: "", last: undefined }];
  #prev = "";
  /** Regular, non-hardlink files of this stream: path -> inode. */
  #seenFiles = new Map<string, { dev: bigint; ino: bigint }>();
  #walkDone = false;

  // Writing
  #files = new Map<number, FileState>();
  #outstanding = 0;
  #openFds = 0;
  #dirs: DirRecord[] = [];
  #pendingBytes = 0;
  #pumps = 0;
  #tmpPrefix = `.tmp.${randomBytes(4).toString("hex")}`;
  #tmpCounter = 0;

  // Progress and ending
  readonly #stats: ReceiveStats = { entries: 0, files: 0, bytes: 0, xattrEntries: 0 };
  #error: Error | undefined;
  #finishing = false;
  #finSent = false;
  #settled = false;
  #sendChain: Promise<void> = Promise.resolve();
  #wakeReader: (() => void) | undefined;
  #wakeDrain: (() => void) | undefined;
  #wakePumps: (() => void) | undefined;
  #resolve!: (s: ReceiveStats) => void;
  #reject!: (e: Error) => void;

  constructor(root: string, send: (packet: Buffer) => Promise<void>, signal: AbortSignal | undefined) {
    /** Ends with "/": entries are `root + path`. */
    this.#root = root.endsWith("/") ? root : `${root}/`;
    this.#where = root;
    this.#send = send;
    this.#signal = signal;
    this.#uid = process.getuid?.() ?? -1;
    this.#gid = process.getgid?.() ?? -1;
    this.#asRoot = this.#uid === 0;
  }

  run(messages: AsyncIterable<Buffer>): Promise<ReceiveStats> {
    const done = new Promise<ReceiveStats>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const onAbort = (): void => this.#fail(new Error(`receiving into ${this.#where} was cancelled`, { cause: this.#signal?.reason }));
    if (this.#signal?.aborted) onAbort();
    else this.#signal?.addEventListener("abort", onAbort, { once: true });
    void this.#read(messages);
    return done.finally(() => this.#signal?.removeEventListener("abort", onAbort));
  }

  // ---- reading -----------------------------------------------------------

  async #read(messages: AsyncIterable<Buffer>): Promise<void> {
    let it: AsyncIterator<Buffer>;
    try {
      it = messages[Symbol.asyncIterator]();
    } catch (e) {
      this.#fail(new Error(`cannot read the stream from buildkitd: ${oneLine(asError(e).message)}`, { cause: e }));
      return;
    }
    const breathe = timeSlicer();
    try {
      for (;;) {
        if (this.#error || this.#settled) break;
        let next: IteratorResult<Buffer> | undefined;
        try {
          next = await this.#next(it);
        } catch (e) {
          // After our FIN the daemon's only move is FIN, then it cancels the
          // call: everything is on disk, so a cancelled stream is the end.
          if (this.#finSent) this.#succeed();
          else this.#fail(new Error(`the stream from buildkitd failed: ${oneLine(asError(e).message)}`, { cause: e }));
          break;
        }
        if (next === undefined) break; // woken: failed or finished
        if (next.done) {
          if (this.#finSent) this.#succeed();
          else this.#fail(new Error("the stream from buildkitd ended before the transfer was complete (truncated: no FIN)"));
          break;
        }
        this.#handle(next.value);
        if (this.#pendingBytes > HIGH_WATER_BYTES) await this.#drain();
        const pause = breathe();
        if (pause) await pause;
      }
    } catch (e) {
      this.#fail(e);
    }
    void Promise.resolve()
      .then(() => it.return?.())
      .catch(() => undefined);
  }

  /** The next message, or undefined when the receiver failed or finished meanwhile. */
  #next(it: AsyncIterator<Buffer>): Promise<IteratorResult<Buffer> | undefined> {
    return new Promise((resolve, reject) => {
      this.#wakeReader = () => resolve(undefined);
      it.next().then(resolve, reject);
    });
  }

  #drain(): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeDrain = resolve;
      if (this.#error || this.#pendingBytes <= HIGH_WATER_BYTES / 2) resolve();
    });
  }

  #handle(message: Buffer): void {
    let p;
    try {
      p = decodePacket(message);
    } catch (e) {
      throw new ReceiveError(`malformed packet from buildkitd: ${asError(e).message}`);
    }
    switch (p.type) {
      case PacketType.STAT:
        if (!p.stat) {
          if (this.#walkDone) throw new ReceiveError("buildkitd ended the walk twice");
          this.#walkDone = true;
          this.#maybeFinish();
          return;
        }
        if (this.#walkDone) throw new ReceiveError(`STAT for ${show(p.stat.path)} after the end of the walk`);
        this.#stats.entries++;
        this.#create(this.#validate(p.stat));
        if (p.stat.xattrs.size > 0) this.#skippedXattrs(p.stat);
        return;
      case PacketType.DATA:
        this.#data(p.id, p.data);
        return;
      case PacketType.FIN:
        if (!this.#finSent) throw new ReceiveError("buildkitd sent FIN before the transfer was complete");
        this.#succeed();
        return;
      case PacketType.ERR:
        throw new ReceiveError(`error from sender: ${oneLine(p.data.toString("utf8"))}`);
      default:
        throw new ReceiveError(`unexpected packet from buildkitd (type ${p.type === PacketType.REQ ? "REQ" : p.type})`);
    }
  }

  // ---- validation --------------------------------------------------------

  #validate(st: DecodedStat): Entry {
    const p = st.path;
    const id = this.#nextId++;
    if (p.includes("\0")) throw new ReceiveError(`invalid path ${show(p)}: it contains a NUL byte`);
    if (process.platform === "win32" && p.includes("\\")) throw new ReceiveError(`unrepresentable path ${show(p)}`);
    if (!isClean(p)) throw new ReceiveError(`unclean path ${show(p)}`);
    if (p.startsWith("/")) throw new ReceiveError(`absolute path ${show(p)}`);
    const slash = p.lastIndexOf("/");
    const dir = slash < 0 ? "" : p.slice(0, slash);
    const base = p.slice(slash + 1);
    if (p === ".." || dir === ".." || p.startsWith("../")) throw new ReceiveError(`path ${show(p)} escapes the destination (escape check)`);
    if (p === ".") throw new ReceiveError(`invalid path ".": the destination root itself is never sent`);
    if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw new ReceiveError(`path ${show(p)} is longer than ${MAX_PATH_BYTES} bytes`);
    const baseBytes = Buffer.from(base, "utf8");
    if (baseBytes.length > MAX_NAME_BYTES) throw new ReceiveError(`name ${show(base)} in ${show(p)} is longer than ${MAX_NAME_BYTES} bytes`);
    for (const name of dir ? dir.split("/") : []) {
      if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new ReceiveError(`name ${show(name)} in ${show(p)} is longer than ${MAX_NAME_BYTES} bytes`);
    }

    // Order: the parent is the directory open on the stack (or one below it,
    // closing those above), and the name sorts after its previous sibling.
    const stack = this.#stack;
    let i = stack.length - 1;
    while (i > 0 && stack[i]!.dir !== dir) i--;
    const open = stack[i]!;
    if (open.dir !== dir || (open.last !== undefined && Buffer.compare(baseBytes, open.last) <= 0)) {
      throw new ReceiveError(`changes out of order: ${show(p)} ${show(this.#prev)}`);
    }
    stack.length = i + 1;
    open.last = baseBytes;
    this.#prev = p;

    const mode = st.mode >>> 0;
    const hex = `0x${mode.toString(16).padStart(8, "0")}`;
    if ((mode & ~KNOWN_MODE_BITS) >>> 0 !== 0) {
      throw new ReceiveError(`invalid mode ${hex} for ${show(p)}: unknown bits 0x${((mode & ~KNOWN_MODE_BITS) >>> 0).toString(16)}`);
    }
    if (TYPE_BITS.filter((b) => (mode & b) >>> 0 !== 0).length > 1) throw new ReceiveError(`invalid mode ${hex} for ${show(p)}: more than one file type`);
    if (mode & ModeCharDevice && !(mode & ModeDevice))
      throw new ReceiveError(`invalid mode ${hex} for ${show(p)}: character device bit without the device bit`);

    let kind: Kind;
    if (mode & ModeDir) {
      kind = "dir";
      stack.push({ dir: p, last: undefined });
    } else if (mode & ModeSymlink) {
      kind = "symlink";
    } else if (mode & ModeDevice) {
      const what = mode & ModeCharDevice ? "a character device" : "a block device";
      throw new ReceiveError(`cannot create ${show(p)}: it is ${what}, and Node.js cannot create device nodes (no mknod); use type=tar to export device nodes`);
    } else if (mode & ModeNamedPipe) {
      throw new ReceiveError(`cannot create ${show(p)}: it is a named pipe (FIFO), and Node.js cannot create one (no mknod); use type=tar to export FIFOs`);
    } else if (mode & ModeSocket) {
      throw new ReceiveError(`cannot create ${show(p)}: it is a socket, which cannot be exported`);
    } else if (mode & ModeIrregular) {
      throw new ReceiveError(`cannot create ${show(p)}: it is an irregular file (unknown type)`);
    } else if (st.linkname !== "") {
      kind = "hardlink";
      if (!this.#seenFiles.has(st.linkname)) {
        throw new ReceiveError(
          `invalid link ${show(p)} to unknown path: ${show(st.linkname)} (a hardlink must name a regular file sent earlier in this stream)`,
        );
      }
    } else {
      kind = "file";
      if (st.size < 0n || st.size > BigInt(Number.MAX_SAFE_INTEGER)) throw new ReceiveError(`invalid size ${st.size} for ${show(p)}`);
      this.#seenFiles.set(p, { dev: -1n, ino: -1n });
    }
    if (kind === "symlink") {
      if (st.linkname === "") throw new ReceiveError(`symlink ${show(p)} has an empty target`);
      if (st.linkname.includes("\0")) throw new ReceiveError(`symlink ${show(p)} has a target with a NUL byte`);
      if (Buffer.byteLength(st.linkname) > MAX_LINK_BYTES) throw new ReceiveError(`symlink ${show(p)} has a target longer than ${MAX_LINK_BYTES} bytes`);
    }
    return { id, rel: p, abs: this.#root + p, kind, stat: st };
  }

  // ---- writing entries ---------------------------------------------------

  #fsError(action: string, rel: string, e: unknown): ReceiveError {
    return new ReceiveError(`cannot ${action} ${show(rel)} in ${this.#where}: ${fsReason(e)}`, e);
  }

  #tmpName(abs: string): string {
    return `${abs.slice(0, abs.lastIndexOf("/") + 1)}${this.#tmpPrefix}${(this.#tmpCounter++).toString(36)}`;
  }

  /**
   * Puts a new entry at `e.abs` with `make(path)`: directly when nothing is
   * there, otherwise under a temporary name beside it, renamed over the old
   * entry. Returns "existing" when both are directories (nothing made).
   */
  #place(e: Entry, isDir: boolean, make: (path: string) => void): "made" | "existing" {
    for (let attempt = 0; attempt < 4; attempt++) {
      let old: BigIntStats | undefined;
      try {
        old = lstatSync(e.abs, { bigint: true, throwIfNoEntry: false });
      } catch (err) {
        throw this.#fsError("check", e.rel, err);
      }
      if (!old) {
        try {
          make(e.abs);
          return "made";
        } catch (err) {
          if (code(err) === "EEXIST") continue; // someone (another receiver) made it meanwhile
          if (err instanceof ReceiveError) throw err;
          throw this.#fsError("create", e.rel, err);
        }
      }
      if (old.isDirectory() && isDir) return "existing";
      let tmp = this.#tmpName(e.abs);
      try {
        for (;;) {
          try {
            make(tmp);
            break;
          } catch (err) {
            if (code(err) !== "EEXIST") throw err;
            tmp = this.#tmpName(e.abs);
          }
        }
      } catch (err) {
        if (err instanceof ReceiveError) throw err;
        throw this.#fsError("create", e.rel, err);
      }
      try {
        if (old.isDirectory() !== isDir) rmSync(e.abs, { recursive: true, force: true });
        renameSync(tmp, e.abs);
        return "made";
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true });
        if (code(err) === "ENOTEMPTY" || code(err) === "EISDIR" || code(err) === "ENOTDIR" || code(err) === "EEXIST") continue;
        throw this.#fsError("replace", e.rel, err);
      }
    }
    throw new ReceiveError(`cannot create ${show(e.rel)} in ${this.#where}: it keeps changing on disk while it is written`);
  }

  /** Counts an entry whose xattrs are not set (Node.js cannot), and names the first for the warning. */
  #skippedXattrs(st: DecodedStat): void {
    if (this.#stats.xattrEntries++ === 0) this.#stats.xattrExample = `${show(st.path)} (${[...st.xattrs.keys()].map(show).join(", ")})`;
  }

  #create(e: Entry): void {
    switch (e.kind) {
      case "dir":
        this.#createDir(e);
        break;
      case "symlink":
        this.#createSymlink(e);
        break;
      case "hardlink":
        this.#createHardlink(e);
        break;
      default:
        this.#createFile(e);
    }
  }

  #createDir(e: Entry): void {
    // Made owner-writable; the stream's mode is applied at the end, so a
    // read-only directory still gets its children.
    const made = this.#place(e, true, (path) => mkdirSync(path, 0o700));
    let st: BigIntStats;
    try {
      st = lstatSync(e.abs, { bigint: true });
      if (!st.isDirectory()) throw new ReceiveError(`cannot create directory ${show(e.rel)} in ${this.#where}: it was replaced while it was written`);
      if (made === "made" && this.#asRoot) lchownSync(e.abs, this.#uid, this.#gid);
      if (made === "existing" && (Number(st.mode) & 0o700) !== 0o700 && !this.#asRoot) chmodSync(e.abs, (Number(st.mode) & 0o7777) | 0o700);
    } catch (err) {
      if (err instanceof ReceiveError) throw err;
      throw this.#fsError("create directory", e.rel, err);
    }
    this.#dirs.push({ rel: e.rel, abs: e.abs, mode: posixMode(e.stat.mode), modTime: e.stat.modTime, dev: st.dev, ino: st.ino });
  }

  #createSymlink(e: Entry): void {
    const t = utimeArg(e.stat.modTime);
    this.#place(e, false, (path) => {
      symlinkSync(e.stat.linkname, path);
      try {
        if (this.#asRoot) lchownSync(path, this.#uid, this.#gid);
        lutimesSync(path, t, t);
      } catch (err) {
        rmSync(path, { force: true });
        throw err;
      }
    });
  }

  #createHardlink(e: Entry): void {
    const target = this.#seenFiles.get(e.stat.linkname)!;
    const targetAbs = this.#root + e.stat.linkname;
    this.#place(e, false, (path) => {
      linkSync(targetAbs, path);
      const st = lstatSync(path, { bigint: true });
      if (st.dev !== target.dev || st.ino !== target.ino) {
        rmSync(path, { force: true });
        throw new ReceiveError(`cannot link ${show(e.rel)} to ${show(e.stat.linkname)} in ${this.#where}: the target changed on disk while it was written`);
      }
    });
  }

  #createFile(e: Entry): void {
    let fd = -1;
    try {
      this.#place(e, false, (path) => {
        if (fd >= 0) closeSync(fd); // an earlier attempt's, renamed away
        fd = -1;
        fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      });
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      throw err;
    }
    this.#openFds++;
    this.#stats.files++;
    const size = Number(e.stat.size);
    const state: FileState = {
      id: e.id,
      rel: e.rel,
      abs: e.abs,
      size,
      mode: posixMode(e.stat.mode),
      modTime: e.stat.modTime,
      dev: 0n,
      ino: 0n,
      fd,
      received: 0,
      written: 0,
      queue: [],
      writing: false,
      eof: false,
    };
    try {
      const st = fstatSync(fd, { bigint: true });
      state.dev = st.dev;
      state.ino = st.ino;
      this.#seenFiles.set(e.rel, { dev: st.dev, ino: st.ino });
    } catch (err) {
      this.#closeFd(state);
      throw this.#fsError("create", e.rel, err);
    }
    if (size === 0) {
      // Nothing to ask for: fsutil's sender serves only what is requested.
      this.#finishFileSync(state);
      return;
    }
    if (this.#openFds > FD_BUDGET) this.#closeFd(state);
    this.#files.set(e.id, state);
    this.#outstanding++;
    void this.#queueSend(reqPacket(e.id));
  }

  #closeFd(f: FileState): void {
    if (f.fd === undefined) return;
    const fd = f.fd;
    f.fd = undefined;
    this.#openFds--;
    closeSync(fd);
  }

  // ---- file content ------------------------------------------------------

  #data(id: number, data: Buffer): void {
    const f = this.#files.get(id);
    if (!f || f.eof) throw new ReceiveError(`invalid file request ${id}: DATA for a file that was not requested or is already complete`);
    if (data.length === 0) {
      f.eof = true;
      if (f.received !== f.size) throw new ReceiveError(`received ${f.received} of the ${f.size} bytes announced for ${show(f.rel)}`);
    } else {
      if (f.received + data.length > f.size) throw new ReceiveError(`received more than the ${f.size} bytes announced for ${show(f.rel)}`);
      f.received += data.length;
      f.queue.push(data);
      this.#pendingBytes += data.length;
    }
    if (!f.writing) void this.#pump(f);
  }

  /** Writes what waits for `f`, in order; at its end-of-file, applies metadata and closes it. */
  async #pump(f: FileState): Promise<void> {
    f.writing = true;
    this.#pumps++;
    try {
      for (;;) {
        if (this.#error) return;
        if (f.queue.length === 0) {
          if (f.eof) {
            this.#files.delete(f.id);
            this.#finishFileSync(f);
            this.#outstanding--;
            this.#maybeFinish();
          }
          return;
        }
        if (f.fd === undefined) {
          await this.#reopen(f);
          // Set by a failure elsewhere while the reopen awaited.
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (this.#error) return;
        }
        const batch = f.queue.splice(0, MAX_IOV);
        let total = 0;
        for (const b of batch) total += b.length;
        let n: number;
        try {
          n = await writevAsync(f.fd!, batch, f.written);
        } catch (e) {
          throw this.#fsError("write", f.rel, e);
        }
        f.written += n;
        this.#stats.bytes += n;
        this.#pendingBytes -= n;
        if (n < total) {
          // A short write: put back what is left, in order.
          let skip = n;
          const rest: Buffer[] = [];
          for (const b of batch) {
            if (skip >= b.length) skip -= b.length;
            else {
              rest.push(skip ? b.subarray(skip) : b);
              skip = 0;
            }
          }
          f.queue.unshift(...rest);
        }
        if (this.#pendingBytes <= HIGH_WATER_BYTES / 2) this.#wakeDrain?.();
      }
    } catch (e) {
      this.#fail(e);
    } finally {
      f.writing = false;
      this.#pumps--;
      if (this.#pumps === 0) this.#wakePumps?.();
    }
  }

  /** Opens a file made earlier again, refusing anything but the inode we made. */
  async #reopen(f: FileState): Promise<void> {
    let fd: number;
    try {
      fd = await openAsync(f.abs, constants.O_WRONLY | constants.O_NOFOLLOW);
    } catch (e) {
      throw this.#fsError("open", f.rel, e);
    }
    let st: BigIntStats;
    try {
      st = fstatSync(fd, { bigint: true });
    } catch (e) {
      closeSync(fd);
      throw this.#fsError("open", f.rel, e);
    }
    if (st.dev !== f.dev || st.ino !== f.ino) {
      closeSync(fd);
      throw new ReceiveError(`cannot write ${show(f.rel)} in ${this.#where}: it was replaced on disk while it was written`);
    }
    f.fd = fd;
    this.#openFds++;
    if (this.#error) this.#closeFd(f);
  }

  /** Owner, mode (after the writes, which clear setuid), times; then closes. */
  #finishFileSync(f: FileState): void {
    const fd = f.fd;
    if (fd === undefined) throw new ReceiveError(`cannot finish ${show(f.rel)} in ${this.#where}: it is not open`);
    try {
      if (this.#asRoot) fchownSync(fd, this.#uid, this.#gid);
      fchmodSync(fd, f.mode);
      const t = utimeArg(f.modTime);
      futimesSync(fd, t, t);
    } catch (e) {
      this.#closeFd(f);
      throw this.#fsError("set the metadata of", f.rel, e);
    }
    try {
      // A close error can be a failed write-back.
      this.#closeFd(f);
    } catch (e) {
      throw this.#fsError("write", f.rel, e);
    }
  }

  // ---- the end -----------------------------------------------------------

  #maybeFinish(): void {
    if (!this.#walkDone || this.#outstanding !== 0 || this.#finishing || this.#error) return;
    this.#finishing = true;
    try {
      this.#applyDirMetadata();
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#finSent = true;
    this.#queueSend(finPacket()).catch(() => undefined);
  }

  /** Modes and mtimes of the directories this stream made or met, deepest first (setting them earlier would be undone by their children). */
  #applyDirMetadata(): void {
    for (let i = this.#dirs.length - 1; i >= 0; i--) {
      const d = this.#dirs[i]!;
      try {
        const st = lstatSync(d.abs, { bigint: true });
        if (!st.isDirectory() || st.dev !== d.dev || st.ino !== d.ino) {
          throw new ReceiveError(`cannot set the metadata of directory ${show(d.rel)} in ${this.#where}: it was replaced on disk while it was written`);
        }
        chmodSync(d.abs, d.mode);
        const t = utimeArg(d.modTime);
        lutimesSync(d.abs, t, t);
      } catch (e) {
        if (e instanceof ReceiveError) throw e;
        throw this.#fsError("set the metadata of directory", d.rel, e);
      }
    }
  }

  #queueSend(packet: Buffer, always = false): Promise<void> {
    const p = this.#sendChain.then(() => (this.#error && !always ? undefined : this.#send(packet)));
    this.#sendChain = p.catch((e: unknown) => {
      if (!always) this.#fail(new Error(`cannot send to buildkitd: ${oneLine(asError(e).message)}`, { cause: e }));
    });
    return p;
  }

  #succeed(): void {
    if (this.#settled || this.#error) return;
    this.#settled = true;
    this.#wakeReader?.();
    this.#resolve({ ...this.#stats });
  }

  #fail(e: unknown): void {
    if (this.#error || this.#settled) return;
    const error = asError(e);
    this.#error = error;
    this.#wakeReader?.();
    this.#wakeDrain?.();
    void this.#cleanUpAndReject(error);
  }

  async #cleanUpAndReject(error: Error): Promise<void> {
    // Tell the daemon why (bounded: it may not be reading any more).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#queueSend(errPacket(error.message), true).catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ERR_SEND_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    // Writes in flight finish (or fail) before we report, so the caller can
    // remove the directory without a write landing in it afterwards.
    while (this.#pumps > 0) await new Promise<void>((resolve) => (this.#wakePumps = resolve));
    for (const f of this.#files.values()) {
      try {
        this.#closeFd(f);
      } catch {
        // closing after a failure: the first error is the one reported
      }
    }
    this.#settled = true;
    this.#reject(error);
  }
}

/** An error in the stream or in writing it; its message goes to the daemon as ERR. */
class ReceiveError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/**
 * Runs the receiver over one FileSend/DiffCopy call: `messages` are the raw
 * gRPC message bodies (fsutil Packets), `send` sends one encoded Packet.
 * Resolves once FIN was sent and FIN received (the daemon then cancels the
 * call: do not wait for EOF after FIN). On any failure: sends PACKET_ERR
 * with the message, rejects with an Error whose message says what and
 * which path.
 */
export function receiveDiffCopy(messages: AsyncIterable<Buffer>, send: (packet: Buffer) => Promise<void>, opts: ReceiveOptions): Promise<ReceiveStats> {
  let root: string;
  try {
    root = realpathSync(opts.root);
    if (!lstatSync(root).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    const error = new Error(`cannot receive into ${JSON.stringify(opts.root)}: ${fsReason(e)}; it must be an existing directory`, { cause: e });
    return send(errPacket(error.message))
      .catch(() => undefined)
      .then(() => Promise.reject(error));
  }
  return new Receiver(root, send, opts.signal).run(messages);
}
