/**
 * HPACK (RFC 7541) for the session server: a full decoder (the daemon's
 * HTTP/2 client indexes and Huffman-codes what it sends) and the smallest
 * encoder that is correct (literals, never indexed into the peer's table,
 * never Huffman-coded, so it needs no state).
 *
 * Header strings are octets as latin1, as Node's own HTTP/2 gives them.
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "./hpack-tables.js";

/** A malformed header block: the connection cannot go on (COMPRESSION_ERROR). */
export class HpackError extends Error {}

/**
 * The Huffman code as a binary tree in flat arrays: node n's children are
 * next[2n] (bit 0) and next[2n+1] (bit 1); a negative child is a leaf,
 * octet -child-1. Built on first use.
 */
let tree: Int32Array | undefined;

function huffmanTree(): Int32Array {
  if (tree) return tree;
  const next = new Int32Array(2 * 512);
  let nodes = 1;
  for (let sym = 0; sym < 256; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const len = HUFFMAN_LENGTHS[sym]!;
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = 2 * n + bit;
      if (i === 0) next[slot] = -sym - 1;
      else {
        if (next[slot] === 0) next[slot] = nodes++;
        n = next[slot]!;
      }
    }
  }
  tree = next;
  return next;
}

/** Decodes a Huffman-coded string (RFC 7541 5.2): padding is at most 7 one bits, and EOS never appears. */
export function huffmanDecode(src: Buffer): Buffer {
  const next = huffmanTree();
  const out = Buffer.allocUnsafe(Math.ceil((src.length * 8) / 5));
  let o = 0;
  let n = 0;
  /** Bits read since the last octet ended, and whether all were ones. */
  let depth = 0;
  let ones = true;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      const child = next[2 * n + bit]!;
      depth++;
      ones = ones && bit === 1;
      if (child < 0) {
        out[o++] = -child - 1;
        n = 0;
        depth = 0;
        ones = true;
      } else if (child === 0) {
        // Only EOS's 30 ones lead nowhere in this tree.
        throw new HpackError("Huffman string holds EOS");
      } else n = child;
    }
  }
  if (depth > 7 || !ones) throw new HpackError("bad Huffman padding");
  return out.subarray(0, o);
}

interface Entry {
  name: string;
  value: string;
}

/** Decodes header blocks of one connection, keeping its dynamic table. */
export class HpackDecoder {
  /** Newest first. */
  readonly #table: Entry[] = [];
  #size = 0;
  /** The size the peer may grow the table to: our SETTINGS_HEADER_TABLE_SIZE (the default). */
  readonly #limit: number;
  #max: number;

  constructor(limit = 4096) {
    this.#limit = limit;
    this.#max = limit;
  }

  /** A whole header block as a raw list: name, value, name, value, ... */
  decode(block: Buffer): string[] {
    const out: string[] = [];
    let pos = 0;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let v = block[pos++]! & mask;
      if (v < mask) return v;
      let mul = 1;
      for (;;) {
        if (pos >= block.length) throw new HpackError("truncated integer");
        const b = block[pos++]!;
        v += (b & 0x7f) * mul;
        if (b < 0x80) break;
        mul *= 128;
        if (mul > 2 ** 28) throw new HpackError("integer too large");
      }
      return v;
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError("truncated string");
      const huffman = (block[pos]! & 0x80) !== 0;
      const len = int(7);
      if (pos + len > block.length) throw new HpackError("truncated string");
      const raw = block.subarray(pos, pos + len);
      pos += len;
      return (huffman ? huffmanDecode(raw) : raw).toString("latin1");
    };
    const entry = (index: number): Entry => {
      if (index === 0) throw new HpackError("index 0");
      if (index <= STATIC_TABLE.length) {
        const [name, value] = STATIC_TABLE[index - 1]!;
        return { name, value };
      }
      const e = this.#table[index - STATIC_TABLE.length - 1];
      if (!e) throw new HpackError(`index ${index} is past the table`);
      return e;
    };
    let fieldSeen = false;
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const e = entry(int(7));
        out.push(e.name, e.value);
        fieldSeen = true;
      } else if (b & 0x40) {
        const index = int(6);
        const name = index ? entry(index).name : str();
        const value = str();
        this.#add({ name, value });
        out.push(name, value);
        fieldSeen = true;
      } else if (b & 0x20) {
        // A size update is allowed only at the start of a block.
        if (fieldSeen) throw new HpackError("table size update after a field");
        const max = int(5);
        if (max > this.#limit) throw new HpackError(`table size ${max} is over ${this.#limit}`);
        this.#max = max;
        this.#evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = int(4);
        const name = index ? entry(index).name : str();
        out.push(name, str());
        fieldSeen = true;
      }
    }
    return out;
  }

  #add(e: Entry): void {
    const size = e.name.length + e.value.length + 32;
    this.#evict(size);
    if (size > this.#max) return;
    this.#table.unshift(e);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#table.length && this.#size + room > this.#max) {
      const e = this.#table.pop()!;
      this.#size -= e.name.length + e.value.length + 32;
    }
  }
}

/** Static table indexes of the names the server sends. */
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
});

function pushInt(out: number[], value: number, prefixBits: number, first: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

/** Encodes a header list; names must be lower-case, strings latin1. ":status: 200" is the one indexed field. */
export function encodeHeaders(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    if (name === ":status" && value === "200") {
      out.push(0x88);
      continue;
    }
    const index = STATIC_NAME.get(name);
    // Literal header field without indexing (RFC 7541 6.2.2).
    if (index) pushInt(out, index, 4, 0);
    else {
      out.push(0);
      pushInt(out, name.length, 7, 0);
      for (let i = 0; i < name.length; i++) out.push(name.charCodeAt(i) & 0xff);
    }
    pushInt(out, value.length, 7, 0);
    for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}
