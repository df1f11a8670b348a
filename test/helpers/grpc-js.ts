/**
 * grpc-js service definitions built from our descriptor. grpc-js is only a
 * test dependency: an independent gRPC implementation to check our own
 * client and server against.
 */
import type { ServiceDefinition, MethodDefinition } from "@grpc/grpc-js";
import { codec, methodNames, methodTypes } from "../../src/grpc/codec.js";

const services = new Map<string, ServiceDefinition>();

/** grpc-js service definition (client and server side) for e.g. "moby.buildkit.v1.Control". */
export function serviceDefinition(fullName: string): ServiceDefinition {
  let def = services.get(fullName);
  if (!def) {
    const out: Record<string, MethodDefinition<unknown, unknown>> = {};
    for (const name of methodNames(fullName)) {
      const t = methodTypes(fullName, name);
      const req = codec(t.requestType);
      const res = codec(t.responseType);
      out[name] = {
        path: `/${fullName}/${name}`,
        requestStream: t.requestStream,
        responseStream: t.responseStream,
        requestSerialize: (v: unknown) => req.encode(v as object),
        requestDeserialize: (b: Buffer) => req.decode(b),
        responseSerialize: (v: unknown) => res.encode(v as object),
        responseDeserialize: (b: Buffer) => res.decode(b),
        originalName: name,
      };
    }
    def = out;
    services.set(fullName, def);
  }
  return def;
}
