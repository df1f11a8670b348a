import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentialLookup } from "../../src/solve/registry-auth.js";
import { parseRegistryAuth } from "../../src/cli/parse-build.js";
import { translateError } from "../../src/transport/connection.js";
import { GrpcStatusError } from "../../src/grpc/frame.js";
import { TransportError } from "../../src/grpc/client.js";
import { tempDir } from "../helpers/files.js";
import { trackHandles } from "../helpers/leaks.js";

function configDir(config: object | string): string {
  const d = tempDir("bk-cfg-");
  writeFileSync(join(d, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return d;
}

function helper(name: string, body: string): string {
  const bin = tempDir("bk-helper-");
  const p = join(bin, `docker-credential-${name}`);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return bin;
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");

test("config.json auths: base64 auth, username/password, identity token; keys with scheme and path; Docker Hub", async () => {
  const dir = configDir({
    auths: {
      "https://index.docker.io/v1/": { auth: b64("hubuser:hub:pass") },
      "http://reg.example:5000/v2/": { username: "u", password: "p" },
      "gitlab.example": { identitytoken: "tok" },
    },
  });
  const find = credentialLookup({ configDir: dir }, {});
  assert.deepEqual(await find("registry-1.docker.io"), { username: "hubuser", secret: "hub:pass" });
  assert.deepEqual(await find("docker.io"), { username: "hubuser", secret: "hub:pass" });
  assert.deepEqual(await find("reg.example:5000"), { username: "u", secret: "p" });
  assert.deepEqual(await find("gitlab.example"), { username: "", secret: "tok" });
  assert.equal(await find("other.example"), undefined);
});

test("explicit credentials win; no config file means anonymous; broken JSON is named", async () => {
  const dir = configDir({ auths: { "r.example": { auth: b64("a:b") } } });
  const find = credentialLookup({ configDir: dir, credentials: { "r.example": { username: "ci", password: "pw" }, "docker.io": { token: "t" } } }, {});
  assert.deepEqual(await find("r.example"), { username: "ci", secret: "pw" });
  assert.deepEqual(await find("registry-1.docker.io"), { username: "", secret: "t" });
  assert.equal(await credentialLookup({ configDir: join(tmpdir(), "bk-no-such-dir") }, {})("r.example"), undefined);
  assert.equal(await credentialLookup({ configDir: false }, {})("r.example"), undefined);
  const bad = configDir("{nope");
  await assert.rejects(credentialLookup({ configDir: bad }, {})("r.example"), new RegExp(`${bad}/config.json is not valid JSON`));
  // DOCKER_CONFIG from the given environment is the default.
  assert.deepEqual(await credentialLookup(undefined, { DOCKER_CONFIG: dir })("r.example"), { username: "a", secret: "b" });
});

test("credential helpers: credHelpers before credsStore, <token> usernames, not-found falls back to auths", async () => {
  const bin = helper(
    "t1",
    `read h; case "$h" in a.example) echo '{"Username":"ua","Secret":"sa"}';; b.example) echo '{"Username":"<token>","Secret":"idtok"}';; *) echo "credentials not found in native keychain"; exit 1;; esac`,
  );
  const dir = configDir({ credsStore: "t1", credHelpers: { "c.example": "missing-helper" }, auths: { "d.example": { auth: b64("ud:sd") } } });
  const find = credentialLookup({ configDir: dir }, { PATH: `${bin}:/usr/bin:/bin` });
  assert.deepEqual(await find("a.example"), { username: "ua", secret: "sa" });
  assert.deepEqual(await find("b.example"), { username: "", secret: "idtok" });
  assert.deepEqual(await find("d.example"), { username: "ud", secret: "sd" });
  await assert.rejects(find("c.example"), /credential helper docker-credential-missing-helper is not installed or not on PATH \(named in .*config.json\)/);
});

test("a helper that hangs times out; one that fails is named with its words", async () => {
  const bin = helper("slow", "sleep 30");
  const dir = configDir({ credsStore: "slow" });
  const t = Date.now();
  const open = trackHandles();
  await assert.rejects(
    credentialLookup({ configDir: dir, helperTimeoutMs: 300 }, { PATH: `${bin}:/usr/bin:/bin` })("x.example"),
    /credential helper docker-credential-slow gave no answer for x\.example within 300 ms/,
  );
  assert.ok(Date.now() - t < 3000);
  // The helper's sleep still holds its end of the pipes: ours are closed.
  assert.deepEqual(await open(1000), [], "nothing of the timed-out helper is left open here");
  const bin2 = helper("sad", "echo 'the keychain is locked' >&2; exit 4");
  await assert.rejects(
    credentialLookup({ configDir: configDir({ credsStore: "sad" }) }, { PATH: `${bin2}:/usr/bin:/bin` })("x.example"),
    /^Error: credential helper docker-credential-sad failed for x\.example: the keychain is locked$/,
  );
});

test("--registry-auth HOST=USER:VAR reads the password from the environment only", () => {
  assert.deepEqual(parseRegistryAuth("registry.gitlab.com=gitlab-ci-token:CI_JOB_TOKEN", { CI_JOB_TOKEN: "t0k" }), [
    "registry.gitlab.com",
    { username: "gitlab-ci-token", password: "t0k" },
  ]);
  assert.deepEqual(parseRegistryAuth("127.0.0.1:5000=:TOKEN", { TOKEN: "x" }), ["127.0.0.1:5000", { token: "x" }]);
  assert.throws(() => parseRegistryAuth("reg=user:hunter2!", {}), /"hunter2!" is not an environment variable name; pass the password through a variable/);
  assert.throws(() => parseRegistryAuth("reg", {}), /use HOST=USER:ENV_VAR/);
  assert.throws(() => parseRegistryAuth("reg=u:NOPE", {}), /environment variable NOPE is not set/);
});

test("an UNAVAILABLE that buildkitd sends is a build failure, not a connection failure", () => {
  const remote = translateError(new GrpcStatusError(14, "registry credentials for r: helper broke", undefined, true), "unix:///x", "Control.Solve");
  assert.equal(remote.message, "failed to solve: registry credentials for r: helper broke");
  const local = translateError(
    new TransportError(14, "connect ECONNREFUSED 127.0.0.1:1", "connect", { nodeCode: "ECONNREFUSED" }),
    "tcp://127.0.0.1:1",
    "Control.Solve",
  );
  assert.match(local.message, /^cannot connect to buildkitd at tcp:\/\/127\.0\.0\.1:1: connection refused/);
});
