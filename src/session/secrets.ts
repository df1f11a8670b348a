/** moby.buildkit.secrets.v1.Secrets: values are produced only when buildkitd asks. */
import { GrpcStatusError, Status, defineService, type SessionService } from "../grpc/server.js";
import { BuildKitError, UsageError } from "../errors.js";

/** Largest secret buildkit's own provider accepts. */
export const MAX_SECRET_BYTES = 500 * 1024;

/** Produces a secret's value; `signal` aborts when buildkitd no longer waits for it. */
export type SecretProvider = (signal?: AbortSignal) => Promise<Buffer>;

/**
 * Why secrets could not be provided, by id. buildkitd only hears "could not
 * be read" (a provider's error could quote the value); the build reports
 * the recorded error, with its cause, to the caller instead.
 */
export class SecretFailures {
  readonly #byId = new Map<string, BuildKitError>();

  record(id: string, error: BuildKitError): void {
    if (!this.#byId.has(id)) this.#byId.set(id, error);
  }

  get(id: string): BuildKitError | undefined {
    return this.#byId.get(id);
  }

  /** The first failure recorded, if any. */
  first(): BuildKitError | undefined {
    return this.#byId.values().next().value;
  }
}

export function secretsService(secrets: ReadonlyMap<string, SecretProvider>, failures?: SecretFailures): SessionService {
  return defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      GetSecret: async (request, call) => {
        const id = request.ID;
        const provider = secrets.get(id);
        if (!provider) throw new GrpcStatusError(Status.NOT_FOUND, `secret ${id} not found`);
        let data: Buffer;
        try {
          data = await provider(call.signal);
        } catch (e) {
          // A call buildkitd gave up on is not the build's failure.
          if (!call.signal.aborted)
            failures?.record(id, e instanceof BuildKitError ? e : new BuildKitError(`secret "${id}" could not be provided`, { cause: e }));
          // The message names the id only: a provider's error could quote the value.
          throw new GrpcStatusError(Status.INTERNAL, `secret ${id} could not be read`);
        }
        if (data.length > MAX_SECRET_BYTES) {
          failures?.record(id, new UsageError(`secret "${id}" is larger than 500 KiB`));
          throw new GrpcStatusError(Status.INVALID_ARGUMENT, `secret ${id} is larger than 500 KiB`);
        }
        return { data };
      },
    },
  });
}
