/**
 * Registry credentials through the session's Auth service, against a
 * registry that requires a login (docker-registry with htpasswd).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { runCliAsync, testEnv, type RunResult } from "../helpers/env.js";
import { tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { httpGet } from "../helpers/registry.js";

const env = testEnv();

leakCheckEachTest();

function authRegistry(): { host: string; user: string; password: string } {
  assert.ok(env.authRegistry, "BK_TEST_AUTH_REGISTRY is not set: scripts/test-env.sh up starts the login-only registry");
  return env.authRegistry;
}

function dir(prefix: string): string {
  return tempDir(prefix);
}

/** A context whose image is pushed to the login-only registry. */
function project(from = `${env.registry}/bk-test/busybox:latest`, run = "true"): { ctx: string; tag: string } {
  const ctx = dir("bk-auth-ctx-");
  const tag = randomUUID();
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${from}\nRUN echo ${tag} > /tag && ${run}\n`);
  return { ctx, tag };
}

/** A Docker config directory with this config.json. */
function dockerConfig(config: object): string {
  const d = dir("bk-docker-config-");
  writeFileSync(join(d, "config.json"), JSON.stringify(config));
  return d;
}

async function build(ctx: string, image: string, args: string[], extraEnv: Record<string, string | undefined>): Promise<RunResult> {
  return runCliAsync(["build", "--progress", "plain", ...args, "--output", `type=image,name=${image},push=true,registry.insecure=true`, ctx], {
    env: { DOCKER_CONFIG: dockerConfig({}), ...extraEnv },
    timeoutMs: 120_000,
  });
}

/** The manifest is in the registry (checked with the login). */
async function pushed(host: string, user: string, password: string, repo: string, tag: string): Promise<boolean> {
  const res = await httpGet(`http://${host}/v2/${repo}/manifests/${tag}`, {
    Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
    Accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json",
  });
  return res.ok;
}

function noPassword(r: RunResult, password: string): void {
  assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), "the password never shows");
}

test("push without credentials fails clearly; with config.json auths it lands", async () => {
  const reg = authRegistry();
  const p = project();
  const image = `${reg.host}/bk-test/pushed:${p.tag}`;
  const denied = await build(p.ctx, image, [], {});
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /^error: failed to solve: .*401 Unauthorized/m);
  assert.equal(await pushed(reg.host, reg.user, reg.password, "bk-test/pushed", p.tag), false);

  const auth = Buffer.from(`${reg.user}:${reg.password}`).toString("base64");
  const ok = await build(p.ctx, image, [], { DOCKER_CONFIG: dockerConfig({ auths: { [`http://${reg.host}`]: { auth } } }) });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(await pushed(reg.host, reg.user, reg.password, "bk-test/pushed", p.tag));
  noPassword(ok, reg.password);
});

test("credentials from a credential helper on PATH (credHelpers), asked once per host", async () => {
  const reg = authRegistry();
  const bin = dir("bk-cred-helper-");
  const calls = join(bin, "calls.log");
  const helper = join(bin, "docker-credential-bktest");
  writeFileSync(
    helper,
    `#!/bin/sh\nread host\necho "$1 $host" >> ${calls}\n` +
      `if [ "$host" = "${reg.host}" ]; then printf '{"ServerURL":"%s","Username":"${reg.user}","Secret":"${reg.password}"}' "$host"; exit 0; fi\n` +
      `echo "credentials not found in native keychain"; exit 1\n`,
  );
  chmodSync(helper, 0o755);
  const p = project();
  const r = await build(p.ctx, `${reg.host}/bk-test/pushed:${p.tag}`, [], {
    DOCKER_CONFIG: dockerConfig({ credHelpers: { [reg.host]: "bktest" } }),
    PATH: `${bin}:${process.env["PATH"] ?? ""}`,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await pushed(reg.host, reg.user, reg.password, "bk-test/pushed", p.tag));
  const lines = readFileSync(calls, "utf8").trim().split("\n");
  assert.deepEqual(lines, [`get ${reg.host}`], "one helper call for the whole build");
  noPassword(r, reg.password);
});

test("a failing credential helper is named in the error", async () => {
  const reg = authRegistry();
  const bin = dir("bk-cred-helper-");
  const helper = join(bin, "docker-credential-broken");
  writeFileSync(helper, "#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n");
  chmodSync(helper, 0o755);
  const p = project();
  const r = await build(p.ctx, `${reg.host}/bk-test/pushed:${p.tag}`, [], {
    DOCKER_CONFIG: dockerConfig({ credsStore: "broken" }),
    PATH: `${bin}:${process.env["PATH"] ?? ""}`,
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /credential helper docker-credential-broken failed for 127\.0\.0\.1:\d+: keychain is locked/);
});

test("--registry-auth HOST=USER:VAR pushes and pulls a private base image without any config file", async () => {
  const reg = authRegistry();
  const p = project(`${reg.host}/bk-test/private-base:latest`, "cat /private-marker");
  const image = `${reg.host}/bk-test/pushed:${p.tag}`;
  const denied = await build(p.ctx, image, [], {});
  assert.equal(denied.code, 1, "the private base cannot be pulled anonymously");
  assert.match(denied.stderr, /401 Unauthorized|authorization/i);

  const r = await build(p.ctx, image, ["--registry-auth", `${reg.host}=${reg.user}:BK_REGISTRY_PASSWORD`], { BK_REGISTRY_PASSWORD: reg.password });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /private-base/);
  assert.ok(await pushed(reg.host, reg.user, reg.password, "bk-test/pushed", p.tag));
  noPassword(r, reg.password);

  const unset = await build(p.ctx, image, ["--registry-auth", `${reg.host}=${reg.user}:BK_NOT_SET`], { BK_NOT_SET: undefined });
  assert.equal(unset.code, 2);
  assert.equal(unset.stderr, `error: --registry-auth "${reg.host}=${reg.user}:BK_NOT_SET": environment variable BK_NOT_SET is not set\n`);
});
