/**
 * `-f https://...`'s LLB graph, byte for byte as buildkit v0.24.0's
 * llb.HTTP(url, llb.Filename("Dockerfile"), llb.WithCustomNamef("[internal]
 * load %s", url)).Marshal() writes it (the bytes below were printed by a Go
 * program using that call), so its digests and cache keys are Go's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { httpSourceDefinition, isHttpUrl } from "../../src/solve/http-source.js";

const url = "https://example.com/df/Dockerfile";
const goDef = [
  "5a001a400a2168747470733a2f2f6578616d706c652e636f6d2f64662f446f636b657266696c65121b0a0d687474702e66696c656e616d65120a446f636b657266696c65",
  "0a490a477368613235363a65666437633135656164373365313563656135633633363833393564656333303136333566396231386136346131633635633336623464373934366637353331",
];

test("httpSourceDefinition: the ops and their digests are Go's", () => {
  const def = httpSourceDefinition(url);
  assert.deepEqual(
    def.def!.map((b) => Buffer.from(b as Uint8Array).toString("hex")),
    goDef,
  );
  assert.deepEqual(def.metadata, {
    "sha256:efd7c15ead73e15cea5c6368395dec301635f9b18a64a1c65c36b4d7946f7531": {
      description: { "llb.customname": `[internal] load ${url}` },
      caps: { "source.http": true },
    },
    "sha256:d264ae95da293132e37d16526e558e0e8e0bedd8c497448bb3d792c127133215": { caps: { constraints: true, "meta.description": true, platform: true } },
  });
});

test("isHttpUrl: http and https by scheme, in any case; nothing else", () => {
  for (const u of ["http://h/Dockerfile", "https://h/x", "HTTPS://H/X"]) assert.equal(isHttpUrl(u), true, u);
  for (const u of ["Dockerfile", "./https/Dockerfile", "git://h/r", "ftp://h/x", "https:/h"]) assert.equal(isHttpUrl(u), false, u);
});
