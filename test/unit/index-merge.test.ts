/**
 * mergeIndex: what each node of a builder pool pushed, merged into one
 * index by buildx's rules (util/imagetools/create.go), written as Go's
 * json.MarshalIndent writes it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mergeIndex, type IndexPart } from "../../src/registry/merge.js";
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from "../../src/registry/media-types.js";
import { BuildKitError, UsageError } from "../../src/errors.js";

const sha256 = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A part from a document: its bytes, digest and size as the registry would serve them. */
function part(platform: string, doc: Record<string, unknown>, mediaType = typeof doc["mediaType"] === "string" ? doc["mediaType"] : ""): IndexPart {
  const bytes = Buffer.from(JSON.stringify(doc));
  return { platform, mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

const layer = (s: string) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(s), size: s.length });
function image(name: string, mediaType = OCI_MANIFEST): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(`config ${name}`), size: 10 },
    layers: [layer(name)],
  };
}

/** A node's index: its image manifest and the attestation manifest for it, as buildkit pushes with provenance. */
function withAttestation(platform: { architecture: string; os: string; variant?: string }, name: string): { part: IndexPart; image: IndexPart; att: string } {
  const img = part("", image(name));
  const att = sha256(`attestation ${name}`);
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: img.digest, size: img.size, platform },
      {
        mediaType: OCI_MANIFEST,
        digest: att,
        size: 566,
        annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": img.digest },
        platform: { architecture: "unknown", os: "unknown" },
      },
    ],
  };
  const p = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ""}`;
  return { part: part(p, doc), image: img, att };
}

const parse = (b: Buffer): { mediaType: string; schemaVersion: number; manifests: Array<Record<string, unknown>>; annotations?: Record<string, string> } =>
  JSON.parse(b.toString("utf8"));

test("two image manifests: an OCI index, one descriptor each with the part's platform, in order; Go's MarshalIndent bytes", () => {
  const amd = part("linux/amd64", image("amd64"));
  const i386 = part("linux/386", image("386"));
  const out = mergeIndex([amd, i386]);
  const expected = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "${amd.digest}",
      "size": ${amd.size},
      "platform": {
        "architecture": "amd64",
        "os": "linux"
      }
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "${i386.digest}",
      "size": ${i386.size},
      "platform": {
        "architecture": "386",
        "os": "linux"
      }
    }
  ]
}`;
  assert.equal(out.bytes.toString("utf8"), expected);
  assert.equal(out.mediaType, OCI_INDEX);
  assert.equal(out.digest, sha256(expected));
  assert.equal(out.size, Buffer.byteLength(expected));
});

test("platforms are normalised as containerd does: arm64/v8 loses its variant, arm gets v7, an OS version is kept", () => {
  const out = mergeIndex([part("linux/arm64/v8", image("a")), part("linux/arm", image("b")), part("windows(10.0.17763.1)/AMD64", image("c"))]);
  assert.deepEqual(
    parse(out.bytes).manifests.map((d) => d["platform"]),
    [
      { architecture: "arm64", os: "linux" },
      { architecture: "arm", os: "linux", variant: "v7" },
      { architecture: "amd64", os: "windows", "os.version": "10.0.17763.1" },
    ],
  );
  assert.throws(() => mergeIndex([part("linux/amd64/v2/x", image("a"))]), UsageError);
  assert.throws(() => mergeIndex([part("local", image("a"))]), /not "local"/);
});

test("indexes with attestation manifests: their descriptors copied as they are (platform, annotations), parts in order", () => {
  const a = withAttestation({ architecture: "amd64", os: "linux" }, "amd64");
  const b = withAttestation({ architecture: "arm", os: "linux", variant: "v7" }, "arm");
  const out = mergeIndex([a.part, b.part]);
  assert.equal(out.mediaType, OCI_INDEX);
  const m = parse(out.bytes).manifests;
  assert.deepEqual(
    m.map((d) => d["digest"]),
    [a.image.digest, a.att, b.image.digest, b.att],
  );
  assert.deepEqual(m, [...parse(a.part.bytes).manifests, ...parse(b.part.bytes).manifests]);
  // Go writes a descriptor's fields in its struct's order, annotations with their keys sorted.
  assert.match(
    out.bytes.toString(),
    /"size": 566,\n {6}"annotations": \{\n {8}"vnd\.docker\.reference\.digest": "sha256:[0-9a-f]{64}",\n {8}"vnd\.docker\.reference\.type": "attestation-manifest"\n {6}\},\n {6}"platform": \{\n {8}"architecture": "unknown",\n {8}"os": "unknown"\n {6}\}\n/,
  );
});

test("one part that is an index, nothing to add: returned as it is (same bytes, same digest); one manifest still becomes an index", () => {
  const a = withAttestation({ architecture: "amd64", os: "linux" }, "amd64");
  assert.deepEqual(mergeIndex([a.part]), { mediaType: OCI_INDEX, digest: a.part.digest, size: a.part.size, bytes: a.part.bytes });
  const one = part("linux/amd64", image("x"));
  const out = mergeIndex([one]);
  assert.equal(out.mediaType, OCI_INDEX);
  assert.deepEqual(parse(out.bytes).manifests, [
    { mediaType: OCI_MANIFEST, digest: one.digest, size: one.size, platform: { architecture: "amd64", os: "linux" } },
  ]);
  // With an index annotation, the single index is rewritten to carry it.
  const annotated = mergeIndex([a.part], [{ type: "index", key: "org.opencontainers.image.title", value: "t" }]);
  assert.notEqual(annotated.digest, a.part.digest);
  assert.deepEqual(parse(annotated.bytes).annotations, { "org.opencontainers.image.title": "t" });
});

test("a digest seen twice is listed once, where it first came; the later copy's platform and annotations are merged in (buildx's addDesc)", () => {
  const shared = sha256("shared");
  const mk = (platform: Record<string, string> | undefined, annotations: Record<string, string>) =>
    part("linux/amd64", {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: shared, size: 7, annotations, ...(platform ? { platform } : {}) }],
    });
  const amd = part("linux/amd64", image("amd64"));
  const out = mergeIndex([mk({ architecture: "amd64", os: "linux" }, { a: "1", b: "1" }), amd, mk(undefined, { b: "2", c: "2" }), amd]);
  assert.deepEqual(parse(out.bytes).manifests, [
    { mediaType: OCI_MANIFEST, digest: shared, size: 7, annotations: { a: "1", b: "2", c: "2" }, platform: { architecture: "amd64", os: "linux" } },
    { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { architecture: "amd64", os: "linux" } },
  ]);
  const later = mergeIndex([mk({ architecture: "amd64", os: "linux" }, {}), mk({ architecture: "arm64", os: "linux" }, {})]);
  assert.deepEqual(parse(later.bytes).manifests[0]!["platform"], { architecture: "arm64", os: "linux" });
  assert.equal(parse(later.bytes).manifests[0]!["annotations"], undefined, "no empty annotations object");
});

test("media types as buildx: all Docker manifests give a Docker manifest list; any OCI descriptor gives an OCI index", () => {
  const d1 = part("linux/amd64", image("a", DOCKER_MANIFEST));
  const d2 = part("linux/386", image("b", DOCKER_MANIFEST));
  const docker = mergeIndex([d1, d2]);
  assert.equal(docker.mediaType, DOCKER_MANIFEST_LIST);
  assert.equal(parse(docker.bytes).mediaType, DOCKER_MANIFEST_LIST);
  assert.deepEqual(
    parse(docker.bytes).manifests.map((d) => d["mediaType"]),
    [DOCKER_MANIFEST, DOCKER_MANIFEST],
  );
  const mixed = mergeIndex([d1, part("linux/386", image("b"))]);
  assert.equal(mixed.mediaType, OCI_INDEX);
  // A Docker manifest list from a node counts by its descriptors.
  const list = part("linux/arm64", {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_LIST,
    manifests: [{ mediaType: DOCKER_MANIFEST, digest: sha256("x"), size: 1, platform: { architecture: "arm64", os: "linux" } }],
  });
  assert.equal(mergeIndex([d1, list]).mediaType, DOCKER_MANIFEST_LIST);
  assert.equal(mergeIndex([list, withAttestation({ architecture: "amd64", os: "linux" }, "o").part]).mediaType, OCI_INDEX);
  // Without a media type, it is read from the bytes (buildx's detectMediaType).
  const bare = { schemaVersion: 2, config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: sha256("c"), size: 1 }, layers: [] };
  assert.equal(mergeIndex([part("linux/amd64", bare, ""), d2]).mediaType, DOCKER_MANIFEST_LIST);
});

test("annotations: index ones on the index, manifest-descriptor ones on descriptors (of one platform when given), others left to the nodes; none on a Docker list", () => {
  const amd = part("linux/amd64", image("amd64"));
  const arm = part("linux/arm/v7", image("arm"));
  const out = mergeIndex(
    [amd, arm],
    [
      { type: "index", key: "z.key", value: "<&>" },
      { type: "index", key: "a.key", value: "1" },
      { type: "manifest-descriptor", key: "all", value: "x" },
      { type: "manifest-descriptor", key: "only-arm", value: "y", platform: "linux/arm" },
      { type: "manifest", key: "ignored", value: "m" },
      { key: "ignored-too", value: "m" },
      { type: "index-descriptor", key: "ignored-three", value: "m" },
    ],
  );
  const doc = parse(out.bytes);
  assert.deepEqual(doc.annotations, { "a.key": "1", "z.key": "<&>" });
  assert.deepEqual(
    doc.manifests.map((d) => d["annotations"]),
    [{ all: "x" }, { all: "x", "only-arm": "y" }],
  );
  // Go's map order (sorted) and HTML-safe escapes, at the end of the index.
  assert.ok(out.bytes.toString().endsWith(`  ],\n  "annotations": {\n    "a.key": "1",\n    "z.key": "\\u003c\\u0026\\u003e"\n  }\n}`));
  const docker = mergeIndex(
    [part("linux/amd64", image("a", DOCKER_MANIFEST)), part("linux/386", image("b", DOCKER_MANIFEST))],
    [{ type: "index", key: "k", value: "v" }],
  );
  assert.equal(parse(docker.bytes).annotations, undefined);
});

test("checks: a part whose bytes are not its digest or size, a media type the bytes deny, schema1, not a manifest, no parts", () => {
  const amd = part("linux/amd64", image("amd64"));
  assert.throws(
    () => mergeIndex([{ ...amd, digest: sha256("other") }]),
    (e: unknown) => {
      assert.ok(e instanceof BuildKitError);
      assert.equal(e.code, "DATA_LOSS");
      assert.equal(e.message, `part 1 of the index (linux/amd64): its bytes have the digest ${amd.digest}, not ${sha256("other")}`);
      return true;
    },
  );
  assert.throws(() => mergeIndex([amd, { ...amd, size: amd.size + 1 }]), /part 2 of the index \(linux\/amd64\): it has \d+ bytes, not \d+/);
  assert.throws(
    () => mergeIndex([{ ...amd, mediaType: DOCKER_MANIFEST }]),
    /says it is application\/vnd\.oci\.image\.manifest\.v1\+json, not application\/vnd\.docker/,
  );
  assert.throws(
    () => mergeIndex([part("linux/amd64", { schemaVersion: 1, fsLayers: [{ blobSum: "x" }] }, "")]),
    /schema1 manifests are not allowed in manifest lists/,
  );
  assert.throws(() => mergeIndex([part("linux/amd64", { mediaType: "application/vnd.oci.image.config.v1+json" })]), /neither an image manifest nor an index/);
  assert.throws(() => mergeIndex([{ ...amd, bytes: Buffer.from("not json"), digest: sha256("not json"), size: 8 }]), /is not a JSON manifest or index/);
  assert.throws(() => mergeIndex([part("linux/amd64", { mediaType: OCI_INDEX, manifests: [{ digest: 1, size: 2 }] })]), /descriptor 1 of sha256:.*: digest/);
  assert.throws(() => mergeIndex([]), UsageError);
});

test("descriptor fields Go knows are kept in its order (urls, data, artifactType, os.features); others are dropped as Go's decoder does", () => {
  const d = {
    extra: "dropped",
    artifactType: "application/vnd.example+json",
    platform: { "os.features": ["win32k"], variant: "", os: "windows", architecture: "amd64" },
    data: "e30=",
    urls: ["https://example.com/blob"],
    size: 2,
    digest: sha256("{}"),
    mediaType: OCI_MANIFEST,
  };
  const out = mergeIndex([part("windows/amd64", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [d] }), part("linux/amd64", image("x"))]);
  const text = out.bytes.toString();
  const first = text.slice(text.indexOf("{", text.indexOf('"manifests"')), text.indexOf("},\n    {") + 1);
  assert.equal(
    first,
    `{
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "${sha256("{}")}",
      "size": 2,
      "urls": [
        "https://example.com/blob"
      ],
      "data": "e30=",
      "platform": {
        "architecture": "amd64",
        "os": "windows",
        "os.features": [
          "win32k"
        ]
      },
      "artifactType": "application/vnd.example+json"
    }`,
  );
});
