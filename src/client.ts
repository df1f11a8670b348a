import { setMaxListeners } from "node:events";
import { BuildKitError, ConnectionError, UsageError } from "./errors.js";
import { MAX_TIMER_MS } from "./grpc/client.js";
import { linkSignals } from "./signals.js";
import { defaultAddress, parseAddress, resolveTls, type TlsOptions } from "./transport/address.js";
import { isDockerAddress } from "./docker/host.js";
import { Connection, type ControlMethod, type ControlRequest, type ControlResponse } from "./transport/connection.js";
import { sshDialer, type SshOptions } from "./transport/ssh-dial.js";
import type { ComposeLoadOptions } from "./compose/load.js";
import type { ComposeBuildOptions, ComposeCheckResult, ComposeServiceResult } from "./compose/build.js";
import { startBuild, type Build } from "./solve/solve.js";
import type { BuildOptions, ResolvedBuild } from "./solve/options.js";
import { WorkSet } from "./work.js";
import type { CheckResult, OutlineResult, TargetsResult } from "./gateway/results.js";
import type { SubrequestMetadata, SubrequestName } from "./gateway/subrequest.js";
import { recordFromWire, summarize, versionFromWire, workerFromWire } from "./convert.js";
import type { PruneRequest } from "./gen/types/moby/buildkit/v1/PruneRequest.js";
import type { BuildLogsOptions, BuildProvenance, HistoryOptions, ProvenanceOptions, RemoveHistoryOptions } from "./history/api.js";
import type { BuildRecord } from "./history/record.js";
import type { SolveStatus } from "./progress/status.js";
import type {
  CacheRecord,
  DaemonInfo,
  DiskUsage,
  DiskUsageOptions,
  EngineInfo,
  InfoOptions,
  PruneOptions,
  PruneResult,
  WorkerInfo,
  WorkersOptions,
} from "./types.js";

export interface ConnectOptions {
  /**
   * The daemon's address. buildkitd: `unix:///path`, `tcp://host:port` or
   * `ssh://[user@]host[:port][/path/to/buildkitd.sock]`. A Docker Engine's
   * BuildKit: `docker://` (the Engine the docker CLI would use:
   * `DOCKER_HOST`, `DOCKER_CONTEXT`, the Docker config's current context,
   * then /var/run/docker.sock), `docker://CONTEXT`, `docker+unix:///path`,
   * `docker+tcp://host[:port]` (TLS from `DOCKER_TLS_VERIFY` /
   * `DOCKER_CERT_PATH` as the docker CLI, or `tls`), or
   * `docker+ssh://[user@]host[:port][/path/to/docker.sock]`. buildkitd in a
   * container, as buildctl's helpers (`buildctl dial-stdio` run through the
   * Engine API, no docker CLI needed): `docker-container://NAME` (on the
   * Engine the docker CLI would use), `docker-container://NAME?context=CTX`,
   * `podman-container://NAME` (podman's API service: `CONTAINER_HOST`, else
   * its default socket for the user).
   * Default: `BUILDKIT_HOST`; else buildkitd's socket
   * `/run/buildkit/buildkitd.sock` if it exists; else the Docker Engine
   * when `DOCKER_HOST` or a docker context is set or /var/run/docker.sock
   * exists (as buildx's default builder); else buildkitd's socket.
   */
  address?: string | undefined;
  /** TLS for tcp:// addresses (as buildctl's --tlscacert/--tlscert/--tlskey/--tlsservername/--tlsdir). */
  tls?: TlsOptions | undefined;
  /**
   * For ssh:// addresses: login key, known_hosts file, host key checking.
   * Defaults follow OpenSSH: the agent at SSH_AUTH_SOCK, ~/.ssh/id_*,
   * ~/.ssh/known_hosts (HOME and SSH_AUTH_SOCK come from `env`).
   */
  ssh?: SshOptions | undefined;
  /**
   * How long connect() may take to reach the daemon, in milliseconds; also
   * the default deadline of info(), workers() and diskUsage() (builds and
   * prunes have none). Default 5000 (buildctl's --timeout); at most
   * 2^31-1.
   */
  timeoutMs?: number | undefined;
  /**
   * HTTP/2 keepalive: while calls are open and the daemon has sent nothing
   * for `intervalMs`, a ping is sent; no answer within `timeoutMs` fails
   * the calls as a lost connection instead of hanging (a NAT or load
   * balancer that dropped the connection, a frozen host). Default for
   * tcp:// and ssh://: 30 s and 20 s; for unix sockets: off. `false` turns
   * it off. Pings back off so that buildkitd's (grpc-go's) ping policy is
   * never tripped.
   */
  keepalive?: { intervalMs?: number | undefined; timeoutMs?: number | undefined } | false | undefined;
  /** Cancels connect(). */
  signal?: AbortSignal | undefined;
  /**
   * Environment used for the documented defaults (`BUILDKIT_HOST`).
   * Default: `process.env`. Pass `{}` to ignore the environment.
   */
  env?: Record<string, string | undefined> | undefined;
}

export const DEFAULT_TIMEOUT_MS = 5000;

/**
 * For a builder pool (pool/pool.ts): start a build under a ref chosen
 * before the node was, so a pool's Build can name its ref at once.
 */
export const startWithRef: unique symbol = Symbol("bk-build.startWithRef");
const DEFAULT_KEEPALIVE = { intervalMs: 30_000, timeoutMs: 20_000 };

/**
 * A connection to one buildkitd.
 *
 * ```ts
 * await using client = await BuildKitClient.connect({ address: "unix:///run/buildkit/buildkitd.sock" });
 * console.log((await client.info()).buildkit.version);
 * ```
 */
export class BuildKitClient {
  readonly #conn: Connection;
  readonly #timeoutMs: number;
  readonly #engine: EngineInfo | undefined;
  /** Aborted by close(): cancels the builds still running. */
  readonly #closing = new AbortController();
  readonly #builds = new WorkSet();
  #closed: Promise<void> | undefined;

  private constructor(conn: Connection, timeoutMs: number, engine?: EngineInfo) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
    this.#engine = engine;
    // One listener per running build or call: many at once is normal use.
    setMaxListeners(0, this.#closing.signal);
  }

  /** The address this client talks to (normalised, e.g. `unix:///run/buildkit/buildkitd.sock`). */
  get address(): string {
    return this.#conn.address;
  }

  /**
   * Dials buildkitd and checks that it answers as buildkitd within the
   * timeout. Throws ConnectionError with one clear line when it does not,
   * and UsageError for a malformed address or unreadable TLS files.
   */
  static async connect(options: ConnectOptions = {}): Promise<BuildKitClient> {
    const env = options.env ?? process.env;
    const timeoutMs = checkMs(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, "timeout");
    const address = defaultAddress(options.address, env);
    if (isDockerAddress(address)) return BuildKitClient.#connectEngine(address, env, timeoutMs, options);
    const addr = parseAddress(address);
    const tls = resolveTls(options.tls, addr);
    // A container is reached through its Engine: local when that is a unix socket.
    const container = addr.kind === "container" ? (await import("./docker/container.js")).containerLink(addr, { env, ssh: options.ssh, timeoutMs }) : undefined;
    const local = addr.kind === "unix" || container?.engine.endpoint.kind === "unix";
    const ka = options.keepalive;
    const keepalive =
      ka === false || (ka === undefined && local)
        ? undefined
        : {
            intervalMs: checkMs(ka?.intervalMs ?? DEFAULT_KEEPALIVE.intervalMs, "keepalive interval"),
            timeoutMs: checkMs(ka?.timeoutMs ?? DEFAULT_KEEPALIVE.timeoutMs, "keepalive timeout"),
          };
    let conn: Connection;
    if (container) {
      conn = new Connection(addr, undefined, { dial: container.dial, onClose: container.close, keepalive });
    } else if (addr.kind === "ssh") {
      const ssh = sshDialer(addr, options.ssh ?? {}, env, timeoutMs);
      conn = new Connection(addr, tls, { dial: ssh.dial, onClose: ssh.close, keepalive });
    } else {
      conn = new Connection(addr, tls, { keepalive });
    }
    const client = new BuildKitClient(conn, timeoutMs);
    try {
      await conn.unary(
        "Control.Info",
        {},
        {
          deadline: new Date(Date.now() + timeoutMs),
          signal: options.signal,
        },
      );
    } catch (e) {
      // UNIMPLEMENTED for Info alone means a daemon older than v0.11: it is
      // there and answers, so the connection is usable. Anything else
      // (ConnectionError, CANCELLED, ...) fails connect().
      if (e instanceof ConnectionError || (e as { code?: string }).code !== "UNIMPLEMENTED") {
        await conn.close(0);
        throw e;
      }
    }
    return client;
  }

  static async #connectEngine(address: string, env: Record<string, string | undefined>, timeoutMs: number, options: ConnectOptions): Promise<BuildKitClient> {
    const ka = options.keepalive;
    const keepalive =
      ka === false
        ? undefined
        : ka === undefined
          ? ("default" as const)
          : {
              intervalMs: checkMs(ka.intervalMs ?? DEFAULT_KEEPALIVE.intervalMs, "keepalive interval"),
              timeoutMs: checkMs(ka.timeoutMs ?? DEFAULT_KEEPALIVE.timeoutMs, "keepalive timeout"),
            };
    const { connectEngine } = await import("./docker/connect.js");
    const { conn, engine } = await connectEngine(address, { env, tls: options.tls, ssh: options.ssh, timeoutMs, keepalive, signal: options.signal });
    return new BuildKitClient(conn, timeoutMs, engine);
  }

  #check(): void {
    if (this.#closed) throw new UsageError("this BuildKitClient is closed");
  }

  /** A unary call with the caller's signal linked to the client's, and a deadline (the client's timeout unless given). */
  async #unary<M extends ControlMethod<"unary">>(
    method: M,
    request: ControlRequest<M>,
    o: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
  ): Promise<ControlResponse<M>> {
    this.#check();
    const timeout = checkMs(o.timeoutMs ?? this.#timeoutMs, "timeoutMs");
    const ac = new AbortController();
    const unlink = linkSignals(ac, [o.signal, this.#closing.signal]);
    try {
      return await this.#conn.unary(method, request, { signal: ac.signal, deadline: new Date(Date.now() + timeout) });
    } finally {
      unlink();
    }
  }

  /** buildkitd's version. */
  async info(options: InfoOptions = {}): Promise<DaemonInfo> {
    if (this.#engine) {
      // An Engine's BuildKit older than v0.11 has no Info; its workers may carry the version.
      const res = await this.#unary("Control.Info", {}, options).catch((e: unknown) => {
        if ((e as { code?: string }).code === "UNIMPLEMENTED") return undefined;
        throw e;
      });
      let buildkit = res ? versionFromWire(res) : undefined;
      if (!buildkit?.version) {
        const w = (await this.#unary("Control.ListWorkers", { filter: [] }, options)).record[0]?.BuildkitVersion;
        buildkit = { package: w?.package ?? "", version: w?.version ?? "", revision: w?.revision ?? "" };
      }
      return { address: this.address, buildkit, engine: { ...this.#engine } };
    }
    const res = await this.#unary("Control.Info", {}, options);
    return { address: this.address, buildkit: versionFromWire(res) };
  }

  /** The daemon's workers with their platforms, labels and GC policies. */
  async workers(options: WorkersOptions = {}): Promise<WorkerInfo[]> {
    const res = await this.#unary("Control.ListWorkers", { filter: options.filters ?? [] }, options);
    return res.record.map(workerFromWire);
  }

  /** Build cache records and their totals. */
  async diskUsage(options: DiskUsageOptions = {}): Promise<DiskUsage> {
    const res = await this.#unary("Control.DiskUsage", { filter: options.filters ?? [] }, options);
    return summarize(res.record.map(recordFromWire));
  }

  /**
   * Removes build cache and resolves when the daemon is done, with the
   * removed records and the bytes they held. Sizes are bytes;
   * keepDurationMs is converted to the daemon's nanoseconds.
   */
  async prune(options: PruneOptions = {}): Promise<PruneResult> {
    const records: CacheRecord[] = [];
    for await (const r of this.pruneRecords(options)) records.push(r);
    const reclaimed = records.reduce((n, r) => n + (r.size > 0n ? r.size : 0n), 0n);
    return { records, reclaimed };
  }

  /** Removes build cache like prune(), yielding each removed record as the daemon reports it. */
  async *pruneRecords(options: PruneOptions = {}): AsyncGenerator<CacheRecord, void, undefined> {
    this.#check();
    const req: PruneRequest = {
      filter: options.filters ?? [],
      all: options.all ?? false,
      keepDuration: msToNs(options.keepDurationMs, "keepDurationMs"),
      reservedSpace: bytes(options.reservedSpace, "reservedSpace"),
      maxUsedSpace: bytes(options.maxUsedSpace, "maxUsedSpace"),
      minFreeSpace: bytes(options.minFreeSpace, "minFreeSpace"),
    };
    const ac = new AbortController();
    const unlink = linkSignals(ac, [options.signal, this.#closing.signal]);
    try {
      for await (const r of this.#conn.serverStream("Control.Prune", req, { signal: ac.signal })) {
        yield recordFromWire(r);
      }
    } finally {
      unlink();
    }
  }

  /** Runs one of the history calls under a signal linked to the caller's and the client's. */
  async *#linked<T>(signal: AbortSignal | undefined, fn: (signal: AbortSignal) => AsyncGenerator<T, void, undefined>): AsyncGenerator<T, void, undefined> {
    this.#check();
    const ac = new AbortController();
    const unlink = linkSignals(ac, [signal, this.#closing.signal]);
    try {
      yield* fn(ac.signal);
    } finally {
      unlink();
    }
  }

  /**
   * The daemon's build history: running builds first, then the stored
   * records (newest first when `limit` is set). Secret-looking attribute
   * values are masked. Bad filters throw a UsageError before any call.
   */
  async *history(options: HistoryOptions = {}): AsyncGenerator<BuildRecord, void, undefined> {
    const { listHistory } = await import("./history/api.js");
    yield* this.#linked(options.signal, (signal) => listHistory(this.#conn, options, signal));
  }

  /**
   * The progress of a recorded build, as `build.progress` yields it: a
   * finished build's stored log (read from the daemon's content store), or
   * a running build's live progress until it ends. An unknown ref rejects
   * with a NOT_FOUND BuildKitError.
   */
  async *buildLogs(ref: string, options: BuildLogsOptions = {}): AsyncGenerator<SolveStatus, void, undefined> {
    const { buildLogs } = await import("./history/api.js");
    yield* this.#linked(options.signal, (signal) => buildLogs(this.#conn, ref, signal));
  }

  /**
   * The SLSA provenance the daemon recorded for a finished build (one per
   * result platform; empty when it made none), read from its content
   * store: what buildx writes to --metadata-file as buildx.build.provenance.
   * Mode min (the default) leaves out the build definition and metadata.
   */
  async buildProvenance(ref: string, options: ProvenanceOptions = {}): Promise<BuildProvenance[]> {
    this.#check();
    const { buildProvenance } = await import("./history/api.js");
    const ac = new AbortController();
    const unlink = linkSignals(ac, [options.signal, this.#closing.signal]);
    try {
      return await buildProvenance(this.#conn, ref, options.mode ?? "min", ac.signal);
    } finally {
      unlink();
    }
  }

  /** Deletes one build's record (exact ref) from the daemon's history. */
  async removeHistory(ref: string, options: RemoveHistoryOptions = {}): Promise<void> {
    this.#check();
    const { removeHistory } = await import("./history/api.js");
    const timeout = checkMs(options.timeoutMs ?? this.#timeoutMs, "timeoutMs");
    const ac = new AbortController();
    const unlink = linkSignals(ac, [options.signal, this.#closing.signal]);
    try {
      await removeHistory(this.#conn, ref, ac.signal, new Date(Date.now() + timeout));
    } finally {
      unlink();
    }
  }

  /**
   * Starts a Dockerfile build. Progress arrives on `build.progress`; the
   * exporters' response on `build.result`; `build.cancel()` or the
   * options' `signal` cancels it. Each build has its own session, which
   * serves only that build's secrets, SSH agents and files (two builds
   * with identical inputs still share BuildKit's cache, secret steps
   * included). Bad options throw a UsageError at once.
   */
  build(options: BuildOptions): Build {
    this.#check();
    return this.#track(startBuild(this.#conn, options, this.#closing.signal));
  }

  /** @internal client.build() under a given ref, with its options already resolved (builder pools). */
  [startWithRef](options: BuildOptions, ref: string, resolved?: ResolvedBuild): Build {
    this.#check();
    return this.#track(startBuild(this.#conn, options, this.#closing.signal, { ref, resolved }));
  }

  /**
   * Lints the Dockerfile without building (buildx --call check): the
   * frontend's findings, with the sources they point into. Takes a build's
   * options (context, Dockerfile, build args, target, ...); secrets, SSH,
   * outputs and caches are not used. `statusCode` is 1 when there are
   * warnings or a build error (buildx exits with it). Bad options throw a
   * UsageError; a daemon whose frontend cannot lint, an
   * UnsupportedSubrequestError.
   */
  async check(options: BuildOptions): Promise<CheckResult> {
    const { checkResult } = await import("./gateway/results.js");
    return checkResult(await this.#subrequest(options, "check"));
  }

  /** What the target takes (buildx --call outline): build args with defaults, secrets, SSH agents. As check() otherwise. */
  async outline(options: BuildOptions): Promise<OutlineResult> {
    const { outlineResult } = await import("./gateway/results.js");
    return outlineResult(await this.#subrequest(options, "outline"));
  }

  /** The Dockerfile's stages (buildx --call targets). As check() otherwise. */
  async targets(options: BuildOptions): Promise<TargetsResult> {
    const { targetsResult } = await import("./gateway/results.js");
    return targetsResult(await this.#subrequest(options, "targets"));
  }

  async #subrequest(options: BuildOptions, name: SubrequestName): Promise<SubrequestMetadata> {
    this.#check();
    const { runSubrequest } = await import("./gateway/subrequest.js");
    return this.#tracked(runSubrequest(this.#conn, options, name, this.#closing.signal));
  }

  #track(build: Build): Build {
    void this.#tracked(build.result);
    return build;
  }

  /** Keeps `work` in the set close() waits for until it settles; returns it. */
  #tracked<T>(work: Promise<T>): Promise<T> {
    return this.#builds.track(work);
  }

  /**
   * Builds a compose project's services (`docker compose build`): loads the
   * files (discovery, .env, interpolation, merging, profiles), then builds
   * each selected service's `build:` section, in parallel where they do not
   * depend on each other. Resolves with one result per service; a failed
   * service does not reject (its result carries the error), but bad input
   * (YAML, undefined secrets, ...) throws UsageError before any build.
   */
  async composeBuild(options: ComposeLoadOptions & ComposeBuildOptions = {}): Promise<ComposeServiceResult[]> {
    this.#check();
    const { loadCompose } = await import("./compose/load.js");
    const { planCompose, runCompose, withEngineImageNames } = await import("./compose/build.js");
    // Through an Engine, images stay in its store (named project-service, as docker compose does), where service: contexts find them.
    const engine = this.#conn.engine !== undefined;
    const project = engine ? withEngineImageNames(loadCompose(options)) : loadCompose(options);
    const plan = planCompose(project, options.services);
    return runCompose(project, plan, (o) => this.#track(startBuild(this.#conn, o, this.#closing.signal)), { ...options, localImages: engine });
  }

  /**
   * Lints a compose project's services (`docker compose build --check`):
   * loads and plans as composeBuild() does, then runs check() for each
   * selected service with its build options. Resolves with one result per
   * service; a failed check does not reject (its result carries the error).
   */
  async composeCheck(options: ComposeLoadOptions & ComposeBuildOptions = {}): Promise<ComposeCheckResult[]> {
    this.#check();
    const { loadCompose } = await import("./compose/load.js");
    const { planCompose, checkCompose } = await import("./compose/build.js");
    const project = loadCompose(options);
    const plan = planCompose(project, options.services);
    return checkCompose(project, plan, (o) => this.check(o), options);
  }

  /**
   * Closes the client: builds and calls still running are cancelled (their
   * errors say the client was closed), then the connection is closed.
   * Resolves once the builds have ended and the socket is closed. Safe to
   * call more than once.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort(new BuildKitError("the BuildKitClient was closed", { code: "CANCELLED" }));
      await this.#builds.settled();
      await this.#conn.close();
    })();
    return this.#closed;
  }

  /** Alias of close(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A duration option in milliseconds: positive, and within setTimeout's range. */
function checkMs(ms: number, what: string): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new UsageError(`invalid ${what} ${String(ms)}: must be a positive number of milliseconds`);
  if (ms > MAX_TIMER_MS) throw new UsageError(`invalid ${what} ${String(ms)}: must be at most ${MAX_TIMER_MS} milliseconds (about 24.8 days)`);
  return ms;
}

function msToNs(ms: number | undefined, name: string): string {
  if (ms === undefined) return "0";
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`invalid ${name} ${ms}: must be zero or more milliseconds`);
  return (BigInt(Math.round(ms)) * 1_000_000n).toString();
}

function bytes(v: bigint | number | undefined, name: string): string {
  if (v === undefined) return "0";
  if (typeof v === "number" && (!Number.isSafeInteger(v) || v < 0)) {
    throw new UsageError(`invalid ${name} ${v}: must be a whole number of bytes`);
  }
  if (typeof v === "bigint" && v < 0n) throw new UsageError(`invalid ${name} ${v}: must not be negative`);
  return v.toString();
}
