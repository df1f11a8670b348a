import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  contextDirName,
  engineConfigured,
  isDockerAddress,
  parseDockerHost,
  resolveEngine,
  type DockerEndpoint,
  type DockerTls,
  type ResolvedEngine,
} from "../../src/docker/host.js";
import { UsageError } from "../../src/errors.js";
import { tempDir } from "../helpers/files.js";

// ---- helpers -------------------------------------------------------------

const SOCK = "/var/run/docker.sock";

function unix(path: string): DockerEndpoint {
  return { kind: "unix", path };
}

function tcp(host: string, port: number, basePath = "", tls?: DockerTls): DockerEndpoint {
  return { kind: "tcp", host, port, basePath, tls };
}

function ssh(host: string, user?: string, port?: number, socketPath?: string): DockerEndpoint {
  return { kind: "ssh", user, host, port, socketPath };
}

/** Asserts a UsageError with exactly this message. */
function throwsUsage(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

/** A docker config dir ($DOCKER_CONFIG) removed when `t` ends. */
function configDir(t: TestContext, config?: unknown): string {
  const dir = tempDir("bk-docker-", t);
  if (config !== undefined) writeFileSync(join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return dir;
}

/** Writes a context as `docker context create` would; `meta` as a string is written raw. */
function writeContext(dir: string, name: string, meta: unknown, tls?: Record<string, string>): { metaFile: string; tlsDir: string } {
  const id = contextDirName(name);
  const metaDir = join(dir, "contexts", "meta", id);
  mkdirSync(metaDir, { recursive: true });
  const metaFile = join(metaDir, "meta.json");
  writeFileSync(metaFile, typeof meta === "string" ? meta : JSON.stringify(meta));
  const tlsDir = join(dir, "contexts", "tls", id, "docker");
  if (tls) {
    mkdirSync(tlsDir, { recursive: true });
    for (const [file, text] of Object.entries(tls)) writeFileSync(join(tlsDir, file), text);
  }
  return { metaFile, tlsDir };
}

function dockerMeta(name: string, host: string, skipTLSVerify = false): unknown {
  return { Name: name, Metadata: { Description: "" }, Endpoints: { docker: { Host: host, SkipTLSVerify: skipTLSVerify } } };
}

function certDir(t: TestContext, files: Record<string, string>): string {
  const dir = tempDir("bk-docker-certs-", t);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

/** The TLS of a resolved tcp endpoint with the buffers as text, for exact comparison. */
function tlsText(r: ResolvedEngine): Record<string, unknown> | undefined {
  assert.equal(r.endpoint.kind, "tcp");
  const tls = r.endpoint.kind === "tcp" ? r.endpoint.tls : undefined;
  if (!tls) return undefined;
  const out: Record<string, unknown> = { verify: tls.verify, serverName: tls.serverName };
  if (tls.ca) out["ca"] = tls.ca.toString();
  if (tls.cert) out["cert"] = tls.cert.toString();
  if (tls.key) out["key"] = tls.key.toString();
  return out;
}

// ---- docker/cli opts/hosts_test.go, as they apply to a client -------------

test("parseDockerHost: docker/cli TestParseHost valid values", () => {
  const valid: Array<[string, DockerEndpoint]> = [
    ["", unix(SOCK)],
    [" ", unix(SOCK)],
    ["  ", unix(SOCK)],
    ["tcp://host:", tcp("host", 2375)],
    ["tcp://", tcp("localhost", 2375)],
    ["tcp://:2375", tcp("localhost", 2375)],
    ["tcp://:2376", tcp("localhost", 2376)],
    ["tcp://0.0.0.0:8080", tcp("0.0.0.0", 8080)],
    ["tcp://192.168.0.0:12000", tcp("192.168.0.0", 12000)],
    ["tcp://192.168:8080", tcp("192.168", 8080)],
    [" tcp://:7777/path ", tcp("localhost", 7777, "/path")],
    ["tcp://docker.com:2375", tcp("docker.com", 2375)],
    ["unix://", unix(SOCK)],
    ["unix://path/to/socket", unix("path/to/socket")],
  ];
  for (const [input, want] of valid) assert.deepEqual(parseDockerHost(input), want, JSON.stringify(input));
});

test("parseDockerHost: docker/cli TestParseHost invalid values, and the ones a client cannot use", () => {
  const invalid: Array<[string, string]> = [
    ["something with spaces", 'invalid docker host "something with spaces": invalid host name "something with spaces"'],
    ["://", 'invalid docker host "://": unsupported scheme "://"; use unix://, tcp:// or ssh://'],
    ["unknown://", 'invalid docker host "unknown://": unsupported scheme "unknown://"; use unix://, tcp:// or ssh://'],
    ["tcp://:port", 'invalid docker host "tcp://:port": invalid port "port" (a port is a number)'],
    ["tcp://invalid:port", 'invalid docker host "tcp://invalid:port": invalid port "port" (a port is a number)'],
    // Valid for the CLI's parser but not dialable: refused here.
    ["tcp://0.0.0.0:1234567890", 'invalid docker host "tcp://0.0.0.0:1234567890": port 1234567890 is not between 1 and 65535'],
    ["tcp://host:0", 'invalid docker host "tcp://host:0": port 0 is not between 1 and 65535'],
    ["tcp://host:65536", 'invalid docker host "tcp://host:65536": port 65536 is not between 1 and 65535'],
    [
      "fd://",
      'invalid docker host "fd://": fd:// is a dockerd listen address (socket activation), not one a client can connect to; use unix://, tcp:// or ssh://',
    ],
    [
      "fd://something",
      'invalid docker host "fd://something": fd:// is a dockerd listen address (socket activation), not one a client can connect to; use unix://, tcp:// or ssh://',
    ],
    ["npipe://", 'invalid docker host "npipe://": npipe:// (a Windows named pipe) is not supported by bk-build; use unix://, tcp:// or ssh://'],
    [
      "npipe:////./pipe/foo",
      'invalid docker host "npipe:////./pipe/foo": npipe:// (a Windows named pipe) is not supported by bk-build; use unix://, tcp:// or ssh://',
    ],
  ];
  for (const [input, message] of invalid) throwsUsage(() => parseDockerHost(input), message);
});

test("parseDockerHost: docker/cli TestParseDockerDaemonHost", () => {
  const valid: Array<[string, DockerEndpoint]> = [
    ["0.0.0.1:", tcp("0.0.0.1", 2375)],
    ["0.0.0.1:5555", tcp("0.0.0.1", 5555)],
    ["0.0.0.1:5555/path", tcp("0.0.0.1", 5555, "/path")],
    ["[::1]:", tcp("::1", 2375)],
    ["[::1]:5555/path", tcp("::1", 5555, "/path")],
    ["[0:0:0:0:0:0:0:1]:", tcp("0:0:0:0:0:0:0:1", 2375)],
    ["[0:0:0:0:0:0:0:1]:5555/path", tcp("0:0:0:0:0:0:0:1", 5555, "/path")],
    [":6666", tcp("localhost", 6666)],
    [":6666/path", tcp("localhost", 6666, "/path")],
    ["tcp://", tcp("localhost", 2375)],
    ["tcp://:7777", tcp("localhost", 7777)],
    ["tcp://:7777/path", tcp("localhost", 7777, "/path")],
    ["unix:///run/docker.sock", unix("/run/docker.sock")],
    ["unix://", unix(SOCK)],
    ["localhost:", tcp("localhost", 2375)],
    ["localhost:5555", tcp("localhost", 5555)],
    ["localhost:5555/path", tcp("localhost", 5555, "/path")],
  ];
  for (const [input, want] of valid) assert.deepEqual(parseDockerHost(input), want, input);
  // (" tcp://:7777/path " and "" are invalid only for the untrimmed inner
  // function; ParseHost, which DOCKER_HOST goes through, trims them.)
  const invalid: Array<[string, string]> = [
    ["tcp:a.b.c.d", 'invalid docker host "tcp:a.b.c.d": invalid port "a.b.c.d" (a port is a number)'],
    ["tcp:a.b.c.d/path", 'invalid docker host "tcp:a.b.c.d/path": invalid port "a.b.c.d" (a port is a number)'],
    ["udp://127.0.0.1", 'invalid docker host "udp://127.0.0.1": unsupported scheme "udp://"; use unix://, tcp:// or ssh://'],
    ["udp://127.0.0.1:2375", 'invalid docker host "udp://127.0.0.1:2375": unsupported scheme "udp://"; use unix://, tcp:// or ssh://'],
    ["tcp://unix:///run/docker.sock", 'invalid docker host "tcp://unix:///run/docker.sock": expected tcp://host[:port][/path]'],
  ];
  for (const [input, message] of invalid) throwsUsage(() => parseDockerHost(input), message);
});

test("parseDockerHost: docker/cli TestParseTCP inputs, with the client's default (localhost:2375)", () => {
  const valid: Array<[string, DockerEndpoint]> = [
    ["tcp://", tcp("localhost", 2375)],
    ["0.0.0.1:", tcp("0.0.0.1", 2375)],
    ["0.0.0.1:5555", tcp("0.0.0.1", 5555)],
    ["0.0.0.1:5555/path", tcp("0.0.0.1", 5555, "/path")],
    [":6666", tcp("localhost", 6666)],
    [":6666/path", tcp("localhost", 6666, "/path")],
    ["tcp://:7777", tcp("localhost", 7777)],
    ["tcp://:7777/path", tcp("localhost", 7777, "/path")],
    ["[::1]:", tcp("::1", 2375)],
    ["[::1]:5555", tcp("::1", 5555)],
    ["[::1]:5555/path", tcp("::1", 5555, "/path")],
    ["[0:0:0:0:0:0:0:1]:", tcp("0:0:0:0:0:0:0:1", 2375)],
    ["[0:0:0:0:0:0:0:1]:5555", tcp("0:0:0:0:0:0:0:1", 5555)],
    ["[0:0:0:0:0:0:0:1]:5555/path", tcp("0:0:0:0:0:0:0:1", 5555, "/path")],
    ["localhost:", tcp("localhost", 2375)],
    ["localhost:5555", tcp("localhost", 5555)],
    ["localhost:5555/path", tcp("localhost", 5555, "/path")],
  ];
  for (const [input, want] of valid) assert.deepEqual(parseDockerHost(input), want, input);
});

test("parseDockerHost: docker/cli TestParseInvalidUnixAddrInvalid", () => {
  throwsUsage(() => parseDockerHost("unix://tcp://127.0.0.1"), 'invalid docker host "unix://tcp://127.0.0.1": expected unix:///path/to/docker.sock');
  throwsUsage(
    () => parseDockerHost("unix://unix://tcp://127.0.0.1"),
    'invalid docker host "unix://unix://tcp://127.0.0.1": expected unix:///path/to/docker.sock',
  );
  // parseSimpleProtoAddr strips a repeated prefix once.
  assert.deepEqual(parseDockerHost("unix://unix:///x.sock"), unix("/x.sock"));
});

test("parseDockerHost: more tcp forms, checked against docker/cli's ParseHost", () => {
  const valid: Array<[string, DockerEndpoint]> = [
    // Missing port = 2375, also for tcp with TLS (GitLab writes :2376 for this reason).
    ["tcp://docker", tcp("docker", 2375)],
    ["docker:2376", tcp("docker", 2376)],
    ["tcp://docker:2376", tcp("docker", 2376)],
    ["tcp://[::1]:2376", tcp("::1", 2376)],
    ["tcp://::1", tcp("::1", 2375)],
    ["tcp://[fe80::1%25eth0]:2375", tcp("fe80::1%eth0", 2375)],
    ["tcp://HOST:2375", tcp("HOST", 2375)],
    ["tcp://host:08", tcp("host", 8)],
    // The user part, query and fragment are dropped, as ParseTCPAddr does.
    ["tcp://user@host:1", tcp("host", 1)],
    ["tcp://host:2375/a/b?x=1#f", tcp("host", 2375, "/a/b")],
    // Base paths are cleaned as Go's path.Join does when it adds the API path.
    ["tcp://host:2375/", tcp("host", 2375)],
    ["host:2375/base/", tcp("host", 2375, "/base")],
    ["tcp://h:1/a/./b/../", tcp("h", 1, "/a")],
    // A schemeless path is a tcp value: the CLI dials localhost:2375 with it as base path.
    ["/var/run/docker.sock", tcp("localhost", 2375, "/var/run/docker.sock")],
    ["unix:", tcp("unix", 2375)],
    ["unix:///", unix("/")],
  ];
  for (const [input, want] of valid) assert.deepEqual(parseDockerHost(input), want, input);
  const invalid: Array<[string, string]> = [
    ["tcp://[::1]", 'invalid docker host "tcp://[::1]": an IPv6 address needs a port here: tcp://[::1]:2375'],
    ["tcp://[::1", `invalid docker host "tcp://[::1": missing ']' after an IPv6 address`],
    ["tcp://[nope]:1", 'invalid docker host "tcp://[nope]:1": "[nope]" is not an IPv6 address'],
    ["tcp://[::1]x:1", 'invalid docker host "tcp://[::1]x:1": invalid port "x:1" after the host'],
    ["tcp://a:b:1", 'invalid docker host "tcp://a:b:1": invalid host "a:b:1"'],
    ["tcp://host:-1", 'invalid docker host "tcp://host:-1": invalid port "-1" (a port is a number)'],
    [
      "TCP://host:2375",
      'invalid docker host "TCP://host:2375": unsupported scheme "TCP://" (docker host schemes are lower case); use unix://, tcp:// or ssh://',
    ],
    ["tcp://h%20st:1", 'invalid docker host "tcp://h%20st:1": invalid host name "h%20st"'],
  ];
  for (const [input, message] of invalid) throwsUsage(() => parseDockerHost(input), message);
});

test("parseDockerHost: ssh:// as the CLI's connection helper reads it", () => {
  const valid: Array<[string, DockerEndpoint]> = [
    ["ssh://host", ssh("host")],
    ["ssh://user@host", ssh("host", "user")],
    ["ssh://@host", ssh("host")],
    ["ssh://u%20x@host", ssh("host", "u x")],
    ["ssh://host:2222/var/run/docker.sock", ssh("host", undefined, 2222, "/var/run/docker.sock")],
    ["ssh://host/", ssh("host")],
    ["ssh://host:/", ssh("host")],
    ["ssh://host?", ssh("host")],
    ["ssh://u@[::1]:2222/run/docker.sock/", ssh("::1", "u", 2222, "/run/docker.sock/")],
    [" ssh://me@build.example.com ", ssh("build.example.com", "me")],
  ];
  for (const [input, want] of valid) assert.deepEqual(parseDockerHost(input), want, input);
  const invalid: Array<[string, string]> = [
    ["ssh://user:pw@host", 'invalid docker host "ssh://user:pw@host": a password in an ssh:// address is not supported; use an SSH key or agent'],
    ["ssh://user:@host", 'invalid docker host "ssh://user:@host": a password in an ssh:// address is not supported; use an SSH key or agent'],
    ["ssh://host?x=1", 'invalid docker host "ssh://host?x=1": query parameters are not allowed in an ssh:// address ("?x=1")'],
    ["ssh://host#f", 'invalid docker host "ssh://host#f": fragments are not allowed in an ssh:// address ("#f")'],
    ["ssh://", 'invalid docker host "ssh://": no host name (expected ssh://[user@]host[:port][/path/to/docker.sock])'],
    ["ssh://host:abc", 'invalid docker host "ssh://host:abc": invalid port "abc" (a port is a number)'],
    ["ssh://host:70000", 'invalid docker host "ssh://host:70000": port 70000 is not between 1 and 65535'],
    ["ssh://::1", 'invalid docker host "ssh://::1": an IPv6 address needs brackets: ssh://[::1]'],
    ["ssh://%zz@host", 'invalid docker host "ssh://%zz@host": invalid user "%zz"'],
  ];
  for (const [input, message] of invalid) throwsUsage(() => parseDockerHost(input), message);
});

test("parseDockerHost with TLS: empty = tcp://localhost:2376, TLS only on tcp, serverName = host", () => {
  const tls: DockerTls = { verify: true, serverName: "" };
  assert.deepEqual(parseDockerHost("", tls), tcp("localhost", 2376, "", { verify: true, serverName: "localhost" }));
  assert.deepEqual(parseDockerHost("  ", tls), tcp("localhost", 2376, "", { verify: true, serverName: "localhost" }));
  // tcp:// alone keeps the plain default even with TLS (only an empty host defaults to TLS).
  assert.deepEqual(parseDockerHost("tcp://", tls), tcp("localhost", 2375, "", { verify: true, serverName: "localhost" }));
  assert.deepEqual(parseDockerHost("tcp://[::1]:2376", tls), tcp("::1", 2376, "", { verify: true, serverName: "::1" }));
  assert.deepEqual(parseDockerHost("tcp://h:1", { verify: false, serverName: "other" }), tcp("h", 1, "", { verify: false, serverName: "other" }));
  assert.deepEqual(parseDockerHost("unix:///x.sock", tls), unix("/x.sock"));
  assert.deepEqual(parseDockerHost("ssh://h", tls), ssh("h"));
});

// ---- resolveEngine: where docker:// leads ---------------------------------

test("docker:// with nothing configured is the default socket", (t) => {
  const dir = configDir(t);
  assert.deepEqual(resolveEngine("docker://", { env: { DOCKER_CONFIG: dir } }), {
    endpoint: unix(SOCK),
    address: "docker+unix:///var/run/docker.sock",
    source: "default",
  });
  // HOME/.docker is the config dir when DOCKER_CONFIG is unset.
  const home = tempDir("bk-docker-home-", t);
  mkdirSync(join(home, ".docker"));
  writeFileSync(join(home, ".docker", "config.json"), JSON.stringify({ currentContext: "nope" }));
  throwsUsage(
    () => resolveEngine("docker://", { env: { HOME: home } }),
    `docker context "nope" not found (no ${join(home, ".docker", "contexts", "meta", contextDirName("nope"), "meta.json")}); run "docker context ls"`,
  );
});

test("precedence: DOCKER_HOST beats DOCKER_CONTEXT beats currentContext beats the default", (t) => {
  const dir = configDir(t, { auths: {}, currentContext: "fromconfig" });
  writeContext(dir, "fromconfig", dockerMeta("fromconfig", "tcp://config-host:2375"));
  writeContext(dir, "fromenv", dockerMeta("fromenv", "ssh://me@env-host"));

  const all = { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://env-docker-host:2375", DOCKER_CONTEXT: "fromenv" };
  assert.deepEqual(resolveEngine("docker://", { env: all }), {
    endpoint: tcp("env-docker-host", 2375),
    address: "docker+tcp://env-docker-host:2375",
    source: "DOCKER_HOST",
  });
  assert.deepEqual(resolveEngine("docker://", { env: { ...all, DOCKER_HOST: "" } }), {
    endpoint: ssh("env-host", "me"),
    address: "docker+ssh://me@env-host",
    source: 'context "fromenv"',
  });
  assert.deepEqual(resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_CONTEXT: "" } }), {
    endpoint: tcp("config-host", 2375),
    address: "docker+tcp://config-host:2375",
    source: 'context "fromconfig"',
  });
  // A blank DOCKER_HOST is non-empty: it forces the default context, which is the default socket.
  assert.deepEqual(resolveEngine("docker://", { env: { ...all, DOCKER_HOST: " " } }), {
    endpoint: unix(SOCK),
    address: "docker+unix:///var/run/docker.sock",
    source: "DOCKER_HOST",
  });
  // docker://NAME is --context NAME: it beats DOCKER_HOST.
  assert.equal(resolveEngine("docker://fromconfig", { env: all }).address, "docker+tcp://config-host:2375");
});

test('the "default" context is DOCKER_HOST or the default socket', (t) => {
  const dir = configDir(t, { currentContext: "default" });
  assert.deepEqual(resolveEngine("docker://", { env: { DOCKER_CONFIG: dir } }), {
    endpoint: unix(SOCK),
    address: "docker+unix:///var/run/docker.sock",
    source: "default",
  });
  assert.deepEqual(resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_CONTEXT: "default" } }).endpoint, unix(SOCK));
  assert.deepEqual(resolveEngine("docker://default", { env: { DOCKER_CONFIG: dir, DOCKER_HOST: "unix:///custom.sock" } }), {
    endpoint: unix("/custom.sock"),
    address: "docker+unix:///custom.sock",
    source: "DOCKER_HOST",
  });
  assert.deepEqual(resolveEngine("docker://default", { env: { DOCKER_CONFIG: dir } }).source, "default");
});

test("a context with TLS files and SkipTLSVerify", (t) => {
  const dir = configDir(t);
  writeContext(dir, "remote", dockerMeta("remote", "tcp://build.example.com:2376", true), { "ca.pem": "CA", "cert.pem": "CERT", "key.pem": "KEY" });
  const r = resolveEngine("docker://remote", { env: { DOCKER_CONFIG: dir, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/nonexistent" } });
  assert.equal(r.address, "docker+tcp://build.example.com:2376");
  assert.equal(r.source, 'context "remote"');
  // The TLS environment does not apply to a named context.
  assert.deepEqual(tlsText(r), { verify: false, serverName: "build.example.com", ca: "CA", cert: "CERT", key: "KEY" });
  // The store directory is the sha256 of the name.
  assert.equal(contextDirName("remote"), "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a");
});

test("context TLS follows load.go: data or SkipTLSVerify turns it on, a half pair is ignored", (t) => {
  const dir = configDir(t);
  writeContext(dir, "plain", dockerMeta("plain", "tcp://h:2375"));
  assert.equal(tlsText(resolveEngine("docker://plain", { env: { DOCKER_CONFIG: dir } })), undefined);

  writeContext(dir, "ca-only", dockerMeta("ca-only", "tcp://h:2376"), { "ca.pem": "CA" });
  assert.deepEqual(tlsText(resolveEngine("docker://ca-only", { env: { DOCKER_CONFIG: dir } })), { verify: true, serverName: "h", ca: "CA" });

  writeContext(dir, "skip-only", dockerMeta("skip-only", "tcp://h:2376", true));
  assert.deepEqual(tlsText(resolveEngine("docker://skip-only", { env: { DOCKER_CONFIG: dir } })), { verify: false, serverName: "h" });

  // An empty docker/ TLS directory is TLS data too: verified against the system roots.
  writeContext(dir, "empty-tls", dockerMeta("empty-tls", "tcp://h:2376"), {});
  assert.deepEqual(tlsText(resolveEngine("docker://empty-tls", { env: { DOCKER_CONFIG: dir } })), { verify: true, serverName: "h" });

  writeContext(dir, "half", dockerMeta("half", "tcp://h:2376"), { "ca.pem": "CA", "cert.pem": "CERT", "other.txt": "x" });
  assert.deepEqual(tlsText(resolveEngine("docker://half", { env: { DOCKER_CONFIG: dir } })), { verify: true, serverName: "h", ca: "CA" });

  // Sockets and ssh never get TLS, whatever the context holds.
  writeContext(dir, "sock", dockerMeta("sock", "unix:///ctx.sock", true), { "ca.pem": "CA" });
  assert.deepEqual(resolveEngine("docker://sock", { env: { DOCKER_CONFIG: dir } }).endpoint, unix("/ctx.sock"));
});

test("context hosts go to the Go client unparsed: no port = 80 or 443, empty = the default socket", (t) => {
  const dir = configDir(t);
  writeContext(dir, "noport", dockerMeta("noport", "tcp://h"));
  assert.equal(resolveEngine("docker://noport", { env: { DOCKER_CONFIG: dir } }).address, "docker+tcp://h:80");
  writeContext(dir, "noport-tls", dockerMeta("noport-tls", "tcp://[::1]", true));
  const r = resolveEngine("docker://noport-tls", { env: { DOCKER_CONFIG: dir } });
  assert.equal(r.address, "docker+tcp://[::1]:443");
  assert.deepEqual(tlsText(r), { verify: false, serverName: "::1" });
  writeContext(dir, "nohost", { Name: "nohost", Endpoints: { docker: { SkipTLSVerify: true } } });
  assert.deepEqual(resolveEngine("docker://nohost", { env: { DOCKER_CONFIG: dir } }).endpoint, unix(SOCK));
  writeContext(dir, "ssh", dockerMeta("ssh", "ssh://me@h:2222/run/docker.sock"));
  assert.deepEqual(resolveEngine("docker://ssh", { env: { DOCKER_CONFIG: dir } }), {
    endpoint: ssh("h", "me", 2222, "/run/docker.sock"),
    address: "docker+ssh://me@h:2222/run/docker.sock",
    source: 'context "ssh"',
  });
  // Go's encoding/json matches struct fields without case; map keys ("docker") exactly.
  writeContext(dir, "lower", { name: "lower", endpoints: { docker: { host: "tcp://lower:1", skiptlsverify: false } } });
  assert.equal(resolveEngine("docker://lower", { env: { DOCKER_CONFIG: dir } }).address, "docker+tcp://lower:1");
});

test("DOCKER_TLS_VERIFY=0 still means verify; DOCKER_TLS is TLS without verifying; DOCKER_CERT_PATH alone is nothing", (t) => {
  const dir = configDir(t);
  const certs = certDir(t, { "ca.pem": "CA", "cert.pem": "CERT", "key.pem": "KEY" });
  const base = { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://h:2376", DOCKER_CERT_PATH: certs };
  const full = { ca: "CA", cert: "CERT", key: "KEY" };
  assert.deepEqual(tlsText(resolveEngine("docker://", { env: { ...base, DOCKER_TLS_VERIFY: "0" } })), { verify: true, serverName: "h", ...full });
  assert.deepEqual(tlsText(resolveEngine("docker://", { env: { ...base, DOCKER_TLS_VERIFY: "false" } })), { verify: true, serverName: "h", ...full });
  assert.deepEqual(tlsText(resolveEngine("docker://", { env: { ...base, DOCKER_TLS: "1" } })), { verify: false, serverName: "h", ...full });
  assert.deepEqual(tlsText(resolveEngine("docker://", { env: { ...base, DOCKER_TLS: "1", DOCKER_TLS_VERIFY: "" } })), {
    verify: false,
    serverName: "h",
    ...full,
  });
  assert.equal(tlsText(resolveEngine("docker://", { env: base })), undefined);
  assert.equal(tlsText(resolveEngine("docker://", { env: { ...base, DOCKER_TLS_VERIFY: "", DOCKER_TLS: "" } })), undefined);
});

test("GitLab DinD: DOCKER_HOST=tcp://docker:2376, DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH → mTLS to docker", (t) => {
  const dir = configDir(t);
  const certs = certDir(t, { "ca.pem": "GITLAB-CA", "cert.pem": "GITLAB-CERT", "key.pem": "GITLAB-KEY" });
  const r = resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://docker:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs } });
  assert.equal(r.address, "docker+tcp://docker:2376");
  assert.equal(r.source, "DOCKER_HOST");
  assert.deepEqual(r.endpoint, {
    kind: "tcp",
    host: "docker",
    port: 2376,
    basePath: "",
    tls: { verify: true, serverName: "docker", ca: Buffer.from("GITLAB-CA"), cert: Buffer.from("GITLAB-CERT"), key: Buffer.from("GITLAB-KEY") },
  });
  // The same without a port is 2375: the CLI does not switch ports for TLS.
  assert.equal(
    resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://docker", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs } }).address,
    "docker+tcp://docker:2375",
  );
});

test("TLS on without DOCKER_HOST: tcp://localhost:2376 with files from the config dir; missing files are left out", (t) => {
  const dir = configDir(t);
  writeFileSync(join(dir, "ca.pem"), "CFG-CA");
  const r = resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_TLS_VERIFY: "1" } });
  assert.equal(r.address, "docker+tcp://localhost:2376");
  assert.equal(r.source, "default");
  // No cert.pem/key.pem: no client certificate.
  assert.deepEqual(tlsText(r), { verify: true, serverName: "localhost", ca: "CFG-CA" });
  // No ca.pem either: the system roots (ca undefined).
  const empty = configDir(t);
  assert.deepEqual(tlsText(resolveEngine("docker://", { env: { DOCKER_CONFIG: empty, DOCKER_TLS: "1" } })), { verify: false, serverName: "localhost" });
  // A half pair in DOCKER_CERT_PATH is no client certificate, as in the CLI.
  const half = certDir(t, { "key.pem": "KEY" });
  assert.deepEqual(tlsText(resolveEngine("docker://", { env: { DOCKER_CONFIG: empty, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: half } })), {
    verify: true,
    serverName: "localhost",
  });
});

test("the TLS environment is ignored for unix and ssh hosts (no files read)", (t) => {
  const dir = configDir(t);
  const env = { DOCKER_CONFIG: dir, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: join(dir, "missing") };
  assert.deepEqual(
    resolveEngine("docker://", { env: { ...env, DOCKER_HOST: "unix:///run/user/1000/docker.sock" } }).endpoint,
    unix("/run/user/1000/docker.sock"),
  );
  assert.deepEqual(resolveEngine("docker://", { env: { ...env, DOCKER_HOST: "ssh://me@h" } }).endpoint, ssh("h", "me"));
  assert.deepEqual(resolveEngine("docker+unix://", { env }).endpoint, unix(SOCK));
});

// ---- explicit docker+SCHEME:// addresses ---------------------------------

test("docker+unix://, docker+tcp://, docker+ssh:// parse as DOCKER_HOST values", (t) => {
  const env = { DOCKER_CONFIG: configDir(t), DOCKER_HOST: "tcp://ignored:1", DOCKER_CONTEXT: "ignored" };
  assert.deepEqual(resolveEngine("docker+unix:///var/run/docker.sock", { env }), {
    endpoint: unix(SOCK),
    address: "docker+unix:///var/run/docker.sock",
    source: "--addr",
  });
  assert.deepEqual(resolveEngine("docker+unix://", { env }).endpoint, unix(SOCK));
  assert.deepEqual(resolveEngine("docker+tcp://h:1234/base", { env }), {
    endpoint: tcp("h", 1234, "/base"),
    address: "docker+tcp://h:1234/base",
    source: "--addr",
  });
  assert.deepEqual(resolveEngine("DOCKER+TCP://h", { env }).endpoint, tcp("h", 2375));
  assert.deepEqual(resolveEngine(" docker+tcp://[::1]:2376 ", { env }).address, "docker+tcp://[::1]:2376");
  assert.deepEqual(resolveEngine("docker+ssh://me@h:22", { env }), {
    endpoint: ssh("h", "me", 22),
    address: "docker+ssh://me@h:22",
    source: "--addr",
  });
  throwsUsage(() => resolveEngine("docker+tcp://h:x", { env }), 'invalid docker address "docker+tcp://h:x": invalid port "x" (a port is a number)');
  throwsUsage(
    () => resolveEngine("docker+npipe:////./pipe/docker_engine", { env }),
    'invalid docker address "docker+npipe:////./pipe/docker_engine": npipe:// (a Windows named pipe) is not supported by bk-build; use unix://, tcp:// or ssh://',
  );
  throwsUsage(
    () => resolveEngine("docker+http://h", { env }),
    'invalid docker address "docker+http://h": unsupported scheme "http://"; use unix://, tcp:// or ssh://',
  );
});

test("docker+tcp:// takes TLS from the options, else from the environment as docker -H does", (t) => {
  const dir = configDir(t);
  const envCerts = certDir(t, { "ca.pem": "ENV-CA", "cert.pem": "ENV-CERT", "key.pem": "ENV-KEY" });
  const mine = certDir(t, { "ca.pem": "MY-CA", "cert.pem": "MY-CERT", "key.pem": "MY-KEY" });
  const env = { DOCKER_CONFIG: dir, DOCKER_TLS: "1", DOCKER_CERT_PATH: envCerts };
  assert.deepEqual(tlsText(resolveEngine("docker+tcp://h:2376", { env })), { verify: false, serverName: "h", ca: "ENV-CA", cert: "ENV-CERT", key: "ENV-KEY" });
  const explicit = { caFile: join(mine, "ca.pem"), certFile: join(mine, "cert.pem"), keyFile: join(mine, "key.pem") };
  assert.deepEqual(tlsText(resolveEngine("docker+tcp://h:2376", { env, tls: explicit })), {
    verify: true,
    serverName: "h",
    ca: "MY-CA",
    cert: "MY-CERT",
    key: "MY-KEY",
  });
  assert.deepEqual(tlsText(resolveEngine("docker+tcp://10.0.0.5:2376", { env, tls: { caFile: join(mine, "ca.pem"), serverName: "docker" } })), {
    verify: true,
    serverName: "docker",
    ca: "MY-CA",
  });
  // --tlsservername alone renames the server of environment TLS.
  assert.deepEqual(tlsText(resolveEngine("docker+tcp://10.0.0.5:2376", { env, tls: { serverName: "docker" } })), {
    verify: false,
    serverName: "docker",
    ca: "ENV-CA",
    cert: "ENV-CERT",
    key: "ENV-KEY",
  });
  // Explicit files turn TLS on, and with no host docker:// goes to localhost:2376.
  assert.equal(resolveEngine("docker://", { env: { DOCKER_CONFIG: dir }, tls: { caFile: join(mine, "ca.pem") } }).address, "docker+tcp://localhost:2376");
  // Empty strings are not options.
  assert.equal(tlsText(resolveEngine("docker+tcp://h:2375", { env: { DOCKER_CONFIG: dir }, tls: { caFile: "", serverName: "" } })), undefined);
});

// ---- errors ---------------------------------------------------------------

test("TLS option errors", (t) => {
  const dir = configDir(t);
  const mine = certDir(t, { "ca.pem": "CA", "cert.pem": "CERT", "key.pem": "KEY" });
  const env = { DOCKER_CONFIG: dir };
  throwsUsage(() => resolveEngine("docker+tcp://h:1", { env, tls: { certFile: join(mine, "cert.pem") } }), "--tlscert and --tlskey must be given together");
  throwsUsage(() => resolveEngine("docker+tcp://h:1", { env, tls: { keyFile: join(mine, "key.pem") } }), "--tlscert and --tlskey must be given together");
  throwsUsage(
    () => resolveEngine("docker+tcp://h:1", { env, tls: { caFile: join(mine, "missing.pem") } }),
    `cannot read CA certificate "${join(mine, "missing.pem")}" (--tlscacert): no such file; check the path`,
  );
  throwsUsage(
    () => resolveEngine("docker+tcp://h:1", { env, tls: { serverName: "x" } }),
    "--tlsservername needs TLS: --tlscacert, --tlscert/--tlskey, DOCKER_TLS_VERIFY or DOCKER_TLS",
  );
  throwsUsage(
    () => resolveEngine("docker+unix:///x.sock", { env, tls: { caFile: join(mine, "ca.pem") } }),
    "TLS options are only used with a tcp:// Docker Engine, not docker+unix:///x.sock (--addr)",
  );
  throwsUsage(
    () => resolveEngine("docker://", { env: { ...env, DOCKER_HOST: "ssh://h" }, tls: { serverName: "x" } }),
    "TLS options are only used with a tcp:// Docker Engine, not docker+ssh://h (DOCKER_HOST)",
  );
  writeContext(dir, "remote", dockerMeta("remote", "tcp://h:2376"));
  throwsUsage(
    () => resolveEngine("docker://remote", { env, tls: { caFile: join(mine, "ca.pem") } }),
    'TLS options (--tlscacert, --tlscert, --tlskey, --tlsservername) cannot be used with docker context "remote": it has TLS settings of its own',
  );
});

test("TLS environment errors name the file and the variable", (t) => {
  const dir = configDir(t);
  const certs = certDir(t, {});
  mkdirSync(join(certs, "ca.pem"));
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs } }),
    `cannot read CA certificate "${join(certs, "ca.pem")}" (DOCKER_CERT_PATH): is a directory; pass a file`,
  );
  const missing = join(dir, "no-such-dir");
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: missing } }),
    `DOCKER_CERT_PATH "${missing}" is not a directory; it should hold ca.pem, cert.pem and key.pem`,
  );
  mkdirSync(join(dir, "cert.pem"));
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: dir, DOCKER_TLS: "1" } }),
    `cannot read client certificate "${join(dir, "cert.pem")}" (the docker config dir, as DOCKER_CERT_PATH is unset): is a directory; pass a file`,
  );
});

test("context errors: not found, broken JSON, wrong shapes, bad host", (t) => {
  const dir = configDir(t);
  const env = { DOCKER_CONFIG: dir };
  const metaOf = (name: string) => join(dir, "contexts", "meta", contextDirName(name), "meta.json");
  throwsUsage(() => resolveEngine("docker://my-ctx", { env }), `docker context "my-ctx" not found (no ${metaOf("my-ctx")}); run "docker context ls"`);
  assert.equal(metaOf("my-ctx"), join(dir, "contexts", "meta", "2e949dbc66d8e770bad3c1d483a32c09f47684977c5793624a441c886e9d1abb", "meta.json"));
  throwsUsage(
    () => resolveEngine("docker://", { env: { ...env, DOCKER_CONTEXT: "gone" } }),
    `docker context "gone" not found (no ${metaOf("gone")}); run "docker context ls"`,
  );

  writeContext(dir, "broken", "{not json");
  throwsUsage(
    () => resolveEngine("docker://broken", { env }),
    new RegExp(`^docker context "broken": context metadata "${esc(metaOf("broken"))}" is not valid JSON \\(.+\\); fix or remove it$`),
  );
  writeContext(dir, "empty", "");
  throwsUsage(
    () => resolveEngine("docker://empty", { env }),
    new RegExp(`^docker context "empty": context metadata "${esc(metaOf("empty"))}" is not valid JSON`),
  );
  writeContext(dir, "array", "[]");
  throwsUsage(() => resolveEngine("docker://array", { env }), `docker context "array": "${metaOf("array")}" is not a JSON object`);
  writeContext(dir, "no-docker", { Name: "no-docker", Endpoints: { kubernetes: {} } });
  throwsUsage(
    () => resolveEngine("docker://no-docker", { env }),
    `docker context "no-docker" has no docker endpoint (Endpoints.docker in "${metaOf("no-docker")}")`,
  );
  writeContext(dir, "upper-key", { Name: "upper-key", Endpoints: { Docker: { Host: "tcp://h:1" } } });
  throwsUsage(
    () => resolveEngine("docker://upper-key", { env }),
    `docker context "upper-key" has no docker endpoint (Endpoints.docker in "${metaOf("upper-key")}")`,
  );
  writeContext(dir, "bad-endpoints", { Endpoints: "x" });
  throwsUsage(
    () => resolveEngine("docker://bad-endpoints", { env }),
    `docker context "bad-endpoints": Endpoints in "${metaOf("bad-endpoints")}" is not a JSON object`,
  );
  writeContext(dir, "bad-host", { Endpoints: { docker: { Host: 5 } } });
  throwsUsage(
    () => resolveEngine("docker://bad-host", { env }),
    `docker context "bad-host": Endpoints.docker.Host in "${metaOf("bad-host")}" must be a string`,
  );
  writeContext(dir, "bad-skip", { Endpoints: { docker: { Host: "tcp://h:1", SkipTLSVerify: "yes" } } });
  throwsUsage(
    () => resolveEngine("docker://bad-skip", { env }),
    `docker context "bad-skip": Endpoints.docker.SkipTLSVerify in "${metaOf("bad-skip")}" must be true or false`,
  );
  const bad: Array<[string, string]> = [
    ["h:2375", "expected unix:///path/to/docker.sock, tcp://host:port or ssh://[user@]host[:port]"],
    ["unix://", "expected unix:///path/to/docker.sock, tcp://host:port or ssh://[user@]host[:port]"],
    ["tcp://h:x", 'invalid port "x" (a port is a number)'],
    ["tcp://::1", "an IPv6 address needs brackets: tcp://[::1]:2376"],
    ["npipe:////./pipe/docker_engine", "npipe:// (a Windows named pipe) is not supported by bk-build; use unix://, tcp:// or ssh://"],
    ["ssh://u:p@h", "a password in an ssh:// address is not supported; use an SSH key or agent"],
  ];
  for (const [host, reason] of bad) {
    writeContext(dir, "bad", dockerMeta("bad", host));
    throwsUsage(() => resolveEngine("docker://bad", { env }), `docker context "bad": invalid host "${host}" (${metaOf("bad")}): ${reason}`);
  }
  writeContext(dir, "unreadable-tls", dockerMeta("unreadable-tls", "tcp://h:1"), {});
  mkdirSync(join(dir, "contexts", "tls", contextDirName("unreadable-tls"), "docker", "ca.pem"));
  // A directory named ca.pem is not a file of the bundle (as ReadDir's IsDir skips it).
  assert.deepEqual(tlsText(resolveEngine("docker://unreadable-tls", { env })), { verify: true, serverName: "h" });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

test("config.json: currentContext read without case, broken files refused with their path", (t) => {
  const a = configDir(t, '{"CurrentContext": "ctx-a"}');
  writeContext(a, "ctx-a", dockerMeta("ctx-a", "tcp://a:1"));
  assert.equal(resolveEngine("docker://", { env: { DOCKER_CONFIG: a } }).source, 'context "ctx-a"');
  // An empty config.json is no settings (Go's json.Decoder stops at EOF).
  const empty = configDir(t, "");
  assert.equal(resolveEngine("docker://", { env: { DOCKER_CONFIG: empty } }).source, "default");
  const nullCtx = configDir(t, { currentContext: null, auths: {} });
  assert.equal(resolveEngine("docker://", { env: { DOCKER_CONFIG: nullCtx } }).source, "default");

  const broken = configDir(t, "{");
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: broken } }),
    new RegExp(`^docker config file "${esc(join(broken, "config.json"))}" is not valid JSON \\(.+\\); fix or remove it$`),
  );
  const arr = configDir(t, "[1]");
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: arr } }),
    `docker config file "${join(arr, "config.json")}" is not a JSON object; fix or remove it`,
  );
  const num = configDir(t, { currentContext: 3 });
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: num } }),
    `docker config file "${join(num, "config.json")}": currentContext must be a string`,
  );
  // config.json is not read when DOCKER_HOST or DOCKER_CONTEXT decides.
  assert.equal(resolveEngine("docker://", { env: { DOCKER_CONFIG: broken, DOCKER_HOST: "unix:///x.sock" } }).address, "docker+unix:///x.sock");
  const dirAsConfig = configDir(t);
  mkdirSync(join(dirAsConfig, "config.json"));
  throwsUsage(
    () => resolveEngine("docker://", { env: { DOCKER_CONFIG: dirAsConfig } }),
    `cannot read docker config file "${join(dirAsConfig, "config.json")}": is a directory; pass a file`,
  );
});

test("address errors", (t) => {
  const env = { DOCKER_CONFIG: configDir(t) };
  throwsUsage(
    () => resolveEngine("tcp://h:1", { env }),
    'not a docker address "tcp://h:1": expected docker://, docker://CONTEXT, docker+unix:///path, docker+tcp://host:port or docker+ssh://[user@]host',
  );
  throwsUsage(
    () => resolveEngine("docker://host:2375", { env }),
    'invalid docker context name "host:2375" in "docker://host:2375": names match ^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$; for an Engine address use docker+unix://, docker+tcp:// or docker+ssh://',
  );
  throwsUsage(() => resolveEngine("docker:///", { env }), /^invalid docker context name "\/" in "docker:\/\/\/"/);
  throwsUsage(
    () => resolveEngine("docker://", { env: { ...env, DOCKER_HOST: "tcp://h:port" } }),
    'invalid DOCKER_HOST "tcp://h:port": invalid port "port" (a port is a number)',
  );
  throwsUsage(
    () => resolveEngine("docker://", { env: { ...env, DOCKER_HOST: "npipe:////./pipe/docker_engine" } }),
    'invalid DOCKER_HOST "npipe:////./pipe/docker_engine": npipe:// (a Windows named pipe) is not supported by bk-build; use unix://, tcp:// or ssh://',
  );
  throwsUsage(
    () => resolveEngine("docker://", { env: { ...env, DOCKER_HOST: "fd://" } }),
    'invalid DOCKER_HOST "fd://": fd:// is a dockerd listen address (socket activation), not one a client can connect to; use unix://, tcp:// or ssh://',
  );
});

test("only the given environment is read, never process.env", (t) => {
  const saved = { host: process.env["DOCKER_HOST"], ctx: process.env["DOCKER_CONTEXT"], verify: process.env["DOCKER_TLS_VERIFY"] };
  const restore = (key: string, value: string | undefined): void => {
    if (value === undefined) Reflect.deleteProperty(process.env, key);
    else process.env[key] = value;
  };
  process.env["DOCKER_HOST"] = "tcp://from-process-env:1";
  process.env["DOCKER_CONTEXT"] = "from-process-env";
  process.env["DOCKER_TLS_VERIFY"] = "1";
  try {
    const dir = configDir(t);
    assert.deepEqual(resolveEngine("docker://", { env: { DOCKER_CONFIG: dir } }).endpoint, unix(SOCK));
    assert.equal(tlsText(resolveEngine("docker+tcp://h:1", { env: { DOCKER_CONFIG: dir } })), undefined);
    assert.equal(
      engineConfigured({ DOCKER_CONFIG: dir }, () => false),
      false,
    );
  } finally {
    restore("DOCKER_HOST", saved.host);
    restore("DOCKER_CONTEXT", saved.ctx);
    restore("DOCKER_TLS_VERIFY", saved.verify);
  }
});

// ---- engineConfigured / isDockerAddress -------------------------------------

test("engineConfigured", (t) => {
  const none = configDir(t);
  const seen: string[] = [];
  const no = (p: string): boolean => {
    seen.push(p);
    return false;
  };
  const yes = (): boolean => true;
  assert.equal(engineConfigured({ DOCKER_CONFIG: none }, no), false);
  assert.deepEqual(seen, [SOCK]);
  assert.equal(engineConfigured({ DOCKER_CONFIG: none }, yes), true);
  assert.equal(engineConfigured({ DOCKER_CONFIG: none, DOCKER_HOST: "tcp://h:1" }, no), true);
  // A blank DOCKER_HOST forces the default context: only the socket counts, not DOCKER_CONTEXT.
  assert.equal(engineConfigured({ DOCKER_CONFIG: none, DOCKER_HOST: " ", DOCKER_CONTEXT: "remote" }, no), false);
  assert.equal(engineConfigured({ DOCKER_CONFIG: none, DOCKER_HOST: " " }, yes), true);
  assert.equal(engineConfigured({ DOCKER_CONFIG: none, DOCKER_CONTEXT: "remote" }, no), true);
  assert.equal(engineConfigured({ DOCKER_CONFIG: none, DOCKER_CONTEXT: "default" }, no), false);
  assert.equal(engineConfigured({ DOCKER_CONFIG: none, DOCKER_CONTEXT: "default" }, yes), true);
  // DOCKER_CONTEXT=default beats a currentContext in config.json.
  const withCtx = configDir(t, { currentContext: "remote" });
  assert.equal(engineConfigured({ DOCKER_CONFIG: withCtx }, no), true);
  assert.equal(engineConfigured({ DOCKER_CONFIG: withCtx, DOCKER_CONTEXT: "default" }, no), false);
  assert.equal(engineConfigured({ DOCKER_CONFIG: configDir(t, { currentContext: "default" }) }, no), false);
  // A broken config.json is what the CLI does with it: ignored (resolveEngine is the one to complain).
  assert.equal(engineConfigured({ DOCKER_CONFIG: configDir(t, "{") }, no), false);
  // Through HOME when DOCKER_CONFIG is unset.
  const home = tempDir("bk-docker-home-", t);
  mkdirSync(join(home, ".docker"));
  writeFileSync(join(home, ".docker", "config.json"), JSON.stringify({ currentContext: "remote" }));
  assert.equal(engineConfigured({ HOME: home }, no), true);
});

test("isDockerAddress", () => {
  for (const yes of [
    "docker://",
    "docker://remote",
    "docker+unix:///var/run/docker.sock",
    "docker+tcp://h:2376",
    "docker+ssh://me@h",
    " DOCKER+TCP://h:1 ",
    "docker+npipe://x",
  ]) {
    assert.equal(isDockerAddress(yes), true, yes);
  }
  for (const no of ["", "docker", "docker:", "unix:///var/run/docker.sock", "tcp://h:1", "ssh://h", "docker-container://b", "kube-pod://p", "dockerx://a"]) {
    assert.equal(isDockerAddress(no), false, no);
  }
});
