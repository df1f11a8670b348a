/**
 * `-f https://host/path/Dockerfile`: the Dockerfile comes from a URL the
 * daemon fetches, as with buildx (which runs a separate solve of
 * `llb.HTTP(url, llb.Filename("Dockerfile"))` and reads the file back).
 * Here the same one-op LLB graph goes to the Dockerfile frontend as its
 * `dockerfile` input (FrontendInputs), which the frontend reads the
 * Dockerfile from when no local `dockerfile` is forced: one solve, the
 * fetch done by the daemon, the file named `Dockerfile`.
 */
import { createHash } from "node:crypto";
import { codec } from "../grpc/codec.js";
import type { Definition } from "../gen/types/pb/Definition.js";
import type { Op } from "../gen/types/pb/Op.js";

/** An http(s) URL, as buildx's urlutil.IsHTTPURL tells them (by scheme). */
export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/**
 * The LLB definition of one HTTP source saved as `filename`, and the
 * empty op that names it as the graph's output (as llb's Marshal writes
 * them). The http source carries no platform (it is not platform-specific).
 */
export function httpSourceDefinition(url: string, filename = "Dockerfile"): Definition {
  const ops = codec<Op>("pb.Op");
  const source = ops.encode({ source: { identifier: url, attrs: { "http.filename": filename } } } satisfies Op);
  const digest = `sha256:${createHash("sha256").update(source).digest("hex")}`;
  const output = ops.encode({ inputs: [{ digest, index: 0 }] } satisfies Op);
  return {
    def: [source, output],
    metadata: {
      [digest]: { description: { "llb.customname": `[internal] load ${url}` }, caps: { "source.http": true } },
    },
  };
}
