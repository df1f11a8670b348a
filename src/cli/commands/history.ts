/** `bk-build history ls|inspect|logs|rm`: the daemon's build records, as buildx history; with a builder, every node's. */
import { list, outputFormat, str, type Values } from "../args.js";
import { eachNode, nodeHeader, withTarget } from "../connect.js";
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

  await withTarget(
    values,
    io,
    async (target) => {
      if (sub === "ls") {
        const runs = await eachNode(target, io, async (client) => {
          const records: BuildRecord[] = [];
          for await (const r of client.history({ filters, limit: LS_LIMIT, signal: io.signal })) records.push(r);
          return sortRecords(records);
        });
        if (format === "json") {
          io.out(target.kind === "daemon" ? toJson(historyJson(runs[0]!.value)) : toJson(runs.map((r) => ({ ...r.node, records: historyJson(r.value) }))));
        } else {
          io.out(runs.map((r, i) => nodeHeader(target, r.node, i === 0) + renderHistoryTable(r.value)).join(""));
        }
        return;
      }
      // A ref names one build on one node: the records of every node that answers, each with its client.
      const runs = await eachNode(target, io, async (client) => ({ client, records: await records(client, io.signal) }));
      const all = runs.flatMap((r) => r.value.records.map((record) => ({ ...record, client: r.value.client })));
      switch (sub) {
        case "inspect": {
          const record = matchRef(all, args[0] ?? "^0");
          io.out(format === "json" ? toJson(inspectJson(record)) : renderInspect(record));
          return;
        }
        case "logs": {
          const record = matchRef(all, args[0] ?? "^0");
          const { PlainPrinter, rawJsonLine } = await import("../../index.js");
          const printer = progress === "plain" ? new PlainPrinter(io.out) : undefined;
          for await (const s of record.client.buildLogs(record.ref, { signal: io.signal })) {
            if (printer) printer.update(s);
            else io.out(rawJsonLine(s));
          }
          if (printer) io.out(printer.failures());
          return;
        }
        case "rm": {
          // Every ref is resolved before anything is removed: a typo removes nothing.
          const found = new Map(args.map((a) => matchRef(all, a)).map((r) => [r.ref, r]));
          for (const r of found.values()) {
            await r.client.removeHistory(r.ref, { signal: io.signal });
            io.out(r.ref + "\n");
          }
          return;
        }
      }
    },
    { poolWarnings: false },
  );
}

async function records(client: BuildKitClient, signal: AbortSignal): Promise<BuildRecord[]> {
  const out: BuildRecord[] = [];
  for await (const r of client.history({ signal })) out.push(r);
  return out;
}
