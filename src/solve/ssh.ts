/** SSH agents for builds, as buildx's --ssh: checked up front, served on demand. */
import { statSync } from "node:fs";
import type { ParsedKey } from "ssh2";
import { UsageError } from "../errors.js";
import { readInputFile } from "../files.js";
import type { ForwardedAgent } from "../session/ssh.js";
import { DEFAULT_SSH_ID } from "../session/ssh-id.js";
import type { AgentKey } from "../session/ssh-agent.js";

/** buildkit reads at most this much of a key file. */
export const MAX_KEY_BYTES = 100 * 1024;

/**
 * One SSH agent made available to `RUN --mount=type=ssh[,id=ID]`:
 * - `true`: the agent at `SSH_AUTH_SOCK`, read-only;
 * - `{ socket }`: that agent, read-only (list and sign only), or `raw` to pass
 *   its bytes unchanged (as buildctl's raw=true);
 * - `{ keys }`: an agent served in-process from these private key files
 *   (ed25519, ECDSA, RSA); `passphrase` decrypts encrypted ones.
 */
export type SshAgentSource = true | { socket: string; raw?: boolean | undefined } | { keys: string[]; passphrase?: string | undefined };

export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Checks every agent before the build starts (socket present, keys readable,
 * parsable and not encrypted without a passphrase). Errors name the id and
 * the path, never key material.
 */
export async function prepareSsh(
  ssh: Record<string, SshAgentSource> | undefined,
  env: Record<string, string | undefined>,
): Promise<Map<string, ForwardedAgent>> {
  const out = new Map<string, ForwardedAgent>();
  // ssh2 is loaded only when keys are used: it costs start-up time.
  let parseKey: ParseKey | undefined;
  for (const [rawId, src] of Object.entries(ssh ?? {})) {
    const id = rawId || DEFAULT_SSH_ID;
    if (src === true) {
      const sock = env["SSH_AUTH_SOCK"];
      if (!sock) {
        throw new UsageError(`SSH agent "${id}": SSH_AUTH_SOCK is not set; start an ssh-agent, or pass a socket or key file (--ssh ${id}=PATH)`);
      }
      out.set(id, socketAgent(id, sock, false));
    } else if ("socket" in src) {
      out.set(id, socketAgent(id, src.socket, src.raw ?? false));
    } else if ("keys" in src) {
      if (!src.keys.length) throw new UsageError(`SSH agent "${id}": no key files given`);
      parseKey ??= (await import("ssh2")).default.utils.parseKey;
      const parse = parseKey;
      out.set(id, { kind: "keys", keys: src.keys.map((path) => loadKey(parse, id, path, src.passphrase)) });
    } else {
      throw new UsageError(`SSH agent "${id}": unknown source; use true, { socket } or { keys }`);
    }
  }
  return out;
}

function socketAgent(id: string, path: string, raw: boolean): ForwardedAgent {
  if (!isSocket(path)) throw new UsageError(`SSH agent "${id}": "${path}" is not a socket; pass an ssh-agent socket or private key files`);
  return { kind: "socket", path, raw };
}

type ParseKey = typeof import("ssh2").utils.parseKey;

function loadKey(parseKey: ParseKey, id: string, path: string, passphrase: string | undefined): AgentKey {
  const data = readInputFile(path, { what: "key file", subject: `SSH agent "${id}"`, maxBytes: MAX_KEY_BYTES });
  const parsed = parseKey(data, passphrase);
  if (parsed instanceof Error) {
    if (/encrypted|passphrase|bad decrypt/i.test(parsed.message)) {
      throw new UsageError(
        passphrase === undefined
          ? `SSH agent "${id}": key file "${path}" is encrypted; give its passphrase (--ssh ${id}=${path},passphrase-env=VAR, or passphrase in the API)`
          : `SSH agent "${id}": the passphrase for key file "${path}" is wrong`,
      );
    }
    throw new UsageError(`SSH agent "${id}": "${path}" is not a private key ssh2 can read (${parsed.message})`);
  }
  const key: ParsedKey | undefined = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!key || !key.isPrivateKey()) throw new UsageError(`SSH agent "${id}": "${path}" holds no private key`);
  return { key, comment: key.comment || path, file: data };
}

/**
 * --ssh default|ID[=PATH[,PATH...]] as buildx: split at the first "=", the
 * rest at ","; an empty id is "default"; no path is $SSH_AUTH_SOCK. One
 * socket, or any number of private key files. Also buildctl's raw=true
 * (pass a socket's bytes unchanged) and our passphrase-env=VAR (the
 * passphrase of encrypted keys, read from that variable).
 */
export function parseSsh(spec: string, env: Record<string, string | undefined>, isSocketPath: (path: string) => boolean = isSocket): [string, SshAgentSource] {
  const eq = spec.indexOf("=");
  const id = (eq < 0 ? spec : spec.slice(0, eq)).trim() || DEFAULT_SSH_ID;
  const paths: string[] = [];
  let raw = false;
  let passphraseEnv: string | undefined;
  for (const part of eq < 0 ? [] : spec.slice(eq + 1).split(",")) {
    if (/^raw=/i.test(part)) {
      const v = part.slice(4).toLowerCase();
      if (v !== "true" && v !== "false") throw new UsageError(`invalid raw value "${part.slice(4)}" in --ssh "${spec}": use raw=true or raw=false`);
      raw = v === "true";
    } else if (/^passphrase-env=/i.test(part)) {
      passphraseEnv = part.slice("passphrase-env=".length);
      if (!passphraseEnv) throw new UsageError(`--ssh "${spec}": passphrase-env needs a variable name`);
    } else if (part !== "") {
      paths.push(part);
    }
  }
  if (paths.length === 0) {
    const sock = env["SSH_AUTH_SOCK"];
    if (!sock) throw new UsageError(`--ssh "${spec}": SSH_AUTH_SOCK is not set; start an ssh-agent, or pass a socket or key file (--ssh ${id}=PATH)`);
    paths.push(sock);
  }
  const sockets = paths.filter(isSocketPath);
  if (sockets.length) {
    if (paths.length > 1) throw new UsageError(`--ssh "${spec}": give one agent socket, or key files, not both or several sockets`);
    if (passphraseEnv) throw new UsageError(`--ssh "${spec}": passphrase-env is for key files, not an agent socket`);
    return [id, { socket: sockets[0]!, raw }];
  }
  if (raw) throw new UsageError(`--ssh "${spec}": raw=true needs an agent socket, not key files`);
  let passphrase: string | undefined;
  if (passphraseEnv) {
    passphrase = env[passphraseEnv];
    if (passphrase === undefined) throw new UsageError(`--ssh "${spec}": environment variable ${passphraseEnv} (passphrase-env) is not set`);
  }
  return [id, { keys: paths, passphrase }];
}
