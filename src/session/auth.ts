/**
 * moby.filesync.v1.Auth (the package name is historical): registry
 * credentials for buildkitd. Only Credentials is served; buildkitd then
 * fetches registry tokens itself. FetchToken and the token-authority calls
 * are left unregistered, so they answer UNIMPLEMENTED, which buildkitd
 * takes as "use Credentials".
 */
import { GrpcStatusError, Status, defineService, type SessionService } from "../grpc/server.js";

export type CredentialsLookup = (host: string) => Promise<{ username: string; secret: string } | undefined>;

export function authService(lookup: CredentialsLookup): SessionService {
  return defineService("moby.filesync.v1.Auth", {
    unary: {
      Credentials: async (request) => {
        const host = request.Host;
        let found;
        try {
          found = await lookup(host);
        } catch (e) {
          // Our own messages: they name the host and helper, never a secret.
          throw new GrpcStatusError(Status.FAILED_PRECONDITION, `registry credentials for ${host}: ${e instanceof Error ? e.message : String(e)}`);
        }
        // No credentials: empty answers mean anonymous access.
        return { Username: found?.username ?? "", Secret: found?.secret ?? "" };
      },
    },
  });
}
