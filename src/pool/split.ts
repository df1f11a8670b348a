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
import { parseNormalizedNamed } from "../solve/reference.js";
import type { BuildOptions, ResolvedBuild, ResolvedExport } from "../solve/options.js";
import type { BuildResult } from "../solve/solve.js";
import type { ExportResult } from "../solve/outputs.js";

export interface SplitSlot {
  readonly name: string;
}

/** A manifest or index as the registry holds it. */
export interface PushedManifest {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** What the split needs of a registry: read a pushed part, put the merged index under a tag. */
export interface SplitRegistry {
  getManifest(repository: string, digest: string, signal: AbortSignal): Promise<PushedManifest>;
  putManifest(repository: string, tag: string, manifest: { mediaType: string; bytes: Buffer }, signal: AbortSignal): Promise<string>;
  merge(parts: Array<PushedManifest & { platform: string }>): { mediaType: string; digest: string; bytes: Buffer };
}

export interface SplitContext<S extends SplitSlot> {
  /** The pool build's ref: the first part runs under it. */
  ref: string;
  signal: AbortSignal;
  registry: () => Promise<SplitRegistry>;
  start: (slot: S, options: BuildOptions, ref: string, signal: AbortSignal) => Promise<BuildResult>;
}

/** One image push of the build: the repositories it names and the tags per repository. */
interface Push {
  exp: ResolvedExport;
  /** `domain/path` of each name, in order, once each. */
  repositories: string[];
  /** [repository, tag] for every tagged name (a name without a tag or digest means :latest). */
  tags: Array<[string, string]>;
}

function pushesOf(exps: ResolvedExport[]): Push[] {
  return exps.map((exp) => {
    const repositories: string[] = [];
    const tags: Array<[string, string]> = [];
    for (const name of (exp.attrs["name"] ?? "").split(",").filter(Boolean)) {
      const ref = parseNormalizedNamed(name);
      const repo = `${ref.domain}/${ref.path}`;
      if (!repositories.includes(repo)) repositories.push(repo);
      if (ref.tag !== undefined || ref.digest === undefined) tags.push([repo, ref.tag ?? "latest"]);
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
    throw new UsageError(`this build's platforms are on different nodes (${where}); a context read from a stream can only be sent to one node: give a directory or URL`);
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
  const pushes = pushesOf(resolved.exps);
  const outputs = pushes.map((p) => ({
    type: "image",
    attrs: { ...p.exp.attrs, name: p.repositories.join(","), push: "true", "push-by-digest": "true" },
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
    const registry = await ctx.registry();
    const exports: ExportResult[] = [];
    for (const [i, push] of pushes.entries()) {
      const pieces = await Promise.all(
        parts.map(async (r, j) => {
          const digest = r.exports[i]?.digest ?? (pushes.length === 1 ? r.exporterResponse["containerimage.digest"] : undefined);
          if (!digest) throw new BuildKitError(`node ${placed[j]!.slot.name} pushed ${placed[j]!.platforms.join(",")} but did not say its digest`);
          const got = await registry.getManifest(push.repositories[0]!, digest, ac.signal);
          // A node pushes one platform per part here; a part of several platforms is an index of them already.
          return { ...got, platform: placed[j]!.platforms.join(",") };
        }),
      );
      const index = registry.merge(pieces);
      for (const [repo, tag] of push.tags) await registry.putManifest(repo, tag, index, ac.signal);
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
