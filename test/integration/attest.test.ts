/**
 * Attestations and annotations on the real buildkitd, read back from the
 * registry: --provenance mode=max, buildx's default provenance (compared
 * with buildx v0.38.2 on the same daemon), --sbom with a scanner image
 * built here that writes an SPDX document, --annotation at each level
 * (compared with buildx), and the classic Docker Engine refusing them.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, testEnv } from "../helpers/env.js";
import { remoteBuildx, type Buildx } from "../helpers/buildx.js";
import { fileTree } from "../helpers/files.js";
import { getBlob, getDocument, type Descriptor, type ImageDocument } from "../helpers/registry.js";

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;
const cli = { BUILDKIT_HOST: env.buildkitHost };
const PROVENANCE = "https://slsa.dev/provenance/v0.2";
const SPDX = "https://spdx.dev/Document";

let oracle: Buildx | undefined;
before(() => {
  oracle = remoteBuildx(env.buildkitHost, `bk-attest-${process.pid}`);
});

/** The image manifests and attestation manifests of a pushed index. */
function split(index: ImageDocument): { images: Descriptor[]; attestations: Descriptor[] } {
  assert.equal(index.mediaType, "application/vnd.oci.image.index.v1+json", `expected an index, got ${index.mediaType}`);
  const m = index.manifests ?? [];
  const isAtt = (d: Descriptor): boolean => d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest";
  return { images: m.filter((d) => !isAtt(d)), attestations: m.filter(isAtt) };
}

/** The in-toto statements an attestation manifest carries, by predicate type. */
async function statements(repo: string, att: Descriptor): Promise<Map<string, Record<string, unknown>>> {
  const m = await getDocument(env.registry, repo, att.digest);
  const out = new Map<string, Record<string, unknown>>();
  for (const l of m.layers ?? []) {
    assert.equal(l.mediaType, "application/vnd.in-toto+json");
    const type = l.annotations?.["in-toto.io/predicate-type"];
    assert.ok(type, "each layer names its predicate type");
    const stmt = JSON.parse((await getBlob(env.registry, repo, l.digest)).toString("utf8")) as Record<string, unknown>;
    assert.equal(stmt["predicateType"], type);
    out.set(type, stmt);
  }
  return out;
}

test("--provenance mode=max: the pushed index holds an attestation manifest with an SLSA provenance (build config included, no secret value)", async (t) => {
  const run = randomUUID().slice(0, 8);
  const secret = `s3cr3t-${randomUUID()}`;
  const ctx = fileTree(
    "bk-attest-max-",
    { Dockerfile: `FROM ${busybox}\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo ${run} > /built\n` },
    t,
  );
  const repo = `bk-test/attest-${run}`;
  const r = runCli(
    ["build", "--progress", "plain", "--provenance", "mode=max", "--secret", "id=tok,env=TOK", "-t", `${env.registry}/${repo}:max`, "--push", ctx],
    {
      env: { ...cli, TOK: secret },
    },
  );
  assert.equal(r.code, 0, r.stderr);
  const { images, attestations } = split(await getDocument(env.registry, repo, "max"));
  assert.equal(images.length, 1);
  assert.equal(attestations.length, 1);
  assert.equal(attestations[0]!.annotations?.["vnd.docker.reference.digest"], images[0]!.digest, "the attestation names the image it describes");
  const stmts = await statements(repo, attestations[0]!);
  const prov = stmts.get(PROVENANCE);
  assert.ok(prov, `a provenance statement (got ${[...stmts.keys()].join(", ")})`);
  const predicate = prov["predicate"] as Record<string, unknown>;
  assert.ok(predicate["buildConfig"], "mode=max records the build definition");
  assert.equal(JSON.stringify(prov).includes(secret), false, "the secret's value is not in the provenance");
  assert.match(JSON.stringify(prov), /"tok"/, "the secret's id is");
});

test("buildx's default provenance (mode=min): the same index shape as buildx's on the same daemon; BUILDX_NO_DEFAULT_ATTESTATIONS=1 pushes a bare manifest", async (t) => {
  const run = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-attest-default-", { Dockerfile: `FROM ${busybox}\nRUN echo ${run} > /built\n` }, t);
  const repo = `bk-test/attest-default-${run}`;
  const a = oracle!.build(["--progress", "plain", "-t", `${env.registry}/${repo}:buildx`, "--push", "."], ctx, { BUILDX_NO_DEFAULT_ATTESTATIONS: undefined });
  assert.equal(a.code, 0, a.stderr);
  const b = runCli(["build", "--progress", "plain", "-t", `${env.registry}/${repo}:ours`, "--push", ctx], { env: cli });
  assert.equal(b.code, 0, b.stderr);
  const theirs = split(await getDocument(env.registry, repo, "buildx"));
  const ours = split(await getDocument(env.registry, repo, "ours"));
  assert.equal(ours.images.length, 1);
  assert.equal(ours.attestations.length, theirs.attestations.length);
  assert.equal(ours.images[0]!.digest, theirs.images[0]!.digest, "the same image manifest as buildx's");
  assert.deepEqual(ours.images[0]!.platform, theirs.images[0]!.platform);
  const [mine, their] = [await statements(repo, ours.attestations[0]!), await statements(repo, theirs.attestations[0]!)];
  assert.deepEqual([...mine.keys()], [...their.keys()]);
  const predicate = mine.get(PROVENANCE)!["predicate"] as Record<string, unknown>;
  assert.equal(predicate["buildConfig"], undefined, "mode=min has no build definition");
  const off = runCli(["build", "--progress", "plain", "-t", `${env.registry}/${repo}:off`, "--push", ctx], {
    env: { ...cli, BUILDX_NO_DEFAULT_ATTESTATIONS: "1" },
  });
  assert.equal(off.code, 0, off.stderr);
  // Without attestations the image exporter keeps its default Docker media types (an index forces OCI ones).
  const bare = await getDocument(env.registry, repo, "off");
  assert.equal(bare.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  const inIndex = await getDocument(env.registry, repo, ours.images[0]!.digest);
  assert.equal(bare.config?.digest, inIndex.config?.digest, "the same image (config) without the attestation");
});

test("--sbom generator=IMAGE: a scanner image built here runs on the build's result and its SPDX document lands in the index", async (t) => {
  const run = randomUUID().slice(0, 8);
  const scanner = `${env.registry}/bk-test/scanner-${run}:1`;
  // The scanner protocol (buildkit frontend/attestations/sbom): the result is mounted at
  // $BUILDKIT_SCAN_SOURCE, in-toto statements are written to $BUILDKIT_SCAN_DESTINATION.
  const scan = [
    "#!/bin/sh",
    "set -e",
    'n=$(find "$BUILDKIT_SCAN_SOURCE" -type f | wc -l)',
    `test -f "$BUILDKIT_SCAN_SOURCE/scanned-${run}"`,
    'cat > "$BUILDKIT_SCAN_DESTINATION/sbom.spdx.json" <<JSON',
    '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[],',
    ` "predicate":{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"bk-test-${run}",`,
    `  "documentNamespace":"https://example.invalid/bk-test/${run}","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: bk-test-scanner"]},`,
    '  "packages":[{"name":"files","SPDXID":"SPDXRef-files","downloadLocation":"NOASSERTION","filesAnalyzed":false,"comment":"$n files"}]}}',
    "JSON",
    "",
  ].join("\n");
  const sctx = fileTree("bk-scanner-", { Dockerfile: `FROM ${busybox}\nCOPY --chmod=755 scan.sh /scan.sh\nCMD ["/scan.sh"]\n`, "scan.sh": scan }, t);
  const s = runCli(["build", "--progress", "plain", "-t", scanner, "--push", sctx], { env: cli });
  assert.equal(s.code, 0, s.stderr);
  const ctx = fileTree("bk-sbom-", { Dockerfile: `FROM ${busybox}\nRUN touch /scanned-${run}\n` }, t);
  const repo = `bk-test/sbom-${run}`;
  const r = runCli(["build", "--progress", "plain", "--sbom", `generator=${scanner}`, "-t", `${env.registry}/${repo}:1`, "--push", ctx], { env: cli });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /generating sbom using/);
  const { attestations } = split(await getDocument(env.registry, repo, "1"));
  assert.equal(attestations.length, 1);
  const stmts = await statements(repo, attestations[0]!);
  const doc = stmts.get(SPDX)?.["predicate"] as Record<string, unknown> | undefined;
  assert.ok(doc, `an SPDX statement (got ${[...stmts.keys()].join(", ")})`);
  assert.equal(doc["name"], `bk-test-${run}`);
  assert.match(JSON.stringify(doc["packages"]), /"comment":"[1-9]\d* files"/, "the scanner saw the image's files");
  assert.ok(stmts.has(PROVENANCE), "the default provenance is there too");
  const bad = runCli(["build", "--attest", "type=vex", ctx], { env: cli });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'error: unknown attestation type "vex" in --attest "type=vex": use type=provenance or type=sbom\n');
});

test("--annotation on the index, the manifest and its descriptor: what buildx writes, read back from the registry", async (t) => {
  const run = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-annotate-", { Dockerfile: `FROM ${busybox}\nRUN echo ${run} > /built\n` }, t);
  const repo = `bk-test/annotate-${run}`;
  const flags = [
    "--annotation",
    `index:org.example.index=i-${run}`,
    "--annotation",
    "manifest,manifest-descriptor:org.example.both=b",
    "--annotation",
    "org.example.bare=plain value",
    "--annotation",
    "manifest[linux/amd64]:org.example.amd64=yes",
  ];
  const a = oracle!.build(["--progress", "plain", ...flags, "-t", `${env.registry}/${repo}:buildx`, "--push", "."], ctx, {
    BUILDX_NO_DEFAULT_ATTESTATIONS: undefined,
  });
  assert.equal(a.code, 0, a.stderr);
  const b = runCli(["build", "--progress", "plain", ...flags, "-t", `${env.registry}/${repo}:ours`, "--push", ctx], { env: cli });
  assert.equal(b.code, 0, b.stderr);
  const [theirs, ours] = [await getDocument(env.registry, repo, "buildx"), await getDocument(env.registry, repo, "ours")];
  assert.equal(ours.annotations?.["org.example.index"], `i-${run}`);
  assert.deepEqual(ours.annotations, theirs.annotations, "index annotations as buildx's");
  const [ti, oi] = [split(theirs).images[0]!, split(ours).images[0]!];
  assert.equal(oi.annotations?.["org.example.both"], "b", "the descriptor's annotation");
  assert.deepEqual(oi.annotations, ti.annotations, "descriptor annotations as buildx's");
  const [tm, om] = [await getDocument(env.registry, repo, ti.digest), await getDocument(env.registry, repo, oi.digest)];
  assert.equal(om.annotations?.["org.example.bare"], "plain value");
  assert.equal(om.annotations?.["org.example.both"], "b");
  if (process.arch === "x64") assert.equal(om.annotations?.["org.example.amd64"], "yes");
  assert.deepEqual(om.annotations, tm.annotations, "manifest annotations as buildx's");
  assert.equal(om.digest, tm.digest, "so the same manifest");
  const bad = runCli(["build", "--annotation", "layer:k=v", ctx], { env: cli });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'error: unknown annotation type "layer" in --annotation "layer:k=v": use index, index-descriptor, manifest, manifest-descriptor\n');
});

test("the Docker Engine's classic store: attestations refused in one line before the build; the default provenance left out, the build goes on", (t) => {
  const run = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-attest-engine-", { Dockerfile: `FROM ${busybox}\nRUN echo ${run} > /built\n` }, t);
  const engine = { DOCKER_HOST: env.docker.host, BUILDKIT_HOST: undefined } as Record<string, string | undefined>;
  const bad = runCli(["build", "--network", "host", "--provenance", "mode=max", ctx], { env: engine });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(
    bad.stderr,
    /^error: attestations \(--attest, --provenance, --sbom\) cannot be stored in the Docker Engine's classic image store: enable the containerd image store/,
  );
  assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  const ok = runCli(["build", "--network", "host", "--progress", "plain", "-t", `bk-attest-${run}:1`, ctx], { env: engine });
  assert.equal(ok.code, 0, ok.stderr);
});

test("--metadata-file: buildx.build.provenance (min by default, max, disabled) and buildx.build.warnings with BUILDX_METADATA_WARNINGS, as buildx writes them", async (t) => {
  const run = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-attest-meta-", { Dockerfile: `FROM ${busybox} as base\nRUN echo ${run} > /built\n` }, t);
  const metaDir = fileTree("bk-attest-meta-out-", {}, t);
  const read = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(metaDir, name), "utf8")) as Record<string, unknown>;
  const a = oracle!.build(["--progress", "plain", "--metadata-file", join(metaDir, "buildx.json"), "."], ctx, {
    BUILDX_NO_DEFAULT_ATTESTATIONS: undefined,
    BUILDX_METADATA_WARNINGS: "1",
  });
  assert.equal(a.code, 0, a.stderr);
  const b = runCli(["build", "--progress", "plain", "--metadata-file", join(metaDir, "ours.json"), ctx], { env: { ...cli, BUILDX_METADATA_WARNINGS: "1" } });
  assert.equal(b.code, 0, b.stderr);
  const [theirs, ours] = [read("buildx.json"), read("ours.json")];
  const [tp, op] = [theirs["buildx.build.provenance"] as Record<string, unknown>, ours["buildx.build.provenance"] as Record<string, unknown>];
  assert.ok(tp && op, `both have buildx.build.provenance: ${Object.keys(ours).join(", ")}`);
  assert.deepEqual(Object.keys(op), Object.keys(tp), "the same predicate fields (min: no buildConfig, no metadata)");
  assert.equal(op["buildType"], tp["buildType"]);
  assert.deepEqual(op["materials"], tp["materials"], "the same base image, by digest");
  const short = (m: Record<string, unknown>): string[] =>
    ((m["buildx.build.warnings"] ?? []) as Array<{ short: string }>).map((w) => Buffer.from(w.short, "base64").toString());
  assert.ok(
    short(theirs).some((s) => /FromAsCasing/.test(s)),
    JSON.stringify(theirs["buildx.build.warnings"]),
  );
  assert.deepEqual(short(ours), short(theirs), "the same lint warnings, base64 as Go writes []byte");
  const max = runCli(["build", "--progress", "plain", "--metadata-file", join(metaDir, "max.json"), ctx], {
    env: { ...cli, BUILDX_METADATA_PROVENANCE: "max" },
  });
  assert.equal(max.code, 0, max.stderr);
  assert.ok((read("max.json")["buildx.build.provenance"] as Record<string, unknown>)["buildConfig"], "max keeps the build definition");
  assert.equal(read("max.json")["buildx.build.warnings"], undefined, "warnings only when asked for");
  const off = runCli(["build", "--progress", "plain", "--metadata-file", join(metaDir, "off.json"), ctx], {
    env: { ...cli, BUILDX_METADATA_PROVENANCE: "disabled" },
  });
  assert.equal(off.code, 0, off.stderr);
  assert.equal(read("off.json")["buildx.build.provenance"], undefined);
});
