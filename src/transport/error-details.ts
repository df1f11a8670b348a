/**
 * Typed error details from buildkitd: the grpc-status-details-bin trailer is
 * a google.rpc.Status whose details are Any values with JSON bodies
 * (type URLs ending in "+json").
 */
import { codec } from "../grpc/codec.js";
import type { SourceSnippet } from "../errors.js";

interface AnyValue {
  type_url: string;
  value: Buffer;
}

export interface ErrorDetails {
  sources: SourceSnippet[];
  vertex?: string;
  exitCode?: number;
  /** A subrequest (e.g. frontend.lint) the frontend does not know. */
  subrequest?: string;
}

/** Decodes the raw google.rpc.Status of grpc-status-details-bin. */
export function decodeErrorDetails(raw: Buffer | undefined): ErrorDetails {
  const out: ErrorDetails = { sources: [] };
  if (!raw || raw.length === 0) return out;
  let status: { details: AnyValue[] };
  try {
    status = codec<{ details: AnyValue[] }>("google.rpc.Status").decode(raw);
  } catch {
    return out;
  }
  for (const d of status.details) {
    if (!d.type_url.endsWith("+json")) continue;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.from(d.value).toString("utf8")) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (d.type_url.endsWith("errdefs.Source+json")) {
      const info = (body["info"] ?? {}) as { filename?: string; data?: string };
      const ranges = ((body["ranges"] ?? []) as Array<{ start?: { line?: number }; end?: { line?: number } }>).map((r) => ({
        start: r.start?.line ?? 0,
        end: r.end?.line ?? r.start?.line ?? 0,
      }));
      out.sources.push({ filename: info.filename ?? "", data: Buffer.from(info.data ?? "", "base64").toString("utf8"), ranges });
    } else if (d.type_url.endsWith("errdefs.Vertex+json")) {
      const digest = body["digest"];
      if (typeof digest === "string") out.vertex = digest;
    } else if (d.type_url.endsWith("errdefs.Subrequest+json")) {
      const name = body["name"];
      if (typeof name === "string") out.subrequest = name;
    } else if (d.type_url.endsWith("gatewayapi.ExitMessage+json")) {
      const code = body["Code"];
      if (typeof code === "number") out.exitCode = code;
    }
  }
  // Details come outer to inner; print the innermost first, as buildctl does.
  out.sources.reverse();
  return out;
}
