/**
 * Facts about a failed HTTP/2 call, read from Node's errors and the stream's
 * reset code rather than from message text (as connect-es' node-error.ts):
 * Node rewords messages between releases, codes stay.
 */
import * as http2 from "node:http2";
import { Status } from "./frame.js";

const C = http2.constants;

/** The errors behind `e`, outermost first, following `cause`. */
function errorChain(e: unknown): Error[] {
  const out: Error[] = [];
  for (let cur: unknown = e; cur instanceof Error && out.length < 8; cur = (cur as { cause?: unknown }).cause) out.push(cur);
  return out;
}

/** The first Node error code in the chain (`ECONNREFUSED`, `ERR_SSL_...`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`). */
export function nodeCode(e: unknown): string | undefined {
  for (const err of errorChain(e)) {
    // Our own errors carry gRPC status names, not Node's codes.
    if (Symbol.for("bk-build.BuildKitError") in err) continue;
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code !== "ERR_HTTP2_STREAM_CANCEL" && code !== "ERR_HTTP2_STREAM_ERROR") return code;
  }
  return undefined;
}

/** True when the code says the peer does not speak HTTP/2 (a protocol error before any answer). */
export function isProtocolCode(code: string | undefined): boolean {
  return code === "ERR_HTTP2_ERROR" || code === "ERR_HTTP2_INVALID_SESSION" || code === "HPE_INVALID_CONSTANT";
}

const H2_CODE_NAMES: Record<number, string> = {
  [C.NGHTTP2_NO_ERROR]: "NO_ERROR",
  [C.NGHTTP2_PROTOCOL_ERROR]: "PROTOCOL_ERROR",
  [C.NGHTTP2_INTERNAL_ERROR]: "INTERNAL_ERROR",
  [C.NGHTTP2_FLOW_CONTROL_ERROR]: "FLOW_CONTROL_ERROR",
  [C.NGHTTP2_SETTINGS_TIMEOUT]: "SETTINGS_TIMEOUT",
  [C.NGHTTP2_STREAM_CLOSED]: "STREAM_CLOSED",
  [C.NGHTTP2_FRAME_SIZE_ERROR]: "FRAME_SIZE_ERROR",
  [C.NGHTTP2_REFUSED_STREAM]: "REFUSED_STREAM",
  [C.NGHTTP2_CANCEL]: "CANCEL",
  [C.NGHTTP2_COMPRESSION_ERROR]: "COMPRESSION_ERROR",
  [C.NGHTTP2_CONNECT_ERROR]: "CONNECT_ERROR",
  [C.NGHTTP2_ENHANCE_YOUR_CALM]: "ENHANCE_YOUR_CALM",
  [C.NGHTTP2_INADEQUATE_SECURITY]: "INADEQUATE_SECURITY",
  [C.NGHTTP2_HTTP_1_1_REQUIRED]: "HTTP_1_1_REQUIRED",
};

/** The HTTP/2 error code's name ("CANCEL", "REFUSED_STREAM"). */
export function h2CodeName(code: number): string {
  return H2_CODE_NAMES[code] ?? `code ${code}`;
}

/**
 * The gRPC status for a stream the peer reset, as the gRPC HTTP/2 spec maps
 * RST_STREAM codes (connect-es does the same): REFUSED_STREAM is safe to
 * retry, CANCEL is a cancellation, ENHANCE_YOUR_CALM a resource limit.
 */
export function statusFromResetCode(code: number): number {
  switch (code) {
    case C.NGHTTP2_REFUSED_STREAM:
      return Status.UNAVAILABLE;
    case C.NGHTTP2_CANCEL:
      return Status.CANCELLED;
    case C.NGHTTP2_ENHANCE_YOUR_CALM:
      return Status.RESOURCE_EXHAUSTED;
    case C.NGHTTP2_INADEQUATE_SECURITY:
    case C.NGHTTP2_HTTP_1_1_REQUIRED:
      return Status.PERMISSION_DENIED;
    default:
      return Status.INTERNAL;
  }
}
