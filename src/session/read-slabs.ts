/**
 * Read buffers that come back. File content read for a transfer is carved
 * from a few large slabs, one region per read; a region is released once
 * the call has written it, and a slab whose regions are all released is
 * read into again. Sending 500 MB with a new buffer per read leaves that
 * much for the garbage collector, and the collections that external
 * memory pressure forces while many writes are in flight grow V8's young
 * generation for the rest of the process.
 */

interface Slab {
  readonly buf: Buffer;
  /** The next free byte. */
  at: number;
  /** Regions handed out and not yet released. */
  refs: number;
}

export interface SlabRegion {
  /** Room to read into; the caller uses only what it read. */
  readonly room: Buffer;
  /** Keeps the first `n` bytes of the room (n may be 0) and returns them with their release. */
  keep(n: number): { bytes: Buffer; release: () => void };
}

export class ReadSlabs {
  readonly #free: Slab[] = [];
  #current: Slab | undefined;

  /**
   * @param slabBytes each slab's size; a read takes at most this much
   * @param keep slabs kept for reuse beyond the current one
   */
  constructor(
    readonly slabBytes: number,
    readonly keep = 4,
  ) {}

  /** Room for a read of up to `want` bytes (at most slabBytes). */
  take(want: number): SlabRegion {
    if (want > this.slabBytes) throw new RangeError(`a read of ${want} bytes is larger than a slab (${this.slabBytes})`);
    let slab = this.#current;
    if (!slab || this.slabBytes - slab.at < want) {
      if (slab) this.#retire(slab);
      slab = this.#free.pop() ?? { buf: Buffer.allocUnsafeSlow(this.slabBytes), at: 0, refs: 0 };
      slab.at = 0;
      this.#current = slab;
    }
    const s = slab;
    const start = s.at;
    return {
      room: s.buf.subarray(start, start + want),
      keep: (n) => {
        if (n < 0 || n > want) throw new RangeError(`kept ${n} of a ${want}-byte region`);
        s.at = start + n;
        s.refs++;
        let released = false;
        return {
          bytes: s.buf.subarray(start, start + n),
          release: () => {
            if (released) return;
            released = true;
            s.refs--;
            if (s.refs === 0 && s !== this.#current) this.#retire(s);
          },
        };
      },
    };
  }

  /** Slabs ready for reuse (for tests). */
  get spare(): number {
    return this.#free.length;
  }

  #retire(slab: Slab): void {
    // A slab still being written comes back when its last region is released.
    if (slab.refs === 0 && this.#free.length < this.keep && !this.#free.includes(slab)) this.#free.push(slab);
  }
}
