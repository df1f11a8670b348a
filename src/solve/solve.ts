/**
 * A Dockerfile build: the session (file sync, secrets, health), Control.Solve
 * with the dockerfile.v0 frontend, and the Control.Status stream run side by
 * side. The first failure cancels the rest. Every path after the build
 * starts ends in one teardown: the session closed, the status stream
 * drained (buildkit's inactivity rule), progress closed, listeners removed.
 */
import { isIP } from "node:net";
import { createHash } from "node:crypto";
import { BuildKitError, UsageError, abortedError } from "../errors.js";
import type { Connection } from "../transport/connection.js";
import { Session, newId } from "../session/session.js";
import { UploadFailures, uploadService } from "../session/upload.js";
import { openContextArchive, type PeekedStream } from "./context-stream.js";
import { fileSyncService, type FileSyncStats } from "../session/filesync.js";
import { secretsService, type SecretFailures } from "../session/secrets.js";
import { prepareSecrets } from "./secrets.js";
import { prepareSsh } from "./ssh.js";
import { sshService } from "../session/ssh.js";
import { authService } from "../session/auth.js";
import { credentialLookup } from "./registry-auth.js";
import { Queue } from "../queue.js";
import { linkSignals } from "../signals.js";
import { statusFromWire, type SolveStatus, type Vertex } from "../progress/status.js";
import { HOST_GATEWAY, resolveBuild, type BuildOptions, type ResolvedBuild } from "./options.js";
import { BuildOutputs, type ExportResult } from "./outputs.js";
import { fileSendService } from "../session/filesend.js";
import { contentService } from "../session/content.js";
import { prepareStores } from "./stores.js";
import { explainEngineError, planForEngine } from "./engine.js";
import type { AuditReport } from "../audit/report.js";
import type { SolveRequest } from "../gen/types/moby/buildkit/v1/SolveRequest.js";
import type { Exporter } from "../gen/types/moby/buildkit/v1/Exporter.js";
import type { CacheOptionsEntry } from "../gen/types/moby/buildkit/v1/CacheOptionsEntry.js";

export interface BuildResult {
  /** The build's ref (as `build.ref`): its record in the daemon's history (`client.history({ ref })`, `client.buildLogs(ref)`). */
  ref: string;
  /** The exporters' response, e.g. `containerimage.digest`. */
  exporterResponse: Record<string, string>;
  /** Bytes of file content sent for each local directory. */
  bytesSent: Record<string, number>;
  /** What each output produced and where, in the order of the build's outputs. */
  exports: ExportResult[];
  /** Things the build skipped or did differently than asked (also given to `onWarning` as they happen). */
  warnings: string[];
  /** With `auditSecrets`: what was scanned (a finding fails the build with a SecretLeakError instead). */
  audit?: AuditReport;
  /** Builds through a BuildKitPool: the node that ran it (the first node's, for a build split over several). */
  node?: { name: string; address: string } | undefined;
  /** A multi-platform build a pool split over several nodes: each part's ref, node and platforms. */
  parts?: Array<{ ref: string; node: string; platforms: string[] }> | undefined;
}

/** A running build. `await using build = client.build(...)` cancels it if the scope is left early. */
export interface Build extends AsyncDisposable {
  readonly ref: string;
  /**
   * The daemon's progress updates, for one reader (a second concurrent
   * reader gets a UsageError). While the build runs, a reader that falls
   * behind slows the daemon's status stream instead of buffering without
   * bound; leaving the loop early does not cancel the build.
   */
  readonly progress: AsyncIterable<SolveStatus>;
  /** The exporters' response; rejects with a BuildKitError. */
  readonly result: Promise<BuildResult>;
  /** Cancels the build on the daemon; `result` rejects with `reason` (default: a CANCELLED BuildKitError). */
  cancel(reason?: unknown): void;
  /** Cancels the build (if it still runs) and waits until it has ended. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Status updates buffered before the status stream is paused, and the level at which it resumes. */
const PROGRESS_HIGH_WATER = 64;
const PROGRESS_LOW_WATER = 16;
/** After Solve returns, status is cut once it has been silent this long (buildkit's client does the same). */
const STATUS_INACTIVITY_MS = 5000;
/** ...or this long when no update ever arrived: a job that never reported has nothing left to say. */
const STATUS_NEVER_STARTED_MS = 250;
/** Made once: an argument-less abort() builds a DOMException each time. */
const STATUS_CUT = new Error("progress was cut off after the solve ended");

/**
 * Validates the options synchronously (throws UsageError before any I/O on
 * the daemon), then runs the build; failures after that reject `result`.
 * `closing` is the client's: when it aborts, the build is cancelled.
 */
export function startBuild(
  conn: Connection,
  opts: BuildOptions,
  closing?: AbortSignal,
  given: { ref?: string | undefined; resolved?: ResolvedBuild | undefined } = {},
): Build {
  const resolved = given.resolved ?? resolveBuild(opts);
  const engine = conn.engine
    ? planForEngine(resolved.exps, conn.engine, {
        platforms: opts.platforms?.length ?? 0,
        cacheExports: resolved.caches.exports,
        env: opts.env ?? process.env,
        namedContexts: Object.keys(opts.buildContexts ?? {}),
        attrs: resolved.attrs,
        attestations: (opts.attestations ?? []).some((a) => !a.disabled),
      })
    : undefined;
  if (opts.signal?.aborted) throw new BuildKitError("the build was aborted before it started", { code: "CANCELLED", cause: opts.signal.reason });
  if (closing?.aborted) throw new BuildKitError("the BuildKitClient is closed", { code: "CANCELLED" });
  const ref = given.ref ?? newId();
  const progress = new Queue<SolveStatus>("build.progress");
  const ac = new AbortController();
  const unlink = linkSignals(ac, [opts.signal, closing]);
  const result = run(conn, opts, { ref, progress, resolved, ac, pushNames: engine?.pushNames ?? [] }).finally(unlink);
  return buildHandle(ref, progress, result, ac);
}

/** The Build a caller holds: `result` settles the build, cancel() aborts `ac` (a pool's build as a client's). */
export function buildHandle(ref: string, progress: Queue<SolveStatus>, result: Promise<BuildResult>, ac: AbortController): Build {
  // The caller may read progress before awaiting result; keep an early
  // failure from counting as an unhandled rejection in the meantime.
  result.catch(() => undefined);
  const cancel = (reason?: unknown): void => {
    ac.abort(reason ?? new BuildKitError("the build was cancelled", { code: "CANCELLED" }));
  };
  return {
    ref,
    progress,
    result,
    cancel,
    async [Symbol.asyncDispose]() {
      cancel();
      await result.catch(() => undefined);
    },
  };
}

interface Running {
  ref: string;
  progress: Queue<SolveStatus>;
  resolved: ResolvedBuild;
  /** Aborted by cancel(), the caller's signal, the client's close, or the session ending. */
  ac: AbortController;
  /** Names the Docker Engine API pushes after the solve (its classic store). */
  pushNames: string[];
}

/** The error a build ends with once `ac` has aborted. */
function abortReason(ac: AbortController): BuildKitError {
  return abortedError(ac.signal, "the build was aborted");
}

/** The worker label the Docker Engine's BuildKit puts its host-gateway IP in (what buildx's docker driver reads). */
const HOST_GATEWAY_LABEL = "org.mobyproject.buildkit.worker.moby.host-gateway-ip";

/** Swaps `host-gateway` in add-hosts for the daemon's gateway IP, as buildx does; a daemon without one is refused. */
async function withHostGateway(conn: Connection, hosts: string, signal: AbortSignal): Promise<string> {
  const res = await conn.unary("Control.ListWorkers", { filter: [] }, { signal });
  const ip = res.record.map((w) => w.Labels[HOST_GATEWAY_LABEL]).find((v) => v);
  if (!ip || !isIP(ip)) {
    throw new UsageError(
      `add-host "host-gateway" needs the daemon's gateway IP, and ${conn.daemon} at ${conn.address} reports none (a Docker Engine's BuildKit gives it in its workers' ${HOST_GATEWAY_LABEL} label; buildkitd never does): give the IP instead`,
    );
  }
  return hosts
    .split(",")
    .map((h) => (h.endsWith(`=${HOST_GATEWAY}`) ? `${h.slice(0, -HOST_GATEWAY.length)}${ip}` : h))
    .join(",");
}

async function run(conn: Connection, opts: BuildOptions, r: Running): Promise<BuildResult> {
  const { ref, progress, ac } = r;
  const { dirs, attrs, exps } = r.resolved;
  const env = opts.env ?? process.env;
  let session: Session | undefined;
  let status: StatusPump | undefined;
  let secretFailures: SecretFailures | undefined;
  let upload: PeekedStream | undefined;
  const uploadFailures = new UploadFailures();
  let solving = false;
  let outputs: BuildOutputs | undefined;
  let committed = false;
  let succeeded = false;
  try {
    const warnings: string[] = [];
    const warn = (message: string): void => {
      warnings.push(message);
      opts.onWarning?.(message);
    };
    const caches = r.resolved.caches;
    for (const w of caches.warnings) warn(w);
    if (attrs["add-hosts"]?.split(",").some((h) => h.endsWith(`=${HOST_GATEWAY}`))) {
      attrs["add-hosts"] = await withHostGateway(conn, attrs["add-hosts"], ac.signal);
    }
    const stores = await prepareStores(caches, exps, r.resolved.ociContexts, warn);
    // The frontend resolves its own cache sources from this attribute (as buildctl sends it).
    if (stores.imports.length) attrs["cache-imports"] = JSON.stringify(stores.imports.map((c) => ({ Type: c.type, Attrs: c.attrs })));
    // --load with buildkitd: the Engine must answer before anything is built.
    const loadExp = exps.find((e) => e.target === "load");
    const load = loadExp
      ? await (
          await import("../docker/load.js")
        ).prepareLoad(loadExp, { env, timeoutMs: LOAD_CONNECT_TIMEOUT_MS, signal: ac.signal, platforms: opts.platforms?.length ?? 0 })
      : undefined;
    const secrets = await prepareSecrets(opts.secrets, env, { signal: ac.signal, secretTimeoutMs: opts.secretTimeoutMs });
    const agents = await prepareSsh(opts.ssh, env);
    // A context archive is checked (not empty, an archive the frontend unpacks) before the build starts.
    if (r.resolved.upload) upload = await openContextArchive(r.resolved.upload.source, "the build context stream");
    if (ac.signal.aborted) throw abortReason(ac);
    // Loaded only when asked for: the scanner pulls in tar-stream and zlib.
    const audit = opts.auditSecrets ? await (await import("./audit.js")).BuildAudit.prepare(secrets.providers, agents, ac.signal) : undefined;
    const extra = audit?.extraExporter(exps);
    if (extra) exps.push(extra);
    outputs = await BuildOutputs.prepare(exps, audit?.observer, warn);
    const out = outputs;
    const stats: FileSyncStats = { bytesSent: new Map() };
    session = new Session({
      sharedKey: r.resolved.sharedKey,
      services: [
        ...(upload && r.resolved.upload ? [uploadService(new Map([[r.resolved.upload.id, upload.stream]]), uploadFailures)] : []),
        fileSyncService(dirs, stats),
        secretsService(secrets.providers, (secretFailures = secrets.failures)),
        authService(credentialLookup(opts.registryAuth, env)),
        ...(agents.size ? [sshService(agents)] : []),
        ...(out.usesFileSend ? [fileSendService((id) => out.targetOf(id))] : []),
        ...(stores.stores.size ? [contentService(stores.stores)] : []),
      ],
    });
    session.start(conn);
    solving = true;
    // The first failure cancels the rest: a session that ends mid-build makes
    // the solve fail now, with its reason, instead of at the daemon's next use.
    void session.ended.then(({ unexpected, error }) => {
      if (unexpected && solving) {
        ac.abort(error ?? new BuildKitError(`the session with ${conn.daemon} at ${conn.address} ended before the build finished`, { code: "UNAVAILABLE" }));
      }
    });
    status = pumpStatus(conn, ref, progress);

    const first = exps[0];
    const request: SolveRequest = {
      Ref: ref,
      Session: session.id,
      Frontend: "dockerfile.v0",
      FrontendAttrs: attrs,
      Exporters: exps.map((e): Exporter => ({ Type: e.type, Attrs: e.attrs })),
      ExporterDeprecated: first?.type ?? "",
      ExporterAttrsDeprecated: first?.attrs ?? {},
      Cache: {
        Imports: stores.imports.map((c): CacheOptionsEntry => ({ Type: c.type, Attrs: c.attrs })),
        Exports: caches.exports.map((c): CacheOptionsEntry => ({ Type: c.type, Attrs: c.attrs })),
      },
      Entitlements: opts.entitlements ?? [],
      FrontendInputs: r.resolved.inputs,
    };
    const res = await conn.unary("Control.Solve", request, { signal: ac.signal });
    solving = false;
    const exporterResponse = { ...res.ExporterResponse };
    await out.inspect();
    const auditReport = await audit?.verdict();
    await stores.finish(exporterResponse);
    const exports = await out.commit(exporterResponse);
    committed = true;
    if (load && loadExp) {
      const images = await step(progress, "importing to docker", () => load.loaded);
      const result = exports[exps.filter((e) => !e.sink).indexOf(loadExp)];
      if (result) {
        delete result.stream;
        result.engine = load.address;
        if (images.length) result.names ??= images;
      }
    }
    if (r.pushNames.length && conn.engine) {
      const lookup = credentialLookup(opts.registryAuth, env);
      for (const name of r.pushNames) {
        const pushed = await step(progress, `pushing ${name} with docker`, () => conn.engine!.pushImage(name, lookup, ac.signal));
        if (pushed.digest && name === r.pushNames[0]) {
          exporterResponse["containerimage.config.digest"] ??= exporterResponse["containerimage.digest"] ?? "";
          exporterResponse["containerimage.digest"] = pushed.digest;
        }
      }
    }
    const result: BuildResult = { ref, exporterResponse, bytesSent: Object.fromEntries(stats.bytesSent), exports, warnings };
    if (auditReport) result.audit = auditReport;
    succeeded = true;
    return result;
  } catch (e) {
    if (ac.signal.aborted) throw abortReason(ac);
    if (conn.engine && e instanceof Error) e.message = explainEngineError(e.message);
    // buildkitd only heard "secret s could not be read"; say why, with the cause.
    const local = secretFailures?.first() ?? uploadFailures.first();
    if (local) throw local;
    const output = outputs?.failure;
    if (output) throw output;
    throw e;
  } finally {
    solving = false;
    // A cancelled build does not wait for the daemon (it may be frozen) to
    // end the session. A build that succeeded does not wait for it either:
    // the daemon has answered the solve and calls the session no more, and
    // the handshake that ends it (a few ms) is off the build's path; the
    // connection's close() still waits for it.
    const ending = session?.close(ac.signal.aborted ? 0 : 2000);
    if (ending && succeeded && !ac.signal.aborted) conn.ending(ending);
    else await ending;
    // A context stream the daemon did not read to its end is let go.
    await upload?.close().catch(() => undefined);
    if (!committed) await outputs?.discard(ac.signal.aborted ? abortReason(ac) : new BuildKitError("the build failed"));
    await status?.drain(ac.signal);
    progress.close();
  }
}

/** How long --load waits for the Docker Engine to answer before the build starts. */
const LOAD_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Runs a client-side step of the build (a push or load through the Docker
 * Engine API) as a vertex of its own in the progress, as buildx shows them.
 */
async function step<T>(progress: Queue<SolveStatus>, name: string, fn: () => Promise<T>): Promise<T> {
  const digest = `bk-build:${createHash("sha256").update(`${name}\0${Date.now()}`).digest("hex").slice(0, 32)}`;
  const started = new Date();
  const vertex = (extra: Partial<Vertex>): SolveStatus => ({
    vertexes: [{ digest, inputs: [], name, cached: false, started, ...extra }],
    statuses: [],
    logs: [],
    warnings: [],
  });
  progress.push(vertex({}));
  try {
    const r = await fn();
    progress.push(vertex({ completed: new Date() }));
    return r;
  } catch (e) {
    progress.push(vertex({ completed: new Date(), error: e instanceof Error ? e.message : String(e) }));
    throw e;
  }
}

interface StatusPump {
  /** Lets the stream finish: cut after STATUS_INACTIVITY_MS without an update (at once if `signal` aborted). */
  drain(signal: AbortSignal): Promise<void>;
}

/**
 * Reads Control.Status into `progress`. While the solve runs, a reader that
 * falls behind pauses the stream (HTTP/2 flow control reaches the daemon);
 * once the solve has returned, what is left is read out without waiting on
 * the reader, so `result` never depends on whether progress is read.
 */
function pumpStatus(conn: Connection, ref: string, progress: Queue<SolveStatus>): StatusPump {
  const cut = new AbortController();
  let received = 0;
  let solved = false;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let onUpdate: () => void = () => undefined;
  const done = (async () => {
    try {
      for await (const r of conn.serverStream("Control.Status", { Ref: ref }, { signal: cut.signal })) {
        received++;
        onUpdate();
        progress.push(statusFromWire(r));
        // `solved` is set by drain() while this loop awaits.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (!solved && progress.length >= PROGRESS_HIGH_WATER) await Promise.race([progress.waitBelow(PROGRESS_LOW_WATER), released]);
      }
    } catch {
      // Status is best effort; Solve's outcome decides the build.
    }
  })();
  return {
    async drain(signal) {
      solved = true;
      release();
      if (signal.aborted) cut.abort(STATUS_CUT);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = (ms: number): void => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => cut.abort(STATUS_CUT), ms);
      };
      onUpdate = () => arm(STATUS_INACTIVITY_MS);
      arm(received === 0 ? STATUS_NEVER_STARTED_MS : STATUS_INACTIVITY_MS);
      await done;
      clearTimeout(timer);
    },
  };
}
