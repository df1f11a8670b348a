/** `bk-build history ls|inspect|logs|rm`: the daemon's build records, as buildx history. */
import { list, outputFormat, str, type Values } from "../args.js";
import { withClient } from "../connect.js";
import { toJson } from "../output.js";
import { historyJson, inspectJson, renderHistoryTable, renderInspect, sortRecords } from "../history-format.js";
import { UsageError, matchRef, parseHistoryFilter } from "../../internal.js";
import type { BuildKitClient, BuildRecord } from "../../index.js";
import type { CliIo } from "../io.js";

/** buildx's history ls limit. */
const LS_LIMIT = 50;

const SUBCOMMANDS = ["ls", "inspect", "logs", "rm"];

export async function runHistory(values: Values, positionals: string[], io: CliIo): Promise<void> {
  const [sub, ...args] = positionals;
  if (sub === undefined) throw new UsageError(`'bk-build history' needs a subcommand: ${SUBCOMMANDS.join(", ")}; run 'bk-build history --help'`);
  if (!SUBCOMMANDS.includes(sub)) throw new UsageError(`unknown history subcommand "${sub}": use ${SUBCOMMANDS.join(", ")}`);
  const format = outputFormat(values);
  const filters = list(values["filter"]);
  if (filters.length && sub !== "ls") throw new UsageError(`--filter is for 'bk-build history ls', not '${sub}'`);
  for (const f of filters) parseHistoryFilter(f);
  const progress = str(values["progress"]) ?? "plain";
  if (progress !== "plain" && progress !== "rawjson") throw new UsageError(`invalid --progress "${progress}" for history logs: use plain or rawjson`);
  if (values["progress"] !== undefined && sub !== "logs") throw new UsageError(`--progress is for 'bk-build history logs', not '${sub}'`);
  if (values["format"] !== undefined && sub !== "ls" && sub !== "inspect")
    throw new UsageError(`--format is for 'bk-build history ls' and 'inspect', not '${sub}'`);
  if (sub === "ls" && args.length) throw new UsageError(`'bk-build history ls' takes no arguments, got "${args[0]}"`);
  if ((sub === "inspect" || sub === "logs") && args.length > 1) throw new UsageError(`'bk-build history ${sub}' takes one build ref, got ${args.length}`);
  if (sub === "rm" && args.length === 0) throw new UsageError("'bk-build history rm' needs at least one build ref; 'bk-build history ls' lists them");

  await withClient(values, io, async (client) => {
    switch (sub) {
      case "ls": {
        const records: BuildRecord[] = [];
        for await (const r of client.history({ filters, limit: LS_LIMIT, signal: io.signal })) records.push(r);
        const sorted = sortRecords(records);
        io.out(format === "json" ? toJson(historyJson(sorted)) : renderHistoryTable(sorted));
        return;
      }
      case "inspect": {
        const record = await resolve(client, args[0] ?? "^0", io.signal);
        io.out(format === "json" ? toJson(inspectJson(record)) : renderInspect(record));
        return;
      }
      case "logs": {
        const record = await resolve(client, args[0] ?? "^0", io.signal);
        const { PlainPrinter, rawJsonLine } = await import("../../index.js");
        const printer = progress === "plain" ? new PlainPrinter(io.out) : undefined;
        for await (const s of client.buildLogs(record.ref, { signal: io.signal })) {
          if (printer) printer.update(s);
          else io.out(rawJsonLine(s));
        }
        if (printer) io.out(printer.failures());
        return;
      }
      case "rm": {
        const all = await records(client, io.signal);
        // Every ref is resolved before anything is removed: a typo removes nothing.
        const refs = [...new Set(args.map((a) => matchRef(all, a).ref))];
        for (const ref of refs) {
          await client.removeHistory(ref, { signal: io.signal });
          io.out(ref + "\n");
        }
        return;
      }
    }
  });
}

async function records(client: BuildKitClient, signal: AbortSignal): Promise<BuildRecord[]> {
  const out: BuildRecord[] = [];
  for await (const r of client.history({ signal })) out.push(r);
  return out;
}

/** The record a ref (full, unique prefix or ^N) names. */
async function resolve(client: BuildKitClient, query: string, signal: AbortSignal): Promise<BuildRecord> {
  return matchRef(await records(client, signal), query);
}
