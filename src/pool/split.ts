/** A multi-platform build split over several nodes of a pool (filled in below). */
import type { BuildOptions, ResolvedBuild } from "../solve/options.js";
import type { BuildResult } from "../solve/solve.js";
import type { Queue } from "../queue.js";
import type { SolveStatus } from "../progress/status.js";

export interface SplitSlot {
  readonly name: string;
}

export interface SplitContext<S extends SplitSlot> {
  ref: string;
  progress: Queue<SolveStatus>;
  signal: AbortSignal;
  start: (slot: S, options: BuildOptions, ref: string) => Promise<BuildResult>;
}

export function runSplit<S extends SplitSlot>(
  _placed: Array<{ slot: S; platforms: string[] }>,
  _options: BuildOptions,
  _resolved: ResolvedBuild,
  _ctx: SplitContext<S>,
): Promise<BuildResult> {
  throw new Error("not yet");
}
