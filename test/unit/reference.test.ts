/**
 * Image references. The tables are distribution/reference's own
 * (reference_test.go, normalize_test.go, regexp_test.go): their inputs and
 * expected results, in our words. Where we differ, the case says why.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  InvalidReferenceError,
  checkImageName,
  familiarName,
  familiarString,
  formatReference,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  parseReference,
  referenceName,
  referencePatterns,
  withDigest,
  withName,
  withTag,
  type ImageReference,
  type InvalidReferenceReason,
} from "../../src/solve/reference.js";
import { UsageError } from "../../src/errors.js";
import { exporters } from "../../src/solve/options.js";
import { parseCacheEntries } from "../../src/solve/cache.js";
import { parseOutput } from "../../src/cli/parse-build.js";
import { loadCompose } from "../../src/compose/load.js";
import { planCompose } from "../../src/compose/build.js";
import { fileTree } from "../helpers/files.js";
import { rmSync } from "node:fs";

const f64 = "f".repeat(64);

function reasonOf(fn: () => unknown): InvalidReferenceReason | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof InvalidReferenceError, `not an InvalidReferenceError: ${String(e)}`);
    assert.ok(e instanceof UsageError);
    return e.reason;
  }
}

interface ParseCase {
  input: string;
  reason?: InvalidReferenceReason;
  /** The name (domain/path). */
  repository?: string;
  domain?: string;
  tag?: string;
  digest?: string;
}

// reference_test.go TestReferenceParse.
const parseCases: ParseCase[] = [
  { input: "test_com", repository: "test_com" },
  { input: "test.com:tag", repository: "test.com", tag: "tag" },
  { input: "test.com:5000", repository: "test.com", tag: "5000" },
  { input: "test.com/repo:tag", domain: "test.com", repository: "test.com/repo", tag: "tag" },
  { input: "test:5000/repo", domain: "test:5000", repository: "test:5000/repo" },
  { input: "test:5000/repo:tag", domain: "test:5000", repository: "test:5000/repo", tag: "tag" },
  { input: `test:5000/repo@sha256:${f64}`, domain: "test:5000", repository: "test:5000/repo", digest: `sha256:${f64}` },
  { input: `test:5000/repo:tag@sha256:${f64}`, domain: "test:5000", repository: "test:5000/repo", tag: "tag", digest: `sha256:${f64}` },
  { input: "", reason: "empty" },
  { input: ":justtag", reason: "format" },
  { input: `@sha256:${f64}`, reason: "format" },
  { input: `repo@sha256:${"f".repeat(34)}`, reason: "digest-length" },
  { input: `validname@invaliddigest:${f64}`, reason: "digest-unsupported" },
  // Upstream expects "unsupported" only because its test binary does not
  // link crypto/sha512; buildkitd does, and OCI registers sha512.
  { input: `validname@sha512:${"f".repeat(128)}`, repository: "validname", digest: `sha512:${"f".repeat(128)}` },
  { input: "Uppercase:tag", reason: "uppercase" },
  { input: "test:5000/Uppercase/lowercase:tag", reason: "uppercase" },
  { input: "lowercase:Uppercase", repository: "lowercase", tag: "Uppercase" },
  { input: `domain/${"a".repeat(256)}:tag`, reason: "too-long" },
  { input: `${"a/".repeat(127)}a:tag-puts-this-over-max`, domain: "a", repository: `${"a/".repeat(127)}a`, tag: "tag-puts-this-over-max" },
  { input: "aa/asdf$$^/aa", reason: "format" },
  { input: "sub-dom1.foo.com/bar/baz/quux", domain: "sub-dom1.foo.com", repository: "sub-dom1.foo.com/bar/baz/quux" },
  { input: "sub-dom1.foo.com/bar/baz/quux:some-long-tag", domain: "sub-dom1.foo.com", repository: "sub-dom1.foo.com/bar/baz/quux", tag: "some-long-tag" },
  { input: "b.gcr.io/test.example.com/my-app:test.example.com", domain: "b.gcr.io", repository: "b.gcr.io/test.example.com/my-app", tag: "test.example.com" },
  { input: "xn--n3h.com/myimage:xn--n3h.com", domain: "xn--n3h.com", repository: "xn--n3h.com/myimage", tag: "xn--n3h.com" },
  {
    input: `xn--7o8h.com/myimage:xn--7o8h.com@sha256:${f64}`,
    domain: "xn--7o8h.com",
    repository: "xn--7o8h.com/myimage",
    tag: "xn--7o8h.com",
    digest: `sha256:${f64}`,
  },
  { input: "foo_bar.com:8080", repository: "foo_bar.com", tag: "8080" },
  { input: "foo/foo_bar.com:8080", domain: "foo", repository: "foo/foo_bar.com", tag: "8080" },
  { input: "192.168.1.1", repository: "192.168.1.1" },
  { input: "192.168.1.1:tag", repository: "192.168.1.1", tag: "tag" },
  { input: "192.168.1.1:5000", repository: "192.168.1.1", tag: "5000" },
  { input: "192.168.1.1/repo", domain: "192.168.1.1", repository: "192.168.1.1/repo" },
  { input: "192.168.1.1:5000/repo", domain: "192.168.1.1:5000", repository: "192.168.1.1:5000/repo" },
  { input: "192.168.1.1:5000/repo:5050", domain: "192.168.1.1:5000", repository: "192.168.1.1:5000/repo", tag: "5050" },
  { input: "[2001:db8::1]", reason: "format" },
  { input: "[2001:db8::1]:5000", reason: "format" },
  { input: "[2001:db8::1]:tag", reason: "format" },
  { input: "[2001:db8::1]/repo", domain: "[2001:db8::1]", repository: "[2001:db8::1]/repo" },
  { input: "[2001:db8:1:2:3:4:5:6]/repo:tag", domain: "[2001:db8:1:2:3:4:5:6]", repository: "[2001:db8:1:2:3:4:5:6]/repo", tag: "tag" },
  { input: "[2001:db8::1]:5000/repo", domain: "[2001:db8::1]:5000", repository: "[2001:db8::1]:5000/repo" },
  { input: "[2001:db8::1]:5000/repo:tag", domain: "[2001:db8::1]:5000", repository: "[2001:db8::1]:5000/repo", tag: "tag" },
  { input: `[2001:db8::1]:5000/repo@sha256:${f64}`, domain: "[2001:db8::1]:5000", repository: "[2001:db8::1]:5000/repo", digest: `sha256:${f64}` },
  {
    input: `[2001:db8::1]:5000/repo:tag@sha256:${f64}`,
    domain: "[2001:db8::1]:5000",
    repository: "[2001:db8::1]:5000/repo",
    tag: "tag",
    digest: `sha256:${f64}`,
  },
  { input: "[2001:db8::]:5000/repo", domain: "[2001:db8::]:5000", repository: "[2001:db8::]:5000/repo" },
  { input: "[::1]:5000/repo", domain: "[::1]:5000", repository: "[::1]:5000/repo" },
  { input: "[fe80::1%eth0]:5000/repo", reason: "format" },
  { input: "[fe80::1%@invalidzone]:5000/repo", reason: "format" },
  { input: `example.com/${"a".repeat(255)}:tag`, domain: "example.com", repository: `example.com/${"a".repeat(255)}`, tag: "tag" },
  // TestSerialization's inputs (the JSON round trip is Go's; the parse is ours).
  { input: "example.com:8000/named", domain: "example.com:8000", repository: "example.com:8000/named" },
  { input: "example.com:8000/named:tagged", domain: "example.com:8000", repository: "example.com:8000/named", tag: "tagged" },
  {
    input: "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
    domain: "other.com",
    repository: "other.com/named",
    digest: "sha256:1234567890098765432112345667890098765432112345667890098765432112",
  },
];

test("parseReference: distribution/reference's Parse table", () => {
  for (const c of parseCases) {
    const reason = reasonOf(() => parseReference(c.input));
    if (c.reason) {
      assert.equal(reason, c.reason, `${c.input}: reason`);
      continue;
    }
    assert.equal(reason, undefined, `${c.input} should parse`);
    const ref = parseReference(c.input);
    assert.equal(formatReference(ref), c.input, "the string form is the input");
    assert.equal(referenceName(ref), c.repository, `${c.input}: name`);
    assert.equal(ref.domain, c.domain ?? "", `${c.input}: domain`);
    assert.equal(ref.tag, c.tag, `${c.input}: tag`);
    assert.equal(ref.digest, c.digest, `${c.input}: digest`);
  }
});

test("withName, withTag, withDigest: reference_test.go's tables", () => {
  // TestWithNameFailure.
  const failures: Array<[string, InvalidReferenceReason]> = [
    ["", "format"],
    [":justtag", "format"],
    [`@sha256:${f64}`, "format"],
    [`validname@invaliddigest:${f64}`, "format"],
    ["example.com/repo:tag", "format"],
    [`example.com/${"a".repeat(256)}`, "too-long"],
    ["aa/asdf$$^/aa", "format"],
  ];
  for (const [input, reason] of failures)
    assert.equal(
      reasonOf(() => withName(input)),
      reason,
      input,
    );

  // TestDomainAndPath.
  const split: Array<[string, string, string]> = [
    ["test.com/foo", "test.com", "foo"],
    ["test_com/foo", "", "test_com/foo"],
    ["test:8080/foo", "test:8080", "foo"],
    ["test.com:8080/foo", "test.com:8080", "foo"],
    ["test-com:8080/foo", "test-com:8080", "foo"],
    ["xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"],
  ];
  for (const [input, domain, path] of split) assert.deepEqual(withName(input), { domain, path }, input);

  // TestWithTag (the digest is only checked for its form, as upstream).
  const tagged: Array<[string, string | undefined, string, string]> = [
    ["test.com/foo", undefined, "tag", "test.com/foo:tag"],
    ["foo", undefined, "tag2", "foo:tag2"],
    ["test.com:8000/foo", undefined, "tag4", "test.com:8000/foo:tag4"],
    ["test.com:8000/foo", undefined, "TAG5", "test.com:8000/foo:TAG5"],
    ["test.com:8000/foo", "sha256:1234567890098765432112345667890098765", "TAG5", "test.com:8000/foo:TAG5@sha256:1234567890098765432112345667890098765"],
  ];
  for (const [name, digest, tag, combined] of tagged) {
    let ref = withName(name);
    if (digest) ref = withDigest(ref, digest);
    assert.equal(formatReference(withTag(ref, tag)), combined);
  }

  // TestWithDigest.
  const d = "sha256:1234567890098765432112345667890098765";
  const digested: Array<[string, string | undefined, string]> = [
    ["test.com/foo", undefined, `test.com/foo@${d}`],
    ["foo", undefined, `foo@${d}`],
    ["test.com:8000/foo", undefined, `test.com:8000/foo@${d}`],
    ["test.com:8000/foo", "latest", `test.com:8000/foo:latest@${d}`],
  ];
  for (const [name, tag, combined] of digested) {
    let ref = withName(name);
    if (tag) ref = withTag(ref, tag);
    assert.equal(formatReference(withDigest(ref, d)), combined);
  }

  // TestInvalidReferenceComponents.
  assert.ok(reasonOf(() => parseNormalizedNamed("-foo")));
  const busybox = parseNormalizedNamed("busybox");
  assert.equal(
    reasonOf(() => withTag(busybox, "-foo")),
    "tag-format",
  );
  assert.equal(
    reasonOf(() => withDigest(busybox, "foo")),
    "digest-format",
  );
});

test("parseNamed accepts only the canonical form (TestParseNamed)", () => {
  const cases: Array<[string, string, string] | [string, InvalidReferenceReason]> = [
    ["test.com/foo", "test.com", "foo"],
    ["test:8080/foo", "test:8080", "foo"],
    ["test_com/foo", "not-canonical"],
    ["test.com", "not-canonical"],
    ["foo", "not-canonical"],
    ["library/foo", "not-canonical"],
    ["docker.io/library/foo", "docker.io", "library/foo"],
    ["docker.io/foo", "not-canonical"], // ambiguous: the parser adds library/
  ];
  for (const c of cases) {
    if (c.length === 2) {
      assert.equal(
        reasonOf(() => parseNamed(c[0])),
        c[1],
        c[0],
      );
    } else {
      const ref = parseNamed(c[0]);
      assert.deepEqual([ref.domain, ref.path], [c[1], c[2]], c[0]);
    }
  }
});

test("parseNormalizedNamed: valid and invalid names (TestValidateReferenceName, TestValidateRemoteName)", () => {
  const valid = [
    "docker/docker",
    "library/debian",
    "debian",
    "localhost/library/debian",
    "localhost/debian",
    "LOCALDOMAIN/library/debian",
    "LOCALDOMAIN/debian",
    "docker.io/docker/docker",
    "docker.io/library/debian",
    "docker.io/debian",
    "index.docker.io/docker/docker",
    "index.docker.io/library/debian",
    "index.docker.io/debian",
    "127.0.0.1:5000/docker/docker",
    "127.0.0.1:5000/library/debian",
    "127.0.0.1:5000/debian",
    "192.168.0.1",
    "192.168.0.1:80",
    "192.168.0.1:8/debian",
    "192.168.0.2:25000/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "[fc00::1]:5000/docker",
    "[fc00::1]:5000/docker/docker",
    "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    // With a host, 64 hex digits are a name, not an image ID.
    "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    "Docker/docker",
    "DOCKER/docker",
    // TestValidateRemoteName.
    "docker-rules/docker",
    "docker---rules/docker",
    "doc/docker",
    "d/docker",
    "jess/t",
    "dock__er/docker",
  ];
  const invalid = [
    "https://github.com/docker/docker",
    "docker/Docker",
    "-docker",
    "-docker/docker",
    "-docker.io/docker/docker",
    "docker///docker",
    "docker.io/docker/Docker",
    "docker.io/docker///docker",
    "[fc00::1]",
    "[fc00::1]:5000",
    "fc00::1:5000/debian",
    "[fe80::1%eth0]:5000/debian",
    "[2001:db8:3:4::192.0.2.33]:5000/debian",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    // TestValidateRemoteName.
    "docker-/docker",
    "-docker-/docker",
    "____/____",
    "_docker/_docker",
    "dock..er/docker",
    "dock_.er/docker",
    "dock-.er/docker",
    "docker/",
    `${"this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_".repeat(4).slice(0, -1)}/docker`,
  ];
  for (const name of valid)
    assert.equal(
      reasonOf(() => parseNormalizedNamed(name)),
      undefined,
      name,
    );
  for (const name of invalid)
    assert.ok(
      reasonOf(() => parseNormalizedNamed(name)),
      `${name} should be invalid`,
    );
});

test("parseNormalizedNamed: familiar and full names (TestParseRepositoryInfo)", () => {
  const cases: Array<{ remote: string; familiar: string; full: string; ambiguous?: string; domain: string }> = [
    { remote: "fooo", familiar: "localhost/fooo", full: "localhost/fooo", ambiguous: "localhost/fooo", domain: "localhost" },
    { remote: "fooo/bar", familiar: "localhost/fooo/bar", full: "localhost/fooo/bar", ambiguous: "localhost/fooo/bar", domain: "localhost" },
    { remote: "fooo", familiar: "LOCALDOMAIN/fooo", full: "LOCALDOMAIN/fooo", ambiguous: "LOCALDOMAIN/fooo", domain: "LOCALDOMAIN" },
    { remote: "fooo/bar", familiar: "LOCALDOMAIN/fooo/bar", full: "LOCALDOMAIN/fooo/bar", ambiguous: "LOCALDOMAIN/fooo/bar", domain: "LOCALDOMAIN" },
    { remote: "fooo/bar", familiar: "fooo/bar", full: "docker.io/fooo/bar", ambiguous: "index.docker.io/fooo/bar", domain: "docker.io" },
    { remote: "library/ubuntu", familiar: "ubuntu", full: "docker.io/library/ubuntu", ambiguous: "library/ubuntu", domain: "docker.io" },
    { remote: "nonlibrary/ubuntu", familiar: "nonlibrary/ubuntu", full: "docker.io/nonlibrary/ubuntu", domain: "docker.io" },
    { remote: "other/library", familiar: "other/library", full: "docker.io/other/library", domain: "docker.io" },
    { remote: "private/moonbase", familiar: "127.0.0.1:8000/private/moonbase", full: "127.0.0.1:8000/private/moonbase", domain: "127.0.0.1:8000" },
    { remote: "privatebase", familiar: "127.0.0.1:8000/privatebase", full: "127.0.0.1:8000/privatebase", domain: "127.0.0.1:8000" },
    { remote: "private/moonbase", familiar: "example.com/private/moonbase", full: "example.com/private/moonbase", domain: "example.com" },
    { remote: "privatebase", familiar: "example.com/privatebase", full: "example.com/privatebase", domain: "example.com" },
    { remote: "private/moonbase", familiar: "example.com:8000/private/moonbase", full: "example.com:8000/private/moonbase", domain: "example.com:8000" },
    { remote: "privatebasee", familiar: "example.com:8000/privatebasee", full: "example.com:8000/privatebasee", domain: "example.com:8000" },
    {
      remote: "library/ubuntu-12.04-base",
      familiar: "ubuntu-12.04-base",
      full: "docker.io/library/ubuntu-12.04-base",
      ambiguous: "index.docker.io/library/ubuntu-12.04-base",
      domain: "docker.io",
    },
    { remote: "library/foo", familiar: "foo", full: "docker.io/library/foo", ambiguous: "docker.io/foo", domain: "docker.io" },
    { remote: "library/foo/bar", familiar: "library/foo/bar", full: "docker.io/library/foo/bar", domain: "docker.io" },
    { remote: "store/foo/bar", familiar: "store/foo/bar", full: "docker.io/store/foo/bar", domain: "docker.io" },
    // An uppercase first component is taken for a registry host.
    { remote: "bar", familiar: "Foo/bar", full: "Foo/bar", domain: "Foo" },
    { remote: "bar", familiar: "FOO/bar", full: "FOO/bar", domain: "FOO" },
  ];
  for (const c of cases) {
    for (const input of [c.familiar, c.full, ...(c.ambiguous ? [c.ambiguous] : [])]) {
      const ref = parseNormalizedNamed(input);
      assert.equal(familiarName(ref), c.familiar, `${input}: familiar name`);
      assert.equal(formatReference(ref), c.full, `${input}: full name`);
      assert.equal(ref.domain, c.domain, `${input}: domain`);
      assert.equal(ref.path, c.remote, `${input}: remote name`);
    }
  }

  // TestParseReferenceWithTagAndDigest.
  const short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
  const ref = parseNormalizedNamed(short);
  assert.equal(formatReference(ref), `docker.io/library/${short}`);
  assert.ok(ref.tag && ref.digest);
  assert.equal(familiarString(ref), short);
});

test("parseNormalizedNamed splits the registry off (TestNormalizedSplitHostname)", () => {
  const cases: Array<[string, string, string]> = [
    ["test.com/foo", "test.com", "foo"],
    ["test_com/foo", "docker.io", "test_com/foo"],
    ["docker/migrator", "docker.io", "docker/migrator"],
    ["test.com:8080/foo", "test.com:8080", "foo"],
    ["test-com:8080/foo", "test-com:8080", "foo"],
    ["foo", "docker.io", "library/foo"],
    ["xn--n3h.com/foo", "xn--n3h.com", "foo"],
    ["xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"],
    ["docker.io/foo", "docker.io", "library/foo"],
    ["docker.io/library/foo", "docker.io", "library/foo"],
    ["docker.io/library/foo/bar", "docker.io", "library/foo/bar"],
  ];
  for (const [input, domain, path] of cases) {
    const ref = parseNormalizedNamed(input);
    assert.deepEqual([ref.domain, ref.path], [domain, path], input);
  }
});

test("parseAnyReference takes IDs, digests and names (TestParseAnyReference)", () => {
  const dg = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
  const cases: Array<[string, string, ImageReference?]> = [
    ["redis", "docker.io/library/redis"],
    ["redis:latest", "docker.io/library/redis:latest"],
    ["docker.io/library/redis:latest", "docker.io/library/redis:latest"],
    [`redis@sha256:${dg}`, `docker.io/library/redis@sha256:${dg}`],
    [`docker.io/library/redis@sha256:${dg}`, `docker.io/library/redis@sha256:${dg}`],
    ["dmcgowan/myapp", "docker.io/dmcgowan/myapp"],
    ["dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"],
    ["docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest"],
    [`dmcgowan/myapp@sha256:${dg}`, `docker.io/dmcgowan/myapp@sha256:${dg}`],
    [`docker.io/dmcgowan/myapp@sha256:${dg}`, `docker.io/dmcgowan/myapp@sha256:${dg}`],
    [dg, `sha256:${dg}`, { domain: "", path: "", digest: `sha256:${dg}` }],
    [`sha256:${dg}`, `sha256:${dg}`, { domain: "", path: "", digest: `sha256:${dg}` }],
    [dg.slice(0, -1), `docker.io/library/${dg.slice(0, -1)}`],
    ["dbcc1", "docker.io/library/dbcc1"],
  ];
  for (const [input, equivalent, expected] of cases) {
    const ref = parseAnyReference(input);
    assert.equal(formatReference(ref), equivalent, input);
    assert.deepEqual(ref, expected ?? parseReference(equivalent), input);
  }
});

test("parseDockerRef adds latest, keeps only the digest of tag@digest (TestParseDockerRef)", () => {
  const d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
  const cases: Array<[string, string]> = [
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:latest", "docker.io/library/busybox:latest"],
    [`busybox@${d}`, `docker.io/library/busybox@${d}`],
    ["library/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/library/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/busybox:latest", "docker.io/library/busybox:latest"],
    ["library/busybox:latest", "docker.io/library/busybox:latest"],
    ["docker.io/library/busybox:latest", "docker.io/library/busybox:latest"],
    ["gcr.io/library/busybox", "gcr.io/library/busybox:latest"],
    [`gcr.io/library/busybox:latest@${d}`, `gcr.io/library/busybox@${d}`],
  ];
  for (const [input, expected] of cases) {
    const out = formatReference(parseDockerRef(input));
    assert.equal(out, expected, input);
    assert.equal(formatReference(parseReference(out)), out, "the result is a valid reference");
  }
});

test("the domain pattern (TestDomainRegexp)", () => {
  const cases: Array<[string, boolean]> = [
    ["test.com", true],
    ["test.com:10304", true],
    ["test.com:http", false],
    ["localhost", true],
    ["localhost:8080", true],
    ["a", true],
    ["a.b", true],
    ["ab.cd.com", true],
    ["a-b.com", true],
    ["-ab.com", false],
    ["ab-.com", false],
    ["ab.c-om", true],
    ["ab.-com", false],
    ["ab.com-", false],
    ["0101.com", true],
    ["001a.com", true],
    ["b.gbc.io:443", true],
    ["b.gbc.io", true],
    ["xn--n3h.com", true],
    ["Asdf.com", true],
    ["192.168.1.1:75050", true],
    ["192.168.1.1:750050", true],
    ["[fd00:1:2::3]:75050", true],
    ["[fd00:1:2::3]75050", false],
    ["[fd00:1:2::3]::75050", false],
    ["[fd00:1:2::3%eth0]:75050", false],
    ["[fd00123123123]:75050", true],
    ["[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true],
    ["[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true],
    ["fd00:1:2::3:75050", false],
  ];
  for (const [input, match] of cases) assert.equal(referencePatterns.domain.test(input), match, input);
});

/** Go's FindStringSubmatch: the groups, "" for one that took no part. */
function subs(re: RegExp, input: string): string[] | null {
  const m = re.exec(input);
  if (!m) return null;
  assert.equal(m[0], input);
  return m.slice(1).map((s) => s ?? "");
}

test("the name pattern and its domain/path split (TestFullNameRegexp)", () => {
  const cases: Array<[string, [string, string] | null | true]> = [
    ["", null],
    ["short", ["", "short"]],
    ["simple/name", ["simple", "name"]],
    ["library/ubuntu", ["library", "ubuntu"]],
    ["docker/stevvooe/app", ["docker", "stevvooe/app"]],
    ["aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb", ["aa", "aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb"]],
    ["aa/aa/bb/bb/bb", ["aa", "aa/bb/bb/bb"]],
    ["a/a/a/a", ["a", "a/a/a"]],
    ["a/a/a/a/", null],
    ["a//a/a", null],
    ["a", ["", "a"]],
    ["a/aa", ["a", "aa"]],
    ["a/aa/a", ["a", "aa/a"]],
    ["foo.com", ["", "foo.com"]],
    ["foo.com/", null],
    ["foo.com:8080/bar", ["foo.com:8080", "bar"]],
    ["foo.com:http/bar", null],
    ["foo.com/bar", ["foo.com", "bar"]],
    ["foo.com/bar/baz", ["foo.com", "bar/baz"]],
    ["localhost:8080/bar", ["localhost:8080", "bar"]],
    ["sub-dom1.foo.com/bar/baz/quux", ["sub-dom1.foo.com", "bar/baz/quux"]],
    ["blog.foo.com/bar/baz", ["blog.foo.com", "bar/baz"]],
    ["a^a", null],
    ["aa/asdf$$^/aa", null],
    ["asdf$$^/aa", null],
    ["aa-a/a", ["aa-a", "a"]],
    [`${"a/".repeat(128)}a`, ["a", `${"a/".repeat(127)}a`]],
    ["a-/a/a/a", null],
    ["foo.com/a-/a/a", null],
    ["-foo/bar", null],
    ["foo/bar-", null],
    ["foo-/bar", null],
    ["foo/-bar", null],
    ["_foo/bar", null],
    ["foo_bar", ["", "foo_bar"]],
    ["foo_bar.com", ["", "foo_bar.com"]],
    ["foo_bar.com:8080", null],
    ["foo_bar.com:8080/app", null],
    ["foo.com/foo_bar", ["foo.com", "foo_bar"]],
    ["____/____", null],
    ["_docker/_docker", null],
    ["docker_/docker_", null],
    ["b.gcr.io/test.example.com/my-app", ["b.gcr.io", "test.example.com/my-app"]],
    ["xn--n3h.com/myimage", ["xn--n3h.com", "myimage"]],
    ["xn--7o8h.com/myimage", ["xn--7o8h.com", "myimage"]],
    ["example.com/xn--7o8h.com/myimage", ["example.com", "xn--7o8h.com/myimage"]],
    ["example.com/some_separator__underscore/myimage", ["example.com", "some_separator__underscore/myimage"]],
    ["example.com/__underscore/myimage", null],
    ["example.com/..dots/myimage", null],
    ["example.com/.dots/myimage", null],
    ["example.com/nodouble..dots/myimage", null],
    ["docker./docker", null],
    [".docker/docker", null],
    ["docker-/docker", null],
    ["-docker/docker", null],
    ["do..cker/docker", null],
    ["do__cker:8080/docker", null],
    ["do__cker/docker", ["", "do__cker/docker"]],
    ["registry.io/foo/project--id.module--name.ver---sion--name", ["registry.io", "foo/project--id.module--name.ver---sion--name"]],
    ["Asdf.com/foo/bar", true],
    ["Foo/FarB", null],
  ];
  for (const [input, expected] of cases) {
    const got = subs(referencePatterns.name, input);
    if (expected === null) assert.equal(got, null, `${input} should not match`);
    else if (expected === true) assert.ok(got, `${input} should match`);
    else assert.deepEqual(got, expected, input);
  }
});

test("the reference pattern's name, tag and digest (TestReferenceRegexp)", () => {
  const d = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";
  const cases: Array<[string, [string, string, string] | null]> = [
    ["registry.com:8080/myapp:tag", ["registry.com:8080/myapp", "tag", ""]],
    [`registry.com:8080/myapp@${d}`, ["registry.com:8080/myapp", "", d]],
    [`registry.com:8080/myapp:tag2@${d}`, ["registry.com:8080/myapp", "tag2", d]],
    ["registry.com:8080/myapp@sha256:badbadbadbad", null],
    ["registry.com:8080/myapp:invalid~tag", null],
    ["bad_hostname.com:8080/myapp:tag", null],
    // localhost without a path is a name: 8080 is its tag.
    [`localhost:8080@${d}`, ["localhost", "8080", d]],
    [`localhost:8080/name@${d}`, ["localhost:8080/name", "", d]],
    [`localhost:http/name@${d}`, null],
    [`localhost@${d}`, ["localhost", "", d]],
    ["registry.com:8080/myapp@bad", null],
    ["registry.com:8080/myapp@2bad", null],
  ];
  for (const [input, expected] of cases) assert.deepEqual(subs(referencePatterns.reference, input), expected, input);
});

test("the image ID pattern (TestIdentifierRegexp)", () => {
  const cases: Array<[string, boolean]> = [
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", true],
    ["7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C", false],
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf", false],
    ["sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", false],
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482", false],
  ];
  for (const [input, match] of cases) assert.equal(referencePatterns.identifier.test(input), match, input);
});

test("checkImageName: one line naming the value and the rule", () => {
  const bad: Array<[string, RegExp]> = [
    ["Foo:bar", /^invalid tag "Foo:bar": repository name must be lowercase$/],
    ["team/App:1", /^invalid tag "team\/App:1": repository name must be lowercase$/],
    ["my image", /^invalid tag "my image": invalid reference format: it contains white space$/],
    ["", /^invalid tag "": the image name is empty$/],
    ["app:-bad", /^invalid tag "app:-bad": invalid reference format: tag "-bad" must be 1 to 128 letters/],
    [`app:${"x".repeat(129)}`, /: tag "x{129}" must be 1 to 128/],
    ["app@sha256:abc", /^invalid tag "app@sha256:abc": invalid reference format: digest "sha256:abc" must be ALGORITHM:HEX/],
    [`app@sha256:${"f".repeat(63)}`, /^invalid tag "app@sha256:f{63}": a sha256 digest has 64 hex digits, not 63$/],
    [`app@sha256:${"F".repeat(64)}`, /invalid sha256 digest: use lowercase hex digits/],
    [`app@md5:${"f".repeat(32)}`, /unsupported digest algorithm "md5"/],
    ["https://example.com/app", /an image name has no URL scheme/],
    ["app//x", /repository name "app\/\/x" is not valid/],
    ["a".repeat(250), /repository name must not be more than 255 characters \(it has 258\)/],
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", /is an image ID, not a repository name/],
    ["a\nb", /^invalid tag "a\\nb": invalid reference format: it contains white space$/],
  ];
  for (const [name, re] of bad) {
    assert.throws(
      () => checkImageName(name, "tag"),
      (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes("\n"),
      name,
    );
  }
  assert.equal(formatReference(checkImageName("localhost:5000/team/app:1.2", "tag")), "localhost:5000/team/app:1.2");
  assert.equal(formatReference(checkImageName("app", "tag")), "docker.io/library/app");
});

test("a long hostile name is answered quickly", () => {
  const t = Date.now();
  for (const s of ["a-".repeat(5000) + "!", "a.".repeat(5000) + "/" + "a_".repeat(5000) + ":", "[" + ":".repeat(10000), `${"a/".repeat(5000)}A`]) {
    assert.ok(reasonOf(() => parseNormalizedNamed(s)));
    assert.ok(reasonOf(() => parseReference(s)));
  }
  assert.ok(Date.now() - t < 1000, `${Date.now() - t} ms`);
});

test("tags, output names, cache refs and compose images are checked before any build", () => {
  const usage = (fn: () => unknown, re: RegExp): void => assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message), String(re));

  usage(() => exporters({ context: ".", tags: ["ok", "Foo:bar"] }), /^invalid tag "Foo:bar": repository name must be lowercase$/);
  usage(() => exporters({ context: ".", tags: ["app:1 2"] }), /^invalid tag "app:1 2": invalid reference format: it contains white space$/);
  usage(() => exporters({ context: ".", tags: [""], push: true }), /^invalid tag "": the image name is empty$/);
  usage(
    () => exporters({ context: ".", outputs: [{ type: "image", attrs: { name: "reg/ok,reg/Bad:x" } }] }),
    /^invalid image name "reg\/Bad:x" in an output's name=: repository name must be lowercase$/,
  );
  usage(
    () => exporters({ context: ".", outputs: [{ type: "image", attrs: { name: "a,,b" } }] }),
    /invalid image name "" in an output's name=: the image name is empty/,
  );
  usage(
    () => exporters({ context: ".", outputs: [{ type: "image", attrs: { push: "1" } }] }),
    /^an image output that pushes needs a name: give --tag NAME or name=NAME$/,
  );
  assert.deepEqual(exporters({ context: ".", tags: ["localhost:5000/a:1", "b"] }), [
    { type: "image", attrs: { name: "localhost:5000/a:1,b" }, target: "none" },
  ]);

  usage(() => parseOutput("type=image,name=Bad"), /^invalid image name "Bad" in --output "type=image,name=Bad": repository name must be lowercase$/);
  usage(() => parseCacheEntries("Reg/App", "--cache-from"), /^invalid image reference "Reg\/App" in --cache-from: repository name must be lowercase$/);
  usage(
    () => parseCacheEntries("type=registry,ref=a:-x", "--cache-to"),
    /^invalid ref "a:-x" in --cache-to "type=registry,ref=a:-x": invalid reference format: tag "-x"/,
  );
  usage(() => parseCacheEntries("type=registry,mode=max", "--cache-to"), /^--cache-to "type=registry,mode=max" has no ref=: use type=registry,ref=REF/);
  assert.deepEqual(parseCacheEntries("type=local,src=/tmp/x", "--cache-from"), [{ type: "local", attrs: { src: "/tmp/x" } }]);

  const compose =
    (yaml: string): (() => unknown) =>
    () => {
      const dir = fileTree("bk-ref-compose-", { "compose.yaml": yaml, Dockerfile: "FROM scratch\n" });
      try {
        return planCompose(loadCompose({ workingDir: dir, env: {} }), undefined);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
  usage(compose("services:\n  web:\n    image: Web:1\n    build: .\n"), /^invalid image "Web:1" in service "web": repository name must be lowercase$/);
  usage(
    compose("services:\n  web:\n    build:\n      context: .\n      tags: [ok, 'x y']\n"),
    /^invalid build.tags entry "x y" in service "web": invalid reference format/,
  );
  usage(
    compose("services:\n  web:\n    build:\n      context: .\n      cache_from: [reg/X]\n"),
    /^invalid image reference "reg\/X" in service "web" build.cache_from: repository name must be lowercase$/,
  );
});
