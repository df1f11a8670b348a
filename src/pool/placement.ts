/**
 * Where a build goes in a pool of buildkitd nodes: pure functions, so the
 * rules can be tested without daemons.
 *
 * - Cache locality: rendezvous (highest random weight) hashing of a stable
 *   key (context + Dockerfile + target) over the nodes' ids, so the same
 *   build lands on the same node while that node is eligible, and removing
 *   one node moves only the builds that were on it.
 * - Load: a node with `maxActive` builds running is passed over for the
 *   next in the key's order; when every candidate is that busy, the least
 *   busy one (earliest in the order on a tie) takes it.
 * - Platforms: a node runs a platform natively when it declares it, or when
 *   its worker lists it and it is one the worker's first (host) platform
 *   runs without emulation (amd64 runs 386; arm64 runs arm/v7 and arm/v6).
 *   Other listed platforms count as emulated: used only when no node has
 *   the platform natively.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";

/** What placement knows of one node. */
export interface Candidate {
  /** Stable id (the node's name). */
  id: string;
  /** Builds this pool runs on it now. */
  active: number;
  /** Platforms it runs natively (normalised os/arch[/variant]). */
  native: readonly string[];
  /** Platforms it can run under emulation. */
  emulated: readonly string[];
}

/** Rendezvous weight of `id` for `key`: the first 8 bytes of sha256(key NUL id). */
function weight(key: string, id: string): bigint {
  return createHash("sha256").update(key).update("\0").update(id).digest().readBigUInt64BE(0);
}

/** The candidates in `key`'s rendezvous order (highest weight first; ties by id). */
export function rendezvousOrder<T extends { id: string }>(key: string, nodes: readonly T[]): T[] {
  return nodes
    .map((n) => ({ n, w: weight(key, n.id) }))
    .sort((a, b) => (a.w === b.w ? (a.n.id < b.n.id ? -1 : 1) : a.w > b.w ? -1 : 1))
    .map((x) => x.n);
}

/** The first node in `key`'s order with fewer than `maxActive` builds, else the least busy (first in order on a tie). */
export function pickNode<T extends Candidate>(key: string, nodes: readonly T[], maxActive: number): T | undefined {
  const order = rendezvousOrder(key, nodes);
  const free = order.find((n) => n.active < maxActive);
  if (free) return free;
  let best: T | undefined;
  for (const n of order) if (!best || n.active < best.active) best = n;
  return best;
}

/**
 * The nodes that can run `platform`: those running it natively, else those
 * that emulate it (empty when none can). Without a platform (the daemon's
 * default): every node.
 */
export function eligible<T extends Candidate>(nodes: readonly T[], platform: string | undefined): { nodes: T[]; emulated: boolean } {
  if (platform === undefined) return { nodes: [...nodes], emulated: false };
  const native = nodes.filter((n) => n.native.includes(platform));
  if (native.length) return { nodes: native, emulated: false };
  return { nodes: nodes.filter((n) => n.emulated.includes(platform)), emulated: true };
}

/** Architectures a host of the first one runs without emulation (as the kernel does, 32-bit compat included). */
const COMPAT: Record<string, readonly string[]> = {
  "linux/amd64": ["linux/386"],
  "linux/arm64": ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
  "linux/arm/v7": ["linux/arm/v6", "linux/arm/v5"],
  "linux/ppc64le": [],
  "linux/s390x": [],
  "linux/riscv64": [],
};

/**
 * Splits a worker's platform list (host platform first, as buildkitd lists
 * them) into native and emulated. amd64 micro-architecture levels
 * (linux/amd64/v2...) count as the host's own.
 */
export function splitWorkerPlatforms(platforms: readonly string[]): { native: string[]; emulated: string[] } {
  const first = platforms[0];
  if (first === undefined) return { native: [], emulated: [] };
  const host = first.replace(/^linux\/amd64\/v\d$/, "linux/amd64");
  const runs = new Set([host, ...(COMPAT[host] ?? [])]);
  const native: string[] = [];
  const emulated: string[] = [];
  for (const p of platforms) {
    const base = p.replace(/^linux\/amd64\/v\d$/, "linux/amd64");
    (runs.has(base) ? native : emulated).push(p);
  }
  return { native, emulated };
}

/**
 * The placement key of a build: what makes its cache the same. A local
 * context by its absolute path (relative to `cwd`), a remote one by its
 * URL; the Dockerfile by path (or "inline" for contents given in memory);
 * the target. A context streamed from the caller has no stable identity:
 * it is keyed by the Dockerfile and target alone.
 */
export function placementKey(o: { context?: unknown; dockerfile?: unknown; target?: string | undefined }, cwd: string = process.cwd()): string {
  const ctx = o.context;
  const context = typeof ctx === "string" ? (/^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(ctx) ? ctx : resolve(cwd, ctx)) : ctx === undefined ? "" : "stream";
  const df = o.dockerfile;
  const dockerfile = typeof df === "string" ? (/^[a-z][a-z0-9+.-]*:\/\//i.test(df) ? df : resolve(cwd, df)) : df === undefined ? "" : "inline";
  return JSON.stringify([context, dockerfile, o.target ?? ""]);
}
