/**
 * A Dockerfile build: the session (file sync, secrets, health), Control.Solve
 * with the dockerfile.v0 frontend, and the Control.Status stream run side by
 * side. The first failure cancels the rest; status drains (bounded) after
 * Solve returns.
 */
import { createHash } from "node:crypto";
import { BuildKitError } from "../errors.js";
import type { Connection } from "../transport/connection.js";
import { Session, newId } from "../session/session.js";
import { fileSyncService, type FileSyncStats } from "../session/filesync.js";
import { secretsService } from "../session/secrets.js";
import { prepareSecrets } from "./secrets.js";
import { prepareSsh } from "./ssh.js";
import { sshService } from "../session/ssh.js";
import { authService } from "../session/auth.js";
import { credentialLookup } from "./registry-auth.js";
import { Queue } from "../queue.js";
import { statusFromWire, type SolveStatus } from "../progress/status.js";
import { resolveBuild, type BuildOptions, type ExportSpec } from "./options.js";
import type { StatusResponse__Output } from "../gen/types/moby/buildkit/v1/StatusResponse.js";
import type { SolveResponse__Output } from "../gen/types/moby/buildkit/v1/SolveResponse.js";

export interface BuildResult {
  /** The exporters' response, e.g. `containerimage.digest`. */
  exporterResponse: Record<string, string>;
  /** Bytes of file content sent for each local directory. */
  bytesSent: Record<string, number>;
}

export interface Build {
  readonly ref: string;
  readonly progress: AsyncIterable<SolveStatus>;
  readonly result: Promise<BuildResult>;
}

/**
 * Validates the options synchronously (throws UsageError before any I/O on
 * the daemon), then runs the build; failures after that reject `result`.
 */
export function startBuild(conn: Connection, opts: BuildOptions): Build {
  const env = opts.env ?? process.env;
  const { context, dirs, attrs, exps } = resolveBuild(opts);

  if (opts.signal?.aborted) throw new BuildKitError("the build was aborted before it started", { code: "CANCELLED" });
  const ref = newId();
  const progress = new Queue<SolveStatus>();
  const result = run(conn, opts, { ref, progress, env, context, dirs, attrs, exps });
  // The caller may read progress before awaiting result; keep an early
  // failure from counting as an unhandled rejection in the meantime.
  result.catch(() => undefined);
  return { ref, progress, result };
}

interface Prepared {
  ref: string;
  progress: Queue<SolveStatus>;
  env: Record<string, string | undefined>;
  context: string;
  dirs: Map<string, string>;
  attrs: Record<string, string>;
  exps: ExportSpec[];
}

async function run(conn: Connection, opts: BuildOptions, p: Prepared): Promise<BuildResult> {
  const { ref, progress, context, dirs, attrs, exps } = p;
  let secrets;
  let agents;
  try {
    secrets = await prepareSecrets(opts.secrets, p.env, opts);
    agents = await prepareSsh(opts.ssh, p.env);
  } catch (e) {
    progress.close();
    throw e;
  }
  const stats: FileSyncStats = { bytesSent: new Map() };
  // Stable per context directory, so buildkitd reuses what it already has.
  const sharedKey = createHash("sha256").update(context).digest("hex").slice(0, 32);
  const session = new Session({
    sharedKey,
    services: [
      fileSyncService(dirs, stats),
      secretsService(secrets.providers, secrets.failures),
      authService(credentialLookup(opts.registryAuth, p.env)),
      ...(agents.size ? [sshService(agents)] : []),
    ],
  });
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  session.start(conn);
  // The first failure cancels the rest: a session that ends mid-build makes
  // the solve fail now, with a reason, instead of at the daemon's next use.
  let solving = true;
  void session.ended.then(({ unexpected }) => {
    if (unexpected && solving) {
      ac.abort(new BuildKitError("the session with buildkitd ended before the build finished", { code: "UNAVAILABLE" }));
    }
  });
  const statusAc = new AbortController();
  const statusDone = (async () => {
    try {
      for await (const r of conn.serverStream<StatusResponse__Output>("Control.Status", { Ref: ref }, { signal: statusAc.signal })) {
        progress.push(statusFromWire(r));
      }
    } catch {
      // Status is best effort; Solve's outcome decides the build.
    }
  })();

  const first = exps[0];
  const request = {
    Ref: ref,
    Session: session.id,
    Frontend: "dockerfile.v0",
    FrontendAttrs: attrs,
    Exporters: exps.map((e) => ({ Type: e.type, Attrs: e.attrs })),
    ExporterDeprecated: first?.type ?? "",
    ExporterAttrsDeprecated: first?.attrs ?? {},
    Cache: {
      Imports: (opts.cacheFrom ?? []).map((c) => ({ Type: c.type, Attrs: c.attrs })),
      Exports: (opts.cacheTo ?? []).map((c) => ({ Type: c.type, Attrs: c.attrs })),
    },
    Entitlements: opts.entitlements ?? [],
  };

  try {
    const res = await conn.unary<SolveResponse__Output>("Control.Solve", request, { signal: ac.signal });
    return { exporterResponse: { ...res.ExporterResponse }, bytesSent: Object.fromEntries(stats.bytesSent) };
  } catch (e) {
    // buildkitd only heard "secret s could not be read"; say why, with the cause.
    const local = secrets.failures.first();
    if (local) throw local;
    const reason: unknown = ac.signal.reason;
    if (ac.signal.aborted && reason instanceof BuildKitError && !opts.signal?.aborted) throw reason;
    throw e;
  } finally {
    solving = false;
    opts.signal?.removeEventListener("abort", onAbort);
    await session.close();
    // Let the status stream finish on its own; cut it after 5 s.
    const timer = setTimeout(() => statusAc.abort(), 5000);
    await statusDone;
    clearTimeout(timer);
    progress.close();
  }
}
