/** Error paths of --call: unknown subrequests, the gateway's absence, exit codes, bad flags before any dial. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { unsupported, UnsupportedSubrequestError } from "../../src/gateway/subrequest.js";
import { translateError } from "../../src/transport/connection.js";
import { GrpcStatusError, Status } from "../../src/grpc/frame.js";
import { codec } from "../../src/grpc/codec.js";
import { SolveError } from "../../src/errors.js";
import { runCall } from "../../src/cli/commands/build.js";
import { main } from "../../src/cli/main.js";
import { checkResult, type CheckResult } from "../../src/gateway/results.js";
import type { BuildKitClient } from "../../src/index.js";

function statusWith(typeUrl: string, body: unknown): Buffer {
  return codec("google.rpc.Status").encode({ code: 2, message: "x", details: [{ type_url: typeUrl, value: Buffer.from(JSON.stringify(body)) }] });
}

test("a frontend without the subrequest gives UnsupportedSubrequestError, from the typed detail or the old message", () => {
  const typed = translateError(
    new GrpcStatusError(Status.UNKNOWN, "no such request", statusWith("github.com/moby/buildkit/errdefs.Subrequest+json", { name: "frontend.lint" }), true),
    "unix:///x",
    "LLBBridge.Solve",
  );
  assert.ok(typed instanceof SolveError);
  const e = unsupported(typed, "frontend.lint");
  assert.ok(e instanceof UnsupportedSubrequestError);
  assert.equal(e.subrequest, "frontend.lint");
  assert.equal(e.code, "UNIMPLEMENTED");
  assert.match(e.message, /^the daemon's Dockerfile frontend does not support frontend\.lint \(it is too old\): use a newer buildkitd/);
  assert.ok(!e.message.includes("\n"));

  const old = translateError(new GrpcStatusError(Status.UNKNOWN, "unsupported request frontend.outline", undefined, true), "unix:///x", "LLBBridge.Solve");
  assert.equal(unsupported(old, "frontend.outline")?.subrequest, "frontend.outline");
  assert.equal(unsupported(old, "frontend.lint"), undefined, "another subrequest's message is not this one's");
  assert.equal(unsupported(new Error("failed to solve: something else"), "frontend.lint"), undefined);
});

test("a daemon without the gateway service says so in one line", () => {
  const e = translateError(
    new GrpcStatusError(Status.UNIMPLEMENTED, "unknown service moby.buildkit.v1.frontend.LLBBridge", undefined, true),
    "unix:///x",
    "LLBBridge.Ping",
  );
  assert.match(e.message, /^buildkitd at unix:\/\/\/x has no frontend gateway \(LLBBridge\.Ping: unknown service/);
  assert.equal(e.code, "UNIMPLEMENTED");
});

function fakeClient(result: CheckResult): BuildKitClient {
  return { check: async () => result } as unknown as BuildKitClient;
}

const sources = [{ filename: "Dockerfile", data: Buffer.from("FROM x as y\n").toString("base64") }];
const warned = checkResult({
  "result.json": JSON.stringify({
    warnings: [{ ruleName: "FromAsCasing", detail: "d", location: { ranges: [{ start: { line: 1 }, end: { line: 1 } }] } }],
    sources,
  }),
  "result.statuscode": "1",
  version: "1.0.0",
});

test("runCall exits with check's status code unless ignorestatus; a build error is printed as an error and exits 1", async () => {
  const io = { outText: "", errText: "", out: (t: string) => void (io.outText += t), err: (t: string) => void (io.errText += t) };
  assert.equal(await runCall(fakeClient(warned), { context: "ctx" }, { name: "check", json: false, ignoreStatus: false }, io), 1);
  assert.match(io.outText, /^Check complete, 1 warning has been found!\n\nWARNING: FromAsCasing\nd\nctx\/Dockerfile:1\n/);
  assert.equal(await runCall(fakeClient(warned), { context: "ctx" }, { name: "check", json: false, ignoreStatus: true }, io), 0);
  assert.equal(await runCall(fakeClient({ ...warned, statusCode: 3 }), { context: "ctx" }, { name: "check", json: true, ignoreStatus: false }, io), 3);

  const broken = checkResult({
    "result.json": JSON.stringify({ sources, buildError: { message: "dockerfile parse error", location: { ranges: [{ start: { line: 1 } }] } } }),
    "result.statuscode": "1",
  });
  io.outText = io.errText = "";
  assert.equal(await runCall(fakeClient(broken), { context: ".", dockerfile: "df" }, { name: "check", json: false, ignoreStatus: true }, io), 1);
  assert.equal(io.outText, "");
  assert.match(io.errText, /^error: dockerfile parse error\ndf:1\n-{20}\n {3}1 \| >>> FROM x as y\n/);
});

test("bad --call values fail before any connection: exit 2, one line", async () => {
  let err = "";
  const io = {
    out: () => undefined,
    err: (t: string) => void (err += t),
    env: { BUILDKIT_HOST: "unix:///nonexistent/socket" },
    cwd: process.cwd(),
    signal: new AbortController().signal,
  };
  assert.equal(await main(["build", "--call", "check,format=xml", "."], io), 2);
  assert.equal(err, 'error: invalid --call "check,format=xml": format=xml is not known; use format=json (or leave it out for text)\n');
  err = "";
  assert.equal(await main(["build", "--call", "outline", "--check", "."], io), 2);
  assert.match(err, /^error: --check means --call check, but --call "outline" asks for something else; give one\n$/);
});
