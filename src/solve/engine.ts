/**
 * Builds through a Docker Engine's BuildKit: the exporters mapped as buildx's
 * docker driver maps them, and what the Engine's image store cannot do
 * refused before the build starts (docs: buildkit-protocol-next.md §3.5).
 *
 * - `image` (and `docker` without a destination, buildx's `--load`) becomes
 *   `moby`, which lands the image in the Engine's store. With no output at
 *   all the Engine gets `moby` too (the image is kept, untagged), as
 *   `docker buildx build` does, unless BUILDX_NO_DEFAULT_LOAD is true.
 * - The classic (graph driver) store: `moby` ignores `push=true`, so those
 *   names are pushed through the Engine API after the build; there is no
 *   `image`, `oci` or `docker` exporter, no multi-platform result and no
 *   cache export but `inline`, and no attestations (buildx's default
 *   provenance is left out there, as buildx's docker driver does).
 */
import { UsageError } from "../errors.js";
import { parseBool } from "../units.js";
import type { CacheEntry } from "./cache.js";
import type { ResolvedExport } from "./options.js";
import type { EngineFacts } from "../transport/engine-handle.js";

export type { EngineFacts, EngineHandle } from "../transport/engine-handle.js";

/**
 * Whether the Engine's built-in Dockerfile frontend reads named contexts
 * (--build-context, compose's additional_contexts): Dockerfile 1.4, first
 * in Engine 23.0. An older one ignores them, and `FROM name` then goes to
 * Docker Hub instead.
 */
export function engineHasNamedContexts(version: string): boolean {
  const major = Number(/^(\d+)\./.exec(version)?.[1] ?? "0");
  return major >= 23;
}

export interface EnginePlan {
  /** Image names the Engine API pushes once the build succeeds (classic store). */
  pushNames: string[];
}

/**
 * Rewrites `exps` in place for the Engine and returns what is left to do
 * after the solve. Throws UsageError naming the option and the way out.
 */
export function planForEngine(
  exps: ResolvedExport[],
  engine: EngineFacts,
  o: {
    platforms: number;
    cacheExports: readonly CacheEntry[];
    env: Record<string, string | undefined>;
    namedContexts: readonly string[];
    /** The frontend attributes, from which buildx's default provenance is dropped where it cannot be stored. */
    attrs: Record<string, string>;
    /** Whether the caller asked for attestations (not only the default). */
    attestations: boolean;
  },
): EnginePlan {
  if (o.namedContexts.length && !engineHasNamedContexts(engine.version)) {
    throw new UsageError(
      `build context "${o.namedContexts[0]}" (a named context) needs Docker Engine 23.0 or newer, and the Engine at ${engine.address} is ${engine.version}: its Dockerfile frontend would look for "${o.namedContexts[0]}" on Docker Hub instead; upgrade the Engine or build with a standalone buildkitd`,
    );
  }
  const pushNames: string[] = [];
  const classic = !engine.containerdStore;
  const store = "the Docker Engine's classic image store";
  const fix = "enable the containerd image store in the Engine, or build with a standalone buildkitd";
  if (exps.length === 0 && parseBool(o.env["BUILDX_NO_DEFAULT_LOAD"]) !== true) {
    exps.push({ type: "moby", attrs: {}, target: "none" });
  }
  for (const e of exps) {
    if (e.target === "load") {
      e.type = "moby";
      e.target = "none";
    }
    if (e.type === "image") {
      e.type = "moby";
      if (parseBool(e.attrs["push-by-digest"]) === true && parseBool(e.attrs["push"]) === true) {
        throw new UsageError("push-by-digest is not supported through a Docker Engine: push by name, or build with a standalone buildkitd");
      }
      if (classic && parseBool(e.attrs["push"]) === true) {
        pushNames.push(...(e.attrs["name"] ?? "").split(",").filter(Boolean));
      }
    }
    if (classic && (e.type === "oci" || e.type === "docker")) {
      throw new UsageError(`output type=${e.type} is not available with ${store} (it has moby, local and tar): ${fix}`);
    }
  }
  if (classic && o.platforms > 1) {
    throw new UsageError(`a multi-platform build (${o.platforms} platforms) cannot be stored in ${store}: ${fix}`);
  }
  if (classic && o.attestations) {
    throw new UsageError(`attestations (--attest, --provenance, --sbom) cannot be stored in ${store}: ${fix}`);
  }
  // As buildx's docker driver on the classic store: no default provenance.
  if (classic) delete o.attrs["attest:provenance"];
  if (classic) {
    const other = o.cacheExports.find((c) => c.type !== "inline");
    if (other) throw new UsageError(`cache export type=${other.type} is not supported with ${store} (only type=inline): ${fix}`);
  }
  return { pushNames };
}

/**
 * The Engine's "network bridge not found" (a daemon without a bridge, as
 * `dockerd --bridge=none`) with the setting that avoids it.
 */
export function explainEngineError(message: string): string {
  if (/network bridge not found/.test(message)) {
    return `${message} (the Docker Engine has no bridge network for RUN steps with the default network mode: build with --network host or --network none)`;
  }
  return message;
}
