/**
 * ssh:// addresses against a real sshd on loopback: control-plane commands
 * and a build (session, file sync, secrets) through the SSH channel.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { BuildKitClient } from "../../src/index.js";
import { dockerCli, runCliAsync, testEnv } from "../helpers/env.js";
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

async function setup(): Promise<{ s: Sshd; address: string; knownHosts: string; flags: string[] }> {
  const s = sshd;
  assert.ok(env.buildkitHost.startsWith("unix://"), "the ssh:// tests reach buildkitd's unix socket through sshd");
  const address = `ssh://root@127.0.0.1:${s.port}${env.buildkitHost.slice("unix://".length)}`;
  const knownHosts = join(tempDir("bk-kh-"), "known_hosts");
  writeFileSync(knownHosts, `${s.hostKeyLine}\n`);
  return { s, address, knownHosts, flags: ["--addr", address, "--ssh-key", s.clientKey, "--ssh-known-hosts", knownHosts] };
}

test("bk-build info and du over ssh://", async () => {
  const { address, flags } = await setup();
  const info = await runCliAsync(["info", ...flags], { env: { SSH_AUTH_SOCK: undefined } });
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, new RegExp(`Address: +${address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\n`));
  assert.match(info.stdout, /BuildKit: +github\.com\/moby\/buildkit v0\.24\.0/);
  const du = await runCliAsync(["du", ...flags], { env: { SSH_AUTH_SOCK: undefined } });
  assert.equal(du.code, 0, du.stderr);
  assert.match(du.stdout, /Total:/);
});

test("a build over ssh:// through the API: context, secret, result", async () => {
  const { s, address, knownHosts } = await setup();
  const ctx = tempDir("bk-sshconn-ctx-");
  const marker = randomUUID();
  writeFileSync(join(ctx, "file.txt"), marker);
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nCOPY file.txt /file.txt\nRUN --mount=type=secret,id=tok,required=true test "$(cat /run/secrets/tok)" = "s3cret-${marker}" && cat /file.txt\n`,
  );
  await using client = await BuildKitClient.connect({ address, ssh: { identityFile: s.clientKey, knownHostsFile: knownHosts }, env: {} });
  const build = client.build({ context: ctx, secrets: { tok: `s3cret-${marker}` }, env: {} });
  const logs: string[] = [];
  for await (const st of build.progress) for (const l of st.logs) logs.push(Buffer.from(l.data).toString());
  const result = await build.result;
  assert.ok(logs.join("").includes(marker), "the RUN step printed the copied file");
  assert.ok(!logs.join("").includes(`s3cret-${marker}`));
  assert.ok((result.bytesSent["context"] ?? 0) > 0);
});

test("ssh:// refuses unknown and changed host keys unless told to ignore them; a refused login is named", async () => {
  const { s, address, knownHosts } = await setup();
  const empty = join(tempDir("bk-kh-"), "known_hosts");
  const unknown = await runCliAsync(["info", "--addr", address, "--ssh-key", s.clientKey, "--ssh-known-hosts", empty], { env: { SSH_AUTH_SOCK: undefined } });
  assert.equal(unknown.code, 1);
  assert.equal(
    unknown.stderr,
    `error: cannot connect to buildkitd at ${address}: the host key of [127.0.0.1]:${s.port} is not in ${empty}; check it and add it (ssh-keyscan -p ${s.port} 127.0.0.1 >> ${empty}), or pass --ssh-insecure-ignore-host-key\n`,
  );
  const changed = join(tempDir("bk-kh-"), "known_hosts");
  const other = keygen(tempDir("bk-k-"), "ed25519", "other_host");
  writeFileSync(changed, `[127.0.0.1]:${s.port} ${readFileSync(`${other}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
  const mitm = await runCliAsync(["info", "--addr", address, "--ssh-key", s.clientKey, "--ssh-known-hosts", changed], { env: { SSH_AUTH_SOCK: undefined } });
  assert.equal(mitm.code, 1);
  assert.match(mitm.stderr, /^error: cannot connect to buildkitd at .*: the host key of \[127\.0\.0\.1\]:\d+ does not match .* \(it changed/);
  const ignored = await runCliAsync(["info", "--addr", address, "--ssh-key", s.clientKey, "--ssh-known-hosts", changed, "--ssh-insecure-ignore-host-key"], {
    env: { SSH_AUTH_SOCK: undefined },
  });
  assert.equal(ignored.code, 0, ignored.stderr);

  const stranger = keygen(tempDir("bk-k-"), "ed25519", "stranger");
  const refused = await runCliAsync(["info", "--addr", address, "--ssh-key", stranger, "--ssh-known-hosts", knownHosts], { env: { SSH_AUTH_SOCK: undefined } });
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `error: cannot connect to buildkitd at ${address}: SSH login as root was refused (tried the key file)\n`);

  const noSocket = address.replace(/\/[^/]*$/, "/no-such.sock");
  const missing = await runCliAsync(["info", "--addr", noSocket, "--ssh-key", s.clientKey, "--ssh-known-hosts", knownHosts], {
    env: { SSH_AUTH_SOCK: undefined },
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /the SSH server could not open .*no-such\.sock .*is buildkitd running there/);
});

test("ssh:// logs in with the agent at SSH_AUTH_SOCK and reads ~/.ssh/known_hosts by default", async () => {
  const { s, address } = await setup();
  const home = tempDir("bk-home-");
  mkdirSync(join(home, ".ssh"));
  writeFileSync(join(home, ".ssh", "known_hosts"), `${s.hostKeyLine}\n`);
  const agent = await startAgent([s.clientKey]);
  try {
    const r = await runCliAsync(["info", "--addr", address], { env: { HOME: home, SSH_AUTH_SOCK: agent.socket } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /BuildKit: +github\.com\/moby\/buildkit/);
    const none = await runCliAsync(["info", "--addr", address], { env: { HOME: home, SSH_AUTH_SOCK: undefined } });
    assert.equal(none.code, 1);
    assert.equal(
      none.stderr,
      `error: cannot connect to buildkitd at ${address}: SSH login as root was refused (tried no keys: set SSH_AUTH_SOCK or pass --ssh-key)\n`,
    );
  } finally {
    await agent.stop();
  }
});

test("docker+ssh://: the Engine's socket reached through sshd's stream-local forwarding: info, and a build with a secret whose image lands in the Engine", async () => {
  const { s, knownHosts } = await setup();
  assert.ok(env.docker.host.startsWith("unix://"), "the docker+ssh:// test reaches the Engine's unix socket through sshd");
  const address = `docker+ssh://root@127.0.0.1:${s.port}${env.docker.host.slice("unix://".length)}`;
  const flags = ["--addr", address, "--ssh-key", s.clientKey, "--ssh-known-hosts", knownHosts];
  const noEnv = { SSH_AUTH_SOCK: undefined, BUILDKIT_HOST: undefined, DOCKER_HOST: undefined };
  const info = await runCliAsync(["info", "--format", "json", ...flags], { env: noEnv });
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout) as { address: string; engine: { version: string; imageStore: string } };
  assert.equal(j.address, address);
  assert.match(j.engine.version, /^20\.10\./);
  assert.equal(j.engine.imageStore, "classic");

  const ctx = tempDir("bk-dockerssh-ctx-");
  const marker = randomUUID();
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=tok,required=true test "$(wc -c < /run/secrets/tok)" -eq ${`s3cret-${marker}`.length}\nLABEL bk.marker=${marker}\n`,
  );
  const name = `bk-dockerssh:${marker.slice(0, 8)}`;
  const r = await runCliAsync(["build", "--progress", "plain", "--network", "none", "--secret", "id=tok,env=TOK", "-t", name, ...flags, ctx], {
    env: { ...noEnv, TOK: `s3cret-${marker}` },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stderr.includes(`s3cret-${marker}`), "no secret in the output");
  const inspected = dockerCli(["image", "inspect", "-f", '{{index .Config.Labels "bk.marker"}}', name]);
  try {
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal(inspected.stdout.toString().trim(), marker, "the image is in the Engine's store");
  } finally {
    dockerCli(["image", "rm", "-f", name]);
  }
});
