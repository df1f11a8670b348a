/**
 * A multi-platform build split over several nodes, as buildx runs one on a
 * multi-node builder: each node builds its platforms and pushes the result
 * by digest (names without tags, `push-by-digest=true`) to every
 * repository the build names; then each part's manifest (or index, with
 * attestations) is read back from the registry, the parts are merged into
 * one image index, and the index is put under every tag. The result carries
 * the index digest, as a one-node build's push would.
 *
 * Only pushes can be split (or builds without outputs): a file, directory
 * or Engine output would need the parts merged on the client's disk.
 */
import { BuildKitError, UsageError } from "../errors.js";
import { newId } from "../session/id.js";
import { parseBool } from "../units.js";
import type { BuildOptions, ResolvedBuild, ResolvedExport } from "../solve/options.js";
import type { BuildResult } from "../solve/solve.js";
import type { ExportResult } from "../solve/outputs.js";
import type { RegistryRef } from "../registry/client.js";

export interface SplitSlot {
  readonly name: string;
}

export interface SplitContext<S extends SplitSlot> {
  /** The pool build's ref: the first part runs under it. */
  ref: string;
  signal: AbortSignal;
  /** Environment for registry credentials (the Docker config), as the build's. */
  env: Record<string, string | undefined>;
  start: (slot: S, options: BuildOptions, ref: string, signal: AbortSignal) => Promise<BuildResult>;
}

/** One image push of the build: the repositories it names and the tags per repository. */
interface Push {
  exp: ResolvedExport;
  /** Each repository the names give, in order, once each, with its name without tag. */
  repositories: Array<{ ref: RegistryRef; name: string }>;
  /** Every tag to put the index under (a name without a tag or digest means :latest). */
  tags: Array<{ ref: RegistryRef; tag: string }>;
}

async function pushesOf(exps: ResolvedExport[]): Promise<Push[]> {
  const { parseImageName } = await import("../registry/client.js");
  return exps.map((exp) => {
    const repositories: Push["repositories"] = [];
    const tags: Push["tags"] = [];
    for (const name of (exp.attrs["name"] ?? "").split(",").filter(Boolean)) {
      const { ref, tag, digest } = parseImageName(name);
      const bare = `${ref.host}/${ref.repository}`;
      if (!repositories.some((r) => r.name === bare)) repositories.push({ ref, name: bare });
      if (tag !== undefined || digest === undefined) tags.push({ ref, tag: tag ?? "latest" });
    }
    return { exp, repositories, tags };
  });
}

/** Checks that a build split over `placed` can run: every output an image push with names. Throws UsageError. */
export function checkSplit(placed: Array<{ slot: SplitSlot; platforms: string[] }>, resolved: ResolvedBuild, options: BuildOptions): void {
  const where = placed.map((p) => `${p.platforms.join(",")} on ${p.slot.name}`).join(", ");
  const bad = resolved.exps.find((e) => e.type !== "image" || parseBool(e.attrs["push"]) !== true || !e.attrs["name"]);
  if (bad) {
    throw new UsageError(
      `this build's platforms are on different nodes (${where}); a build split over nodes can only push to a registry: use --push with -t NAME (output type=${bad.type} cannot be merged), or build on a node that has every platform`,
    );
  }
  if (typeof options.context !== "string" && options.context !== undefined) {
    throw new UsageError(
      `this build's platforms are on different nodes (${where}); a context read from a stream can only be sent to one node: give a directory or URL`,
    );
  }
}

/** Runs the parts (each on its node, at once), then merges their pushes into one index per output. */
export async function runSplit<S extends SplitSlot>(
  placed: Array<{ slot: S; platforms: string[] }>,
  options: BuildOptions,
  resolved: ResolvedBuild,
  ctx: SplitContext<S>,
): Promise<BuildResult> {
  checkSplit(placed, resolved, options);
  const pushes = await pushesOf(resolved.exps);
  const outputs = pushes.map((p) => ({
    type: "image",
    attrs: { ...p.exp.attrs, name: p.repositories.map((r) => r.name).join(","), push: "true", "push-by-digest": "true" },
  }));
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const parts = await Promise.all(
      placed.map(async (p, i) => {
        const partOptions: BuildOptions = { ...options, platforms: p.platforms, outputs, tags: undefined, push: undefined, load: undefined };
        try {
          return await ctx.start(p.slot, partOptions, i === 0 ? ctx.ref : newId(), ac.signal);
        } catch (e) {
          // One part failed: the others cannot make the image; stop them.
          ac.abort(e);
          throw e;
        }
      }),
    );
    const [{ RegistryClient }, { mergeIndex }, { credentialLookup }] = await Promise.all([
      import("../registry/client.js"),
      import("../registry/merge.js"),
      import("../solve/registry-auth.js"),
    ]);
    const exports: ExportResult[] = [];
    for (const [i, push] of pushes.entries()) {
      // A push to a plain-HTTP registry says so with registry.insecure=true (as buildkitd's exporter reads it).
      const insecure = parseBool(push.exp.attrs["registry.insecure"]) === true ? push.repositories.map((r) => r.ref.host) : [];
      const registry = new RegistryClient({ credentials: credentialLookup(options.registryAuth, ctx.env), insecure });
      const from = push.repositories[0]!.ref;
      const pieces = await Promise.all(
        parts.map(async (r, j) => {
          const digest = r.exports[i]?.digest ?? (pushes.length === 1 ? r.exporterResponse["containerimage.digest"] : undefined);
          if (!digest) throw new BuildKitError(`builder node ${placed[j]!.slot.name} pushed ${placed[j]!.platforms.join(",")} but did not report its digest`);
          const got = await registry.getManifest(from, digest, { signal: ac.signal });
          return { ...got, platform: placed[j]!.platforms.join(",") };
        }),
      );
      const index = mergeIndex(pieces, options.annotations);
      for (const { ref, tag } of push.tags) await registry.putManifest(ref, tag, index.bytes, index.mediaType, { signal: ac.signal });
      const names = (push.exp.attrs["name"] ?? "").split(",").filter(Boolean);
      exports.push({ type: "image", digest: index.digest, names });
    }
    const first = parts[0]!;
    const exporterResponse = { ...first.exporterResponse };
    delete exporterResponse["containerimage.config.digest"];
    delete exporterResponse["containerimage.descriptor"];
    if (exports[0]) {
      exporterResponse["containerimage.digest"] = exports[0].digest!;
      exporterResponse["image.name"] = exports[0].names!.join(",");
    }
    const bytesSent: Record<string, number> = {};
    for (const r of parts) for (const [k, v] of Object.entries(r.bytesSent)) bytesSent[k] = (bytesSent[k] ?? 0) + v;
    return {
      ref: first.ref,
      exporterResponse,
      bytesSent,
      exports,
      warnings: parts.flatMap((r) => r.warnings),
      node: first.node,
      parts: parts.map((r, j) => ({ ref: r.ref, node: placed[j]!.slot.name, platforms: placed[j]!.platforms })),
    };
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
  }
}
