import { test } from "node:test";
import assert from "node:assert/strict";
import { engineHasNamedContexts, explainEngineError, planForEngine, type EngineFacts } from "../../src/solve/engine.js";
import { UsageError } from "../../src/errors.js";
import type { ResolvedExport } from "../../src/solve/options.js";

const classic: EngineFacts = { address: "docker+unix:///var/run/docker.sock", containerdStore: false, version: "20.10.24" };
const containerd: EngineFacts = { ...classic, containerdStore: true, version: "29.1.0" };
type PlanOptions = Parameters<typeof planForEngine>[2];
const base: PlanOptions = { platforms: 1, cacheExports: [], env: {}, namedContexts: [], attrs: {}, attestations: false };

function exp(type: string, attrs: Record<string, string> = {}, target: ResolvedExport["target"] = "none"): ResolvedExport {
  return { type, attrs, target };
}

test("planForEngine maps image and --load to moby, and pushes classic-store names through the Engine API", () => {
  const exps = [exp("image", { name: "a:1,reg/b:2", push: "true" }), exp("docker", {}, "load"), exp("tar", {}, "file")];
  const plan = planForEngine(exps, classic, base);
  assert.deepEqual(
    exps.map((e) => [e.type, e.target]),
    [
      ["moby", "none"],
      ["moby", "none"],
      ["tar", "file"],
    ],
  );
  assert.deepEqual(plan.pushNames, ["a:1", "reg/b:2"]);
  const c = [exp("image", { name: "a:1", push: "true" })];
  assert.deepEqual(planForEngine(c, containerd, base).pushNames, [], "the containerd store pushes itself");
  assert.equal(c[0]!.type, "moby");
});

test("planForEngine: no output means moby (the image is kept), unless BUILDX_NO_DEFAULT_LOAD", () => {
  const none: ResolvedExport[] = [];
  planForEngine(none, classic, base);
  assert.deepEqual(none, [{ type: "moby", attrs: {}, target: "none" }]);
  const off: ResolvedExport[] = [];
  planForEngine(off, classic, { ...base, env: { BUILDX_NO_DEFAULT_LOAD: "true" } });
  assert.deepEqual(off, []);
});

test("planForEngine refuses what the classic store cannot do, with one line naming the way out", () => {
  const cases: Array<[ResolvedExport[], Partial<PlanOptions>, RegExp]> = [
    [
      [exp("oci", {}, "file")],
      {},
      /^output type=oci is not available with the Docker Engine's classic image store \(it has moby, local and tar\): enable the containerd/,
    ],
    [[exp("docker", {}, "file")], {}, /^output type=docker is not available/],
    [[], { platforms: 2 }, /^a multi-platform build \(2 platforms\) cannot be stored in the Docker Engine's classic image store/],
    [
      [],
      { cacheExports: [{ type: "registry", attrs: { ref: "r" } }] },
      /^cache export type=registry is not supported with the Docker Engine's classic image store \(only type=inline\)/,
    ],
    [[exp("image", { name: "a", push: "true", "push-by-digest": "true" })], {}, /^push-by-digest is not supported through a Docker Engine/],
    [[], { attestations: true }, /^attestations \(--attest, --provenance, --sbom\) cannot be stored in the Docker Engine's classic image store: enable/],
    [
      [],
      { namedContexts: ["base"] },
      /^build context "base" \(a named context\) needs Docker Engine 23\.0 or newer, and the Engine at docker\+unix:\/\/\/var\/run\/docker\.sock is 20\.10\.24/,
    ],
  ];
  for (const [exps, o, re] of cases) {
    assert.throws(
      () => planForEngine(exps, classic, { ...base, ...o }),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      String(re),
    );
  }
  // The containerd store takes all of these but the named context on an old Engine.
  for (const [exps, o] of cases.slice(0, 4)) planForEngine(exps, containerd, { ...base, ...o });
  planForEngine([], containerd, { ...base, attestations: true });
  planForEngine([], containerd, { ...base, namedContexts: ["base"] });
  planForEngine([], { ...classic, version: "23.0.0" }, { ...base, namedContexts: ["base"] });
});

test("planForEngine drops buildx's default provenance on the classic store only, as buildx's docker driver", () => {
  const attrs = { "attest:provenance": "mode=min,inline-only=true", filename: "Dockerfile" };
  planForEngine([], containerd, { ...base, attrs });
  assert.equal(attrs["attest:provenance"], "mode=min,inline-only=true");
  planForEngine([], classic, { ...base, attrs });
  assert.deepEqual(attrs, { filename: "Dockerfile" });
});

test("engineHasNamedContexts and explainEngineError", () => {
  assert.equal(engineHasNamedContexts("20.10.24+dfsg1"), false);
  assert.equal(engineHasNamedContexts("22.06.0-beta.0"), false);
  assert.equal(engineHasNamedContexts("23.0.0"), true);
  assert.equal(engineHasNamedContexts("29.2.1"), true);
  assert.equal(engineHasNamedContexts("garbage"), false);
  assert.match(explainEngineError("executor failed running [/bin/sh -c x]: network bridge not found"), /build with --network host or --network none\)$/);
  assert.equal(explainEngineError("exit code: 1"), "exit code: 1");
});
