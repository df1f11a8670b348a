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
  root ??= protobuf.Root.fromJSON(descriptor);
  return root;
}

const toObjectOptions: protobuf.IConversionOptions = {
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

/** Encoder/decoder for one message type, e.g. "google.rpc.Status". */
export function codec<T = unknown>(fullName: string): Codec<T> {
  let c = codecs.get(fullName);
  if (!c) {
    const type = getRoot().lookupType(fullName);
    c = {
      encode: (value) => {
        const bytes = type.encode(type.fromObject(value)).finish();
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

/** The method names of a service, e.g. ["Check", "Watch"] for grpc.health.v1.Health. */
export function methodNames(service: string): string[] {
  return getRoot()
    .lookupService(service)
    .methodsArray.map((m) => m.name);
}
