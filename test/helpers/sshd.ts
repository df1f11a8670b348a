/**
 * A real OpenSSH server and agent for the SSH tests, started by the tests
 * themselves on a free 127.0.0.1 port with a test-only host key.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { tempDir } from "./files.js";

export function keygen(dir: string, type: string, name: string, passphrase = ""): string {
  const path = join(dir, name);
  const args = ["-q", "-t", type, "-N", passphrase, "-f", path, "-C", `${name}@bk-build-test`];
  if (type === "rsa") args.push("-b", "2048");
  const r = spawnSync("ssh-keygen", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return path;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not start: ${log()}`);
}

export interface Sshd {
  port: number;
  dir: string;
  /** Private key whose public half is authorized for root. */
  clientKey: string;
  /** The host's public key line, for a known_hosts file. */
  hostKeyLine: string;
  /** Stops sshd and resolves once it has exited. */
  stop(): Promise<void>;
}

/** Sends SIGTERM and resolves when the process has exited (SIGKILL after 5 s). */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill();
  });
}

/** Starts sshd; `authorized` public key files may log in as root. */
export async function startSshd(): Promise<Sshd> {
  const sshdPath = "/usr/sbin/sshd";
  if (!existsSync(sshdPath)) throw new Error("sshd is not installed (scripts/test-env.sh up installs openssh-server)");
  const dir = tempDir("bk-sshd-");
  chmodSync(dir, 0o755);
  const hostKey = keygen(dir, "ed25519", "host_key");
  const clientKey = keygen(dir, "ed25519", "client_key");
  writeFileSync(join(dir, "authorized_keys"), readFileSync(`${clientKey}.pub`));
  mkdirSync("/run/sshd", { recursive: true });
  const port = await freePort();
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "StrictModes no",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "AllowStreamLocalForwarding yes",
      "AllowTcpForwarding yes",
      "",
    ].join("\n"),
  );
  let log = "";
  const child = spawn(sshdPath, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  try {
    await waitFor(
      "sshd",
      () =>
        new Promise<boolean>((resolve) => {
          const s = createServer();
          s.once("error", () => resolve(true)); // the port is taken: sshd listens
          s.listen(port, "127.0.0.1", () => s.close(() => resolve(false)));
        }),
      child,
      () => log,
    );
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  const pub = readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
  return { port, dir, clientKey, hostKeyLine: `[127.0.0.1]:${port} ${pub}`, stop: () => stopChild(child) };
}

export interface SshAgent {
  socket: string;
  /** Stops the agent and resolves once it has exited. */
  stop(): Promise<void>;
}

/** Starts ssh-agent on a private socket and adds `keys` to it. */
export async function startAgent(keys: string[]): Promise<SshAgent> {
  const dir = tempDir("bk-agent-");
  const socket = join(dir, "agent.sock");
  let log = "";
  const child = spawn("ssh-agent", ["-D", "-a", socket], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  try {
    await waitFor(
      "ssh-agent",
      () => existsSync(socket),
      child,
      () => log,
    );
    for (const k of keys) {
      const r = spawnSync("ssh-add", [k], { env: { ...process.env, SSH_AUTH_SOCK: socket }, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`ssh-add ${k} failed: ${r.stderr}`);
    }
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { socket, stop: () => stopChild(child) };
}
