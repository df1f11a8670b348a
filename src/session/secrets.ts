/** moby.buildkit.secrets.v1.Secrets: values are produced only when buildkitd asks. */
import * as grpc from "@grpc/grpc-js";
import type { SessionService } from "./session.js";

/** Largest secret buildkit's own provider accepts. */
export const MAX_SECRET_BYTES = 500 * 1024;

export type SecretProvider = () => Promise<Buffer>;

export function secretsService(secrets: ReadonlyMap<string, SecretProvider>): SessionService {
  return {
    name: "moby.buildkit.secrets.v1.Secrets",
    handlers: {
      GetSecret: (call: grpc.ServerUnaryCall<{ ID: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const id = call.request.ID;
        const provider = secrets.get(id);
        if (!provider) {
          cb({ code: grpc.status.NOT_FOUND, details: `secret ${id} not found` });
          return;
        }
        provider().then(
          (data) => {
            if (data.length > MAX_SECRET_BYTES) {
              cb({ code: grpc.status.INVALID_ARGUMENT, details: `secret ${id} is larger than 500 KiB` });
            } else {
              cb(null, { data });
            }
          },
          // The message names the id only: a provider's error could quote the value.
          () => cb({ code: grpc.status.INTERNAL, details: `secret ${id} could not be read` }),
        );
      },
    },
  };
}
