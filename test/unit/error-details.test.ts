import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeErrorDetails } from "../../src/transport/error-details.js";
import { renderSnippet } from "../../src/progress/snippet.js";
import { codec } from "../../src/grpc/codec.js";
import { translateError } from "../../src/transport/connection.js";
import { GrpcStatusError } from "../../src/grpc/frame.js";
import { SolveError } from "../../src/errors.js";

const dockerfile = "FROM busybox\nRUN echo one\nRUN exit 3\n";

function trailer(): Buffer {
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const status = codec("google.rpc.Status").encode({
    code: 2,
    message: "boom",
    details: [
      { type_url: "github.com/moby/buildkit/errdefs.Vertex+json", value: json({ digest: "sha256:aaa" }) },
      {
        type_url: "github.com/moby/buildkit/errdefs.Source+json",
        value: json({ info: { filename: "Dockerfile", data: Buffer.from(dockerfile).toString("base64") }, ranges: [{ start: { line: 3 }, end: { line: 3 } }] }),
      },
      { type_url: "github.com/moby/buildkit/gatewayapi.ExitMessage+json", value: json({ Code: 3 }) },
      { type_url: "github.com/moby/buildkit/stack.Stack", value: Buffer.from([1, 2, 3]) },
    ],
  });
  return status;
}

test("error details: source, vertex and exit code are decoded", () => {
  const d = decodeErrorDetails(trailer());
  assert.equal(d.vertex, "sha256:aaa");
  assert.equal(d.exitCode, 3);
  assert.deepEqual(d.sources, [{ filename: "Dockerfile", data: dockerfile, ranges: [{ start: 3, end: 3 }] }]);
  assert.deepEqual(decodeErrorDetails(undefined), { sources: [] });
});

test("a failed Solve becomes a SolveError with its snippets", () => {
  const err = new GrpcStatusError(2, "process did not complete", trailer(), true);
  const e = translateError(err, "unix:///x", "Control.Solve");
  assert.ok(e instanceof SolveError);
  assert.equal(e.message, "failed to solve: process did not complete");
  assert.equal(e.exitCode, 3);
  assert.equal(e.sources.length, 1);
});

test("snippets render like buildctl", () => {
  assert.equal(
    renderSnippet({ filename: "Dockerfile", data: dockerfile, ranges: [{ start: 3, end: 3 }] }),
    "Dockerfile:3\n--------------------\n   1 |     FROM busybox\n   2 |     RUN echo one\n   3 | >>> RUN exit 3\n   4 |     \n--------------------\n",
  );
  const long = Array.from({ length: 20 }, (_, i) => `L${i + 1}`).join("\n");
  assert.equal(
    renderSnippet({ filename: "f", data: long, ranges: [{ start: 10, end: 11 }] }),
    "f:10\n--------------------\n   9 |     L9\n  10 | >>> L10\n  11 | >>> L11\n  12 |     L12\n--------------------\n",
  );
  assert.equal(renderSnippet({ filename: "f", data: "a", ranges: [{ start: 9, end: 9 }] }), "");
});
