/** moby.buildkit.secrets.v1.Secrets: values are produced only when buildkitd asks. */
import { GrpcStatusError, Status, defineService, type SessionService } from "../grpc/server.js";

/** Largest secret buildkit's own provider accepts. */
export const MAX_SECRET_BYTES = 500 * 1024;

export type SecretProvider = () => Promise<Buffer>;

export function secretsService(secrets: ReadonlyMap<string, SecretProvider>): SessionService {
  return defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      GetSecret: async (request) => {
        const id = request.ID;
        const provider = secrets.get(id);
        if (!provider) throw new GrpcStatusError(Status.NOT_FOUND, `secret ${id} not found`);
        let data: Buffer;
        try {
          data = await provider();
        } catch {
          // The message names the id only: a provider's error could quote the value.
          throw new GrpcStatusError(Status.INTERNAL, `secret ${id} could not be read`);
        }
        if (data.length > MAX_SECRET_BYTES) throw new GrpcStatusError(Status.INVALID_ARGUMENT, `secret ${id} is larger than 500 KiB`);
        return { data };
      },
    },
  });
}
