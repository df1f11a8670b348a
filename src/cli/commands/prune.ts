/** `bk-build prune`: removes build cache, as buildctl prune / buildx prune; with a builder, on each node. */
import { list, outputFormat, str, type Values } from "../args.js";
import { eachNode, nodeHeader, withTarget } from "../connect.js";
import { keyValues, toJson } from "../output.js";
import { formatSize } from "../format.js";
import { renderRecords } from "../records.js";
import { UsageError, parseBytes, parseGoDuration } from "../../internal.js";
import type { CliIo } from "../io.js";
import type { PruneResult } from "../../index.js";

export async function runPrune(values: Values, _positionals: string[], io: CliIo): Promise<void> {
  const format = outputFormat(values);
  const keepStorage = str(values["keep-storage"]);
  const reserved = str(values["reserved-space"]);
  if (keepStorage !== undefined && reserved !== undefined) {
    throw new UsageError("--keep-storage and --reserved-space are the same setting; give one");
  }
  const size = (flag: string): bigint | undefined => {
    const v = str(values[flag]);
    return v === undefined ? undefined : parseBytes(v, `--${flag}`);
  };
  const keepDuration = str(values["keep-duration"]);
  const opts = {
    all: values["all"] === true,
    filters: list(values["filter"]),
    keepDurationMs: keepDuration === undefined ? undefined : parseGoDuration(keepDuration, "--keep-duration"),
    reservedSpace: keepStorage !== undefined ? size("keep-storage") : size("reserved-space"),
    maxUsedSpace: size("max-used-space"),
    minFreeSpace: size("min-free-space"),
    signal: io.signal,
  };
  await withTarget(
    values,
    io,
    async (target) => {
      const runs = await eachNode(target, io, (client) => client.prune(opts));
      if (format === "json") {
        const one = ({ records, reclaimed }: PruneResult): PruneResult => ({ records, reclaimed });
        io.out(target.kind === "daemon" ? toJson(one(runs[0]!.value)) : toJson(runs.map((r) => ({ ...r.node, ...one(r.value) }))));
        return;
      }
      io.out(
        runs
          .map((r, i) => {
            const { records, reclaimed } = r.value;
            const text = records.length ? renderRecords(records, values["verbose"] === true) : "";
            return nodeHeader(target, r.node, i === 0) + text + keyValues([["Total", formatSize(reclaimed)]]);
          })
          .join(""),
      );
    },
    { poolWarnings: false },
  );
}
