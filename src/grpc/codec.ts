import { messages, services, type MessageType } from "../gen/codecs.js";

/**
 * Message codecs and gRPC method definitions, from src/gen/codecs.ts:
 * protobufjs' generated encoders, decoders and converters written out at
 * build time (scripts/generate.mjs), over its minimal runtime. No
 * descriptor is loaded and no code generated at start-up (start-up time
 * matters for the CLI); the bytes and objects are the ones protobufjs'
 * reflection produces.
 *
 * Decoded messages follow the generated `__Output` types: int64 as decimal
 * strings (never lossy JS numbers), enums as names, bytes as Buffers, and
 * defaults filled in for missing fields.
 */

const toObjectOptions = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface Codec<T = unknown> {
  encode(value: object): Buffer;
  decode(bytes: Uint8Array): T;
}

const codecs = new Map<string, Codec>();

function messageType(fullName: string): MessageType {
  const type = Object.hasOwn(messages, fullName) ? messages[fullName] : undefined;
  if (!type) throw new Error(`no such type: ${fullName}`);
  return type;
}

/** Encoder/decoder for one message type, e.g. "google.rpc.Status". */
export function codec<T = unknown>(fullName: string): Codec<T> {
  let c = codecs.get(fullName);
  if (!c) {
    const type = messageType(fullName);
    c = {
      encode: (value) => {
        const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      decode: (bytes) => type.toObject(type.decode(bytes), toObjectOptions),
    };
    codecs.set(fullName, c);
  }
  return c as Codec<T>;
}

function serviceMethods(service: string): Record<string, readonly [string, string, boolean, boolean]> {
  const methods = Object.hasOwn(services, service) ? services[service] : undefined;
  if (!methods) throw new Error(`no such service: ${service}`);
  return methods;
}

/** Request and response types of one method, e.g. ("grpc.health.v1.Health", "Check"). */
export function methodTypes(service: string, method: string): { requestType: string; responseType: string; requestStream: boolean; responseStream: boolean } {
  const methods = serviceMethods(service);
  const m = Object.hasOwn(methods, method) ? methods[method] : undefined;
  if (!m) throw new Error(`${service} has no method ${method}`);
  return { requestType: m[0], responseType: m[1], requestStream: m[2], responseStream: m[3] };
}

/** The method names of a service, e.g. ["Check", "Watch"] for grpc.health.v1.Health. */
export function methodNames(service: string): string[] {
  return Object.keys(serviceMethods(service));
}
