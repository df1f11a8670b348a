/** `bk-build du`: build cache disk usage, as buildctl du; with a builder, each node's. */
import { list, outputFormat, type Values } from "../args.js";
import { eachNode, nodeHeader, withTarget } from "../connect.js";
import { keyValues, toJson } from "../output.js";
import { formatSize } from "../format.js";
import { renderRecords } from "../records.js";
import type { CliIo } from "../io.js";
import type { DiskUsage } from "../../index.js";

export async function runDu(values: Values, _positionals: string[], io: CliIo): Promise<void> {
  const format = outputFormat(values);
  await withTarget(
    values,
    io,
    async (target) => {
      const runs = await eachNode(target, io, (client) => client.diskUsage({ filters: list(values["filter"]), signal: io.signal }));
      if (format === "json") {
        io.out(target.kind === "daemon" ? toJson(runs[0]!.value) : toJson(runs.map((r) => ({ ...r.node, ...r.value }))));
        return;
      }
      io.out(runs.map((r, i) => nodeHeader(target, r.node, i === 0) + renderDu(r.value, values["verbose"] === true)).join(""));
    },
    { poolWarnings: false },
  );
}

function renderDu(du: DiskUsage, verbose: boolean): string {
  const text = renderRecords(du.records, verbose);
  const pairs: Array<[string, string]> = [];
  if (du.shared > 0n) pairs.push(["Shared", formatSize(du.shared)], ["Private", formatSize(du.total - du.shared)]);
  pairs.push(["Reclaimable", formatSize(du.reclaimable)], ["Total", formatSize(du.total)]);
  return text + (verbose && du.records.length ? "\n" : "") + keyValues(pairs);
}
