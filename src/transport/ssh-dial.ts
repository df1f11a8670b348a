/**
 * ssh:// connections: one SSH connection (ssh2) per client, and for each
 * HTTP/2 connection a direct-streamlocal channel to buildkitd's unix socket
 * on the remote host (what `ssh -L` to a socket does; no buildctl is needed
 * there). The host key is checked against known_hosts like OpenSSH does.
 */
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { PendingStream } from "./pending-stream.js";
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import { ConnectionError } from "../errors.js";
import { bareHost } from "./address.js";
import { MAX_PEM_BYTES, MAX_TEXT_FILE_BYTES, readInputFile } from "../files.js";

export interface SshOptions {
  /**
   * Private key file to log in with. Default: the agent at SSH_AUTH_SOCK,
   * and the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exists.
   */
  identityFile?: string | undefined;
  /** known_hosts file. Default ~/.ssh/known_hosts. */
  knownHostsFile?: string | undefined;
  /** Accept any host key (insecure; for throwaway hosts only). */
  insecureIgnoreHostKey?: boolean | undefined;
}

export interface SshTarget {
  user: string | undefined;
  host: string;
  port: number;
  socketPath: string;
  address: string;
}

export type HostKeyVerdict = "ok" | "unknown" | "changed" | "revoked";

/** The name OpenSSH looks up: "host" on port 22, else "[host]:port". */
export function knownHostsName(host: string, port: number): string {
  const h = bareHost(host);
  return port === 22 ? h : `[${h}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "i",
  );
  return re.test(name);
}

function hostMatches(field: string, name: string): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  let matched = false;
  for (const p of field.split(",")) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** Checks a host key blob against known_hosts text, as OpenSSH would. */
export function checkHostKey(knownHosts: string, name: string, keyBlob: Buffer): HostKeyVerdict {
  const key = keyBlob.toString("base64");
  let seen = false;
  let ok = false;
  for (const raw of knownHosts.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    let marker: string | undefined;
    if (parts[0]!.startsWith("@")) marker = parts.shift();
    const [hosts, , blob] = parts;
    if (!hosts || !blob || !hostMatches(hosts, name)) continue;
    if (marker === "@revoked") {
      if (blob === key) return "revoked";
      continue;
    }
    if (marker === "@cert-authority") continue;
    seen = true;
    if (blob === key) ok = true;
  }
  return ok ? "ok" : seen ? "changed" : "unknown";
}

/**
 * Dials buildkitd over SSH. `dial()` is synchronous (HTTP/2 wants a stream
 * at once) and returns a stream that connects in the background; failures
 * arrive as that stream's error, with one clear line.
 */
export function sshDialer(
  target: SshTarget,
  options: SshOptions,
  env: Record<string, string | undefined>,
  timeoutMs: number,
): { dial: () => Duplex; close: () => void } {
  const home = env["HOME"] ?? homedir();
  const knownHostsFile = options.knownHostsFile ?? join(home, ".ssh", "known_hosts");
  const name = knownHostsName(target.host, target.port);
  let identity: Buffer | undefined;
  if (options.identityFile !== undefined) {
    identity = readInputFile(options.identityFile, { what: "SSH key", flag: "--ssh-key", maxBytes: MAX_PEM_BYTES });
  } else {
    const found = ["id_ed25519", "id_ecdsa", "id_rsa"].map((f) => join(home, ".ssh", f)).find((f) => existsSync(f));
    if (found) identity = readInputFile(found, { what: "SSH key", maxBytes: MAX_PEM_BYTES });
  }
  // Read now, not in the host key check: a bad file is a usage error, and a
  // FIFO there would block the event loop mid-handshake.
  let knownHosts = "";
  if (!options.insecureIgnoreHostKey && existsSync(knownHostsFile)) {
    knownHosts = readInputFile(knownHostsFile, {
      what: "known_hosts file",
      flag: options.knownHostsFile === undefined ? undefined : "--ssh-known-hosts",
      maxBytes: MAX_TEXT_FILE_BYTES,
    }).toString("utf8");
  }
  const agent = env["SSH_AUTH_SOCK"] || undefined;
  const user = target.user ?? env["USER"] ?? "root";
  let client: Promise<Client> | undefined;
  let opened: Client | undefined;

  const fail = (why: string): ConnectionError => new ConnectionError(`cannot connect to buildkitd at ${target.address}: ${why}`, target.address);

  const connect = async (): Promise<Client> => {
    const ssh2 = (await import("ssh2")).default;
    let hostKeyProblem: string | undefined;
    const config: ConnectConfig = {
      host: bareHost(target.host),
      port: target.port,
      username: user,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        if (options.insecureIgnoreHostKey) return true;
        // No file: every host is unknown.
        const verdict = checkHostKey(knownHosts, name, key);
        if (verdict === "ok") return true;
        hostKeyProblem =
          verdict === "unknown"
            ? `the host key of ${name} is not in ${knownHostsFile}; check it and add it (ssh-keyscan${target.port === 22 ? "" : ` -p ${target.port}`} ${target.host} >> ${knownHostsFile}), or pass --ssh-insecure-ignore-host-key`
            : verdict === "changed"
              ? `the host key of ${name} does not match ${knownHostsFile} (it changed: someone may be intercepting the connection); if the change is expected, update that file`
              : `the host key of ${name} is marked @revoked in ${knownHostsFile}`;
        return false;
      },
    };
    if (identity) config.privateKey = identity;
    if (agent) config.agent = agent;
    const c = new ssh2.Client();
    return new Promise<Client>((resolve, reject) => {
      c.once("ready", () => {
        opened = c;
        resolve(c);
      });
      c.once("error", (e: Error & { level?: string }) => {
        if (hostKeyProblem) reject(fail(hostKeyProblem));
        else if (e.level === "client-authentication") {
          reject(
            fail(
              `SSH login as ${user} was refused (tried ${[agent ? "the agent at SSH_AUTH_SOCK" : "", identity ? "the key file" : ""].filter(Boolean).join(" and ") || "no keys: set SSH_AUTH_SOCK or pass --ssh-key"})`,
            ),
          );
        } else if (/Timed out/i.test(e.message)) reject(fail(`no SSH handshake within ${timeoutMs} ms (--timeout raises the limit)`));
        else reject(fail(`SSH: ${e.message}`));
      });
      c.on("close", () => {
        if (opened === c) {
          opened = undefined;
          client = undefined;
        }
      });
      c.connect(config);
    });
  };

  const dial = (): Duplex => {
    const stream = new PendingStream();
    client ??= connect();
    client.then(
      (c) => {
        c.openssh_forwardOutStreamLocal(target.socketPath, (err: Error | undefined, channel: ClientChannel) => {
          if (err) {
            stream.destroy(
              fail(`the SSH server could not open ${target.socketPath} (${err.message}); is buildkitd running there, and may ${user} use its socket?`),
            );
            return;
          }
          stream.attach(channel);
        });
      },
      (e: unknown) => {
        client = undefined;
        stream.destroy(e instanceof Error ? e : new Error(String(e)));
      },
    );
    return stream;
  };
  return {
    dial,
    close: () => {
      opened?.end();
      void client?.then(
        (c) => c.end(),
        () => undefined,
      );
    },
  };
}
