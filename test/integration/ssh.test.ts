/**
 * SSH forwarding end to end: a real sshd on loopback, a real ssh-agent, and
 * OpenSSH's client inside the build, through buildkitd.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { runCliAsync, testEnv, type RunResult } from "../helpers/env.js";
import { imageBytes } from "../helpers/registry.js";
import { keygen, startAgent, startSshd, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

const env = testEnv();
let sshd: Sshd;
before(async () => {
  sshd = await startSshd();
});
after(() => sshd.stop());

leakCheckEachTest();

async function server(): Promise<Sshd> {
  return sshd;
}

/** A build that fetches a fresh file over ssh in a RUN step with the given mount. */
function project(s: Sshd, mount: string, command?: string): { ctx: string; token: string; image: string } {
  const token = `fetched-${randomUUID()}`;
  writeFileSync(join(s.dir, "served.txt"), token);
  const ctx = tempDir("bk-ssh-ctx-");
  const ssh = `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p ${s.port} root@127.0.0.1`;
  const run = command ?? `${ssh} cat ${join(s.dir, "served.txt")} > /fetched.txt && cat /fetched.txt`;
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/ssh:latest\nRUN ${mount} echo ${token} >/dev/null && ${run}\n`);
  return { ctx, token, image: `${env.registry}/bk-test/ssh-result:${token}` };
}

function privateKeyBody(path: string): string {
  // A line from the middle of the PEM body: key material, not header.
  const lines = readFileSync(path, "utf8").trim().split("\n");
  return lines[Math.floor(lines.length / 2)]!;
}

function assertNoKey(key: string, texts: Array<string | Buffer>): void {
  const body = privateKeyBody(key);
  const raw = Buffer.from(body, "base64");
  for (const t of texts) {
    assert.ok(!t.includes(body), "no private key text");
    assert.ok(!Buffer.from(t).includes(raw.subarray(0, 24)), "no private key bytes");
  }
}

async function build(ctx: string, args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<RunResult> {
  return runCliAsync(["build", "--progress", "plain", ...args, ctx], { env: { SSH_AUTH_SOCK: undefined, ...extraEnv }, timeoutMs: 120_000 });
}

test("--ssh default: a real ssh-agent signs for ssh inside the build; the file lands in the image, the key does not", async () => {
  const s = await server();
  const agent = await startAgent([s.clientKey]);
  try {
    const p = project(s, "--mount=type=ssh,required=true");
    const r = await build(p.ctx, ["--ssh", "default", "--output", `type=image,name=${p.image},push=true,registry.insecure=true`], {
      SSH_AUTH_SOCK: agent.socket,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(p.token), "the step printed the fetched file");
    const blobs = await imageBytes(env.registry, "bk-test/ssh-result", p.token);
    assert.ok(
      blobs.some((b) => b.includes(p.token) && b.includes("fetched.txt")),
      "fetched.txt is in a layer",
    );
    assertNoKey(s.clientKey, [r.stdout, r.stderr, ...blobs]);
  } finally {
    await agent.stop();
  }
});

test("--ssh deploy=KEYFILE serves the key in-process for --mount=type=ssh,id=deploy", async () => {
  const s = await server();
  const p = project(s, "--mount=type=ssh,id=deploy,required=true");
  const r = await build(p.ctx, ["--ssh", `deploy=${s.clientKey}`, "--output", `type=image,name=${p.image},push=true,registry.insecure=true`]);
  assert.equal(r.code, 0, r.stderr);
  const blobs = await imageBytes(env.registry, "bk-test/ssh-result", p.token);
  assert.ok(blobs.some((b) => b.includes(p.token) && b.includes("fetched.txt")));
  assertNoKey(s.clientKey, [r.stdout, r.stderr, ...blobs]);
});

test("an encrypted key file works with passphrase-env; the passphrase never shows", async () => {
  const s = await server();
  const dir = tempDir("bk-ssh-keys-");
  const passphrase = `pass-${randomUUID()}`;
  const key = keygen(dir, "ecdsa", "enc_key", passphrase);
  writeFileSync(join(s.dir, "authorized_keys"), readFileSync(`${s.clientKey}.pub`, "utf8") + readFileSync(`${key}.pub`, "utf8"));
  const p = project(s, "--mount=type=ssh,id=enc,required=true");
  const without = await build(p.ctx, ["--ssh", `enc=${key}`]);
  assert.equal(without.code, 2, without.stderr);
  assert.match(without.stderr, /^error: SSH agent "enc": key file ".*enc_key" is encrypted; give its passphrase/m);
  const r = await build(p.ctx, ["--ssh", `enc=${key},passphrase-env=KEY_PASS`], { KEY_PASS: passphrase });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.includes(p.token));
  assert.ok(!r.stderr.includes(passphrase) && !r.stdout.includes(passphrase));
});

test("without --ssh the step fails with a clear message; a key the server refuses fails", async () => {
  const s = await server();
  const p = project(s, "--mount=type=ssh,required=true");
  const none = await build(p.ctx, []);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /warning: the Dockerfile mounts SSH agent "default" \(required\) but no --ssh provides it/);
  // buildkitd's own words (it names the id as the mount wrote it, here none).
  assert.match(none.stderr, /ERROR: no SSH key "(default)?" forwarded from the client/);

  const dir = tempDir("bk-ssh-keys-");
  const stranger = keygen(dir, "ed25519", "stranger");
  const refused = await build(project(s, "--mount=type=ssh,required=true").ctx, ["--ssh", `default=${stranger}`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  assertNoKey(stranger, [refused.stdout, refused.stderr]);
});

test("the forwarded agent is read-only: ssh-add inside the build is refused, the agent is unchanged", async () => {
  const s = await server();
  const agent = await startAgent([s.clientKey]);
  try {
    const before = spawnSync("ssh-add", ["-L"], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket }, encoding: "utf8" }).stdout;
    // Listing works; removing every identity is refused (ssh-add reports it,
    // though its exit code does not), and the key is still listed after.
    const p = project(s, "--mount=type=ssh", "ssh-add -l && ssh-add -D; ssh-add -l");
    const r = await build(p.ctx, ["--ssh", "default"], { SSH_AUTH_SOCK: agent.socket });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.match(/client_key@bk-build-test \(ED25519\)/g)?.length, 2, r.stderr);
    assert.match(r.stderr, /Failed to remove all identities/);
    assert.doesNotMatch(r.stderr, /All identities removed/);
    const afterList = spawnSync("ssh-add", ["-L"], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket }, encoding: "utf8" }).stdout;
    assert.equal(afterList, before);
    assert.match(afterList, /client_key@bk-build-test/);
  } finally {
    await agent.stop();
  }
});

test("several agents in one build, by id; raw=true forwards a socket's bytes unchanged", async () => {
  const s = await server();
  const agent = await startAgent([s.clientKey]);
  try {
    const token = `fetched-${randomUUID()}`;
    writeFileSync(join(s.dir, "served.txt"), token);
    const ctx = tempDir("bk-ssh-ctx-");
    const ssh = `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p ${s.port} root@127.0.0.1`;
    writeFileSync(
      join(ctx, "Dockerfile"),
      `FROM ${env.registry}/bk-test/ssh:latest\n` +
        `RUN --mount=type=ssh,id=viaraw,required=true echo ${token} >/dev/null && ${ssh} cat ${join(s.dir, "served.txt")} > /a.txt\n` +
        `RUN --mount=type=ssh,id=deploy,required=true ${ssh} cat ${join(s.dir, "served.txt")} > /b.txt && cat /a.txt /b.txt\n`,
    );
    const r = await build(ctx, ["--ssh", `viaraw=${agent.socket},raw=true`, "--ssh", `deploy=${s.clientKey}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.split(token).length - 1 >= 3, true, "both steps fetched the file");
  } finally {
    await agent.stop();
  }
});
