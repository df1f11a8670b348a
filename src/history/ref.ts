/**
 * Finding the record a user means: the full ref, a unique prefix of it (as
 * git takes commit ids), or `^N` for the Nth newest finished build (`^0` =
 * the newest, as buildx).
 */
import { UsageError } from "../errors.js";

/** What a ref query needs of a record. */
export interface RefCandidate {
  ref: string;
  createdAt: Date;
  completedAt?: Date | undefined;
}

/** Picks the one record `query` names; throws a UsageError saying why not. */
export function matchRef<T extends RefCandidate>(records: readonly T[], query: string): T {
  if (query === "") throw new UsageError("empty build ref: give a ref from 'bk-build history ls' (a unique prefix is enough)");
  const offset = /^\^(\d+)$/.exec(query);
  if (offset) {
    const n = Number(offset[1]);
    const done = records.filter((r) => r.completedAt).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    const hit = done[n];
    if (!hit) throw new UsageError(`no finished build at offset ${query}: the history has ${done.length} finished build${done.length === 1 ? "" : "s"}`);
    return hit;
  }
  if (query.startsWith("^")) throw new UsageError(`invalid build ref "${query}": ^N takes a whole number (^0 is the newest build)`);
  const exact = records.find((r) => r.ref === query);
  if (exact) return exact;
  const hits = records.filter((r) => r.ref.startsWith(query));
  if (hits.length === 1) return hits[0]!;
  if (hits.length === 0) throw new UsageError(`no build "${query}" in the history; 'bk-build history ls' lists the builds`);
  throw new UsageError(`build ref "${query}" is ambiguous: ${hits.length} builds start with it; give more characters`);
}
