/** `bk-build workers`: ids, platforms, labels and GC policies, as buildctl debug workers -v prints them. */
import { list, outputFormat, type Values } from "../args.js";
import { eachNode, nodeHeader, withTarget } from "../connect.js";
import { keyValues, toJson } from "../output.js";
import { formatGoDuration, formatSizeShort } from "../format.js";
import type { CliIo } from "../io.js";
import type { WorkerInfo } from "../../index.js";

export async function runWorkers(values: Values, _positionals: string[], io: CliIo): Promise<void> {
  const format = outputFormat(values);
  await withTarget(
    values,
    io,
    async (target) => {
      const runs = await eachNode(target, io, (client) => client.workers({ filters: list(values["filter"]), signal: io.signal }));
      if (format === "json") {
        io.out(target.kind === "daemon" ? toJson(runs[0]!.value) : toJson(runs.map((r) => ({ ...r.node, workers: r.value }))));
        return;
      }
      const { formatPlatform } = await import("../../index.js");
      io.out(runs.map((r, i) => nodeHeader(target, r.node, i === 0) + renderWorkers(r.value, formatPlatform)).join(""));
    },
    { poolWarnings: false },
  );
}

function renderWorkers(workers: WorkerInfo[], formatPlatform: (p: WorkerInfo["platforms"][number]) => string): string {
  const blocks = workers.map((w) => {
    let text = keyValues([
      ["ID", w.id],
      ["Platforms", w.platforms.map(formatPlatform).join(",")],
    ]);
    const labels = Object.entries(w.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (labels.length) text += "Labels:\n" + keyValues(labels, "  ");
    w.gcPolicies.forEach((g, i) => {
      const pairs: Array<[string, string]> = [["All", String(g.all)]];
      if (g.filters.length) pairs.push(["Filters", g.filters.join(",")]);
      if (g.keepDuration > 0n) pairs.push(["Keep duration", formatGoDuration(g.keepDuration)]);
      if (g.reservedSpace > 0n) pairs.push(["Reserved space", formatSizeShort(g.reservedSpace)]);
      if (g.minFreeSpace > 0n) pairs.push(["Minimum free space", formatSizeShort(g.minFreeSpace)]);
      if (g.maxUsedSpace > 0n) pairs.push(["Maximum used space", formatSizeShort(g.maxUsedSpace)]);
      text += `GC Policy rule#${i}:\n` + keyValues(pairs, "  ");
    });
    return text;
  });
  return blocks.join("\n");
}
