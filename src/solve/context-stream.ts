/**
 * A build context given as a byte stream (buildx's `-` context): telling a
 * tar archive from a Dockerfile by its first bytes, as buildx and the
 * dockerfile frontend do, and peeking at a stream without losing what was
 * read.
 */
import { UsageError } from "../errors.js";

/** The URL the frontend attribute `context` takes for upload `id` (buildkit's uploadprovider form). */
export function uploadUrl(id: string): string {
  return `http://buildkit-session/${id}`;
}

/** How many bytes buildx peeks at (2 × a tar block), and the frontend reads back. */
export const SNIFF_BYTES = 1024;

/** What a stream's first bytes say it is. */
export type StreamKind = "archive" | "zstd" | "empty" | "other";

const MAGICS: readonly (readonly number[])[] = [
  [0x42, 0x5a, 0x68], // bzip2
  [0x1f, 0x8b, 0x08], // gzip
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

/**
 * Whether `block` (512 bytes) is a tar header: its checksum field (octal, 8
 * bytes at 148) equals the sum of the header's bytes with that field read as
 * spaces, unsigned or signed, as Go's archive/tar accepts. An all-zero
 * block is the end marker, not a header.
 */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  if (block.subarray(0, 512).every((b) => b === 0)) return false;
  const field = Buffer.from(block.subarray(148, 156)).toString("latin1");
  const digits = field.replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (!/^[0-7]+$/.test(digits)) return false;
  const want = parseInt(digits, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

/**
 * buildx's isArchive (and the dockerfile frontend's): gzip, bzip2 or xz
 * magic, or a tar header at the start. zstd is told apart because neither
 * buildx nor the frontend unpacks it: it would be read as a Dockerfile.
 */
export function sniffStream(head: Uint8Array): StreamKind {
  if (head.length === 0) return "empty";
  if (MAGICS.some((m) => startsWith(head, m)) || isTarHeader(head)) return "archive";
  if (startsWith(head, ZSTD)) return "zstd";
  return "other";
}

/** A stream whose first bytes have been read: `stream` gives them again, then the rest. */
export interface PeekedStream {
  head: Buffer;
  /** True when the source ended within the peek. */
  ended: boolean;
  /** The whole stream from its first byte (iterate once). */
  stream: AsyncIterable<Buffer>;
  /** Lets go of the source when it will not be read to its end (a Readable is destroyed). */
  close(): Promise<void>;
}

function asBuffer(chunk: unknown, what: string): Buffer {
  if (chunk instanceof Uint8Array) return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new UsageError(`${what} gave a ${typeof chunk} chunk, not bytes: give it Buffers or Uint8Arrays (do not setEncoding() on a Readable)`);
}

/**
 * Reads at least `n` bytes of `source` (fewer if it ends first) without
 * losing them. `what` names the stream in errors.
 */
export async function peekStream(source: AsyncIterable<Uint8Array>, n: number, what: string): Promise<PeekedStream> {
  const it = source[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  let done = false;
  const close = async (): Promise<void> => {
    if (done) return;
    done = true;
    await it.return?.();
  };
  try {
    while (size < n) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        done = true;
        break;
      }
      const b = asBuffer(r.value, what);
      chunks.push(b);
      size += b.length;
    }
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  const head = Buffer.concat(chunks, size);
  let used = false;
  const stream: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => {
      if (used) throw new Error(`${what} can be read once`);
      used = true;
      return (async function* () {
        try {
          yield* chunks;
          while (!done) {
            const r = await it.next();
            if (r.done) {
              done = true;
              break;
            }
            yield asBuffer(r.value, what);
          }
        } finally {
          await close();
        }
      })();
    },
  };
  return { head, ended, stream, close };
}

/** Reads a whole stream into memory, refusing one larger than `maxBytes`. */
export async function readAll(source: AsyncIterable<Uint8Array>, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of source) {
    const b = asBuffer(c, what);
    size += b.length;
    if (size > maxBytes) throw new UsageError(`${what} is larger than ${Math.floor(maxBytes / (1 << 20))} MiB: give a smaller file`);
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Checks that a context stream is an archive the frontend unpacks (throws
 * UsageError naming it and the fix) and gives it back whole.
 */
export async function openContextArchive(source: AsyncIterable<Uint8Array>, what: string): Promise<PeekedStream> {
  const peeked = await peekStream(source, SNIFF_BYTES, what);
  const kind = sniffStream(peeked.head);
  if (kind === "archive") return peeked;
  await peeked.close().catch(() => undefined);
  if (kind === "empty") throw new UsageError(`${what} is empty: give a tar archive (plain, gzip, bzip2 or xz)`);
  if (kind === "zstd") {
    throw new UsageError(`${what} is zstd-compressed, which BuildKit does not unpack: decompress it (zstd -dc) or use gzip, bzip2 or xz`);
  }
  throw new UsageError(`${what} is not a tar archive (plain, gzip, bzip2 or xz): for a Dockerfile alone, give dockerfile: { contents } and no context`);
}
