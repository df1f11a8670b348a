/**
 * The history calls behind BuildKitClient.history(), buildLogs() and
 * removeHistory(): Control.ListenBuildHistory, Control.UpdateBuildHistory,
 * and the daemon's content store (Content.Read, served on the same
 * connection as Control) for the stored logs.
 */
import { BuildKitError, UsageError } from "../errors.js";
import type { Connection } from "../transport/connection.js";
import { statusFromWire, type SolveStatus } from "../progress/status.js";
import { buildRecordFromWire, recordSecrets, type BuildRecord } from "./record.js";
import { maskStatus } from "./redact.js";
import type { BuildHistoryRecord__Output } from "../gen/types/moby/buildkit/v1/BuildHistoryRecord.js";
import type { BuildHistoryEvent__Output } from "../gen/types/moby/buildkit/v1/BuildHistoryEvent.js";
import type { BuildHistoryRequest } from "../gen/types/moby/buildkit/v1/BuildHistoryRequest.js";
import { parseHistoryFilter } from "./filter.js";
import { StatusLogDecoder } from "./log.js";
import type { BuildResultInfo__Output } from "../gen/types/moby/buildkit/v1/BuildResultInfo.js";
import type { Descriptor__Output } from "../gen/types/moby/buildkit/v1/Descriptor.js";

export interface HistoryOptions {
  /** Only builds still running. */
  activeOnly?: boolean | undefined;
  /** One build, by its exact ref. */
  ref?: string | undefined;
  /** At most this many records, newest first (0 or unset: all, in the daemon's order). */
  limit?: number | undefined;
  /**
   * buildx's history filters, AND-ed: `ref=SUBSTRING`, `ref!=REF`,
   * `status=running|completed|error|canceled`, `repository=URL`,
   * `startedAt>24h` / `completedAt<=2025-01-02T15:04:05Z` (a Go duration
   * means "ago"; or an RFC 3339 time), `duration>30s`.
   */
  filters?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

export interface BuildLogsOptions {
  signal?: AbortSignal | undefined;
}

export interface ProvenanceOptions {
  /** min (the default, as buildx's metadata file): without the build definition and metadata; max: whole. */
  mode?: "min" | "max" | undefined;
  signal?: AbortSignal | undefined;
}

/** One result's SLSA provenance, as the daemon recorded it for a build. */
export interface BuildProvenance {
  /** The platform of a multi-platform build's result; undefined for a single result. */
  platform?: string | undefined;
  /** e.g. https://slsa.dev/provenance/v0.2 */
  predicateType: string;
  /** The in-toto predicate (buildType, builder, invocation, materials, ...). */
  predicate: Record<string, unknown>;
}

export interface RemoveHistoryOptions {
  signal?: AbortSignal | undefined;
  /** Deadline in milliseconds; default the client's timeout. */
  timeoutMs?: number | undefined;
}

/** ListenBuildHistory, with a daemon that has none (before v0.11) said plainly. */
async function* listen(conn: Connection, request: BuildHistoryRequest, signal: AbortSignal): AsyncGenerator<BuildHistoryEvent__Output, void, undefined> {
  try {
    yield* conn.serverStream("Control.ListenBuildHistory", request, { signal });
  } catch (e) {
    if ((e as { code?: string }).code === "UNIMPLEMENTED") {
      throw new BuildKitError(`${conn.daemon} at ${conn.address} has no build history (buildkitd v0.11 and later keep one)`, {
        code: "UNIMPLEMENTED",
        cause: e,
      });
    }
    throw e;
  }
}

/** The records the daemon holds, as options select them. Bad options throw a UsageError before any call. */
export async function* listHistory(conn: Connection, options: HistoryOptions, signal: AbortSignal): AsyncGenerator<BuildRecord, void, undefined> {
  const limit = options.limit ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > 2 ** 31 - 1)
    throw new UsageError(`invalid history limit ${String(limit)}: must be a whole number, 0 or more`);
  const filters = (options.filters ?? []).map((f) => parseHistoryFilter(f));
  // Filters and the limit are applied here, never sent: buildkitd v0.24
  // dereferences nil (and crashes) in ListenBuildHistory when a Filter or
  // Limit meets a removed record whose deletion is still pending (a build
  // removed within seconds of finishing); fixed after v0.24.
  const request = { ActiveOnly: options.activeOnly ?? false, Ref: options.ref ?? "", EarlyExit: true, Filter: [], Limit: 0 };
  const selected = (async function* () {
    for await (const ev of listen(conn, request, signal)) {
      if (ev.type === "DELETED" || !ev.record) continue;
      if (options.activeOnly && ev.type !== "STARTED") continue;
      const record = buildRecordFromWire(ev.record);
      if (filters.every((f) => f.matches(record))) yield record;
    }
  })();
  if (limit === 0) {
    yield* selected;
    return;
  }
  const all: BuildRecord[] = [];
  for await (const r of selected) all.push(r);
  all.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  yield* all.slice(0, limit);
}

/** One wire record by exact ref; a NOT_FOUND BuildKitError when the daemon has none. */
async function wireRecord(conn: Connection, ref: string, signal: AbortSignal): Promise<BuildHistoryRecord__Output> {
  if (ref === "") throw new UsageError("empty build ref");
  const request = { ActiveOnly: false, Ref: ref, EarlyExit: true, Filter: [], Limit: 0 };
  for await (const ev of listen(conn, request, signal)) {
    if (ev.type !== "DELETED" && ev.record?.Ref === ref) return ev.record;
  }
  throw new BuildKitError(`no build ${ref} in ${conn.daemon}'s history`, { code: "NOT_FOUND" });
}

/**
 * The progress of a recorded build: for a finished build its stored log,
 * read from the daemon's content store and decoded; for a running one the
 * live status stream (Control.Status), which ends with the build. What the
 * record's attributes mask (secret-looking build args) is masked here too:
 * the Dockerfile frontend expands build args into step names.
 */
export async function* buildLogs(conn: Connection, ref: string, signal: AbortSignal): AsyncGenerator<SolveStatus, void, undefined> {
  const wire = await wireRecord(conn, ref, signal);
  const secrets = recordSecrets(wire);
  const record = buildRecordFromWire(wire);
  if (record.status === "running") {
    for await (const r of conn.serverStream("Control.Status", { Ref: ref }, { signal })) yield maskStatus(statusFromWire(r), secrets);
    return;
  }
  if (!record.logs) return;
  const decoder = new StatusLogDecoder(`the log of build ${ref}`);
  let received = 0;
  for await (const piece of conn.serverStream("Content.Read", { digest: record.logs.digest, offset: "0", size: "0" }, { signal })) {
    received += piece.data.length;
    for (const s of decoder.push(piece.data)) yield maskStatus(s, secrets);
  }
  decoder.end();
  if (received !== record.logs.size) {
    throw new BuildKitError(`cannot read the log of build ${ref}: got ${received} of its ${record.logs.size} bytes`, { code: "DATA_LOSS" });
  }
}

/** The provenance descriptor among a result's attestations (buildx's lookupProvenance). */
function provenanceDescriptor(info: BuildResultInfo__Output | null | undefined): Descriptor__Output | undefined {
  return info?.Attestations.find(
    (a) => a.media_type === "application/vnd.in-toto+json" && (a.annotations["in-toto.io/predicate-type"] ?? "").startsWith("https://slsa.dev/provenance/"),
  );
}

/**
 * The provenance a build's record holds for each result (what buildx puts
 * in --metadata-file as buildx.build.provenance), read from the daemon's
 * content store; empty when the build made none. With mode min the build
 * definition and metadata are left out, as buildx's default.
 */
export async function buildProvenance(conn: Connection, ref: string, mode: "min" | "max", signal: AbortSignal): Promise<BuildProvenance[]> {
  const wire = await wireRecord(conn, ref, signal);
  const found: Array<[string | undefined, Descriptor__Output]> = [];
  const results = Object.entries(wire.Results);
  if (results.length) {
    for (const [platform, info] of results) {
      const d = provenanceDescriptor(info);
      if (d) found.push([platform, d]);
    }
  } else {
    const d = provenanceDescriptor(wire.Result);
    if (d) found.push([undefined, d]);
  }
  const out: BuildProvenance[] = [];
  for (const [platform, d] of found) {
    const chunks: Buffer[] = [];
    for await (const piece of conn.serverStream("Content.Read", { digest: d.digest, offset: "0", size: "0" }, { signal })) chunks.push(Buffer.from(piece.data));
    const data = Buffer.concat(chunks);
    if (String(data.length) !== d.size) {
      throw new BuildKitError(`cannot read the provenance of build ${ref}: got ${data.length} of its ${d.size} bytes`, { code: "DATA_LOSS" });
    }
    const predicate = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
    if (mode === "min") {
      delete predicate["buildConfig"];
      delete predicate["metadata"];
    }
    out.push({ platform, predicateType: d.annotations["in-toto.io/predicate-type"]!, predicate });
  }
  return out;
}

/** Deletes one record (and its blobs) from the daemon's history. */
export async function removeHistory(conn: Connection, ref: string, signal: AbortSignal, deadline: Date): Promise<void> {
  if (ref === "") throw new UsageError("empty build ref");
  await conn.unary("Control.UpdateBuildHistory", { Ref: ref, Delete: true }, { signal, deadline });
}
