/**
 * src/gen/codecs.ts against protobufjs' reflection of proto/ (what the
 * codecs were built from at run time before they were generated): the same
 * types and methods, the same bytes for the same objects, the same objects
 * for the same bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import protobuf from "protobufjs";
import { messages, services } from "../../src/gen/codecs.js";
import { codec, methodNames, methodTypes } from "../../src/grpc/codec.js";
import { repoRoot } from "../helpers/env.js";

const protoDir = join(repoRoot, "proto");
const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : join(protoDir, target));
root.loadSync(
  walk(protoDir)
    .filter((p) => p.endsWith(".proto"))
    .map((p) => relative(protoDir, p)),
  { keepCase: true },
);
root.resolveAll();

const types: protobuf.Type[] = [];
const svcs: protobuf.Service[] = [];
(function collect(ns: protobuf.NamespaceBase): void {
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Type) types.push(n);
    if (n instanceof protobuf.Service) svcs.push(n);
    if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) collect(n);
  }
})(root);
const bare = (t: protobuf.ReflectionObject): string => t.fullName.slice(1);
const options: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

/** A value of `field`'s type that is not its default; `k` varies it between elements. */
function scalar(field: protobuf.Field, k: number, depth: number): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) {
    const names = Object.keys(t.values);
    return names[(1 + k) % names.length];
  }
  if (t instanceof protobuf.Type) return depth > 3 ? {} : sample(t, depth + 1);
  switch (field.type) {
    case "string":
      return `s${k} ü名`;
    case "bytes":
      return Buffer.from([k, 0, 255, 7]);
    case "bool":
      return true;
    case "double":
    case "float":
      return 1.5 + k;
    case "int32":
    case "sint32":
    case "sfixed32":
      return -5 - k;
    case "uint32":
    case "fixed32":
      return 4000000000 + k;
    case "int64":
    case "sint64":
    case "sfixed64":
      return k % 2 ? "-9007199254740993" : "1700000000123456789";
    case "uint64":
    case "fixed64":
      return "18446744073709551615";
    default:
      throw new Error(`unhandled field type ${field.type}`);
  }
}

/** An object of `type` with every field set (the first member of each oneof only). */
function sample(type: protobuf.Type, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.partOf && f.partOf.oneof[0] !== f.name) continue;
    if (f.map) {
      const keyed = f instanceof protobuf.MapField && f.keyType === "string" ? ["a", "b"] : ["1", "2"];
      out[f.name] = Object.fromEntries(keyed.map((key, k) => [key, scalar(f, k, depth)]));
    } else if (f.repeated) out[f.name] = [scalar(f, 0, depth), scalar(f, 1, depth)];
    else out[f.name] = scalar(f, 0, depth);
  }
  return out;
}

test("codecs: the same message types and service methods as proto/", () => {
  assert.deepEqual(Object.keys(messages).sort(), types.map(bare).sort());
  assert.deepEqual(Object.keys(services).sort(), svcs.map(bare).sort());
  for (const svc of svcs) {
    assert.deepEqual(methodNames(bare(svc)), Object.keys(svc.methods));
    for (const m of svc.methodsArray) {
      m.resolve();
      assert.deepEqual(methodTypes(bare(svc), m.name), {
        requestType: bare(m.resolvedRequestType!),
        responseType: bare(m.resolvedResponseType!),
        requestStream: m.requestStream === true,
        responseStream: m.responseStream === true,
      });
    }
  }
});

test("codecs: every message encodes to protobufjs' reflection's bytes and decodes to its objects", () => {
  for (const t of types) {
    const name = bare(t);
    const c = codec(name);
    for (const value of [{}, sample(t)]) {
      const want = Buffer.from(t.encode(t.fromObject(value)).finish());
      const got = c.encode(value);
      assert.deepEqual(got, want, `${name}: encode ${JSON.stringify(value)}`);
      assert.deepEqual(c.decode(got), t.toObject(t.decode(want), options), `${name}: decode`);
    }
  }
});

test("codecs: explicit zero values, unknown enum numbers and unknown fields as reflection has them", () => {
  const t = root.lookupType("fsutil.types.Packet");
  const c = codec("fsutil.types.Packet");
  for (const value of [{ type: 0, ID: 0, data: Buffer.alloc(0) }, { type: 42 }, { type: "PACKET_FIN", data: "aGVsbG8=" }]) {
    const want = Buffer.from(t.encode(t.fromObject(value)).finish());
    assert.deepEqual(c.encode(value), want, JSON.stringify(value));
    assert.deepEqual(c.decode(want), t.toObject(t.decode(want), options));
  }
  // Field 15 (varint) and 16 (bytes) are not in Packet: skipped by both.
  const unknown = Buffer.concat([Buffer.from([0x78, 0x05, 0x82, 0x01, 0x02, 0x61, 0x62]), c.encode({ type: "PACKET_DATA", ID: 3 })]);
  assert.deepEqual(c.decode(unknown), t.toObject(t.decode(unknown), options));
});

test("codecs: an Any given as the message itself, named in @type", () => {
  const status = root.lookupType("google.rpc.Status");
  const value = { code: 3, details: [{ "@type": "type.googleapis.com/google.rpc.Status", code: 5, message: "inner" }] };
  const want = Buffer.from(status.encode(status.fromObject(value)).finish());
  assert.deepEqual(codec("google.rpc.Status").encode(value), want);
});
