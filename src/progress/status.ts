/** Build progress as public types, converted from StatusResponse in one place. */
import type { StatusResponse__Output } from "../gen/types/moby/buildkit/v1/StatusResponse.js";
import { timestamp } from "../convert.js";

export interface Vertex {
  digest: string;
  inputs: string[];
  name: string;
  cached: boolean;
  started?: Date;
  completed?: Date;
  error?: string;
  /** Vertices of one group (e.g. the layers of a COPY --link) that displays fold into one line. */
  progressGroup?: ProgressGroup;
}

export interface ProgressGroup {
  id: string;
  name: string;
  /** A weak member alone does not make the group show. */
  weak: boolean;
}

/** A position in a source file: line 1-based, character 0-based, as the daemon sends them. */
export interface SourcePosition {
  line: number;
  character: number;
}

/** The file a warning points into, as the daemon saw it. */
export interface WarningSource {
  filename: string;
  data: string;
  language: string;
}

export interface VertexStatus {
  id: string;
  vertex: string;
  name: string;
  current: number;
  total: number;
  /** When this update was taken. */
  timestamp?: Date;
  started?: Date;
  completed?: Date;
}

export interface VertexLog {
  vertex: string;
  /** 1 = stdout, 2 = stderr. */
  stream: number;
  data: Buffer;
  timestamp?: Date;
}

export interface VertexWarning {
  vertex: string;
  level: number;
  short: string;
  detail: string[];
  url: string;
  source?: WarningSource;
  ranges?: Array<{ start: SourcePosition; end: SourcePosition }>;
}

/** One progress update from buildkitd. */
export interface SolveStatus {
  vertexes: Vertex[];
  statuses: VertexStatus[];
  logs: VertexLog[];
  warnings: VertexWarning[];
}

export function statusFromWire(r: StatusResponse__Output): SolveStatus {
  return {
    vertexes: r.vertexes.map((v) => {
      const out: Vertex = { digest: v.digest, inputs: [...v.inputs], name: v.name, cached: v.cached };
      const s = timestamp(v.started);
      const c = timestamp(v.completed);
      if (s) out.started = s;
      if (c) out.completed = c;
      if (v.error) out.error = v.error;
      if (v.progressGroup) out.progressGroup = { id: v.progressGroup.id, name: v.progressGroup.name, weak: v.progressGroup.weak };
      return out;
    }),
    statuses: r.statuses.map((s) => {
      const out: VertexStatus = { id: s.ID, vertex: s.vertex, name: s.name, current: Number(s.current), total: Number(s.total) };
      const ts = timestamp(s.timestamp);
      const st = timestamp(s.started);
      const c = timestamp(s.completed);
      if (ts) out.timestamp = ts;
      if (st) out.started = st;
      if (c) out.completed = c;
      return out;
    }),
    logs: r.logs.map((l) => {
      const out: VertexLog = { vertex: l.vertex, stream: Number(l.stream), data: Buffer.from(l.msg) };
      const t = timestamp(l.timestamp);
      if (t) out.timestamp = t;
      return out;
    }),
    warnings: r.warnings.map((w) => {
      const out: VertexWarning = {
        vertex: w.vertex,
        level: Number(w.level),
        short: Buffer.from(w.short).toString(),
        detail: w.detail.map((d) => Buffer.from(d).toString()),
        url: w.url,
      };
      if (w.info) out.source = { filename: w.info.filename, data: Buffer.from(w.info.data).toString(), language: w.info.language };
      if (w.ranges.length) {
        const pos = (p: { line: number; character: number } | null): SourcePosition => ({ line: p?.line ?? 0, character: p?.character ?? 0 });
        out.ranges = w.ranges.map((r) => ({ start: pos(r.start), end: pos(r.end) }));
      }
      return out;
    }),
  };
}
