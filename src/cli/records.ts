/** Cache records as buildctl du and prune print them. */
import { keyValues, table } from "./output.js";
import { formatSize, humanDuration } from "./format.js";
import type { CacheRecord } from "../index.js";

export function renderRecords(records: CacheRecord[], verbose: boolean): string {
  if (verbose) {
    return records
      .map((r) => {
        const pairs: Array<[string, string]> = [["ID", r.id]];
        if (r.parents.length) pairs.push(["Parents", r.parents.join(";")]);
        if (r.createdAt) pairs.push(["Created at", r.createdAt.toISOString()]);
        pairs.push(["Mutable", String(r.mutable)], ["Reclaimable", String(!r.inUse)], ["Shared", String(r.shared)], ["Size", formatSize(r.size)]);
        if (r.description) pairs.push(["Description", r.description]);
        pairs.push(["Usage count", String(r.usageCount)]);
        if (r.lastUsedAt) pairs.push(["Last used", r.lastUsedAt.toISOString()]);
        if (r.recordType) pairs.push(["Type", r.recordType]);
        return keyValues(pairs);
      })
      .join("\n");
  }
  const now = Date.now();
  return table(
    ["ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"],
    records.map((r) => [
      r.id + (r.mutable ? "*" : ""),
      String(!r.inUse),
      formatSize(r.size),
      r.lastUsedAt ? `${humanDuration(now - r.lastUsedAt.getTime())} ago` : "",
    ]),
  );
}
