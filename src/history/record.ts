/** Build history records as public types, converted from the wire in one place. */
import { timestamp } from "../convert.js";
import { statusName } from "../grpc/frame.js";
import type { BuildHistoryRecord__Output } from "../gen/types/moby/buildkit/v1/BuildHistoryRecord.js";
import type { Descriptor__Output } from "../gen/types/moby/buildkit/v1/Descriptor.js";
import { maskText, redactAttrs, secretValues } from "./redact.js";

/** How a recorded build ended (or that it has not): buildx's statuses. */
export type BuildStatus = "running" | "completed" | "error" | "canceled";

/** A content blob in the daemon's store (a build's log, trace or error details). */
export interface BlobDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** One build as buildkitd's history records it. */
export interface BuildRecord {
  /** The build's ref (the id `build.ref` and BuildResult.ref carry). */
  ref: string;
  /** The frontend, e.g. `dockerfile.v0`. */
  frontend: string;
  /**
   * The frontend attributes the build was started with (`build-arg:NAME`,
   * `target`, `filename`, ...). Values that look like secrets are masked
   * with `xxxxx` (see README, "Build history"): buildkitd keeps them
   * verbatim, bk-build never hands them out.
   */
  frontendAttrs: Record<string, string>;
  /** The exporters, attributes masked as frontendAttrs. */
  exporters: Array<{ type: string; attrs: Record<string, string> }>;
  status: BuildStatus;
  /** Set when the build failed: the gRPC code name and the daemon's message. */
  error?: { code: string; message: string };
  createdAt: Date;
  completedAt?: Date;
  /** completedAt − createdAt; unset while the build runs. */
  durationMs?: number;
  /** Vertices: all, completed, cached. */
  steps: { total: number; completed: number; cached: number };
  /** Warnings the build reported. */
  warnings: number;
  /** Pinned records survive the daemon's history GC. */
  pinned: boolean;
  /** The stored progress log (none while running). */
  logs?: BlobDescriptor;
  /** The failure's full google.rpc.Status, as a blob. */
  externalError?: BlobDescriptor;
  /** The exporter-response entries that are names and digests (`containerimage.digest`, `image.name`). */
  exporterResponse: Record<string, string>;
}

function blob(d: Descriptor__Output | null): BlobDescriptor | undefined {
  if (!d || !d.digest) return undefined;
  return { mediaType: d.media_type, digest: d.digest, size: Number(d.size) };
}

/** The strings of a wire record that bk-build masks wherever they appear (attribute values of secret shape). */
export function recordSecrets(r: BuildHistoryRecord__Output): string[] {
  return secretValues(Object.assign({}, r.FrontendAttrs, ...r.Exporters.map((e) => e.Attrs)) as Record<string, string>);
}

export function buildRecordFromWire(r: BuildHistoryRecord__Output): BuildRecord {
  const createdAt = timestamp(r.CreatedAt) ?? new Date(0);
  const completedAt = timestamp(r.CompletedAt);
  let status: BuildStatus = "running";
  if (completedAt)
    status = r.error ? (statusName(r.error.code) === "CANCELLED" || /context canceled/.test(r.error.message) ? "canceled" : "error") : "completed";
  const out: BuildRecord = {
    ref: r.Ref,
    frontend: r.Frontend,
    frontendAttrs: redactAttrs(r.FrontendAttrs),
    exporters: r.Exporters.map((e) => ({ type: e.Type, attrs: redactAttrs(e.Attrs) })),
    status,
    createdAt,
    steps: { total: r.numTotalSteps, completed: r.numCompletedSteps, cached: r.numCachedSteps },
    warnings: r.numWarnings,
    pinned: r.pinned,
    exporterResponse: Object.fromEntries(Object.entries(r.ExporterResponse).filter(([k]) => k === "image.name" || /(?:^|\.)digest$/.test(k))),
  };
  // The message can quote a step's command, build args expanded.
  if (r.error) out.error = { code: statusName(r.error.code), message: maskText(r.error.message, recordSecrets(r)) };
  if (completedAt) {
    out.completedAt = completedAt;
    out.durationMs = completedAt.getTime() - createdAt.getTime();
  }
  const logs = blob(r.logs);
  if (logs) out.logs = logs;
  const ext = blob(r.externalError);
  if (ext) out.externalError = ext;
  return out;
}
