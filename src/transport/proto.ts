import type { ServiceDefinition } from "@grpc/grpc-js";
import { fromJSON, type PackageDefinition } from "@grpc/proto-loader";
import { descriptor } from "../gen/descriptor.js";

let pkg: PackageDefinition | undefined;

/**
 * The package definition of every service in proto/, built from the
 * prepared JSON descriptor (no .proto parsing at run time). int64 values
 * decode to decimal strings, never to lossy JS numbers.
 */
export function packageDefinition(): PackageDefinition {
  pkg ??= fromJSON(descriptor as Parameters<typeof fromJSON>[0], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return pkg;
}

export function serviceDefinition(fullName: string): ServiceDefinition {
  const def = packageDefinition()[fullName];
  if (!def || "format" in def) {
    throw new Error(`internal: no service ${fullName} in the descriptor`);
  }
  return def as ServiceDefinition;
}
