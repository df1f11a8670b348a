import { UsageError } from "./errors.js";
import { parseAddress, resolveAddress, resolveTls, type TlsOptions } from "./transport/address.js";
import { Connection } from "./transport/connection.js";
import { sshDialer, type SshOptions } from "./transport/ssh-dial.js";
import type { ComposeLoadOptions } from "./compose/load.js";
import type { ComposeBuildOptions, ComposeServiceResult } from "./compose/build.js";
import { startBuild, type Build } from "./solve/solve.js";
import type { BuildOptions } from "./solve/options.js";
import { recordFromWire, summarize, versionFromWire, workerFromWire } from "./convert.js";
import type { InfoResponse__Output } from "./gen/types/moby/buildkit/v1/InfoResponse.js";
import type { DiskUsageResponse__Output } from "./gen/types/moby/buildkit/v1/DiskUsageResponse.js";
import type { ListWorkersResponse__Output } from "./gen/types/moby/buildkit/v1/ListWorkersResponse.js";
import type { UsageRecord__Output } from "./gen/types/moby/buildkit/v1/UsageRecord.js";
import type {
  CacheRecord,
  DaemonInfo,
  DiskUsage,
  DiskUsageOptions,
  InfoOptions,
  PruneOptions,
  PruneResult,
  WorkerInfo,
  WorkersOptions,
} from "./types.js";

export interface ConnectOptions {
  /**
   * buildkitd address: `unix:///path`, `tcp://host:port` or
   * `ssh://[user@]host[:port][/path/to/buildkitd.sock]`.
   * Default: the `BUILDKIT_HOST` environment variable, then
   * `unix:///run/buildkit/buildkitd.sock` (as buildctl).
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
  /** How long connect() may take to reach the daemon, in milliseconds. Default 5000 (buildctl's --timeout). */
  timeoutMs?: number | undefined;
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
 * A connection to one buildkitd.
 *
 * ```ts
 * await using client = await BuildKitClient.connect({ address: "unix:///run/buildkit/buildkitd.sock" });
 * console.log((await client.info()).buildkit.version);
 * ```
 */
export class BuildKitClient {
  readonly #conn: Connection;
  #closed = false;

  private constructor(conn: Connection) {
    this.#conn = conn;
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
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new UsageError(`invalid timeout ${String(options.timeoutMs)}: must be a positive number of milliseconds`);
    }
    const addr = parseAddress(resolveAddress(options.address, env));
    const tls = resolveTls(options.tls, addr);
    let conn: Connection;
    if (addr.kind === "ssh") {
      const ssh = sshDialer(addr, options.ssh ?? {}, env, timeoutMs);
      conn = new Connection(addr, tls, ssh.dial, ssh.close);
    } else {
      conn = new Connection(addr, tls);
    }
    const client = new BuildKitClient(conn);
    try {
      await conn.unary<InfoResponse__Output>("Control.Info", {}, {
        deadline: new Date(Date.now() + timeoutMs),
        signal: options.signal,
      });
    } catch (e) {
      // UNIMPLEMENTED for Info alone means a daemon older than v0.11: it is
      // there and answers, so the connection is usable. Anything else
      // (ConnectionError, CANCELLED, ...) fails connect().
      if ((e as { code?: string }).code !== "UNIMPLEMENTED") {
        conn.close();
        throw e;
      }
    }
    return client;
  }

  #check(): void {
    if (this.#closed) throw new UsageError("this BuildKitClient is closed");
  }

  /** buildkitd's version. */
  async info(options: InfoOptions = {}): Promise<DaemonInfo> {
    this.#check();
    const res = await this.#conn.unary<InfoResponse__Output>("Control.Info", {}, { signal: options.signal });
    return { address: this.address, buildkit: versionFromWire(res) };
  }

  /** The daemon's workers with their platforms, labels and GC policies. */
  async workers(options: WorkersOptions = {}): Promise<WorkerInfo[]> {
    this.#check();
    const res = await this.#conn.unary<ListWorkersResponse__Output>(
      "Control.ListWorkers",
      { filter: options.filters ?? [] },
      { signal: options.signal },
    );
    return res.record.map(workerFromWire);
  }

  /** Build cache records and their totals. */
  async diskUsage(options: DiskUsageOptions = {}): Promise<DiskUsage> {
    this.#check();
    const res = await this.#conn.unary<DiskUsageResponse__Output>(
      "Control.DiskUsage",
      { filter: options.filters ?? [] },
      { signal: options.signal },
    );
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
    const req = {
      filter: options.filters ?? [],
      all: options.all ?? false,
      keepDuration: msToNs(options.keepDurationMs, "keepDurationMs"),
      reservedSpace: bytes(options.reservedSpace, "reservedSpace"),
      maxUsedSpace: bytes(options.maxUsedSpace, "maxUsedSpace"),
      minFreeSpace: bytes(options.minFreeSpace, "minFreeSpace"),
    };
    for await (const r of this.#conn.serverStream<UsageRecord__Output>("Control.Prune", req, { signal: options.signal })) {
      yield recordFromWire(r);
    }
  }

  /**
   * Starts a Dockerfile build. Progress arrives on `build.progress`; the
   * exporters' response on `build.result`. Each build has its own session,
   * so a build is only served its own secrets and files (two builds with
   * identical inputs still share BuildKit's cache, secret steps included).
   */
  build(options: BuildOptions): Build {
    this.#check();
    return startBuild(this.#conn, options);
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
    const { planCompose, runCompose } = await import("./compose/build.js");
    const project = loadCompose(options);
    const plan = planCompose(project, options.services);
    return runCompose(project, plan, (o) => startBuild(this.#conn, o), options);
  }

  /** Closes the connection. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  /** Alias of close(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
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
