/**
 * The Docker Engine's multiplexed stream (attach and exec without a TTY):
 * frames of an 8-byte header (stream type, three zero bytes, big-endian
 * uint32 payload length) and the payload. Types: 0 stdin (shown as stdout,
 * as Go's stdcopy does), 1 stdout, 2 stderr, 3 an error from the daemon.
 */

export const STDCOPY_HEADER_BYTES = 8;

export type StdcopyStream = "stdout" | "stderr" | "system";

/** Thrown for a frame with an unknown stream type. */
export class StdcopyError extends Error {
  override get name(): string {
    return "StdcopyError";
  }
}

/**
 * Incremental demultiplexer: feed chunks split anywhere, get each
 * payload piece as soon as its bytes arrive (a large frame is not held
 * back until it is complete, except system-error frames, which are
 * collected whole to be reported as one message).
 */
export class StdcopyDemuxer {
  #header = Buffer.alloc(STDCOPY_HEADER_BYTES);
  #headerFill = 0;
  #remaining = 0;
  #stream: StdcopyStream = "stdout";
  #system: Buffer[] = [];
  readonly #onData: (stream: StdcopyStream, payload: Buffer) => void;

  constructor(onData: (stream: StdcopyStream, payload: Buffer) => void) {
    this.#onData = onData;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#remaining === 0 && this.#headerFill < STDCOPY_HEADER_BYTES) {
        const n = Math.min(STDCOPY_HEADER_BYTES - this.#headerFill, chunk.length - i);
        chunk.copy(this.#header, this.#headerFill, i, i + n);
        this.#headerFill += n;
        i += n;
        if (this.#headerFill < STDCOPY_HEADER_BYTES) return;
        this.#startFrame();
        continue;
      }
      const n = Math.min(this.#remaining, chunk.length - i);
      const piece = chunk.subarray(i, i + n);
      i += n;
      this.#remaining -= n;
      if (this.#stream === "system") {
        this.#system.push(piece);
        if (this.#remaining === 0) this.#endSystem();
      } else {
        this.#onData(this.#stream, piece);
      }
    }
  }

  /** Whether the stream stopped between frames (false: cut inside a header or payload). */
  get idle(): boolean {
    return this.#headerFill === 0 && this.#remaining === 0;
  }

  #startFrame(): void {
    const type = this.#header[0]!;
    const size = this.#header.readUInt32BE(4);
    this.#headerFill = 0;
    switch (type) {
      case 0:
      case 1:
        this.#stream = "stdout";
        break;
      case 2:
        this.#stream = "stderr";
        break;
      case 3:
        this.#stream = "system";
        break;
      default:
        throw new StdcopyError(`unrecognized stream type ${type} in the multiplexed stream`);
    }
    this.#remaining = size;
    if (size === 0 && this.#stream === "system") this.#endSystem();
  }

  #endSystem(): void {
    const text = Buffer.concat(this.#system);
    this.#system = [];
    this.#onData("system", text);
  }
}

/** Encodes one frame (for tests and fakes). */
export function stdcopyFrame(type: 0 | 1 | 2 | 3, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const header = Buffer.alloc(STDCOPY_HEADER_BYTES);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}
