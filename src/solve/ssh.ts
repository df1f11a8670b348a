/** SSH agents for builds, as buildx's --ssh: checked up front, served on demand. */
import { readFileSync, statSync } from "node:fs";
import type { ParsedKey } from "ssh2";
import { UsageError } from "../errors.js";
import { DEFAULT_SSH_ID, type ForwardedAgent } from "../session/ssh.js";
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
export type SshAgentSource =
  | true
  | { socket: string; raw?: boolean | undefined }
  | { keys: string[]; passphrase?: string | undefined };

function isSocket(path: string): boolean {
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
  let data: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw Object.assign(new Error("not a regular file"), { code: "" });
    if (st.size > MAX_KEY_BYTES) throw new UsageError(`SSH agent "${id}": key file "${path}" is larger than 100 KiB; is it a private key?`);
    data = readFileSync(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new UsageError(`SSH agent "${id}": cannot read key file "${path}": ${why}`, { cause: e });
  }
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
  return { key, comment: key.comment || path };
}
