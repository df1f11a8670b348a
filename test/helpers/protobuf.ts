/**
 * Protobuf by hand for tests, the plainest way: a reference the encoders
 * under test are checked against, and pieces for building messages.
 */

/** A 64-bit varint, byte by byte with BigInt (negative values as Go: ten bytes). */
export function varintBytes(n: bigint): Buffer {
  let u = BigInt.asUintN(64, n);
  const out: number[] = [];
  while (u >= 0x80n) {
    out.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  out.push(Number(u));
  return Buffer.from(out);
}
