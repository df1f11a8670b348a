/**
 * A builder pool: several buildkitd nodes behind one client surface.
 *
 * Each build is placed on a node that runs its platform natively (else one
 * that emulates it), by rendezvous hashing of its context, Dockerfile and
 * target so a rebuild finds its cache, passing over nodes that are busy or
 * down. A multi-platform build whose platforms no single node has is split
 * into one build per platform, each pushed by digest, and the parts are
 * merged into one image index under the tags (as buildx's multi-node
 * builders do). Health is probed lazily (Info under a short timeout) and a
 * node that fails is left out for a backoff period.
 */
import { setMaxListeners } from "node:events";
import { BuildKitClient, DEFAULT_TIMEOUT_MS, startWithRef, type ConnectOptions } from "../client.js";
import { BuildKitError, ConnectionError, UsageError, abortedError, toBuildKitError } from "../errors.js";
import { TransportError } from "../grpc/client.js";
import { Queue } from "../queue.js";
import { linkSignals } from "../signals.js";
import { newId } from "../session/id.js";
import { resolveBuild, type BuildOptions, type ResolvedBuild } from "../solve/options.js";
import { checkPlatform, hostPlatform, normalizePlatform } from "../solve/platform.js";
import { buildHandle, type Build, type BuildResult } from "../solve/solve.js";
import { WorkSet } from "../work.js";
import type { SolveStatus } from "../progress/status.js";
import type { TlsOptions } from "../transport/address.js";
import type { SshOptions } from "../transport/ssh-dial.js";
import type { BuildKitVersion, DaemonInfo, EngineInfo } from "../types.js";
import type { CheckResult, OutlineResult, TargetsResult } from "../gateway/results.js";
import type { ComposeLoadOptions } from "../compose/load.js";
import type { ComposeBuildOptions, ComposeCheckResult, ComposeServiceResult } from "../compose/build.js";
import type { BuildProvenance, ProvenanceOptions } from "../history/api.js";
import { eligible, pickNode, placementKey, splitWorkerPlatforms, type Candidate } from "./placement.js";

/** One buildkitd of a pool. */
export interface PoolNode {
  /** Any address BuildKitClient.connect() takes. */
  address: string;
  /** Shown in messages and `builder ls`; also the node's identity for placement. Default: the address. */
  name?: string | undefined;
  /**
   * Platforms the node runs natively (`linux/arm64`, ...). Default: read
   * from its workers (the host platform and what it runs without
   * emulation; other listed platforms count as emulated).
   */
  platforms?: string[] | undefined;
  tls?: TlsOptions | undefined;
  ssh?: SshOptions | undefined;
  labels?: Record<string, string> | undefined;
}

export interface PlacementOptions {
  /** Builds running on a node (from this pool) at which the next build prefers another node. Default 4. */
  maxActivePerNode?: number | undefined;
  /** Deadline of a health probe (Info). Default 3000 ms. */
  healthTimeoutMs?: number | undefined;
  /** How long a node's good answer counts before it is probed again. Default 5000 ms. */
  healthTtlMs?: number | undefined;
  /** How long a node that failed is left out before it is tried again. Default 30000 ms. */
  downBackoffMs?: number | undefined;
  /**
   * A build whose node went away mid-build is run once more on the next
   * node (builds are idempotent). Default false: it fails, naming the node.
   * Builds whose context is a stream cannot be re-run.
   */
  retryOnNodeFailure?: boolean | undefined;
}

export interface PoolConnectOptions {
  nodes: PoolNode[];
  placement?: PlacementOptions | undefined;
  /** As ConnectOptions.timeoutMs, for each node. */
  timeoutMs?: number | undefined;
  /** As ConnectOptions.keepalive, for each node. */
  keepalive?: ConnectOptions["keepalive"];
  /** Cancels connect(). */
  signal?: AbortSignal | undefined;
  /** Environment for each node's documented defaults; default `process.env`. */
  env?: Record<string, string | undefined> | undefined;
  /** Told each time a node is found down and left out (one line naming it). */
  onWarning?: ((message: string) => void) | undefined;
  /** The builder's name, for messages ("no node of builder NAME answers"). */
  name?: string | undefined;
}

/** One node as the pool sees it now. */
export interface NodeStatus {
  name: string;
  address: string;
  /** "up": answered within the health TTL; "down": its last probe or build failed (see `error`); "unknown": not probed yet. */
  state: "up" | "down" | "unknown";
  /** Why it is down. */
  error?: string | undefined;
  buildkit?: BuildKitVersion | undefined;
  engine?: EngineInfo | undefined;
  /** Platforms it runs natively, then those it emulates. */
  platforms: string[];
  native: string[];
  /** Builds this pool runs on it now. */
  activeBuilds: number;
  labels: Record<string, string>;
}

export interface PoolInfo {
  nodes: NodeStatus[];
}

interface Slot {
  readonly name: string;
  readonly spec: PoolNode;
  client: BuildKitClient | undefined;
  active: number;
  okAt: number;
  downUntil: number;
  error: BuildKitError | undefined;
  buildkit: BuildKitVersion | undefined;
  engine: EngineInfo | undefined;
  native: string[];
  emulated: string[];
  platformsKnown: boolean;
  probing: Promise<boolean> | undefined;
}

const DEFAULTS = { maxActivePerNode: 4, healthTimeoutMs: 3000, healthTtlMs: 5000, downBackoffMs: 30_000 };
/** Progress updates queued for the reader before a node's status stream is slowed down. */
const PROGRESS_HIGH_WATER = 64;
/** Build refs remembered with their node (for buildProvenance). */
const REF_MEMORY = 1000;

/**
 * A pool of buildkitd nodes with BuildKitClient's build surface.
 *
 * ```ts
 * await using pool = await BuildKitPool.connect({ nodes: [{ address: "tcp://10.0.0.5:1234" }, { address: "tcp://10.0.0.6:1234" }] });
 * const build = pool.build({ context: ".", tags: ["registry.example/app:1"], push: true });
 * console.log((await build.result).node?.name);
 * ```
 */
export class BuildKitPool {
  readonly #slots: Slot[];
  readonly #placement: { maxActivePerNode: number; healthTimeoutMs: number; healthTtlMs: number; downBackoffMs: number; retry: boolean };
  readonly #connect: Omit<ConnectOptions, "address" | "tls" | "ssh" | "signal">;
  readonly #warn: (message: string) => void;
  readonly #closing = new AbortController();
  readonly #work = new WorkSet();
  readonly #refs = new Map<string, Slot>();
  readonly #name: string;
  #closed: Promise<void> | undefined;

  private constructor(slots: Slot[], options: PoolConnectOptions) {
    this.#slots = slots;
    const p = options.placement ?? {};
    this.#placement = {
      maxActivePerNode: positiveInt(p.maxActivePerNode ?? DEFAULTS.maxActivePerNode, "placement.maxActivePerNode"),
      healthTimeoutMs: positiveInt(p.healthTimeoutMs ?? DEFAULTS.healthTimeoutMs, "placement.healthTimeoutMs"),
      healthTtlMs: nonNegativeInt(p.healthTtlMs ?? DEFAULTS.healthTtlMs, "placement.healthTtlMs"),
      downBackoffMs: nonNegativeInt(p.downBackoffMs ?? DEFAULTS.downBackoffMs, "placement.downBackoffMs"),
      retry: p.retryOnNodeFailure ?? false,
    };
    this.#connect = { timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, keepalive: options.keepalive, env: options.env ?? process.env };
    this.#warn = options.onWarning ?? (() => undefined);
    this.#name = options.name ? `builder ${options.name}` : "the builder";
    setMaxListeners(0, this.#closing.signal);
  }

  /**
   * Checks the nodes and probes them all; resolves once at least one
   * answers (the others are probed again later). With no node answering it
   * throws: a pool of one node throws exactly what BuildKitClient.connect()
   * would.
   */
  static async connect(options: PoolConnectOptions): Promise<BuildKitPool> {
    const nodes = (options as Partial<PoolConnectOptions>).nodes;
    if (!Array.isArray(nodes) || nodes.length === 0) throw new UsageError("a builder pool needs at least one node: give nodes: [{ address }]");
    const seen = new Set<string>();
    const slots = nodes.map((n, i): Slot => {
      if (typeof n.address !== "string" || !n.address) throw new UsageError(`pool node ${i + 1} has no address: give each node an address`);
      const name = n.name ?? n.address;
      if (seen.has(name)) throw new UsageError(`two pool nodes are named ${JSON.stringify(name)}: give each node its own name`);
      seen.add(name);
      const declared = (n.platforms ?? []).map((p) => {
        checkPlatform(p, `platform of node ${name}`);
        return normalizePlatform(p);
      });
      return {
        name,
        spec: n,
        client: undefined,
        active: 0,
        okAt: 0,
        downUntil: 0,
        error: undefined,
        buildkit: undefined,
        engine: undefined,
        native: declared,
        emulated: [],
        platformsKnown: declared.length > 0,
        probing: undefined,
      };
    });
    const pool = new BuildKitPool(slots, options);
    const unlink = linkSignals(pool.#closing, [options.signal]);
    try {
      const ok = await Promise.all(slots.map((s) => pool.#probe(s, false)));
      if (!ok.some(Boolean)) {
        await pool.close();
        if (slots.length === 1) throw slots[0]!.error!;
        throw pool.#noneUp();
      }
      slots.forEach((s, i) => {
        if (!ok[i]) pool.#warned(s);
      });
    } catch (e) {
      await pool.close();
      if (options.signal?.aborted) throw abortedError(options.signal, "connect() was aborted");
      throw e;
    } finally {
      unlink();
    }
    return pool;
  }

  #check(): void {
    if (this.#closed) throw new UsageError("this BuildKitPool is closed");
  }

  /** Probes a node: connects on first use, then Info (and its workers' platforms once). Records the outcome. */
  #probe(slot: Slot, warn = true): Promise<boolean> {
    slot.probing ??= (async () => {
      const wasUp = slot.error === undefined;
      try {
        const timeoutMs = this.#placement.healthTimeoutMs;
        if (!slot.client) {
          slot.client = await BuildKitClient.connect({
            ...this.#connect,
            address: slot.spec.address,
            tls: slot.spec.tls,
            ssh: slot.spec.ssh,
            signal: this.#closing.signal,
          });
        }
        const info: DaemonInfo = await slot.client.info({ timeoutMs, signal: this.#closing.signal });
        slot.buildkit = info.buildkit;
        slot.engine = info.engine;
        if (!slot.platformsKnown) {
          const workers = await slot.client.workers({ timeoutMs, signal: this.#closing.signal });
          const listed = [
            ...new Set(workers.flatMap((w) => w.platforms.map((p) => normalizePlatform([p.os, p.architecture, p.variant].filter(Boolean).join("/"))))),
          ];
          const split = splitWorkerPlatforms(listed);
          slot.native = split.native;
          slot.emulated = split.emulated;
          slot.platformsKnown = true;
        }
        slot.okAt = Date.now();
        slot.downUntil = 0;
        slot.error = undefined;
        return true;
      } catch (e) {
        if (this.#closing.signal.aborted) throw abortedError(this.#closing.signal, "the BuildKitPool was closed");
        this.#down(slot, e);
        if (warn && wasUp) this.#warned(slot);
        return false;
      } finally {
        slot.probing = undefined;
      }
    })();
    return slot.probing;
  }

  #down(slot: Slot, e: unknown): void {
    slot.error = toBuildKitError(e);
    slot.okAt = 0;
    slot.downUntil = Date.now() + this.#placement.downBackoffMs;
  }

  #warned(slot: Slot): void {
    this.#warn(`builder node ${slot.name} (${slot.spec.address}) is down and was skipped: ${reason(slot.error)}`);
  }

  #noneUp(): ConnectionError {
    const why = this.#slots.map((s) => `${s.name}: ${s.error ? reason(s.error) : "not probed"}`).join("; ");
    return new ConnectionError(`no node of ${this.#name} answers (${why})`, this.#slots.map((s) => s.spec.address).join(","));
  }

  /** The nodes that answer now: probes those whose answer is older than the TTL and whose backoff is over; when none is up, all of them once more. */
  async #up(exclude: ReadonlySet<Slot>): Promise<Slot[]> {
    const now = Date.now();
    const { healthTtlMs } = this.#placement;
    const fresh = (s: Slot): boolean => s.error === undefined && s.okAt > 0 && Date.now() - s.okAt <= healthTtlMs;
    const stale = this.#slots.filter((s) => !exclude.has(s) && !fresh(s) && s.downUntil <= now);
    if (stale.length) await Promise.all(stale.map((s) => this.#probe(s)));
    let up = this.#slots.filter((s) => !exclude.has(s) && s.error === undefined && s.okAt > 0);
    if (!up.length) {
      const rest = this.#slots.filter((s) => !exclude.has(s) && s.downUntil > now);
      if (rest.length) {
        await Promise.all(rest.map((s) => this.#probe(s, false)));
        up = this.#slots.filter((s) => !exclude.has(s) && s.error === undefined && s.okAt > 0);
      }
    }
    return up;
  }

  /**
   * Chooses the node(s) for a build and counts them busy (synchronously
   * after the health check, so concurrent placements see each other).
   * One slot for all platforms when a node has them all natively (or only
   * one node can run them); else one per platform.
   */
  async #place(
    key: string,
    platforms: readonly string[],
    exclude: ReadonlySet<Slot> = new Set(),
    count = true,
  ): Promise<Array<{ slot: Slot; platforms: string[] }>> {
    const up = await this.#up(exclude);
    if (!up.length) {
      if (this.#slots.length === 1 && this.#slots[0]!.error) throw this.#slots[0]!.error;
      throw this.#noneUp();
    }
    const cands = up.map((s): Candidate & { slot: Slot } => ({ id: s.name, active: s.active, native: s.native, emulated: s.emulated, slot: s }));
    const { maxActivePerNode } = this.#placement;
    const take = (c: { slot: Slot }, ps: string[]): { slot: Slot; platforms: string[] } => {
      if (count) c.slot.active++;
      return { slot: c.slot, platforms: ps };
    };
    if (platforms.length === 0) {
      // The daemon's default platform: nodes that run this machine's natively first, so an unplatformed build means what it does on one daemon here.
      const here = eligible(cands, hostPlatform());
      return [take(pickNode(key, here.nodes.length && !here.emulated ? here.nodes : cands, maxActivePerNode)!, [])];
    }
    if (platforms.length === 1) {
      const { nodes } = eligible(cands, platforms[0]);
      if (!nodes.length) throw this.#noPlatform(platforms[0]!, up);
      return [take(pickNode(key, nodes, maxActivePerNode)!, [...platforms])];
    }
    const all = cands.filter((c) => platforms.every((p) => c.native.includes(p)));
    if (all.length) return [take(pickNode(key, all, maxActivePerNode)!, [...platforms])];
    const byPlatform = platforms.map((p) => {
      const { nodes } = eligible(cands, p);
      if (!nodes.length) throw this.#noPlatform(p, up);
      return { p, node: pickNode(`${key}\0${p}`, nodes, maxActivePerNode)! };
    });
    const groups = new Map<Candidate & { slot: Slot }, string[]>();
    for (const { p, node } of byPlatform) groups.set(node, [...(groups.get(node) ?? []), p]);
    return [...groups].map(([c, ps]) => take(c, ps));
  }

  #noPlatform(platform: string, up: Slot[]): UsageError {
    // Native platforms only (amd64 micro-architecture levels folded in): what each node is for.
    const have = up.map((s) => `${s.name}: ${s.native.filter((p) => !/^linux\/amd64\/v\d$/.test(p)).join(",") || "none"}`).join("; ");
    return new UsageError(
      `no node of ${this.#name} can build platform ${platform}, natively or by emulation (${have}): add a node for it or drop the platform`,
    );
  }

  /**
   * Starts a Dockerfile build on the node its platform and cache point to
   * (see the class). `result.node` names the node. Bad options throw a
   * UsageError at once, as BuildKitClient.build() does.
   */
  build(options: BuildOptions): Build {
    this.#check();
    const resolved = resolveBuild(options);
    if (options.signal?.aborted) throw new BuildKitError("the build was aborted before it started", { code: "CANCELLED", cause: options.signal.reason });
    const ref = newId();
    const progress = new Queue<SolveStatus>("build.progress");
    const ac = new AbortController();
    const unlink = linkSignals(ac, [options.signal, this.#closing.signal]);
    const platforms = platformsOf(options);
    const key = placementKey(options);
    const replayable = typeof options.context === "string" || options.context === undefined;
    const run = async (): Promise<BuildResult> => {
      const exclude = new Set<Slot>();
      // A build re-placed because its node was unreachable keeps its ref (nothing ran); one re-run after a lost node gets a new one.
      let retried = false;
      for (;;) {
        const placed = await this.#place(key, platforms, exclude);
        if (placed.length > 1) {
          // Counted busy by #place; each part's #start frees its own slot (or this, when the split cannot run).
          const { runSplit, checkSplit } = await import("./split.js");
          try {
            checkSplit(placed, resolved, options);
          } catch (e) {
            for (const p of placed) p.slot.active--;
            throw e;
          }
          return await runSplit(placed, options, resolved, {
            ref,
            signal: ac.signal,
            env: options.env ?? this.#connect.env ?? process.env,
            start: (slot, o, r, signal) => this.#start(slot, o, r, progress, signal),
          });
        }
        const { slot } = placed[0]!;
        const seen = { reported: false };
        try {
          // The options were resolved (and checked) once, in build(): the node's build reuses that.
          const result = await this.#start(slot, options, retried ? newId() : ref, progress, ac.signal, { seen, resolved });
          return result;
        } catch (e) {
          if (ac.signal.aborted) throw e;
          const failure = nodeFailure(e);
          // A connection lost before the node reported anything of this build: the node went away since its last
          // answer (its old connection not yet seen closed); nothing observable ran there.
          if (failure === "unreached" || (failure === "lost" && !seen.reported)) {
            this.#down(slot, e);
            this.#warned(slot);
            exclude.add(slot);
            continue;
          }
          if (failure === "lost") {
            this.#down(slot, e);
            if (this.#placement.retry && replayable && !retried) {
              retried = true;
              this.#warn(`builder node ${slot.name} (${slot.spec.address}) went away during the build; running it again on another node`);
              exclude.add(slot);
              continue;
            }
            throw new ConnectionError(`builder node ${slot.name} failed during the build: ${oneLine(toBuildKitError(e).message)}`, slot.spec.address, {
              cause: e,
            });
          }
          throw e;
        }
      }
    };
    const result = run().finally(() => {
      unlink();
      progress.close();
    });
    const build = buildHandle(ref, progress, result, ac);
    void this.#work.track(result);
    return build;
  }

  /** Runs one build on `slot` (already counted busy), forwarding its progress; frees the slot when it ends. */
  async #start(
    slot: Slot,
    options: BuildOptions,
    ref: string,
    progress: Queue<SolveStatus>,
    signal: AbortSignal,
    extra: { seen?: { reported: boolean }; resolved?: ResolvedBuild } = {},
  ): Promise<BuildResult> {
    const seen = extra.seen ?? { reported: false };
    try {
      const inner = slot.client![startWithRef]({ ...options, signal }, ref, extra.resolved);
      const state = { settled: false };
      let wake: () => void = () => undefined;
      const woken = new Promise<void>((r) => (wake = r));
      const pump = (async () => {
        try {
          for await (const s of inner.progress) {
            seen.reported ||= fromDaemon(s);
            progress.push(s);
            // Slow the node's status stream down for a slow reader while the build runs, never after.
            if (!state.settled) await Promise.race([progress.waitBelow(PROGRESS_HIGH_WATER), woken]);
          }
        } catch {
          // The build's error arrives through its result.
        }
      })();
      try {
        const result = await inner.result;
        this.#remember(result.ref, slot);
        return { ...result, node: { name: slot.name, address: slot.spec.address } };
      } finally {
        state.settled = true;
        wake();
        await pump;
      }
    } finally {
      slot.active--;
    }
  }

  #remember(ref: string, slot: Slot): void {
    this.#refs.set(ref, slot);
    if (this.#refs.size > REF_MEMORY) this.#refs.delete(this.#refs.keys().next().value!);
  }

  /** Runs `fn` with the client of the node `options` are placed on (a subrequest). */
  async #onePlaced<T>(options: BuildOptions, fn: (client: BuildKitClient) => Promise<T>): Promise<T> {
    this.#check();
    const platforms = platformsOf(options);
    const [placed] = await this.#place(placementKey(options), platforms.slice(0, 1));
    const slot = placed!.slot;
    try {
      return await this.#work.track(fn(slot.client!));
    } finally {
      slot.active--;
    }
  }

  /**
   * Where a build with these options would go now (each node with the
   * platforms it would build), without starting it: the same decision
   * build() makes, health probes included.
   */
  async placement(options: BuildOptions): Promise<Array<{ node: string; platforms: string[] }>> {
    this.#check();
    const platforms = platformsOf(options);
    const placed = await this.#place(placementKey(options), platforms, new Set(), false);
    return placed.map((p) => ({ node: p.slot.name, platforms: p.platforms }));
  }

  /** BuildKitClient.check() on the node the build would go to. */
  check(options: BuildOptions): Promise<CheckResult> {
    return this.#onePlaced(options, (c) => c.check(options));
  }

  /** BuildKitClient.outline() on the node the build would go to. */
  outline(options: BuildOptions): Promise<OutlineResult> {
    return this.#onePlaced(options, (c) => c.outline(options));
  }

  /** BuildKitClient.targets() on the node the build would go to. */
  targets(options: BuildOptions): Promise<TargetsResult> {
    return this.#onePlaced(options, (c) => c.targets(options));
  }

  /**
   * The provenance a build recorded, read from the node that ran it (a
   * build of this pool), else from the first node that knows the ref.
   */
  async buildProvenance(ref: string, options: ProvenanceOptions = {}): Promise<BuildProvenance[]> {
    this.#check();
    const known = this.#refs.get(ref);
    if (known?.client) return known.client.buildProvenance(ref, options);
    for (const s of await this.#up(new Set())) {
      const got = await s.client!.buildProvenance(ref, options).catch(() => undefined);
      if (got?.length) return got;
    }
    return [];
  }

  /** Each node's state; probes those whose answer is older than the health TTL (down ones too). */
  async info(options: { signal?: AbortSignal | undefined } = {}): Promise<PoolInfo> {
    this.#check();
    const ttl = this.#placement.healthTtlMs;
    await Promise.all(this.#slots.filter((s) => s.error !== undefined || Date.now() - s.okAt > ttl).map((s) => this.#probe(s, false)));
    if (options.signal?.aborted) throw abortedError(options.signal, "info() was aborted");
    return { nodes: this.#slots.map((s) => this.#status(s)) };
  }

  #status(s: Slot): NodeStatus {
    return {
      name: s.name,
      address: s.spec.address,
      state: s.error ? "down" : s.okAt > 0 ? "up" : "unknown",
      error: s.error?.message,
      buildkit: s.buildkit,
      engine: s.engine,
      platforms: [...s.native, ...s.emulated],
      native: [...s.native],
      activeBuilds: s.active,
      labels: { ...(s.spec.labels ?? {}) },
    };
  }

  /** The client of one node (by name), connected: for node-level calls (history, diskUsage, prune). */
  async client(name: string): Promise<BuildKitClient> {
    this.#check();
    const slot = this.#slots.find((s) => s.name === name);
    if (!slot) throw new UsageError(`the builder has no node named ${JSON.stringify(name)}`);
    if (!(await this.#probe(slot, false))) throw slot.error!;
    return slot.client!;
  }

  /** The nodes' names, in the order given. */
  get nodeNames(): string[] {
    return this.#slots.map((s) => s.name);
  }

  /**
   * Builds a compose project's services as BuildKitClient.composeBuild()
   * does, each service placed on its own node. `service:` contexts reach
   * the dependent through the registry (with push) or an OCI layout this
   * process serves, so the dependent may run on another node.
   */
  async composeBuild(options: ComposeLoadOptions & ComposeBuildOptions = {}): Promise<ComposeServiceResult[]> {
    this.#check();
    const { loadCompose } = await import("../compose/load.js");
    const { planCompose, runCompose } = await import("../compose/build.js");
    const project = loadCompose(options);
    const plan = planCompose(project, options.services);
    return runCompose(project, plan, (o) => this.build(o), { ...options, localImages: false });
  }

  /** Lints a compose project's services as BuildKitClient.composeCheck() does, each on its placed node. */
  async composeCheck(options: ComposeLoadOptions & ComposeBuildOptions = {}): Promise<ComposeCheckResult[]> {
    this.#check();
    const { loadCompose } = await import("../compose/load.js");
    const { planCompose, checkCompose } = await import("../compose/build.js");
    const project = loadCompose(options);
    const plan = planCompose(project, options.services);
    return checkCompose(project, plan, (o) => this.check(o), options);
  }

  /** Cancels what runs, then closes every node's client. Safe to call more than once. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort(new BuildKitError("the BuildKitPool was closed", { code: "CANCELLED" }));
      await this.#work.settled();
      await Promise.all(this.#slots.flatMap((s) => (s.client ? [s.client.close()] : [])));
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A build's platforms as placement compares them: normalised, each once. */
function platformsOf(options: BuildOptions): string[] {
  return [...new Set((options.platforms ?? []).map((p) => normalizePlatform(p)))];
}

/** Whether a progress update came from the daemon (not one of the client's own steps, whose vertices are named bk-build:...). */
function fromDaemon(s: SolveStatus): boolean {
  return s.statuses.length > 0 || s.logs.length > 0 || s.warnings.length > 0 || s.vertexes.some((v) => !v.digest.startsWith("bk-build:"));
}

/**
 * How a build failed with respect to its node: "unreached" when the node
 * could not be dialled or refused the call (nothing ran there), "lost" when
 * the connection broke during the build, undefined for any other failure
 * (the build's own error).
 */
export function nodeFailure(e: unknown): "unreached" | "lost" | undefined {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof TransportError) {
      if (c.kind === "connect" || c.kind === "refused") return "unreached";
      if (c.kind === "lost" || c.kind === "reset" || c.kind === "protocol") return "lost";
      return undefined;
    }
  }
  return e instanceof ConnectionError ? "lost" : undefined;
}

function oneLine(s: string): string {
  return s.split("\n")[0]!;
}

/** A node's failure in one line, without the single-daemon hint ("set --addr or BUILDKIT_HOST ...") that misleads for a builder's node. */
function reason(e: BuildKitError | undefined): string {
  return oneLine(e?.message ?? "no answer").replace(/ \(set --addr or [A-Z_]+ to [^)]*\)$/, "");
}

function positiveInt(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`invalid ${what} ${String(n)}: must be a positive whole number`);
  return n;
}

function nonNegativeInt(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`invalid ${what} ${String(n)}: must be zero or a positive whole number`);
  return n;
}
