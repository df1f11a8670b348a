import type { ServiceDefinition, MethodDefinition } from "@grpc/grpc-js";
import protobuf from "protobufjs/light.js";
import { descriptor } from "../gen/descriptor.js";

/**
 * Message codecs and gRPC method definitions, built from the prepared JSON
 * descriptor with protobufjs' light build: no .proto parsing and no work for
 * services that are never used (start-up time matters for the CLI).
 *
 * Decoded messages follow the generated `__Output` types: int64 as decimal
 * strings (never lossy JS numbers), enums as names, bytes as Buffers, and
 * defaults filled in for missing fields.
 */

let root: protobuf.Root | undefined;

function getRoot(): protobuf.Root {
  root ??= protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
  return root;
}

const toObjectOptions: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * A message that is already encoded: codecs pass its bytes through as they
 * are (the session pipe builds its BytesMessage frames itself, saving a copy
 * of everything it sends).
 */
export class PreEncoded {
  constructor(readonly bytes: Buffer) {}
}

export interface Codec<T = unknown> {
  encode(value: object): Buffer;
  decode(bytes: Uint8Array): T;
}

const codecs = new Map<string, Codec>();

/** Encoder/decoder for one message type, e.g. "google.rpc.Status". */
export function codec<T = unknown>(fullName: string): Codec<T> {
  let c = codecs.get(fullName);
  if (!c) {
    const type = getRoot().lookupType(fullName);
    c = {
      encode: (value) => {
        if (value instanceof PreEncoded) return value.bytes;
        const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      decode: (bytes) => type.toObject(type.decode(bytes), toObjectOptions),
    };
    codecs.set(fullName, c);
  }
  return c as Codec<T>;
}

/** Request and response types of one method, e.g. ("grpc.health.v1.Health", "Check"). */
export function methodTypes(service: string, method: string): { requestType: string; responseType: string; requestStream: boolean; responseStream: boolean } {
  const m = getRoot().lookupService(service).methods[method];
  if (!m) throw new Error(`${service} has no method ${method}`);
  m.resolve();
  return {
    requestType: m.resolvedRequestType!.fullName.replace(/^\./, ""),
    responseType: m.resolvedResponseType!.fullName.replace(/^\./, ""),
    requestStream: m.requestStream === true,
    responseStream: m.responseStream === true,
  };
}

const services = new Map<string, ServiceDefinition>();

/** grpc-js service definition (client and server side) for e.g. "moby.buildkit.v1.Control". */
export function serviceDefinition(fullName: string): ServiceDefinition {
  let def = services.get(fullName);
  if (!def) {
    const svc = getRoot().lookupService(fullName);
    const out: Record<string, MethodDefinition<unknown, unknown>> = {};
    for (const m of svc.methodsArray) {
      const t = methodTypes(fullName, m.name);
      const req = codec(t.requestType);
      const res = codec(t.responseType);
      out[m.name] = {
        path: `/${fullName}/${m.name}`,
        requestStream: t.requestStream,
        responseStream: t.responseStream,
        requestSerialize: (v: unknown) => req.encode(v as object),
        requestDeserialize: (b: Buffer) => req.decode(b),
        responseSerialize: (v: unknown) => res.encode(v as object),
        responseDeserialize: (b: Buffer) => res.decode(b),
        originalName: m.name,
      };
    }
    def = out as ServiceDefinition;
    services.set(fullName, def);
  }
  return def;
}
