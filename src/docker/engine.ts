/**
 * A Docker Engine as the daemon (path A of buildkit-protocol-next.md §3.1):
 * Control over `POST /grpc` upgraded to h2c (we are the HTTP/2 client),
 * each session over `POST /session` upgraded to h2c (we are the HTTP/2
 * server), and the Engine API for what its BuildKit leaves to the client
 * (pushes from the classic image store, loading tarballs).
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import { EngineApi, type EnginePing, type RegistryAuth } from "./api.js";
import { DEFAULT_DOCKER_SOCKET, type DockerEndpoint, type ResolvedEngine } from "./host.js";
import { PendingStream } from "../transport/pending-stream.js";
import { sshDialer, type SshOptions } from "../transport/ssh-dial.js";
import { parseNormalizedNamed, referenceName } from "../solve/reference.js";
import type { SessionOpener } from "../transport/connection.js";
import type { EngineHandle } from "../transport/engine-handle.js";
import { withDeferredCa } from "../transport/extra-ca.js";

/** The Host header the Go client sends over sockets without a host name. */
const DUMMY_HOST = "api.moby.localhost";

export interface EngineLink {
  api: EngineApi;
  resolved: ResolvedEngine;
  /** Opens the Control connection: `POST /grpc` upgraded, as one byte stream (path A). */
  dialGrpc: () => Duplex;
  /** Opens a raw connection for native gRPC on the API socket (path B, Engine 29.2+): TLS offers h2. */
  dialNative: () => Duplex;
  openSession: SessionOpener;
  /** Closes what the dialer holds (the SSH connection of docker+ssh://). */
  close: () => void;
}

/** Opens byte streams to the Engine's API socket. */
function engineDialer(
  endpoint: DockerEndpoint,
  address: string,
  o: { ssh: SshOptions; env: Record<string, string | undefined>; timeoutMs: number; alpn: "http/1.1" | "h2" },
): { dial: () => Duplex; host: string; close: () => void } {
  const none = (): void => undefined;
  switch (endpoint.kind) {
    case "unix":
      return { dial: () => net.connect(endpoint.path), host: DUMMY_HOST, close: none };
    case "tcp": {
      const { host, port } = endpoint;
      const hostHeader = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
      const t = endpoint.tls;
      if (!t) return { dial: () => net.connect(port, host), host: hostHeader, close: none };
      const serverName = t.serverName;
      return {
        host: hostHeader,
        close: none,
        dial: () =>
          tls.connect(
            withDeferredCa({
              host,
              port,
              ...(t.ca ? { ca: t.ca } : {}),
              ...(t.cert ? { cert: t.cert } : {}),
              ...(t.key ? { key: t.key } : {}),
              // Path A offers HTTP/1.1 only: an Engine that picked h2 (29.2+) would make the Upgrade impossible.
              ALPNProtocols: [o.alpn],
              minVersion: "TLSv1.2",
              rejectUnauthorized: t.verify,
              ...(net.isIP(serverName) ? {} : { servername: serverName }),
              checkServerIdentity: (_h, cert) => (t.verify ? tls.checkServerIdentity(serverName, cert) : undefined),
            }),
          ),
      };
    }
    case "ssh": {
      const port = endpoint.port ?? 22;
      const ssh = sshDialer(
        { user: endpoint.user, host: endpoint.host, port, socketPath: endpoint.socketPath ?? DEFAULT_DOCKER_SOCKET, address },
        o.ssh,
        o.env,
        o.timeoutMs,
      );
      return { dial: ssh.dial, host: DUMMY_HOST, close: ssh.close };
    }
  }
}

/** The API client and the hijacking dialers for one Engine. */
export function engineLink(
  resolved: ResolvedEngine,
  o: {
    ssh?: SshOptions | undefined;
    env: Record<string, string | undefined>;
    timeoutMs: number;
    /** For messages: what the daemon is called and its process (podman: "the podman service"). */
    name?: string | undefined;
    process?: string | undefined;
  },
): EngineLink {
  const d = engineDialer(resolved.endpoint, resolved.address, { ssh: o.ssh ?? {}, env: o.env, timeoutMs: o.timeoutMs, alpn: "http/1.1" });
  // One SSH connection serves both; only TLS differs (ALPN).
  const native =
    resolved.endpoint.kind === "tcp" && resolved.endpoint.tls
      ? engineDialer(resolved.endpoint, resolved.address, { ssh: o.ssh ?? {}, env: o.env, timeoutMs: o.timeoutMs, alpn: "h2" }).dial
      : d.dial;
  const api = new EngineApi({ dial: d.dial, host: d.host, address: resolved.address, name: o.name, process: o.process });
  return {
    api,
    resolved,
    close: d.close,
    dialNative: native,
    dialGrpc: () => {
      const p = new PendingStream();
      api.hijack("/grpc", []).then(
        (s) => p.attach(s),
        (e: unknown) => p.destroy(e instanceof Error ? e : new Error(String(e))),
      );
      return p;
    },
    openSession: async (headers, signal) => {
      const socket = await api.hijack("/session", headers, signal);
      if (!(socket instanceof tls.TLSSocket)) return socket;
      // Node's HTTP/2 server answers a TLS socket whose ALPN is not h2 with
      // "403 Forbidden" (its HTTP/1.1 fallback); over this upgraded socket
      // the TLS layer is only transport, so the server gets a plain stream.
      const plain = new PendingStream();
      plain.attach(socket);
      return plain;
    },
  };
}

/** The registry login for an image's host, as the Engine API takes it. */
function engineAuth(host: string, c: { username: string; secret: string } | undefined): RegistryAuth | undefined {
  if (!c) return undefined;
  const serverAddress = host === "docker.io" ? "https://index.docker.io/v1/" : host;
  return c.username === "" ? { identityToken: c.secret, serverAddress } : { username: c.username, password: c.secret, serverAddress };
}

/** The Engine as builds use it (facts plus the push through its API). */
export function engineHandle(link: EngineLink, facts: { containerdStore: boolean; version: string }): EngineHandle {
  return {
    address: link.resolved.address,
    ...facts,
    async pushImage(name, lookup, signal) {
      const ref = parseNormalizedNamed(name);
      const repo = referenceName(ref);
      const tag = ref.tag ?? "latest";
      const auth = engineAuth(ref.domain, await lookup(ref.domain));
      const r = await link.api.pushImage(repo, tag, auth, { signal });
      return { digest: r.digest };
    },
  };
}

export type { EnginePing };
