/** `bk-build du`: build cache disk usage, as buildctl du. */
import { list, outputFormat, type Values } from "../args.js";
import { withClient } from "../connect.js";
import { keyValues, toJson } from "../output.js";
import { formatSize } from "../format.js";
import { renderRecords } from "../records.js";
import type { CliIo } from "../io.js";

export async function runDu(values: Values, _positionals: string[], io: CliIo): Promise<void> {
  const format = outputFormat(values);
  await withClient(values, io, async (client) => {
    const du = await client.diskUsage({ filters: list(values["filter"]), signal: io.signal });
    if (format === "json") return io.out(toJson(du));
    let text = renderRecords(du.records, values["verbose"] === true);
    const pairs: Array<[string, string]> = [];
    if (du.shared > 0n) pairs.push(["Shared", formatSize(du.shared)], ["Private", formatSize(du.total - du.shared)]);
    pairs.push(["Reclaimable", formatSize(du.reclaimable)], ["Total", formatSize(du.total)]);
    text += (values["verbose"] === true && du.records.length ? "\n" : "") + keyValues(pairs);
    io.out(text);
  });
}
