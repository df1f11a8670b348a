import { test } from "node:test";
import assert from "node:assert/strict";
import { ReadSlabs } from "../../src/session/read-slabs.js";

/** Reads `n` bytes of `fill` into a region and keeps them. */
function read(slabs: ReadSlabs, want: number, n: number, fill: number): { bytes: Buffer; release: () => void } {
  const region = slabs.take(want);
  region.room.fill(fill, 0, n);
  return region.keep(n);
}

test("ReadSlabs: regions held at once never share bytes", () => {
  const slabs = new ReadSlabs(1024, 2);
  const held = Array.from({ length: 40 }, (_, i) => read(slabs, 100 + i, 90 + i, i));
  held.forEach((h, i) => {
    assert.equal(h.bytes.length, 90 + i);
    assert.ok(
      h.bytes.every((b) => b === i),
      `region ${i} was overwritten`,
    );
  });
});

test("ReadSlabs: a slab is read into again only once all its regions are released", () => {
  const slabs = new ReadSlabs(1000, 4);
  const a = read(slabs, 400, 400, 1);
  const b = read(slabs, 400, 400, 2);
  // Does not fit: a second slab; the first waits for its two regions.
  const c = read(slabs, 400, 400, 3);
  assert.notEqual(c.bytes.buffer, a.bytes.buffer);
  assert.equal(slabs.spare, 0);
  a.release();
  assert.equal(slabs.spare, 0, "a slab with a region still held came back");
  b.release();
  b.release(); // twice is once
  assert.equal(slabs.spare, 1);
  const d = read(slabs, 400, 400, 4);
  const e = read(slabs, 700, 10, 5); // fills the second slab: the first comes back into use
  assert.equal(e.bytes.buffer, a.bytes.buffer);
  assert.ok(c.bytes.every((x) => x === 3) && d.bytes.every((x) => x === 4), "a held region was overwritten");
});

test("ReadSlabs: what a read does not keep is room for the next read", () => {
  const slabs = new ReadSlabs(1000);
  const a = read(slabs, 1000, 10, 1);
  const b = read(slabs, 500, 500, 2);
  assert.equal(b.bytes.buffer, a.bytes.buffer);
  assert.equal(b.bytes.byteOffset, a.bytes.byteOffset + 10);
  const none = slabs.take(100).keep(0);
  assert.equal(none.bytes.length, 0);
  none.release();
  assert.ok(a.bytes.every((x) => x === 1));
});

test("ReadSlabs: keeps no more spare slabs than asked", () => {
  const slabs = new ReadSlabs(100, 2);
  const held = Array.from({ length: 6 }, (_, i) => read(slabs, 100, 100, i));
  for (const h of held) h.release();
  assert.equal(slabs.spare, 2);
});

test("ReadSlabs: refuses a read larger than a slab and a keep larger than the room", () => {
  const slabs = new ReadSlabs(100);
  assert.throws(() => slabs.take(101), /larger than a slab/);
  assert.throws(() => slabs.take(50).keep(51), /kept 51 of a 50-byte region/);
});
