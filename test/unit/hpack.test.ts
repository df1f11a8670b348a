import { test } from "node:test";
import assert from "node:assert/strict";
import { HpackDecoder, HpackError, encodeHeaders, huffmanDecode } from "../../src/grpc/hpack.js";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from "../../src/grpc/hpack-tables.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

/** Huffman-encodes by the table (a reference for the decoder), padding with ones. */
function huffmanEncode(bytes: Buffer): Buffer {
  let bits = "";
  for (const b of bytes) bits += HUFFMAN_CODES[b]!.toString(2).padStart(HUFFMAN_LENGTHS[b]!, "0");
  bits += "1".repeat((8 - (bits.length % 8)) % 8);
  const out = Buffer.alloc(bits.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

const pairs = (raw: string[]): Array<[string, string]> => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
};

test("RFC 7541 C.3: requests without Huffman coding share one dynamic table", () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.deepEqual(pairs(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865"))), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.deepEqual(pairs(d.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"))), [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ]);
});

test("RFC 7541 C.4: the same requests Huffman-coded", () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")))[3], [":authority", "www.example.com"]);
  assert.deepEqual(pairs(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")))[4], ["cache-control", "no-cache"]);
  assert.deepEqual(pairs(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")))[4], ["custom-key", "custom-value"]);
});

test("RFC 7541 C.6: responses with eviction from a 256-octet table", () => {
  // The decoder's table may grow to 4096; the encoder shrinks it first with a size update (0x3fe1 01 = 256).
  const d = new HpackDecoder();
  const r1 = d.decode(
    hex("3fe1 01 4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
  );
  assert.deepEqual(pairs(r1), [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  const r2 = d.decode(hex("4883 640e ffc1 c0bf"));
  assert.deepEqual(pairs(r2), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  const r3 = d.decode(
    hex(
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ),
  );
  assert.deepEqual(pairs(r3), [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["location", "https://www.example.com"],
    ["content-encoding", "gzip"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ]);
  // The table now holds three entries (RFC 7541 C.6.3): 64 is the newest date, 65 is past the end.
  assert.deepEqual(pairs(d.decode(hex("c0 be"))), [
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ]);
  assert.throws(() => d.decode(hex("c1")), /index 65 is past the table/);
});

test("Huffman: every octet decodes back from the table's code, alone and in a run", () => {
  for (let b = 0; b < 256; b++) assert.deepEqual(huffmanDecode(huffmanEncode(Buffer.from([b]))), Buffer.from([b]), `octet ${b}`);
  const all = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff));
  assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  assert.deepEqual(huffmanDecode(Buffer.alloc(0)), Buffer.alloc(0));
});

test("Huffman: padding longer than 7 bits, padding with zeros and EOS are refused", () => {
  // "a" is 00011 (5 bits): 00011 111 is right, 00011 000 is not.
  assert.deepEqual(huffmanDecode(Buffer.from([0b00011111])), Buffer.from("a"));
  assert.throws(() => huffmanDecode(Buffer.from([0b00011000])), HpackError);
  assert.throws(() => huffmanDecode(Buffer.from([0b00011111, 0xff])), HpackError);
  assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff])), HpackError);
});

test("the decoder refuses index 0, indexes past the table, truncated input and a late size update", () => {
  const bad = ["80", "be", "7f", "41", "4105 6162", "00 05 61", "8220", "3fe2 1f"];
  for (const b of bad) assert.throws(() => new HpackDecoder().decode(hex(b)), HpackError, b);
  // A size update past our SETTINGS_HEADER_TABLE_SIZE (4096).
  assert.throws(() => new HpackDecoder().decode(hex("3fe2 1f")), /table size/);
});

test("random header blocks either decode or fail with HpackError, never anything else", () => {
  let seed = 7;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 3000; i++) {
    const block = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
    try {
      new HpackDecoder().decode(block);
    } catch (e) {
      assert.ok(e instanceof HpackError, `block ${block.toString("hex")}: ${String(e)}`);
    }
  }
});

test("encodeHeaders: what it writes decodes to the same list, long values and latin1 octets included", () => {
  const fields: Array<[string, string]> = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-status", "13"],
    ["grpc-message", "x".repeat(300) + "%C3%BC"],
    ["x-bytes", "\u00ff\u0080"],
  ];
  assert.deepEqual(pairs(new HpackDecoder().decode(encodeHeaders(fields))), fields);
  // Stateless: the same fields encode the same way every time.
  assert.deepEqual(encodeHeaders(fields), encodeHeaders(fields));
});
