/**
 * The SSH agent protocol (draft-miller-ssh-agent) as far as forwarding into
 * a build needs it: framing, a read-only filter in front of a real agent,
 * and an in-process agent holding private keys parsed by ssh2.
 *
 * Every agent here answers requests strictly in order, one at a time, which
 * is what agent clients expect (they wait for each answer).
 */
import * as net from "node:net";

const SSH_AGENT_FAILURE = 5;
const SSH_AGENTC_REQUEST_IDENTITIES = 11;
const SSH_AGENT_IDENTITIES_ANSWER = 12;
const SSH_AGENTC_SIGN_REQUEST = 13;
const SSH_AGENT_SIGN_RESPONSE = 14;
const SSH_AGENT_RSA_SHA2_256 = 2;
const SSH_AGENT_RSA_SHA2_512 = 4;

/** Agent messages are at most this big (OpenSSH's limit). */
const MAX_MESSAGE = 256 * 1024;

/** Request types a read-only agent passes on: list identities and sign. */
const READ_ONLY = new Set([SSH_AGENTC_REQUEST_IDENTITIES, SSH_AGENTC_SIGN_REQUEST]);

/** An agent answering one request (type byte first, no length prefix) at a time. */
export type AgentHandler = (request: Buffer) => Promise<Buffer>;

/** One agent connection: bytes in, answers out, with the length prefix. */
export interface AgentConnection {
  /** Takes client bytes; answers come through `onData`. */
  write(chunk: Buffer): void;
  /** The client is done sending: answer what is pending, then end. */
  end(): void;
  /** Stops now. */
  destroy(): void;
}

export interface AgentConnectionEvents {
  onData: (chunk: Buffer) => void;
  /** Called once: after end() and the last answer, or on a failure. */
  onEnd: (error?: Error) => void;
}

export function failure(): Buffer {
  return Buffer.from([SSH_AGENT_FAILURE]);
}

function withLength(body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

function sshString(b: Buffer): Buffer {
  return withLength(b);
}

/** Reads one SSH `string` at `pos`; undefined when malformed. */
function readString(buf: Buffer, pos: number): { value: Buffer; next: number } | undefined {
  if (pos + 4 > buf.length) return undefined;
  const n = buf.readUInt32BE(pos);
  if (pos + 4 + n > buf.length) return undefined;
  return { value: buf.subarray(pos + 4, pos + 4 + n), next: pos + 4 + n };
}

/**
 * Serves the agent protocol with `handler`, one request at a time and in
 * order, over a connection whose bytes the caller moves.
 */
export function serveAgent(handler: AgentHandler, events: AgentConnectionEvents): AgentConnection {
  let buffered: Buffer = Buffer.alloc(0);
  const queue: Buffer[] = [];
  let busy = false;
  let ended = false;
  let finished = false;
  const finish = (error?: Error): void => {
    if (finished) return;
    finished = true;
    events.onEnd(error);
  };
  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      for (let req = queue.shift(); req && !finished; req = queue.shift()) {
        let answer: Buffer;
        try {
          answer = await handler(req);
        } catch {
          answer = failure();
        }
        // Set by end() while the handler awaited.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (!finished) events.onData(withLength(answer));
      }
    } finally {
      busy = false;
    }
    if (ended && queue.length === 0) finish();
  };
  return {
    write(chunk) {
      if (finished) return;
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 4) {
        const n = buffered.readUInt32BE(0);
        if (n === 0 || n > MAX_MESSAGE) {
          finish(new Error(`agent message of ${n} bytes is malformed or too large`));
          return;
        }
        if (buffered.length < 4 + n) break;
        queue.push(buffered.subarray(4, 4 + n));
        buffered = buffered.subarray(4 + n);
      }
      void pump();
    },
    end() {
      ended = true;
      void pump();
    },
    destroy() {
      finish();
    },
  };
}

/**
 * Forwards list and sign requests to the agent at `socketPath` and refuses
 * the rest (add, remove, lock, extensions, ...) itself, as buildkit's own
 * client does, so a build can use the user's keys but never change them.
 * One connection to the agent per forwarded connection.
 */
export function readOnlyAgent(socketPath: string): { handler: AgentHandler; close: () => void } {
  let socket: net.Socket | undefined;
  let pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  let buffered: Buffer = Buffer.alloc(0);
  let broken: Error | undefined;
  const open = (): net.Socket => {
    if (socket) return socket;
    const s = net.connect(socketPath);
    s.on("data", (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      if (buffered.length < 4) return;
      const n = buffered.readUInt32BE(0);
      if (buffered.length < 4 + n) return;
      const answer = buffered.subarray(4, 4 + n);
      buffered = buffered.subarray(4 + n);
      const p = pending;
      pending = undefined;
      p?.resolve(answer);
    });
    const fail = (e?: Error): void => {
      broken ??= e ?? new Error("the SSH agent closed the connection");
      const p = pending;
      pending = undefined;
      p?.reject(broken);
    };
    s.on("error", fail);
    s.on("close", () => fail());
    socket = s;
    return s;
  };
  const handler: AgentHandler = (request) => {
    if (!READ_ONLY.has(request[0]!)) return Promise.resolve(failure());
    if (broken) return Promise.reject(broken);
    return new Promise<Buffer>((resolve, reject) => {
      pending = { resolve, reject };
      open().write(withLength(request));
    });
  };
  return { handler, close: () => socket?.destroy() };
}

/**
 * The part of ssh2's ParsedKey the agent uses. Declared here so that our
 * shipped .d.ts files do not need @types/ssh2 (a dev dependency); ssh2's
 * ParsedKey satisfies it (checked where keys are loaded, solve/ssh.ts).
 */
export interface AgentPrivateKey {
  readonly type: string;
  getPublicSSH(): Buffer;
  sign(data: Buffer, algo?: string): Buffer | Error;
}

/** A key held by an in-process agent. */
export interface AgentKey {
  key: AgentPrivateKey;
  comment: string;
  /** The key file's bytes, for the leak audit (never sent anywhere). */
  file?: Buffer | undefined;
}

/**
 * An in-process agent over private keys: lists them and signs with them
 * (RSA with rsa-sha2-256/512 when asked, else ssh-rsa); refuses the rest.
 */
export function keyAgent(keys: readonly AgentKey[]): AgentHandler {
  const blobs = keys.map((k) => ({ ...k, blob: k.key.getPublicSSH() }));
  return (request) => {
    const type = request[0];
    if (type === SSH_AGENTC_REQUEST_IDENTITIES) {
      const count = Buffer.allocUnsafe(4);
      count.writeUInt32BE(blobs.length, 0);
      const parts: Buffer[] = [Buffer.from([SSH_AGENT_IDENTITIES_ANSWER]), count];
      for (const k of blobs) parts.push(sshString(k.blob), sshString(Buffer.from(k.comment, "utf8")));
      return Promise.resolve(Buffer.concat(parts));
    }
    if (type !== SSH_AGENTC_SIGN_REQUEST) return Promise.resolve(failure());
    const blob = readString(request, 1);
    const data = blob && readString(request, blob.next);
    if (!blob || !data || data.next + 4 > request.length) return Promise.resolve(failure());
    const flags = request.readUInt32BE(data.next);
    const k = blobs.find((x) => x.blob.equals(blob.value));
    if (!k) return Promise.resolve(failure());
    let format: string = k.key.type;
    let hash: string | undefined;
    if (format === "ssh-rsa") {
      if (flags & SSH_AGENT_RSA_SHA2_512) {
        format = "rsa-sha2-512";
        hash = "sha512";
      } else if (flags & SSH_AGENT_RSA_SHA2_256) {
        format = "rsa-sha2-256";
        hash = "sha256";
      } else {
        hash = "sha1";
      }
    }
    const sig = k.key.sign(data.value, hash);
    if (sig instanceof Error) return Promise.resolve(failure());
    const body = format.startsWith("ecdsa-") ? ecdsaSignature(sig) : sig;
    if (!body) return Promise.resolve(failure());
    return Promise.resolve(
      Buffer.concat([Buffer.from([SSH_AGENT_SIGN_RESPONSE]), sshString(Buffer.concat([sshString(Buffer.from(format)), sshString(body)]))]),
    );
  };
}

/**
 * An ECDSA signature in SSH form (mpint r, mpint s) from OpenSSL's DER
 * (SEQUENCE of two INTEGERs, whose minimal two's-complement bytes are
 * exactly an mpint's).
 */
export function ecdsaSignature(der: Buffer): Buffer | undefined {
  let pos = 0;
  const len = (): number | undefined => {
    const b = der[pos++];
    if (b === undefined) return undefined;
    if (b < 0x80) return b;
    const n = b & 0x7f;
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 8) | (der[pos++] ?? 0);
    return v;
  };
  if (der[pos++] !== 0x30 || len() === undefined) return undefined;
  const ints: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    if (der[pos++] !== 0x02) return undefined;
    const n = len();
    if (n === undefined || pos + n > der.length) return undefined;
    ints.push(sshString(der.subarray(pos, pos + n)));
    pos += n;
  }
  return Buffer.concat(ints);
}
