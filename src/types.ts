/** Public domain types. Wire types from src/gen never appear here. */

export interface BuildKitVersion {
  /** Go package path, e.g. "github.com/moby/buildkit". */
  package: string;
  /** e.g. "v0.24.0". */
  version: string;
  /** Git commit the daemon was built from; empty when not stamped. */
  revision: string;
  /** Builtin Dockerfile frontend version (daemons v0.30+ report it). */
  dockerfileVersion?: string;
}

export interface DaemonInfo {
  /** The address that was dialled. */
  address: string;
  /** BuildKit's version; empty strings when the daemon does not say (an Engine's BuildKit older than v0.11). */
  buildkit: BuildKitVersion;
  /** Set when the daemon is a Docker Engine's embedded BuildKit. */
  engine?: EngineInfo;
}

/** The Docker Engine a client builds through. */
export interface EngineInfo {
  /** e.g. "28.4.0". */
  version: string;
  /** The API version the client uses with it (min of ours and the Engine's). */
  apiVersion: string;
  /** Where the address came from: "DOCKER_HOST", `context "NAME"`, "--addr", "default". */
  source: string;
  /** "containerd" (the containerd image store) or "classic" (graph drivers). */
  imageStore: "containerd" | "classic";
  /**
   * How BuildKit is reached: "native" (gRPC on the API socket, Engine 29.2+)
   * or "hijack" (the `/grpc` and `/session` upgrades, every Engine).
   */
  transport: "native" | "hijack";
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  osVersion?: string;
  osFeatures?: string[];
}

export interface GCPolicy {
  all: boolean;
  filters: string[];
  /** Nanoseconds. */
  keepDuration: bigint;
  /** Bytes. */
  reservedSpace: bigint;
  maxUsedSpace: bigint;
  minFreeSpace: bigint;
}

export interface WorkerInfo {
  id: string;
  labels: Record<string, string>;
  platforms: Platform[];
  gcPolicies: GCPolicy[];
  cdiDevices: Array<{ name: string; autoAllow: boolean; onDemand: boolean; annotations: Record<string, string> }>;
}

/** One build cache record. */
export interface CacheRecord {
  id: string;
  parents: string[];
  mutable: boolean;
  inUse: boolean;
  shared: boolean;
  /** Bytes. */
  size: bigint;
  createdAt?: Date;
  lastUsedAt?: Date;
  usageCount: number;
  description: string;
  /** internal, frontend, source.local, source.git.checkout, exec.cachemount, regular. */
  recordType: string;
}

export interface DiskUsage {
  records: CacheRecord[];
  /** Sum of all record sizes. */
  total: bigint;
  /** Sum of records not in use. */
  reclaimable: bigint;
  /** Sum of records shared with other records. */
  shared: bigint;
}

export interface DiskUsageOptions {
  /** containerd-style filters, e.g. "type==regular", "until=24h" (as buildctl). */
  filters?: string[] | undefined;
  /** Deadline in milliseconds. Default: the client's `timeoutMs`. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface PruneOptions {
  /** Also remove records that are not dangling (buildctl/buildx --all). */
  all?: boolean | undefined;
  filters?: string[] | undefined;
  /** Keep records used within this many milliseconds. */
  keepDurationMs?: number | undefined;
  /** Bytes of cache to keep (buildx --keep-storage / --reserved-space). */
  reservedSpace?: bigint | number | undefined;
  /** Remove cache above this many bytes. */
  maxUsedSpace?: bigint | number | undefined;
  /** Keep this many bytes of disk free. */
  minFreeSpace?: bigint | number | undefined;
  signal?: AbortSignal | undefined;
}

/** What prune() removed. */
export interface PruneResult {
  records: CacheRecord[];
  /** Bytes the removed records held. */
  reclaimed: bigint;
}

export interface WorkersOptions {
  filters?: string[] | undefined;
  /** Deadline in milliseconds. Default: the client's `timeoutMs`. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface InfoOptions {
  /** Deadline in milliseconds. Default: the client's `timeoutMs`. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** "linux/amd64/v2" form of a platform. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}
