/** `bk-build prune`: removes build cache, as buildctl prune / buildx prune. */
import { list, outputFormat, str, type Values } from "../args.js";
import { withClient } from "../connect.js";
import { keyValues, toJson } from "../output.js";
import { formatSize } from "../format.js";
import { renderRecords } from "../records.js";
import { UsageError, parseBytes, parseGoDuration } from "../../internal.js";
import type { CliIo } from "../io.js";

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
  await withClient(values, io, async (client) => {
    const { records, reclaimed } = await client.prune(opts);
    if (format === "json") return io.out(toJson({ records, reclaimed }));
    let text = records.length ? renderRecords(records, values["verbose"] === true) : "";
    text += keyValues([["Total", formatSize(reclaimed)]]);
    io.out(text);
  });
}
