/**
 * The registry client and the index merge against the real registry, the
 * way a builder pool uses them: each platform built on its own and pushed
 * by digest (push-by-digest=true, a name without a tag), each pushed
 * manifest or index read back by its digest, merged, and put under tags.
 * buildx's `imagetools create` on the same digests is the oracle: it must
 * make the same index, byte for byte (so the same digest). The login-only
 * registry (htpasswd, Basic auth) checks credentials end to end.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { BuildKitClient, type BuildOptions } from "../../src/index.js";
import { RegistryClient, RegistryError, mergeIndex, parseImageName, type IndexPart, type RegistryRef } from "../../src/internal.js";
import { credentialLookup } from "../../src/solve/registry-auth.js";
import { testEnv, type TestEnv } from "../helpers/env.js";
import { remoteBuildx, type Buildx } from "../helpers/buildx.js";
import { fileTree } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { getDocument, type Descriptor } from "../helpers/registry.js";

leakCheckEachTest();

let env: TestEnv;
let oracle: Buildx | undefined;
before(() => {
  env = testEnv();
  oracle = remoteBuildx(env.buildkitHost, `bk-regclient-${process.pid}`);
});

const PLATFORMS = ["linux/amd64", "linux/386"];
const isAttestation = (d: Descriptor): boolean => d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest";

/** One platform built and pushed by digest to `name` (no tag), as one node of a pool does; its exporter response. */
async function pushByDigest(
  ctx: string,
  name: string,
  platform: string,
  extra: Partial<BuildOptions>,
  outputAttrs: Record<string, string>,
): Promise<Record<string, string>> {
  const client = await BuildKitClient.connect({ address: env.buildkitHost });
  try {
    const result = await client.build({
      context: ctx,
      platforms: [platform],
      outputs: [{ type: "image", attrs: { name, push: "true", "push-by-digest": "true", ...outputAttrs } }],
      ...extra,
    }).result;
    return result.exporterResponse;
  } finally {
    await client.close();
  }
}

/** Each platform pushed by digest, then read back from the registry by that digest: the merge's parts. */
async function pushParts(
  t: { name: string },
  ref: RegistryRef,
  registry: RegistryClient,
  extra: Partial<BuildOptions> = {},
  outputAttrs: Record<string, string> = {},
): Promise<IndexPart[]> {
  const ctx = fileTree(`bk-regclient-${t.name.replace(/\W+/g, "-").slice(0, 16)}-`, {
    Dockerfile: "FROM scratch\nARG TARGETPLATFORM\nCOPY a.txt /\n",
    "a.txt": `${randomUUID()}\n`,
  });
  const parts: IndexPart[] = [];
  for (const platform of PLATFORMS) {
    const res = await pushByDigest(ctx, `${ref.host}/${ref.repository}`, platform, extra, outputAttrs);
    const digest = res["containerimage.digest"];
    assert.match(digest ?? "", /^sha256:[0-9a-f]{64}$/, `the exporter names the pushed digest (got ${JSON.stringify(res)})`);
    const got = await registry.getManifest(ref, digest!);
    assert.equal(got.digest, digest);
    // The exporter's descriptor agrees with what the registry serves.
    const desc = JSON.parse(Buffer.from(res["containerimage.descriptor"] ?? "", "base64").toString("utf8")) as { mediaType: string; size: number };
    assert.equal(got.mediaType, desc.mediaType);
    assert.equal(got.size, desc.size);
    parts.push({ platform, ...got });
  }
  return parts;
}

/** `docker buildx imagetools create -t TAG SOURCES...`: buildx's merge of the same digests. */
function buildxCreate(tag: string, sources: string[]): void {
  const r = oracle!.docker(["buildx", "imagetools", "create", "-t", tag, ...sources]);
  assert.equal(r.code, 0, `buildx imagetools create failed: ${r.stderr}`);
}

/**
 * Two platforms pushed by digest, merged and put under two tags; read back,
 * the index has both and the registry's digest for it is ours, and buildx
 * makes the same bytes from the same digests.
 */
async function mergeTwo(t: { name: string }, repo: string, ociMediaTypes: boolean): Promise<{ mediaType: string; parts: IndexPart[] }> {
  const ref = parseImageName(`${env.registry}/bk-test/${repo}-${randomUUID().slice(0, 8)}`).ref;
  const registry = new RegistryClient();
  const parts = await pushParts(t, ref, registry, {}, ociMediaTypes ? { "oci-mediatypes": "true" } : {});
  const merged = mergeIndex(parts);
  for (const tag of ["v1", "latest"]) assert.equal(await registry.putManifest(ref, tag, merged.bytes, merged.mediaType), merged.digest);

  for (const tag of ["v1", "latest"]) {
    const doc = await getDocument(env.registry, ref.repository, tag);
    assert.equal(doc.mediaType, merged.mediaType);
    assert.equal(doc.digest, merged.digest, "the registry's Docker-Content-Digest is the digest we computed");
    assert.deepEqual(
      doc.manifests?.map((d) => [d.mediaType, d.digest, `${d.platform?.os}/${d.platform?.architecture}`]),
      parts.map((p) => [p.mediaType, p.digest, p.platform]),
    );
  }
  // Read back with our own client too: the same bytes.
  const back = await registry.getManifest(ref, "v1");
  assert.deepEqual(back, { mediaType: merged.mediaType, digest: merged.digest, size: merged.size, bytes: merged.bytes });

  buildxCreate(
    `${ref.host}/${ref.repository}:buildx`,
    parts.map((p) => `${ref.host}/${ref.repository}@${p.digest}`),
  );
  const theirs = await registry.getManifest(ref, "buildx");
  assert.equal(theirs.bytes.toString(), merged.bytes.toString(), "buildx's index, byte for byte");
  assert.equal(theirs.digest, merged.digest);
  return { mediaType: merged.mediaType, parts };
}

test("two platforms pushed by digest with the exporter's default (Docker) media types: merged into a Docker manifest list, as buildx does", async (t) => {
  const { mediaType, parts } = await mergeTwo(t, "pool-merge-docker", false);
  assert.deepEqual(
    parts.map((p) => p.mediaType),
    ["application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.v2+json"],
  );
  assert.equal(mediaType, "application/vnd.docker.distribution.manifest.list.v2+json");
});

test("two platforms pushed by digest with oci-mediatypes=true: merged into an OCI index, put under two tags, the registry's digest is ours and buildx's", async (t) => {
  const { mediaType, parts } = await mergeTwo(t, "pool-merge-oci", true);
  assert.deepEqual(
    parts.map((p) => p.mediaType),
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.manifest.v1+json"],
  );
  assert.equal(mediaType, "application/vnd.oci.image.index.v1+json");
});

test("with provenance attestations: each part is an index; the merge keeps every image and attestation manifest with its annotations, as buildx", async (t) => {
  const ref = parseImageName(`${env.registry}/bk-test/pool-merge-att-${randomUUID().slice(0, 8)}`).ref;
  const registry = new RegistryClient();
  const parts = await pushParts(t, ref, registry, { attestations: [{ type: "provenance", attrs: { mode: "min" } }] });
  assert.deepEqual(
    parts.map((p) => p.mediaType),
    ["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.index.v1+json"],
  );
  const merged = mergeIndex(parts, [{ type: "index", key: "org.opencontainers.image.description", value: "pool <merge> & test" }]);
  assert.equal(await registry.putManifest(ref, "v1", merged.bytes, merged.mediaType), merged.digest);

  const doc = await getDocument(env.registry, ref.repository, "v1");
  assert.equal(doc.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.equal(doc.digest, merged.digest);
  assert.deepEqual(doc.annotations, { "org.opencontainers.image.description": "pool <merge> & test" });
  const manifests = doc.manifests ?? [];
  assert.equal(manifests.length, 4, "an image and an attestation manifest per platform");
  const images = manifests.filter((d) => !isAttestation(d));
  const attestations = manifests.filter(isAttestation);
  assert.deepEqual(
    images.map((d) => `${d.platform?.os}/${d.platform?.architecture}`),
    PLATFORMS,
  );
  assert.deepEqual(
    attestations.map((d) => d.annotations?.["vnd.docker.reference.digest"]),
    images.map((d) => d.digest),
    "each attestation still names its image",
  );
  // The parts' descriptors, unchanged and in order.
  const fromParts = parts.flatMap((p) => (JSON.parse(p.bytes.toString()) as { manifests: Descriptor[] }).manifests);
  assert.deepEqual(manifests, fromParts);

  // buildx, with the same index annotation.
  const r = oracle!.docker([
    "buildx",
    "imagetools",
    "create",
    "--annotation",
    "index:org.opencontainers.image.description=pool <merge> & test",
    "-t",
    `${ref.host}/${ref.repository}:buildx`,
    ...parts.map((p) => `${ref.host}/${ref.repository}@${p.digest}`),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const theirs = await registry.getManifest(ref, "buildx");
  assert.equal(theirs.bytes.toString(), merged.bytes.toString(), "buildx's index, byte for byte");
});

test("the registry's refusal in one line: a digest it does not have (its JSON error form), a tag in a repository it does not know", async () => {
  const registry = new RegistryClient();
  const ref = { host: env.registry, repository: "bk-test/busybox" };
  const missing = `sha256:${"0".repeat(64)}`;
  await assert.rejects(registry.getManifest(ref, missing), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, "NOT_FOUND");
    assert.equal(e.status, 404);
    assert.equal(e.message, `registry ${env.registry}, repository bk-test/busybox: GET manifest ${missing}: HTTP 404 Not Found: manifest unknown`);
    return true;
  });
  await assert.rejects(registry.getManifest({ host: env.registry, repository: `bk-test/none-${randomUUID().slice(0, 8)}` }, "latest"), {
    code: "NOT_FOUND",
    message:
      /^registry 127\.0\.0\.1:\d+, repository bk-test\/none-\w+: GET manifest latest: HTTP 404 Not Found: (repository name not known to registry|manifest unknown)$/,
  });
  // The base image by tag: an index or manifest whose digest the registry names.
  const got = await registry.getManifest(ref, "latest");
  const direct = await getDocument(env.registry, "bk-test/busybox", "latest");
  assert.equal(got.digest, direct.digest);
  assert.equal(got.mediaType, direct.mediaType);
});

test("a login-only registry: Basic auth with the credentials from credentialLookup; a wrong password is one line without it; none says so", async (t) => {
  assert.ok(env.authRegistry, "BK_TEST_AUTH_REGISTRY is not set: scripts/test-env.sh up starts the login-only registry");
  const { host, user, password } = env.authRegistry;
  const registryAuth = { credentials: { [host]: { username: user, password } }, configDir: false as const };
  const ref = parseImageName(`${host}/bk-test/pool-merge-auth-${randomUUID().slice(0, 8)}`).ref;
  const registry = new RegistryClient({ credentials: credentialLookup(registryAuth, {}) });
  const parts = await pushParts(t, ref, registry, { registryAuth });
  const merged = mergeIndex(parts);
  assert.equal(await registry.putManifest(ref, "v1", merged.bytes, merged.mediaType), merged.digest);
  const back = await registry.getManifest(ref, "v1");
  assert.equal(back.digest, merged.digest);
  assert.equal(back.mediaType, merged.mediaType);
  assert.deepEqual(back.bytes, merged.bytes);

  const wrong = `wrong-${randomUUID()}`;
  await assert.rejects(new RegistryClient({ credentials: async () => ({ username: user, secret: wrong }) }).getManifest(ref, "v1"), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, "UNAUTHENTICATED");
    assert.match(
      e.message,
      new RegExp(
        `^registry ${host.replace(/\./g, "\\.")}, repository ${ref.repository}: GET manifest v1: HTTP 401 Unauthorized: .+ \\(with the credentials for ${host.replace(/\./g, "\\.")}\\)$`,
      ),
    );
    assert.equal(e.message.includes(wrong), false);
    assert.equal(e.message.includes(Buffer.from(`${user}:${wrong}`).toString("base64")), false);
    return true;
  });
  await assert.rejects(new RegistryClient().putManifest(ref, "v2", merged.bytes, merged.mediaType), {
    code: "UNAUTHENTICATED",
    message: new RegExp(
      `^registry ${host.replace(/\./g, "\\.")}, repository ${ref.repository}: PUT manifest v2: HTTP 401 Unauthorized: .+ \\(no credentials for `,
    ),
  });
});
