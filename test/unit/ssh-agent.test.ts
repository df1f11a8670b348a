/**
 * Our agents against OpenSSH's own tools: ssh-add lists through them and
 * ssh-keygen -Y signs through them, and the signatures verify.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { keyAgent, readOnlyAgent, serveAgent, type AgentHandler } from "../../src/session/ssh-agent.js";
import { prepareSsh } from "../../src/solve/ssh.js";
import type { ForwardedAgent } from "../../src/session/ssh.js";
import { tempDir } from "../helpers/files.js";

const dir = tempDir("bk-agent-");

function keygen(type: string, name: string, passphrase = ""): string {
  const path = join(dir, name);
  const args = ["-q", "-t", type, "-N", passphrase, "-f", path, "-C", `${name}-comment`];
  if (type === "rsa") args.push("-b", "2048");
  const r = spawnSync("ssh-keygen", args, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return path;
}

/** Serves `handler` on a unix socket the way the session serves a ForwardAgent call. */
async function serveOn(handler: AgentHandler, name: string): Promise<{ sock: string; server: Server }> {
  const sock = join(dir, name);
  const server = createServer((s) => {
    const conn = serveAgent(handler, { onData: (b) => s.write(b), onEnd: () => s.end() });
    s.on("data", (d: Buffer) => conn.write(d));
    s.on("end", () => conn.end());
    s.on("error", () => conn.destroy());
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { sock, server };
}

function run(cmd: string, args: string[], sock: string, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", SSH_AUTH_SOCK: sock } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => resolve({ code, stdout, stderr }));
    // ssh-add may exit before it reads stdin: the EPIPE is not the test's business.
    p.stdin.on("error", () => undefined);
    p.stdin.end(input ?? "");
  });
}

function keysOf(agent: ForwardedAgent): Parameters<typeof keyAgent>[0] {
  assert.equal(agent.kind, "keys");
  return agent.kind === "keys" ? agent.keys : [];
}

test("key-file agent: ssh-add lists ed25519, ECDSA and RSA keys and ssh-keygen signs through it", async () => {
  const paths = [keygen("ed25519", "ed"), keygen("ecdsa", "ec"), keygen("rsa", "rsa")];
  const agent = (await prepareSsh({ deploy: { keys: paths } }, {})).get("deploy")!;
  const { sock, server } = await serveOn(keyAgent(keysOf(agent)), "keys.sock");
  try {
    const listed = await run("ssh-add", ["-L"], sock);
    assert.equal(listed.code, 0, listed.stderr);
    for (const p of paths) {
      const pub = readFileSync(`${p}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
      assert.ok(listed.stdout.includes(pub), `${p} listed`);
    }
    const msg = join(dir, "message");
    writeFileSync(msg, "sign me");
    for (const p of paths) {
      // -Y sign with only the public key file makes ssh-keygen ask the agent.
      const sigPath = `${msg}.sig`;
      spawnSync("rm", ["-f", sigPath]);
      const signed = await run("ssh-keygen", ["-Y", "sign", "-f", `${p}.pub`, "-n", "test", msg], sock);
      assert.equal(signed.code, 0, `${p}: ${signed.stderr}`);
      assert.ok(existsSync(sigPath));
      const check = await run("ssh-keygen", ["-Y", "check-novalidate", "-n", "test", "-f", `${p}.pub`, "-s", sigPath], sock, "sign me");
      assert.equal(check.code, 0, `${p}: ${check.stderr}`);
      assert.match(check.stdout, /Good "test" signature/);
    }
    // The in-process agent cannot be changed either.
    const add = await run("ssh-add", [keygen("ed25519", "other")], sock);
    assert.notEqual(add.code, 0);
  } finally {
    server.close();
  }
});

test("read-only agent: lists and signs through a real ssh-agent, refuses add and remove", async () => {
  const agentSock = join(dir, "real-agent.sock");
  const real = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
  try {
    for (let i = 0; i < 100 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 20));
    const key = keygen("ed25519", "agent-key");
    assert.equal((await run("ssh-add", [key], agentSock)).code, 0);
    const { handler, close } = readOnlyAgent(agentSock);
    const { sock, server } = await serveOn(handler, "ro.sock");
    try {
      const listed = await run("ssh-add", ["-L"], sock);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /agent-key-comment/);
      const added = await run("ssh-add", [keygen("ed25519", "intruder")], sock);
      assert.notEqual(added.code, 0, "adding a key is refused");
      const removed = await run("ssh-add", ["-D"], sock);
      assert.notEqual(removed.code, 0, "removing keys is refused");
      const still = await run("ssh-add", ["-L"], agentSock);
      assert.match(still.stdout, /agent-key-comment/);
      assert.doesNotMatch(still.stdout, /intruder/);
    } finally {
      close();
      server.close();
    }
  } finally {
    real.kill();
  }
});

test("key files: encrypted without passphrase, wrong passphrase, not a key, too big", async () => {
  const enc = keygen("ed25519", "enc", "s3cret-pass");
  await assert.rejects(prepareSsh({ deploy: { keys: [enc] } }, {}), (e: Error) => {
    assert.equal(
      e.message,
      `SSH agent "deploy": key file "${enc}" is encrypted; give its passphrase (--ssh deploy=${enc},passphrase-env=VAR, or passphrase in the API)`,
    );
    return true;
  });
  await assert.rejects(prepareSsh({ deploy: { keys: [enc], passphrase: "wrong" } }, {}), /the passphrase for key file .* is wrong/);
  assert.equal((await prepareSsh({ deploy: { keys: [enc], passphrase: "s3cret-pass" } }, {})).get("deploy")!.kind, "keys");
  const notKey = join(dir, "not-a-key");
  writeFileSync(notKey, "hello");
  await assert.rejects(prepareSsh({ x: { keys: [notKey] } }, {}), /is not a private key/);
  const big = join(dir, "big");
  writeFileSync(big, Buffer.alloc(101 * 1024));
  await assert.rejects(prepareSsh({ x: { keys: [big] } }, {}), /larger than 100 KiB/);
  await assert.rejects(prepareSsh({ x: { keys: [join(dir, "missing")] } }, {}), /cannot read key file .*: no such file/);
  await assert.rejects(prepareSsh({ default: true }, {}), /SSH_AUTH_SOCK is not set/);
  await assert.rejects(prepareSsh({ x: { socket: notKey } }, {}), /is not a socket/);
});
