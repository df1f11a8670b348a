/**
 * A directory tree as comparable data: every entry with its type, POSIX
 * mode bits, size, mtime (ns), link target and a content digest. Symlinks
 * are described, never followed.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface TreeEntry {
  path: string;
  type: "dir" | "file" | "symlink" | "other";
  /** st_mode & 0o7777 (symlinks: 0). */
  mode: number;
  size: number;
  mtimeNs: bigint;
  ino: bigint;
  nlink: number;
  link?: string;
  sha?: string;
}

/** Every entry below `root` (root itself not included), in sorted order. */
export function snapshot(root: string, opts: { content?: boolean } = {}): TreeEntry[] {
  const out: TreeEntry[] = [];
  const visit = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(abs, { bigint: true });
      const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : "other";
      const e: TreeEntry = {
        path: r,
        type,
        mode: type === "symlink" ? 0 : Number(st.mode) & 0o7777,
        size: Number(st.size),
        mtimeNs: st.mtimeNs,
        ino: st.ino,
        nlink: Number(st.nlink),
      };
      if (type === "symlink") e.link = readlinkSync(abs);
      if (type === "file" && opts.content !== false) e.sha = createHash("sha256").update(readFileSync(abs)).digest("hex");
      out.push(e);
      if (type === "dir") visit(abs, r);
    }
  };
  visit(root, "");
  return out;
}

/** The snapshot without inode numbers and link counts (for comparing two trees). */
export function comparable(entries: TreeEntry[], opts: { mtime?: "us" | "ns" | false } = {}): Array<Omit<TreeEntry, "ino" | "nlink">> {
  return entries.map((entry) => {
    const { ino, nlink, ...e } = entry;
    void ino;
    void nlink;
    if (opts.mtime === false) return { ...e, mtimeNs: 0n };
    if (opts.mtime === "us") return { ...e, mtimeNs: e.mtimeNs - (((e.mtimeNs % 1000n) + 1000n) % 1000n) };
    return e;
  });
}
