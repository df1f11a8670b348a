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
import { Writer, varintSize } from "../grpc/protobuf-writer.js";
import type { Definition } from "../gen/types/pb/Definition.js";
import type { Op } from "../gen/types/pb/Op.js";
import type { SourceOp } from "../gen/types/pb/SourceOp.js";

/** An http(s) URL, as buildx's urlutil.IsHTTPURL tells them (by scheme). */
export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/**
 * The LLB definition of one HTTP source saved as `filename`, and the
 * empty op that names it as the graph's output, byte for byte as
 * buildkit's llb.HTTP(url, llb.Filename(...), llb.WithCustomNamef(...))
 * Marshal writes them (so the op digests, and the cache keys, are Go's):
 * the source op carries an empty `constraints` (field 11) written before
 * the `source` oneof (field 3), as vtprotobuf orders them, and no platform
 * (an http source is not platform-specific); the output op's metadata has
 * the caps Marshal records.
 */
export function httpSourceDefinition(url: string, filename = "Dockerfile"): Definition {
  const sourceOp = codec<SourceOp>("pb.SourceOp").encode({ identifier: url, attrs: { "http.filename": filename } } satisfies SourceOp);
  const w = new Writer(Buffer.alloc(2 + 1 + varintSize(sourceOp.length) + sourceOp.length));
  w.raw(Buffer.from([0x5a, 0x00])); // constraints (11): empty
  w.bytes(0x1a, sourceOp); // source (3)
  const source = w.buf;
  const digest = `sha256:${createHash("sha256").update(source).digest("hex")}`;
  const output = codec<Op>("pb.Op").encode({ inputs: [{ digest }] } satisfies Op);
  const outputDigest = `sha256:${createHash("sha256").update(output).digest("hex")}`;
  return {
    def: [source, output],
    metadata: {
      [digest]: { description: { "llb.customname": `[internal] load ${url}` }, caps: { "source.http": true } },
      [outputDigest]: { caps: { constraints: true, "meta.description": true, platform: true } },
    },
  };
}
