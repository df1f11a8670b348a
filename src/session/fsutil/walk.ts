/**
 * Walks a directory the way fsutil's sender does, for buildkitd's FileSync:
 * depth-first, parents before children, siblings in UTF-8 byte order, paths
 * relative and slash-separated. Symlinks are sent as links and never
 * followed, so no file outside the root is ever opened. Sockets are skipped.
 * uid/gid are sent as 0 like buildctl, which keeps cache keys independent of
 * who runs the build.
 */
import { lstat, readdir, readlink } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { join } from "node:path";
import { PatternMatcher, cleanPath } from "./patterns.js";
import { goFileMode, isRequestable } from "./mode.js";

export interface WireStat {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  size: string;
  modTime: string;
  linkname: string;
  devmajor: string;
  devminor: string;
}

export interface WalkEntry {
  stat: WireStat;
  /** Absolute path on disk (only read for requestable entries). */
  absPath: string;
  requestable: boolean;
}

export interface WalkOptions {
  includePatterns?: readonly string[];
  excludePatterns?: readonly string[];
  followPaths?: readonly string[];
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
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
    size: isDir ? "0" : st.size.toString(),
    modTime: st.mtimeNs.toString(),
    linkname,
    devmajor: isDev ? String((rdev >> 8) & 0xfff) : "0",
    devminor: isDev ? String((rdev & 0xff) | ((rdev >> 12) & 0xfff00)) : "0",
  };
}

/**
 * Resolves followpaths inside root: every symlink met along a listed path is
 * replaced by its target (absolute targets are taken relative to root).
 * Returns the listed paths plus the resolved ones.
 */
async function resolveFollowPaths(root: string, paths: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const p of paths) {
    const clean = cleanPath(p.replace(/^\/+/, ""));
    out.add(clean);
    let parts = clean.split("/");
    let resolved: string[] = [];
    for (let hops = 0, i = 0; i < parts.length && hops < 40; i++) {
      const candidate = [...resolved, parts[i]!].join("/");
      let st;
      try {
        st = await lstat(join(root, candidate));
      } catch {
        resolved = [...resolved, ...parts.slice(i)];
        break;
      }
      if (st.isSymbolicLink()) {
        hops++;
        const target = await readlink(join(root, candidate));
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
  const includes = [...(options.includePatterns ?? [])];
  if (options.followPaths?.length) includes.push(...(await resolveFollowPaths(root, options.followPaths)));
  const include = new PatternMatcher(includes);
  const exclude = new PatternMatcher(options.excludePatterns ?? []);
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

  async function* visit(dirAbs: string, dirRel: string): AsyncGenerator<WalkEntry> {
    let names: string[];
    try {
      names = await readdir(dirAbs);
    } catch (e) {
      throw new Error(`cannot read directory ${dirAbs}: ${(e as Error).message}`, { cause: e });
    }
    names.sort(byteCompare);
    // Stat a window of entries ahead concurrently; the walk order stays sorted.
    const WINDOW = 64;
    const stats: Array<Promise<BigIntStats | undefined>> = [];
    const statAt = (i: number): void => {
      if (i < names.length && stats[i] === undefined) {
        const abs = join(dirAbs, names[i]!);
        stats[i] = lstat(abs, { bigint: true }).catch((e: NodeJS.ErrnoException) => {
          if (e.code === "ENOENT") return undefined; // removed during the walk
          throw new Error(`cannot stat ${abs}: ${e.message}`, { cause: e });
        });
        stats[i].catch(() => undefined);
      }
    };
    for (let i = 0; i < WINDOW; i++) statAt(i);
    for (let idx = 0; idx < names.length; idx++) {
      statAt(idx + WINDOW);
      const name = names[idx]!;
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const abs = join(dirAbs, name);
      const st = await stats[idx]!;
      delete stats[idx];
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
          linkname = await readlink(abs);
        } catch (e) {
          throw new Error(`cannot read symlink ${abs}: ${(e as Error).message}`, { cause: e });
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
          entry.stat.size = "0";
        } else {
          firstPathOfInode.set(key, rel);
        }
      }
      entry.requestable = isRequestable(entry.stat.mode);
      yield* flush();
      yield entry;
    }
  }

  yield* visit(root, "");
}
