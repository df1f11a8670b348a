/**
 * Walks a directory the way fsutil's sender does, for buildkitd's FileSync:
 * depth-first, parents before children, siblings in UTF-8 byte order, paths
 * relative and slash-separated. Symlinks are sent as links and never
 * followed, so no file outside the root is ever opened. Sockets are skipped.
 * uid/gid are sent as 0 like buildctl, which keeps cache keys independent of
 * who runs the build.
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from "node:fs";
import { join, normalize } from "node:path";
import { PatternMatcher, cleanPath } from "./patterns.js";
import { goFileMode, isRequestable } from "./mode.js";
import type { WireStat } from "./wire.js";
import { timeSlicer } from "../slices.js";
import { fsReason } from "../../files.js";

export type { WireStat } from "./wire.js";

/** What to do about a file the context cannot be read without. */
export const FIX = "fix its permissions or exclude it in .dockerignore";

export interface WalkEntry {
  stat: WireStat;
  /** Absolute path on disk (only read for requestable entries). */
  absPath: string;
  requestable: boolean;
  /** The file's bytes, for an entry of a MemoryDir. */
  data?: Buffer | undefined;
}

/**
 * A directory served from memory: regular files at its top level (a
 * Dockerfile given by its text, an empty context). `modTime` is sent for
 * each: a new one per build keeps a differ that compares metadata from
 * taking a same-sized file for one it synced before under the same shared
 * key (the frontend fetches its Dockerfile with no differ, so that one is
 * always sent whole anyway).
 */
export interface MemoryDir {
  files: ReadonlyMap<string, Buffer>;
  modTime: bigint;
}

export interface WalkOptions {
  includePatterns?: readonly string[];
  excludePatterns?: readonly string[];
  followPaths?: readonly string[];
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Code units where UTF-16 order and UTF-8 byte order part (surrogates against U+E000..U+FFFF). */
const ORDER_DIFFERS = /[\uD800-\uFFFF]/;

/** Sorts names in UTF-8 byte order: as UTF-16 code units (no copies) unless a name has a code unit where the two orders differ. */
function sortNames(names: string[]): void {
  if (names.some((n) => ORDER_DIFFERS.test(n))) names.sort(byteCompare);
  else names.sort();
}

function toWire(rel: string, st: BigIntStats, linkname: string): WireStat {
  const mode = goFileMode(Number(st.mode));
  const isDir = st.isDirectory();
  const isDev = st.isBlockDevice() || st.isCharacterDevice();
  const rdev = Number(st.rdev);
  return {
    path: rel,
    mode,
    uid: 0,
    gid: 0,
    size: isDir ? 0n : st.size,
    modTime: st.mtimeNs,
    linkname,
    devmajor: isDev ? (rdev >> 8) & 0xfff : 0,
    devminor: isDev ? (rdev & 0xff) | ((rdev >> 12) & 0xfff00) : 0,
  };
}

/**
 * Resolves followpaths inside root: every symlink met along a listed path is
 * replaced by its target (absolute targets are taken relative to root).
 * Returns the listed paths plus the resolved ones.
 */
function resolveFollowPaths(root: string, paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const clean = cleanPath(p.replace(/^\/+/, ""));
    out.add(clean);
    let parts = clean.split("/");
    let resolved: string[] = [];
    for (let hops = 0, i = 0; i < parts.length && hops < 40; i++) {
      const candidate = [...resolved, parts[i]!].join("/");
      // Synchronous: a few calls on the path of every build, where a trip
      // through the thread pool (and an ENOENT error, with its stack, for
      // each follow path that is not there) costs more than the call.
      let st;
      try {
        st = lstatSync(join(root, candidate), { throwIfNoEntry: false });
      } catch {
        st = undefined;
      }
      if (!st) {
        resolved = [...resolved, ...parts.slice(i)];
        break;
      }
      if (st.isSymbolicLink()) {
        hops++;
        const target = readlinkSync(join(root, candidate));
        const base = target.startsWith("/") ? cleanPath(target.slice(1)) : cleanPath([...resolved, target].join("/"));
        if (base.startsWith("..")) break;
        parts = [...(base === "." ? [] : base.split("/")), ...parts.slice(i + 1)];
        resolved = [];
        i = -1;
        continue;
      }
      resolved.push(parts[i]!);
    }
    const r = resolved.join("/");
    if (r && !r.startsWith("..")) out.add(r);
  }
  return [...out];
}

/** Yields entries in fsutil order. Errors name the path that failed. */
export async function* walk(root: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  for await (const batch of walkBatches(root, options)) yield* batch;
}

/** Entries walked between two looks at the event loop, at most. */
const BATCH = 256;

/**
 * walk() in batches of entries: the walk itself is synchronous, and between
 * batches it lets the event loop run (every few ms), so a consumer pays
 * one await per batch, not per entry.
 */
export async function* walkBatches(root: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry[]> {
  const includes = [...(options.includePatterns ?? [])];
  if (options.followPaths?.length) includes.push(...resolveFollowPaths(root, options.followPaths));
  const breathe = timeSlicer();
  let batch: WalkEntry[] = [];
  for (const entry of walkSync(root, new PatternMatcher(includes), new PatternMatcher(options.excludePatterns ?? []))) {
    if (entry !== undefined) {
      batch.push(entry);
      if (batch.length < BATCH) continue;
    }
    if (batch.length > 0) yield batch;
    batch = [];
    const pause = breathe();
    if (pause) await pause;
  }
  if (batch.length > 0) yield batch;
}

/** The walk; `undefined` every BATCH names looked at, so that a walk that skips most of them still lets the event loop run. */
function* walkSync(root: string, include: PatternMatcher, exclude: PatternMatcher): Generator<WalkEntry | undefined> {
  let looked = 0;
  const firstPathOfInode = new Map<string, string>();
  // Directories on the current path; a directory is sent right before its
  // first sent descendant when it was entered only to look for matches.
  const parents: Array<{ entry: WalkEntry; emitted: boolean }> = [];

  function* flush(): Generator<WalkEntry> {
    for (const p of parents) {
      if (!p.emitted) {
        p.emitted = true;
        yield p.entry;
      }
    }
  }

  function* visit(dirAbs: string, dirRel: string): Generator<WalkEntry | undefined> {
    let names: string[];
    try {
      names = readdirSync(dirAbs);
    } catch (e) {
      throw new Error(`cannot read directory ${dirAbs}: ${fsReason(e)} (${FIX})`, { cause: e });
    }
    sortNames(names);
    // dirAbs is normalized and a name has no slash: no join (and its normalize) per name.
    const dirPrefix = dirAbs.endsWith("/") ? dirAbs : `${dirAbs}/`;
    for (const name of names) {
      if (++looked % BATCH === 0) yield undefined;
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const abs = dirPrefix + name;
      let st: BigIntStats | undefined;
      try {
        st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
      } catch (e) {
        throw new Error(`cannot stat ${abs}: ${fsReason(e)} (${FIX})`, { cause: e });
      }
      // undefined: removed during the walk
      if (st === undefined) continue;
      if (st.isSocket()) continue;
      const isDir = st.isDirectory();

      let included = true;
      let descendOnly = false;
      if (!include.empty && !include.matchesOrParentMatches(rel)) {
        if (isDir && include.couldMatchBelow(rel)) descendOnly = true;
        else included = false;
      }
      if (included && !exclude.empty && exclude.matchesOrParentMatches(rel)) {
        if (isDir && exclude.hasExclusions && exclude.couldMatchBelow(rel, true)) descendOnly = true;
        else included = false;
      }
      if (!included) continue;

      let linkname = "";
      if (st.isSymbolicLink()) {
        try {
          linkname = readlinkSync(abs);
        } catch (e) {
          throw new Error(`cannot read symlink ${abs}: ${fsReason(e)} (${FIX})`, { cause: e });
        }
      }
      const entry: WalkEntry = { stat: toWire(rel, st, linkname), absPath: abs, requestable: false };
      if (isDir) {
        parents.push({ entry, emitted: false });
        if (!descendOnly) yield* flush();
        yield* visit(abs, rel);
        parents.pop();
        continue;
      }
      if (descendOnly) continue;
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = firstPathOfInode.get(key);
        if (first !== undefined) {
          entry.stat.linkname = first;
          entry.stat.size = 0n;
        } else {
          firstPathOfInode.set(key, rel);
        }
      }
      entry.requestable = isRequestable(entry.stat.mode);
      yield* flush();
      yield entry;
    }
  }

  yield* visit(normalize(root), "");
}

/** walk() over a MemoryDir: the same filters, the same order. */
export function* walkMemory(dir: MemoryDir, options: WalkOptions = {}): Generator<WalkEntry> {
  const includes = [...(options.includePatterns ?? []), ...(options.followPaths ?? []).map((p) => cleanPath(p.replace(/^\/+/, "")))];
  const include = new PatternMatcher(includes);
  const exclude = new PatternMatcher(options.excludePatterns ?? []);
  const names = [...dir.files.keys()];
  sortNames(names);
  for (const name of names) {
    if (!include.empty && !include.matchesOrParentMatches(name)) continue;
    if (!exclude.empty && exclude.matchesOrParentMatches(name)) continue;
    const data = dir.files.get(name)!;
    const stat: WireStat = { path: name, mode: 0o644, uid: 0, gid: 0, size: BigInt(data.length), modTime: dir.modTime, linkname: "", devmajor: 0, devminor: 0 };
    yield { stat, absPath: "", requestable: true, data };
  }
}
