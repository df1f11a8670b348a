import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_ADDRESS, parseAddress, resolveAddress, resolveTls } from "../../src/transport/address.js";
import { UsageError } from "../../src/errors.js";
import { tempDir } from "../helpers/files.js";

test("parseAddress accepts unix and tcp forms", () => {
  assert.deepEqual(parseAddress("unix:///run/buildkit/buildkitd.sock"), {
    kind: "unix",
    path: "/run/buildkit/buildkitd.sock",
    address: "unix:///run/buildkit/buildkitd.sock",
  });
  assert.deepEqual(parseAddress("tcp://127.0.0.1:1234"), { kind: "tcp", host: "127.0.0.1", port: 1234, address: "tcp://127.0.0.1:1234" });
  assert.deepEqual(parseAddress("TCP://buildkitd:1234/"), { kind: "tcp", host: "buildkitd", port: 1234, address: "tcp://buildkitd:1234" });
  assert.equal(parseAddress("tcp://[::1]:1234").kind, "tcp");
});

test("parseAddress rejects bad input with a line that names it", () => {
  const cases: Array<[string, RegExp]> = [
    ["/run/buildkit/buildkitd.sock", /invalid buildkitd address "\/run\/buildkit\/buildkitd.sock": expected unix:\/\/\/path/],
    ["unix://relative.sock", /must be absolute/],
    ["tcp://host", /expected tcp:\/\/host:port/],
    ["tcp://host:99999", /port must be between 1 and 65535/],
    ["kube-pod://buildkitd", /unsupported buildkitd address scheme "kube-pod:\/\/"/],
  ];
  for (const [input, re] of cases) {
    assert.throws(
      () => parseAddress(input),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      input,
    );
  }
});

test("resolveAddress: explicit, then BUILDKIT_HOST, then the default", () => {
  assert.equal(resolveAddress("tcp://a:1", { BUILDKIT_HOST: "tcp://b:2" }), "tcp://a:1");
  assert.equal(resolveAddress(undefined, { BUILDKIT_HOST: "tcp://b:2" }), "tcp://b:2");
  assert.equal(resolveAddress("", { BUILDKIT_HOST: "" }), DEFAULT_ADDRESS);
  assert.equal(DEFAULT_ADDRESS, "unix:///run/buildkit/buildkitd.sock");
});

test("resolveTls reads a --tlsdir in either layout and checks combinations", () => {
  const tcp = parseAddress("tcp://127.0.0.1:1234");
  assert.equal(resolveTls(undefined, tcp), undefined);
  assert.equal(resolveTls({}, tcp), undefined);

  const pem = (label: string, body: string): string => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
  const a = tempDir("bk-tls-");
  writeFileSync(join(a, "ca.pem"), pem("CERTIFICATE", "CA"));
  writeFileSync(join(a, "cert.pem"), pem("CERTIFICATE", "CERT"));
  writeFileSync(join(a, "key.pem"), pem("PRIVATE KEY", "KEY"));
  const r = resolveTls({ dir: a }, tcp)!;
  assert.equal(r.ca?.toString(), pem("CERTIFICATE", "CA"));
  assert.equal(r.cert?.toString(), pem("CERTIFICATE", "CERT"));
  assert.equal(r.key?.toString(), pem("PRIVATE KEY", "KEY"));
  assert.equal(r.serverName, "127.0.0.1");

  const b = tempDir("bk-tls-");
  writeFileSync(join(b, "ca.crt"), pem("CERTIFICATE", "CA2"));
  writeFileSync(join(b, "tls.crt"), pem("CERTIFICATE", "CERT2"));
  writeFileSync(join(b, "tls.key"), pem("EC PRIVATE KEY", "KEY2"));
  const r2 = resolveTls({ dir: b, serverName: "buildkitd" }, tcp)!;
  assert.equal(r2.ca?.toString(), pem("CERTIFICATE", "CA2"));
  assert.equal(r2.key?.toString(), pem("EC PRIVATE KEY", "KEY2"));
  assert.equal(r2.serverName, "buildkitd");

  assert.throws(() => resolveTls({ dir: a, caFile: join(a, "ca.pem") }, tcp), /--tlsdir cannot be combined/);
  assert.throws(() => resolveTls({ certFile: join(a, "cert.pem") }, tcp), /--tlscert and --tlskey must be given together/);
  assert.throws(() => resolveTls({ caFile: join(a, "missing.pem") }, tcp), /cannot read CA certificate ".*missing.pem" \(--tlscacert\): no such file/);
  assert.throws(() => resolveTls({ caFile: join(a, "ca.pem") }, parseAddress("unix:///x.sock")), /only used with tcp:\/\//);
  assert.throws(() => resolveTls({ dir: join(a, "nope") }, tcp), /TLS directory ".*nope" \(--tlsdir\) does not exist/);
  assert.throws(() => resolveTls({ serverName: "x" }, tcp), /--tlsservername needs/);
  // A file that is not PEM at all is named here, not left to OpenSSL's "PEM routines::no start line" at the dial.
  writeFileSync(join(a, "der.crt"), Buffer.from([0x30, 0x82, 0x01, 0x0a]));
  assert.throws(
    () => resolveTls({ caFile: join(a, "der.crt") }, tcp),
    (e: Error) =>
      e.message === `CA certificate "${join(a, "der.crt")}" (--tlscacert) is not a PEM file (no "-----BEGIN" line): give the CA certificate in PEM form`,
  );
  assert.throws(
    () => resolveTls({ dir: b, serverName: "buildkitd" }, tcp) && resolveTls({ certFile: join(a, "der.crt"), keyFile: join(a, "key.pem") }, tcp),
    /client certificate .* \(--tlscert\) is not a PEM file/,
  );
});

test("defaultAddress: --addr, BUILDKIT_HOST, buildkitd's socket if it exists, then the Engine when one is configured, else buildkitd's socket", async () => {
  const { defaultAddress, targetsEngine } = await import("../../src/transport/address.js");
  const none = (): boolean => false;
  const only =
    (...paths: string[]) =>
    (p: string): boolean =>
      paths.includes(p);
  assert.equal(defaultAddress("tcp://b:1", { DOCKER_HOST: "unix:///d.sock" }, none), "tcp://b:1");
  assert.equal(defaultAddress(undefined, { BUILDKIT_HOST: "tcp://b:1", DOCKER_HOST: "unix:///d.sock" }, none), "tcp://b:1");
  assert.equal(defaultAddress(undefined, { DOCKER_HOST: "unix:///d.sock" }, only("/run/buildkit/buildkitd.sock")), DEFAULT_ADDRESS, "buildkitd's socket first");
  assert.equal(defaultAddress(undefined, { DOCKER_HOST: "unix:///d.sock" }, none), "docker://");
  assert.equal(defaultAddress(undefined, {}, only("/var/run/docker.sock")), "docker://", "the default Docker socket, as buildx's default builder");
  assert.equal(defaultAddress(undefined, {}, none), DEFAULT_ADDRESS, "nothing at all: buildkitd's socket, which the error names");
  assert.equal(defaultAddress(DEFAULT_ADDRESS, { DOCKER_HOST: "unix:///d.sock" }, none), DEFAULT_ADDRESS, "asked for by name");
  assert.equal(targetsEngine("docker+unix:///x.sock", {}), true);
  assert.equal(targetsEngine("unix:///x.sock", { DOCKER_HOST: "unix:///d.sock" }), false);
});
