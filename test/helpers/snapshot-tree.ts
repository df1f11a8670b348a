/**
 * A directory tree as comparable data: every entry's path, type, mode,
 * owner, size, mtime (ns), symlink target, content hash, and which entries
 * are hardlinks of each other. Two exports of the same build must give
 * equal snapshots.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface EntrySnapshot {
  path: string;
  type: "dir" | "file" | "symlink" | "other";
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: string;
  link?: string;
  sha256?: string;
  /** Paths sharing this entry's inode (hardlinks), sorted; only when there are several. */
  links?: string[];
}

/**
 * `mtimes`: "ns" (default), "us" (to the microsecond: what Node can set;
 * its utimes takes seconds as a double and libuv rounds them to µs), or
 * false. The root's own mtime is left out: it is when the export happened.
 */
export function snapshotTree(root: string, opts: { mtimes?: "ns" | "us" | false } = {}): EntrySnapshot[] {
  const out: EntrySnapshot[] = [];
  const inodes = new Map<bigint, string[]>();
  const walk = (rel: string): void => {
    const abs = rel === "" ? root : join(root, rel);
    const st = lstatSync(abs, { bigint: true });
    const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : "other";
    const e: EntrySnapshot = {
      path: rel === "" ? "." : rel,
      type,
      mode: (Number(st.mode) & 0o7777).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === "dir" ? 0 : Number(st.size),
      mtimeNs: opts.mtimes === false || rel === "" ? "" : opts.mtimes === "us" ? (st.mtimeNs / 1000n).toString() + "000" : st.mtimeNs.toString(),
    };
    if (type === "symlink") e.link = readlinkSync(abs);
    if (type === "file") {
      e.sha256 = createHash("sha256").update(readFileSync(abs)).digest("hex");
      const list = inodes.get(st.ino) ?? [];
      list.push(e.path);
      inodes.set(st.ino, list);
    }
    out.push(e);
    if (type === "dir") for (const name of readdirSync(abs).sort()) walk(rel === "" ? name : `${rel}/${name}`);
  };
  walk("");
  for (const e of out) {
    if (e.type !== "file") continue;
    const group = [...inodes.values()].find((g) => g.includes(e.path));
    if (group && group.length > 1) e.links = [...group].sort();
  }
  return out;
}

/** Lists every path under `dir` (relative), sorted: for "nothing was written outside DEST" checks. */
export function listAll(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      out.push(p);
      if (lstatSync(join(dir, p)).isDirectory()) walk(p);
    }
  };
  walk("");
  return out;
}
