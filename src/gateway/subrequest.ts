/**
 * Gateway forwarding for frontend subrequests (`--call check|outline|targets`).
 *
 * A subrequest's answer lives in the frontend result's metadata, which a
 * direct Control.Solve with the dockerfile frontend drops (only `frontend.`
 * keys reach its response). So, as buildx does, the client becomes the
 * build's frontend: Control.Solve with no frontend and no definition,
 * Internal (kept out of the build history), held open while the client
 * calls LLBBridge on the same connection (Ping, then Solve with the real
 * frontend and `requestid`), reads the result's metadata, and hands the
 * result back with LLBBridge.Return, after which Control.Solve ends.
 */
import { BuildKitError, SolveError, abortedError } from "../errors.js";
import type { Connection } from "../transport/connection.js";
import { decodeErrorDetails } from "../transport/error-details.js";
import { GrpcStatusError, Status } from "../grpc/frame.js";
import { Session, newId } from "../session/session.js";
import { UploadFailures, uploadService } from "../session/upload.js";
import { openContextArchive } from "../solve/context-stream.js";
import { fileSyncService } from "../session/filesync.js";
import { authService } from "../session/auth.js";
import { credentialLookup } from "../solve/registry-auth.js";
import { resolveBuild, type BuildOptions } from "../solve/options.js";
import { linkSignals } from "../signals.js";

/** The subrequests the dockerfile frontend answers, by buildx's --call name. */
export const SUBREQUESTS = {
  check: "frontend.lint",
  outline: "frontend.outline",
  targets: "frontend.targets",
  describe: "frontend.subrequests.describe",
} as const;
export type SubrequestName = keyof typeof SUBREQUESTS;

/** The cap that lets the builtin frontend take a subrequest even when a `# syntax=` image would be forwarded to. */
const SUBREQUEST_CAP = "moby.buildkit.frontend.subrequests+forward";
/** How long Ping is retried while the daemon registers the build (Go's client gives Ping 15 s). */
const PING_TIMEOUT_MS = 15_000;
const PING_RETRY_MS = 100;

/** Thrown when the daemon's frontend does not know the subrequest (an old frontend or daemon). */
export class UnsupportedSubrequestError extends BuildKitError {
  readonly subrequest: string;
  constructor(subrequest: string, message: string, cause?: unknown) {
    super(message, { code: "UNIMPLEMENTED", cause });
    this.subrequest = subrequest;
  }
  override get name(): string {
    return "UnsupportedSubrequestError";
  }
}

/** The frontend's answer: its result metadata, values as text. */
export type SubrequestMetadata = Record<string, string>;

/**
 * Runs one subrequest with the build's options (context and Dockerfile
 * through the session's file sync, build args, target, ...: the same
 * frontend attributes a build sends). Secrets, SSH agents, outputs and
 * caches are not used: the frontend only reads the Dockerfile.
 */
export async function runSubrequest(conn: Connection, opts: BuildOptions, name: SubrequestName, closing?: AbortSignal): Promise<SubrequestMetadata> {
  const resolved = resolveBuild(opts);
  const env = opts.env ?? process.env;
  if (opts.signal?.aborted) throw new BuildKitError("the call was aborted before it started", { code: "CANCELLED", cause: opts.signal.reason });
  if (closing?.aborted) throw new BuildKitError("the BuildKitClient is closed", { code: "CANCELLED" });
  // A context archive is checked before anything reaches the daemon.
  const upload = resolved.upload ? await openContextArchive(resolved.upload.source, "the build context stream") : undefined;
  const uploadFailures = new UploadFailures();
  const ac = new AbortController();
  const unlink = linkSignals(ac, [opts.signal, closing]);
  const ref = newId();
  const requestId = SUBREQUESTS[name];
  const attrs = resolved.attrs;
  const session = new Session({
    sharedKey: resolved.sharedKey,
    services: [
      fileSyncService(resolved.dirs),
      authService(credentialLookup(opts.registryAuth, env)),
      ...(upload && resolved.upload ? [uploadService(new Map([[resolved.upload.id, upload.stream]]), uploadFailures)] : []),
    ],
  });
  let solve: Promise<unknown> | undefined;
  try {
    session.start(conn);
    void session.ended.then(({ unexpected, error }) => {
      if (unexpected)
        ac.abort(error ?? new BuildKitError(`the session with ${conn.daemon} at ${conn.address} ended before the call finished`, { code: "UNAVAILABLE" }));
    });
    solve = conn.unary(
      "Control.Solve",
      {
        Ref: ref,
        Session: session.id,
        Frontend: "",
        FrontendAttrs: attrs,
        Exporters: [],
        Cache: {},
        Entitlements: opts.entitlements ?? [],
        Internal: true,
      },
      { signal: ac.signal },
    );
    // If Control.Solve fails first (a bad attribute), that is the error to report.
    const solveFailed = solve.then(
      () => new BuildKitError("Control.Solve ended before the gateway returned a result", { code: "INTERNAL" }),
      (e: unknown) => e,
    );
    solve.catch(() => undefined);
    const first = <T>(p: Promise<T>): Promise<T> =>
      Promise.race([
        p,
        solveFailed.then((e) => {
          throw e;
        }),
      ]);
    await first(ping(conn, ref, ac.signal));
    const frontendOpt: Record<string, string> = { ...attrs, requestid: requestId };
    frontendOpt["frontend.caps"] = attrs["frontend.caps"] ? `${attrs["frontend.caps"]},${SUBREQUEST_CAP}` : SUBREQUEST_CAP;
    let metadata: Record<string, Buffer>;
    try {
      const res = await first(
        conn.bridge(
          "LLBBridge.Solve",
          {
            Frontend: "dockerfile.v0",
            FrontendOpt: frontendOpt,
            allowResultReturn: true,
            allowResultArrayRef: true,
            CacheImports: [],
            FrontendInputs: resolved.inputs,
          },
          ref,
          { signal: ac.signal },
        ),
      );
      metadata = res.result?.metadata ?? {};
    } catch (e) {
      // Tell the daemon the frontend failed, so Control.Solve ends with it.
      await conn
        .bridge("LLBBridge.Return", { error: { code: Status.UNKNOWN, message: e instanceof Error ? e.message : String(e), details: [] } }, ref, {
          signal: ac.signal,
        })
        .catch(() => undefined);
      await solve.catch(() => undefined);
      throw unsupported(e, requestId) ?? e;
    }
    await conn.bridge("LLBBridge.Return", { result: { ref: { id: "" }, metadata } }, ref, { signal: ac.signal });
    await solve;
    const out: SubrequestMetadata = {};
    for (const [k, v] of Object.entries(metadata)) out[k] = Buffer.from(v).toString("utf8");
    return out;
  } catch (e) {
    if (ac.signal.aborted) throw abortedError(ac.signal, "the call was aborted");
    throw uploadFailures.first() ?? e;
  } finally {
    // An unfinished Control.Solve is cancelled with the call.
    if (!ac.signal.aborted) ac.abort(new BuildKitError("the call ended", { code: "CANCELLED" }));
    await solve?.catch(() => undefined);
    await session.close(0);
    await upload?.close().catch(() => undefined);
    unlink();
  }
}

/** Pings the gateway until the daemon has registered the build (it waits up to 3 s itself). */
async function ping(conn: Connection, ref: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + PING_TIMEOUT_MS;
  for (;;) {
    try {
      await conn.bridge("LLBBridge.Ping", {}, ref, { signal, deadline: new Date(deadline) });
      return;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (signal.aborted || Date.now() + PING_RETRY_MS >= deadline || (code !== "NOT_FOUND" && code !== "UNKNOWN" && code !== "UNAVAILABLE")) throw e;
      await new Promise((r) => setTimeout(r, PING_RETRY_MS));
    }
  }
}

/** The error for a frontend that does not know the subrequest, if `e` is that. */
export function unsupported(e: unknown, requestId: string): UnsupportedSubrequestError | undefined {
  let name: string | undefined;
  const cause = e instanceof SolveError ? e.cause : e;
  if (cause instanceof GrpcStatusError) name = decodeErrorDetails(cause.statusDetails).subrequest;
  const message = e instanceof Error ? e.message : String(e);
  if (!name && new RegExp(`unsupported request ${requestId.replace(/\./g, "\\.")}`).test(message)) name = requestId;
  if (!name) return undefined;
  return new UnsupportedSubrequestError(
    name,
    `the daemon's Dockerfile frontend does not support ${name} (it is too old): use a newer buildkitd, or a newer frontend with # syntax=docker/dockerfile:1`,
    e,
  );
}
