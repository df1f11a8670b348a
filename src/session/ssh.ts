/**
 * moby.sshforward.v1.SSH: SSH agents forwarded into `RUN --mount=type=ssh`.
 * buildkitd opens one ForwardAgent call per agent connection a build step
 * makes, naming the agent in the `buildkit.ssh.id` metadata.
 */
import * as net from "node:net";
import { once } from "node:events";
import { GrpcStatusError, Status, defineService, type ServiceCall, type SessionService } from "../grpc/server.js";
import { keyAgent, readOnlyAgent, serveAgent, type AgentKey } from "./ssh-agent.js";

import { DEFAULT_SSH_ID } from "./ssh-id.js";

export { DEFAULT_SSH_ID } from "./ssh-id.js";

/** An agent the session forwards, by id. */
export type ForwardedAgent =
  /** A running agent's socket: read-only unless raw (bytes passed unchanged). */
  | { kind: "socket"; path: string; raw: boolean }
  /** An agent served here from private keys. */
  | { kind: "keys"; keys: AgentKey[] };

function unknownAgent(id: string): GrpcStatusError {
  return new GrpcStatusError(Status.NOT_FOUND, `no SSH agent "${id}" was forwarded by the client; pass --ssh ${id}=SOCKET|KEY`);
}

export function sshService(agents: ReadonlyMap<string, ForwardedAgent>): SessionService {
  return defineService("moby.sshforward.v1.SSH", {
    unary: {
      CheckAgent: (request) => {
        const id = request.ID || DEFAULT_SSH_ID;
        if (!agents.has(id)) return Promise.reject(unknownAgent(id));
        return Promise.resolve({});
      },
    },
    streams: {
      ForwardAgent: async (call) => {
        const id = call.metadata("buildkit.ssh.id")[0] || DEFAULT_SSH_ID;
        const agent = agents.get(id);
        if (!agent) throw unknownAgent(id);
        if (agent.kind === "socket" && agent.raw) await forwardRaw(call, agent.path);
        else await forwardServed(call, agent);
      },
    },
  });
}

type AgentCall = ServiceCall<"moby.sshforward.v1.SSH", "ForwardAgent">;

/**
 * Passes bytes both ways unchanged. When buildkitd half-closes, the agent
 * socket's write side is closed too and its answers are still forwarded
 * until it closes.
 */
async function forwardRaw(call: AgentCall, path: string): Promise<void> {
  const socket = net.connect(path);
  const onAbort = (): void => void socket.destroy();
  call.signal.addEventListener("abort", onAbort, { once: true });
  const fromAgent = new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      socket.pause();
      call.send({ data: chunk }).then(() => socket.resume(), reject);
    });
    socket.on("end", resolve);
    socket.on("close", () => resolve());
    socket.on("error", (e) => reject(new GrpcStatusError(Status.UNAVAILABLE, `SSH agent socket ${path}: ${e.message}`)));
  });
  const toAgent = (async () => {
    for await (const m of call) {
      if (m.data.length && !socket.write(m.data)) await once(socket, "drain");
    }
    socket.end();
  })();
  toAgent.catch(() => socket.destroy());
  try {
    await fromAgent;
  } finally {
    call.signal.removeEventListener("abort", onAbort);
    socket.destroy();
  }
}

/** Serves the agent protocol here: read-only in front of a socket, or from keys. */
async function forwardServed(call: AgentCall, agent: ForwardedAgent): Promise<void> {
  const upstream = agent.kind === "socket" ? readOnlyAgent(agent.path) : undefined;
  const handler = upstream?.handler ?? keyAgent(agent.kind === "keys" ? agent.keys : []);
  let sending = Promise.resolve();
  let done!: (e?: Error) => void;
  const finished = new Promise<void>((resolve, reject) => (done = (e) => (e ? reject(e) : resolve())));
  const conn = serveAgent(handler, {
    onData: (chunk) => {
      sending = sending.then(() => call.send({ data: chunk }));
    },
    onEnd: done,
  });
  const onAbort = (): void => conn.destroy();
  call.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const m of call) conn.write(m.data);
    conn.end();
    await finished;
    await sending;
  } finally {
    call.signal.removeEventListener("abort", onAbort);
    upstream?.close();
  }
}
