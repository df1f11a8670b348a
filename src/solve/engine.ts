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
 *   cache export but `inline`.
 */
import { UsageError } from "../errors.js";
import type { CacheEntry } from "./cache.js";
import type { ResolvedExport } from "./options.js";

/** What a build needs to know about the Engine it runs on. */
export interface EngineFacts {
  /** Display address, e.g. docker+unix:///var/run/docker.sock. */
  address: string;
  /** The containerd image store (worker label org.mobyproject.buildkit.worker.snapshotter). */
  containerdStore: boolean;
}

/** Go's strconv.ParseBool true values. */
const isTrue = (v: string | undefined): boolean => v !== undefined && /^(1|t|true)$/i.test(v);

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
  o: { platforms: number; cacheExports: readonly CacheEntry[]; env: Record<string, string | undefined> },
): EnginePlan {
  const pushNames: string[] = [];
  const classic = !engine.containerdStore;
  const store = "the Docker Engine's classic image store";
  const fix = "enable the containerd image store in the Engine, or build with a standalone buildkitd";
  if (exps.length === 0 && !isTrue(o.env["BUILDX_NO_DEFAULT_LOAD"])) {
    exps.push({ type: "moby", attrs: {}, target: "none" });
  }
  for (const e of exps) {
    if (e.target === "load") {
      e.type = "moby";
      e.target = "none";
    }
    if (e.type === "image") {
      e.type = "moby";
      if (isTrue(e.attrs["push-by-digest"]) && isTrue(e.attrs["push"])) {
        throw new UsageError("push-by-digest is not supported through a Docker Engine: push by name, or build with a standalone buildkitd");
      }
      if (classic && isTrue(e.attrs["push"])) {
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
  if (classic) {
    const other = o.cacheExports.find((c) => c.type !== "inline");
    if (other) throw new UsageError(`cache export type=${other.type} is not supported with ${store} (only type=inline): ${fix}`);
  }
  return { pushNames };
}

/** The Engine a connection reaches, as builds use it. */
export interface EngineHandle extends EngineFacts {
  /**
   * Pushes an image from the Engine's store (POST /images/{name}/push) with
   * the registry login found for its host; resolves with the pushed digest.
   */
  pushImage(
    name: string,
    credentials: (host: string) => Promise<{ username: string; secret: string } | undefined>,
    signal: AbortSignal,
  ): Promise<{ digest?: string | undefined }>;
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
