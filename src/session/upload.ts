/**
 * moby.upload.v1.Upload/Pull: a build context streamed from the client (the
 * `-` context). The frontend attribute `context` is
 * `http://buildkit-session/<id>`; buildkitd calls Pull with metadata
 * `urlpath: /<id>` (and `urlhost: buildkit-session`), sends nothing, and
 * reads BytesMessages (≤ 3 MiB each, as buildkit's provider sends them)
 * until the call ends OK. Each id is served once.
 */
import { posix } from "node:path";
import { GrpcStatusError, Status, defineService, type SessionService } from "../grpc/server.js";
import { bytesMessageHead } from "../grpc/bytes-message.js";
import { BuildKitError } from "../errors.js";

/** Largest BytesMessage payload buildkit's provider sends. */
export const MAX_UPLOAD_CHUNK = 3 * 1024 * 1024;

/** Why an upload could not be served: the first failure of each id. */
export class UploadFailures {
  #first: BuildKitError | undefined;
  record(error: BuildKitError): void {
    this.#first ??= error;
  }
  first(): BuildKitError | undefined {
    return this.#first;
  }
}

/**
 * Serves `uploads` (id → the bytes) to buildkitd. A source that fails is
 * recorded in `failures` (what the build reports, with its cause); the
 * daemon hears only that the upload broke off.
 */
export function uploadService(uploads: Map<string, AsyncIterable<Buffer>>, failures?: UploadFailures): SessionService {
  return defineService("moby.upload.v1.Upload", {
    raw: {
      Pull: async (call) => {
        // buildkit's provider takes the last path element of urlpath.
        const id = posix.basename(call.metadata("urlpath")[0] ?? "");
        const source = uploads.get(id);
        if (!source) throw new GrpcStatusError(Status.NOT_FOUND, `no upload ${JSON.stringify(id)} in this session`);
        uploads.delete(id);
        try {
          for await (const chunk of source) {
            for (let at = 0; at < chunk.length; at += MAX_UPLOAD_CHUNK) {
              if (call.signal.aborted) return;
              const part = chunk.subarray(at, at + MAX_UPLOAD_CHUNK);
              await call.sendEncoded([bytesMessageHead(part.length), part]);
            }
          }
        } catch (e) {
          if (call.signal.aborted || e instanceof GrpcStatusError) throw e;
          failures?.record(e instanceof BuildKitError ? e : new BuildKitError(`the build context stream failed: ${(e as Error).message}`, { cause: e }));
          throw new GrpcStatusError(Status.UNKNOWN, "the client's context stream failed");
        }
      },
    },
  });
}
