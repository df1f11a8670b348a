/** Control API responses (Info, ListWorkers, DiskUsage, Prune) as public types. */
import type { InfoResponse__Output } from "./gen/types/moby/buildkit/v1/InfoResponse.js";
import type { UsageRecord__Output } from "./gen/types/moby/buildkit/v1/UsageRecord.js";
import type { WorkerRecord__Output } from "./gen/types/moby/buildkit/v1/types/WorkerRecord.js";
import type { Timestamp__Output } from "./gen/types/google/protobuf/Timestamp.js";
import type { BuildKitVersion, CacheRecord, DiskUsage, Platform, WorkerInfo } from "./types.js";

/** int64 arrives as a decimal string; keep it exact. */
export function int64(value: string | number | null | undefined): bigint {
  if (value === null || value === undefined || value === "") return 0n;
  return BigInt(value);
}

export function timestamp(ts: Timestamp__Output | null | undefined): Date | undefined {
  if (!ts) return undefined;
  const seconds = Number(ts.seconds);
  if (seconds === 0 && ts.nanos === 0) return undefined;
  // Go's zero time.Time (year 1) also means "not set".
  if (seconds < -62135596700) return undefined;
  return new Date(seconds * 1000 + Math.floor(ts.nanos / 1e6));
}

export function versionFromWire(res: InfoResponse__Output): BuildKitVersion {
  const v = res.buildkitVersion;
  const out: BuildKitVersion = { package: v?.package ?? "", version: v?.version ?? "", revision: v?.revision ?? "" };
  if (v?.dockerfileVersion) out.dockerfileVersion = v.dockerfileVersion;
  return out;
}

export function workerFromWire(w: WorkerRecord__Output): WorkerInfo {
  return {
    id: w.ID,
    labels: { ...w.Labels },
    platforms: w.platforms.map((p) => {
      const out: Platform = { os: p.OS, architecture: p.Architecture };
      if (p.Variant) out.variant = p.Variant;
      if (p.OSVersion) out.osVersion = p.OSVersion;
      if (p.OSFeatures.length) out.osFeatures = [...p.OSFeatures];
      return out;
    }),
    gcPolicies: w.GCPolicy.map((g) => ({
      all: g.all,
      filters: [...g.filters],
      keepDuration: int64(g.keepDuration),
      reservedSpace: int64(g.reservedSpace),
      maxUsedSpace: int64(g.maxUsedSpace),
      minFreeSpace: int64(g.minFreeSpace),
    })),
    cdiDevices: w.CDIDevices.map((d) => ({
      name: d.Name,
      autoAllow: d.AutoAllow,
      onDemand: d.OnDemand,
      annotations: { ...d.Annotations },
    })),
  };
}

export function recordFromWire(r: UsageRecord__Output): CacheRecord {
  const parents = r.Parents.length ? [...r.Parents] : r.Parent ? [r.Parent] : [];
  const out: CacheRecord = {
    id: r.ID,
    parents,
    mutable: r.Mutable,
    inUse: r.InUse,
    shared: r.Shared,
    size: int64(r.Size),
    usageCount: Number(r.UsageCount),
    description: r.Description,
    recordType: r.RecordType,
  };
  const created = timestamp(r.CreatedAt);
  if (created) out.createdAt = created;
  const used = timestamp(r.LastUsedAt);
  if (used) out.lastUsedAt = used;
  return out;
}

/** Totals as buildctl prints them: only positive sizes count. */
export function summarize(records: CacheRecord[]): DiskUsage {
  let total = 0n;
  let reclaimable = 0n;
  let shared = 0n;
  for (const r of records) {
    if (r.size <= 0n) continue;
    total += r.size;
    if (r.shared) shared += r.size;
    if (!r.inUse) reclaimable += r.size;
  }
  return { records, total, reclaimable, shared };
}
