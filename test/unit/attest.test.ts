/**
 * --attest, --provenance, --sbom and --annotation as buildx parses and sends
 * them. Cases from docker/buildx at 461836ba0: util/buildflags/attests_test.go
 * (Attests, the parse and the disabled forms), util/buildflags/export_test.go
 * (TestParseAnnotations), commands/build.go (CanonicalizeAttest folding)
 * and build/opt.go (the default provenance, ToMap's first-wins).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAnnotations, parseAttests } from "../../src/cli/parse-build.js";
import { annotationAttr, attestationAttrs, DEFAULT_PROVENANCE } from "../../src/solve/attest.js";
import { defaultAttestations } from "../../src/cli/commands/build.js";
import { normalizePlatform } from "../../src/solve/platform.js";
import { UsageError } from "../../src/errors.js";

test("parseAttests: buildx's attests_test inputs (types, disabled, quoted attributes keep their case)", () => {
  assert.deepEqual(parseAttests(["type=provenance,mode=max", "type=sbom,disabled=true", `type=sbom,generator=scan,"FOO=bar,baz",Hello=World`]), [
    { type: "provenance", attrs: { mode: "max" } },
    { type: "sbom", disabled: true },
    { type: "sbom", attrs: { generator: "scan", FOO: "bar,baz", Hello: "World" } },
  ]);
  assert.deepEqual(parseAttests(["TYPE=sbom, Disabled =false"]), [{ type: "sbom" }], "keys are matched trimmed and case-insensitively");
});

test("parseAttests: --provenance and --sbom fold in after --attest, a boolean meaning on/off (CanonicalizeAttest)", () => {
  assert.deepEqual(parseAttests([], "true"), [{ type: "provenance" }]);
  assert.deepEqual(parseAttests([], "false"), [{ type: "provenance", disabled: true }]);
  assert.deepEqual(parseAttests([], "mode=max"), [{ type: "provenance", attrs: { mode: "max" } }]);
  assert.deepEqual(parseAttests([], undefined, "generator=reg/scanner:1"), [{ type: "sbom", attrs: { generator: "reg/scanner:1" } }]);
  assert.deepEqual(parseAttests(["type=provenance,mode=min"], "false", "1"), [
    { type: "provenance", attrs: { mode: "min" } },
    { type: "provenance", disabled: true },
    { type: "sbom" },
  ]);
  assert.deepEqual(parseAttests([], ""), [], "an empty --provenance is not given (as buildx)");
});

test("parseAttests: bad input is one line naming the flag", () => {
  const cases: Array<[string[], string | undefined, RegExp]> = [
    [["mode=max"], undefined, /^--attest "mode=max" has no type: use type=provenance or type=sbom$/],
    [["type=vex"], undefined, /^unknown attestation type "vex" in --attest "type=vex": use type=provenance or type=sbom$/],
    [["type=sbom,generator"], undefined, /^invalid field 'generator' in --attest "type=sbom,generator": must be a key=value pair$/],
    [["type=sbom,disabled=maybe"], undefined, /^invalid disabled=maybe in --attest/],
    [[], "mode", /^invalid field 'mode' in --provenance "type=provenance,mode"/],
  ];
  for (const [attests, prov, re] of cases)
    assert.throws(
      () => parseAttests(attests, prov),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      String(re),
    );
});

test("attestationAttrs: one attest:TYPE per type, first wins, CSV quoted as Go's csv writer, buildx's default provenance", () => {
  assert.deepEqual(attestationAttrs([], false), {});
  assert.deepEqual(attestationAttrs([], true), { "attest:provenance": DEFAULT_PROVENANCE });
  assert.equal(DEFAULT_PROVENANCE, "mode=min,inline-only=true");
  assert.deepEqual(attestationAttrs([{ type: "provenance", disabled: true }], true), {}, "a disabled provenance also turns the default off");
  assert.deepEqual(attestationAttrs([{ type: "sbom" }], true), { "attest:sbom": "type=sbom", "attest:provenance": DEFAULT_PROVENANCE });
  assert.deepEqual(
    attestationAttrs(
      [
        { type: "sbom", attrs: { generator: "scanner", ENV1: `"foo,bar"`, Env2: "hello" } },
        { type: "provenance", attrs: { mode: "max" } },
        { type: "provenance", attrs: { mode: "min" } },
        { type: "sbom", disabled: true },
      ],
      true,
    ),
    { "attest:sbom": `type=sbom,"ENV1=""foo,bar""",Env2=hello,generator=scanner`, "attest:provenance": "type=provenance,mode=max" },
  );
  assert.throws(() => attestationAttrs([{ type: "vex" as "sbom" }], false), /^UsageError: unknown attestation type "vex": use type=provenance or type=sbom$/);
});

test("defaultAttestations: on unless BUILDX_NO_DEFAULT_ATTESTATIONS is true; a value that is not a boolean is refused", () => {
  assert.equal(defaultAttestations({}), true);
  assert.equal(defaultAttestations({ BUILDX_NO_DEFAULT_ATTESTATIONS: "" }), true);
  assert.equal(defaultAttestations({ BUILDX_NO_DEFAULT_ATTESTATIONS: "1" }), false);
  assert.equal(defaultAttestations({ BUILDX_NO_DEFAULT_ATTESTATIONS: "false" }), true);
  assert.throws(
    () => defaultAttestations({ BUILDX_NO_DEFAULT_ATTESTATIONS: "yes" }),
    /^UsageError: invalid BUILDX_NO_DEFAULT_ATTESTATIONS "yes": use true or false$/,
  );
});

test("parseAnnotations: buildx's TestParseAnnotations table, and the exporter keys buildkit reads", () => {
  const keys = (specs: string[]): Record<string, string> => Object.fromEntries(parseAnnotations(specs).map(annotationAttr));
  assert.deepEqual(keys(["a=b"]), { "annotation.a": "b" });
  assert.deepEqual(keys(["com.example=a"]), { "annotation.com.example": "a" });
  assert.deepEqual(keys(["manifest:com.example=a"]), { "annotation-manifest.com.example": "a" });
  assert.deepEqual(keys(["manifest[plat/form]:com.example=a"]), { "annotation-manifest[plat/form].com.example": "a" });
  assert.deepEqual(keys(["index,manifest:com.example=a"]), { "annotation-index.com.example": "a", "annotation-manifest.com.example": "a" });
  assert.deepEqual(keys(["index,manifest[plat/form]:com.example=a"]), {
    "annotation-index.com.example": "a",
    "annotation-manifest[plat/form].com.example": "a",
  });
  assert.deepEqual(keys(["index[linux/amd64]:k=v"]), { "annotation-index.k": "v" }, "an index has no platform: dropped, as buildkit's AnnotationKey");
  assert.deepEqual(keys(["manifest-descriptor[linux/aarch64/v8]:k=v=w"]), { "annotation-manifest-descriptor[linux/arm64].k": "v=w" }, "platforms normalised");
  assert.deepEqual(keys(["", "k="]), { "annotation.k": "" }, "an empty flag is skipped; an empty value is a value");
  const bad: Array<[string, RegExp]> = [
    ["bad:com.example=a", /^unknown annotation type "bad" in --annotation "bad:com.example=a": use index, index-descriptor, manifest, manifest-descriptor$/],
    ["novalue", /^invalid --annotation "novalue": use \[TYPE:\]KEY=VALUE$/],
    ["manifest[linux/amd64:k=v", /^invalid annotation type "manifest\[linux\/amd64" in --annotation/],
    [":k=v", /^invalid annotation type "" in --annotation/],
    ["manifest[a/b/c/d]:k=v", /^invalid platform in --annotation "manifest\[a\/b\/c\/d\]:k=v" "a\/b\/c\/d"/],
  ];
  for (const [spec, re] of bad)
    assert.throws(
      () => parseAnnotations([spec]),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      spec,
    );
  assert.throws(() => annotationAttr({ key: "", value: "v" }), /invalid annotation key ""/);
  assert.throws(() => annotationAttr({ key: "k", value: "v", type: "layer" as "index" }), /unknown annotation type "layer"/);
});

test("normalizePlatform: containerd's normalisation, as buildx sends platforms", () => {
  const cases: Array<[string, string]> = [
    ["linux/amd64", "linux/amd64"],
    ["Linux/x86_64", "linux/amd64"],
    ["linux/amd64/v1", "linux/amd64"],
    ["linux/amd64/v3", "linux/amd64/v3"],
    ["linux/aarch64", "linux/arm64"],
    ["linux/arm64/v8", "linux/arm64"],
    ["linux/arm64/9.0", "linux/arm64/v9"],
    ["linux/arm", "linux/arm/v7"],
    ["linux/arm/6", "linux/arm/v6"],
    ["linux/armhf", "linux/arm/v7"],
    ["linux/armel", "linux/arm/v6"],
    ["linux/i386", "linux/386"],
    ["macos/arm64", "darwin/arm64"],
    ["arm64", "linux/arm64"],
    ["linux", "linux/amd64"],
    ["windows(10.0.17763)/amd64", "windows(10.0.17763)/amd64"],
  ];
  for (const [input, want] of cases) assert.equal(normalizePlatform(input, "amd64"), want, input);
});
