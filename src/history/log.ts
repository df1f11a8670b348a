/**
 * The stored progress log of a finished build. buildkitd writes the whole
 * status stream of a build into one content blob (media type
 * `application/vnd.buildkit.status.v0`): a plain sequence of records, each
 * a 4-byte little-endian length followed by that many bytes of a
 * StatusResponse protobuf, no compression (buildkit
 * solver/llbsolver/history.go, ImportStatus and Status).
 */
import { BuildKitError } from "../errors.js";
import { codec } from "../grpc/codec.js";
import { statusFromWire, type SolveStatus } from "../progress/status.js";
import type { StatusResponse__Output } from "../gen/types/moby/buildkit/v1/StatusResponse.js";

export const STATUS_LOG_MEDIA_TYPE = "application/vnd.buildkit.status.v0";

/** A record larger than this is taken as corruption (buildkitd's own messages stay under its 16 MiB gRPC limit). */
export const MAX_LOG_RECORD_BYTES = 64 << 20;

/**
 * Decodes a status log pushed in pieces of any size: push() returns the
 * updates completed by that piece; end() fails when the log stops inside a
 * record. Errors name the byte offset of the bad record.
 */
export class StatusLogDecoder {
  readonly #what: string;
  #buf: Buffer = Buffer.alloc(0);
  /** Offset in the whole log of #buf[0]. */
  #offset = 0;
  #records = 0;

  /** `what` names the log in errors, e.g. `the log of build abc`. */
  constructor(what = "the build log") {
    this.#what = what;
  }

  /** Records decoded so far. */
  get records(): number {
    return this.#records;
  }

  push(chunk: Uint8Array): SolveStatus[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : Buffer.from(chunk);
    const out: SolveStatus[] = [];
    let at = 0;
    const status = codec<StatusResponse__Output>("moby.buildkit.v1.StatusResponse");
    while (this.#buf.length - at >= 4) {
      const size = this.#buf.readUInt32LE(at);
      if (size > MAX_LOG_RECORD_BYTES) {
        throw this.#corrupt(`record ${this.#records + 1} at byte ${this.#offset + at} claims ${size} bytes`);
      }
      if (this.#buf.length - at - 4 < size) break;
      const body = this.#buf.subarray(at + 4, at + 4 + size);
      try {
        out.push(statusFromWire(status.decode(body)));
      } catch (e) {
        throw this.#corrupt(
          `record ${this.#records + 1} at byte ${this.#offset + at} is not a status message (${e instanceof Error ? e.message : String(e)})`,
          e,
        );
      }
      this.#records++;
      at += 4 + size;
    }
    this.#buf = this.#buf.subarray(at);
    this.#offset += at;
    return out;
  }

  /** Checks that the log ended on a record boundary. */
  end(): void {
    if (this.#buf.length === 0) return;
    const have = this.#buf.length - 4;
    const detail =
      have < 0
        ? `it ends ${this.#buf.length} bytes into the length of record ${this.#records + 1}`
        : `record ${this.#records + 1} at byte ${this.#offset} claims ${this.#buf.readUInt32LE(0)} bytes but only ${have} follow`;
    throw this.#corrupt(`it is truncated: ${detail}`);
  }

  #corrupt(detail: string, cause?: unknown): BuildKitError {
    return new BuildKitError(`cannot read ${this.#what}: ${detail}`, { code: "DATA_LOSS", cause });
  }
}

/** Decodes a whole status log at once. */
export function decodeStatusLog(bytes: Uint8Array, what?: string): SolveStatus[] {
  const d = new StatusLogDecoder(what);
  const out = d.push(bytes);
  d.end();
  return out;
}
