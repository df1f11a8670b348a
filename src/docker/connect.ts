/**
 * Connecting to a Docker Engine's BuildKit: resolve the Engine as the docker
 * CLI would, ping it (API version), open Control over `/grpc`, and learn its
 * image store from the worker labels (buildx's test).
 */
import { BuildKitError, ConnectionError } from "../errors.js";
import { Connection, type ControlResponse } from "../transport/connection.js";
import { compareApiVersions } from "./api.js";
import type { KeepaliveOptions } from "../grpc/client.js";
import type { SshOptions } from "../transport/ssh-dial.js";
import type { TlsOptions } from "../transport/address.js";
import type { EngineInfo } from "../types.js";
import { resolveEngine } from "./host.js";
import { engineHandle, engineLink } from "./engine.js";

/** Engine 29.2 (API 1.53) serves BuildKit's gRPC on its API socket. */
const NATIVE_GRPC_API = "1.53";
/** How long the native gRPC probe may take before path A is tried. */
const NATIVE_PROBE_MS = 3000;

/** Present only on the containerd image store's worker. */
const SNAPSHOTTER_LABEL = "org.mobyproject.buildkit.worker.snapshotter";
/** The first Engine API with BuildKit's /grpc and /session endpoints (Docker 18.09). */
const MIN_BUILDKIT_API = "1.39";

export interface EngineConnection {
  conn: Connection;
  engine: EngineInfo;
}

export async function connectEngine(
  address: string,
  o: {
    env: Record<string, string | undefined>;
    tls: TlsOptions | undefined;
    ssh: SshOptions | undefined;
    timeoutMs: number;
    keepalive: KeepaliveOptions | "default" | undefined;
    signal: AbortSignal | undefined;
  },
): Promise<EngineConnection> {
  if (o.tls?.dir !== undefined)
    throw new ConnectionError("--tlsdir is not used with a Docker Engine: set DOCKER_CERT_PATH, or --tlscacert/--tlscert/--tlskey", address);
  const resolved = resolveEngine(address, {
    env: o.env,
    tls: o.tls ? { caFile: o.tls.caFile, certFile: o.tls.certFile, keyFile: o.tls.keyFile, serverName: o.tls.serverName } : undefined,
  });
  const link = engineLink(resolved, { ssh: o.ssh, env: o.env, timeoutMs: o.timeoutMs });
  const deadline = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  const unixLike = resolved.endpoint.kind === "unix";
  const keepalive = o.keepalive === "default" ? (unixLike ? undefined : { intervalMs: 30_000, timeoutMs: 20_000 }) : o.keepalive;
  let conn: Connection | undefined;
  try {
    // One /_ping (it also settles the API version) and /version, at once.
    const [ping, version] = await Promise.all([link.api.ping(signal), link.api.version(signal)]).catch((e: unknown) => {
      if (deadline.aborted && !o.signal?.aborted) {
        throw new ConnectionError(
          `no answer from the Docker Engine at ${resolved.address} within ${o.timeoutMs} ms; is dockerd up? (--timeout raises the limit)`,
          resolved.address,
          {
            code: "DEADLINE_EXCEEDED",
            cause: e,
          },
        );
      }
      throw e;
    });
    // BuildKit through the Engine (/grpc, /session) came with Docker 18.09, API 1.39. An
    // Engine that names an older API gets one line; one that names none (a proxy) is tried.
    if (ping.apiVersion && compareApiVersions(ping.apiVersion, MIN_BUILDKIT_API) < 0) {
      throw new ConnectionError(
        `the Docker Engine at ${resolved.address} speaks API ${ping.apiVersion}, and BuildKit through an Engine needs API ${MIN_BUILDKIT_API} (Docker 18.09) or newer: upgrade it, or give a buildkitd address`,
        resolved.address,
        { code: "FAILED_PRECONDITION" },
      );
    }
    const apiVersion = await link.api.apiVersion(signal);
    const where = { kind: "unix" as const, path: "", address: resolved.address };
    const common = { daemon: "the Docker Engine", authority: "localhost", keepalive, onClose: link.close };
    let workers: ControlResponse<"Control.ListWorkers"> | undefined;
    let path: "native" | "hijack" = "hijack";
    if (ping.apiVersion && compareApiVersions(ping.apiVersion, NATIVE_GRPC_API) >= 0) {
      // Path B: gRPC on the API socket itself, sessions over Control.Session.
      // The API version alone can lie behind a socket proxy, so an RPC decides.
      // Closing a probe that failed must not close the SSH connection the fallback shares.
      let chosen = false;
      const native = new Connection(where, undefined, { ...common, dial: link.dialNative, onClose: () => chosen && link.close() });
      try {
        workers = await native.unary(
          "Control.ListWorkers",
          { filter: [] },
          { signal, deadline: new Date(Date.now() + Math.min(o.timeoutMs, NATIVE_PROBE_MS)) },
        );
        conn = native;
        chosen = true;
        path = "native";
      } catch {
        await native.close(0);
        if (o.signal?.aborted) throw new BuildKitError("the connection was aborted", { code: "CANCELLED" });
      }
    }
    if (!conn) {
      conn = new Connection(where, undefined, { ...common, dial: link.dialGrpc, openSession: link.openSession });
      workers = await conn.unary("Control.ListWorkers", { filter: [] }, { signal, deadline: new Date(Date.now() + o.timeoutMs) });
    }
    // The image store decides the exporters (buildx's test: the worker's snapshotter label).
    const containerdStore = workers!.record.some((w) => SNAPSHOTTER_LABEL in w.Labels);
    conn.engine = engineHandle(link, { containerdStore, version: version.version });
    return {
      conn,
      engine: {
        version: version.version,
        apiVersion,
        source: resolved.source,
        imageStore: containerdStore ? "containerd" : "classic",
        transport: path,
      },
    };
  } catch (e) {
    if (conn) await conn.close(0);
    else link.close();
    if (e instanceof BuildKitError) throw e;
    throw new ConnectionError(`cannot use the Docker Engine at ${resolved.address}: ${e instanceof Error ? e.message : String(e)}`, resolved.address, {
      cause: e,
    });
  }
}
