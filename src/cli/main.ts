#!/usr/bin/env node
/**
 * The bk-build CLI. The only module that reads argv, writes to stdout/stderr
 * and sets the exit code.
 */
import { readFileSync } from "node:fs";
import { list, outputFormat, parseCommandLine, str, type Values } from "./args.js";
import type { BuildKitClient, ConnectOptions } from "../client.js";
import type { CacheRecord, WorkerInfo } from "../types.js";

const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function connect(values: Values, signal: AbortSignal): Promise<BuildKitClient> {
  const { BuildKitClient } = await import("../client.js");
  const { parseTimeout } = await import("../units.js");
  const opts: ConnectOptions = { address: str(values["addr"]), signal };
  const timeout = str(values["timeout"]);
  if (timeout !== undefined) opts.timeoutMs = parseTimeout(timeout);
  const tls = {
    caFile: str(values["tlscacert"]),
    certFile: str(values["tlscert"]),
    keyFile: str(values["tlskey"]),
    serverName: str(values["tlsservername"]),
    dir: str(values["tlsdir"]),
  };
  if (Object.values(tls).some((x) => x !== undefined)) opts.tls = tls;
  const ssh = {
    identityFile: str(values["ssh-key"]),
    knownHostsFile: str(values["ssh-known-hosts"]),
    insecureIgnoreHostKey: values["ssh-insecure-ignore-host-key"] === true ? true : undefined,
  };
  if (Object.values(ssh).some((x) => x !== undefined)) opts.ssh = ssh;
  return BuildKitClient.connect(opts);
}

/** Connects, runs `fn`, and closes the client however `fn` ends. */
async function withClient(values: Values, signal: AbortSignal, fn: (client: BuildKitClient) => Promise<void>): Promise<void> {
  const client = await connect(values, signal);
  try {
    await fn(client);
  } finally {
    await client.close();
  }
}

type Out = (text: string) => void;

async function runInfo(values: Values, signal: AbortSignal, out: Out): Promise<void> {
  const format = outputFormat(values);
  await withClient(values, signal, async (client) => {
    const info = await client.info({ signal });
    const { toJson, keyValues } = await import("./output.js");
    if (format === "json") return out(toJson(info));
    const b = info.buildkit;
    const pairs: Array<[string, string]> = [
      ["Address", info.address],
      ["BuildKit", [b.package, b.version, b.revision].filter(Boolean).join(" ")],
    ];
    if (b.dockerfileVersion) pairs.push(["Dockerfile frontend", b.dockerfileVersion]);
    out(keyValues(pairs));
  });
}

async function runWorkers(values: Values, signal: AbortSignal, out: Out): Promise<void> {
  const format = outputFormat(values);
  await withClient(values, signal, async (client) => {
    const workers = await client.workers({ filters: list(values["filter"]), signal });
    const { toJson } = await import("./output.js");
    if (format === "json") return out(toJson(workers));
    out(await renderWorkers(workers));
  });
}

async function renderWorkers(workers: WorkerInfo[]): Promise<string> {
  const { keyValues } = await import("./output.js");
  const { formatGoDuration, formatSizeShort } = await import("../units.js");
  const { formatPlatform } = await import("../convert.js");
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

async function renderRecords(records: CacheRecord[], verbose: boolean): Promise<string> {
  const { table, keyValues } = await import("./output.js");
  const { formatSize, humanDuration } = await import("../units.js");
  if (verbose) {
    return records
      .map((r) => {
        const pairs: Array<[string, string]> = [["ID", r.id]];
        if (r.parents.length) pairs.push(["Parents", r.parents.join(";")]);
        if (r.createdAt) pairs.push(["Created at", r.createdAt.toISOString()]);
        pairs.push(
          ["Mutable", String(r.mutable)],
          ["Reclaimable", String(!r.inUse)],
          ["Shared", String(r.shared)],
          ["Size", formatSize(r.size)],
        );
        if (r.description) pairs.push(["Description", r.description]);
        pairs.push(["Usage count", String(r.usageCount)]);
        if (r.lastUsedAt) pairs.push(["Last used", r.lastUsedAt.toISOString()]);
        if (r.recordType) pairs.push(["Type", r.recordType]);
        return keyValues(pairs);
      })
      .join("\n");
  }
  const now = Date.now();
  return table(
    ["ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"],
    records.map((r) => [
      r.id + (r.mutable ? "*" : ""),
      String(!r.inUse),
      formatSize(r.size),
      r.lastUsedAt ? `${humanDuration(now - r.lastUsedAt.getTime())} ago` : "",
    ]),
  );
}

async function runDu(values: Values, signal: AbortSignal, out: Out): Promise<void> {
  const format = outputFormat(values);
  await withClient(values, signal, async (client) => {
    const du = await client.diskUsage({ filters: list(values["filter"]), signal });
    const { toJson, keyValues } = await import("./output.js");
    const { formatSize } = await import("../units.js");
    if (format === "json") return out(toJson(du));
    let text = await renderRecords(du.records, values["verbose"] === true);
    const pairs: Array<[string, string]> = [];
    if (du.shared > 0n) pairs.push(["Shared", formatSize(du.shared)], ["Private", formatSize(du.total - du.shared)]);
    pairs.push(["Reclaimable", formatSize(du.reclaimable)], ["Total", formatSize(du.total)]);
    text += (values["verbose"] === true && du.records.length ? "\n" : "") + keyValues(pairs);
    out(text);
  });
}

async function runPrune(values: Values, signal: AbortSignal, out: Out): Promise<void> {
  const format = outputFormat(values);
  const { parseBytes, parseGoDuration, formatSize } = await import("../units.js");
  const { UsageError } = await import("../errors.js");
  const keepStorage = str(values["keep-storage"]);
  const reserved = str(values["reserved-space"]);
  if (keepStorage !== undefined && reserved !== undefined) {
    throw new UsageError("--keep-storage and --reserved-space are the same setting; give one");
  }
  const opts = {
    all: values["all"] === true,
    filters: list(values["filter"]),
    keepDurationMs: values["keep-duration"] === undefined ? undefined : parseGoDuration(str(values["keep-duration"])!, "--keep-duration"),
    reservedSpace:
      keepStorage !== undefined ? parseBytes(keepStorage, "--keep-storage")
      : reserved !== undefined ? parseBytes(reserved, "--reserved-space")
      : undefined,
    maxUsedSpace: values["max-used-space"] === undefined ? undefined : parseBytes(str(values["max-used-space"])!, "--max-used-space"),
    minFreeSpace: values["min-free-space"] === undefined ? undefined : parseBytes(str(values["min-free-space"])!, "--min-free-space"),
    signal,
  };
  await withClient(values, signal, async (client) => {
    const removed: CacheRecord[] = [];
    for await (const r of client.prune(opts)) removed.push(r);
    const reclaimed = removed.reduce((n, r) => n + (r.size > 0n ? r.size : 0n), 0n);
    const { toJson, keyValues } = await import("./output.js");
    if (format === "json") return out(toJson({ records: removed, reclaimed }));
    let text = removed.length ? await renderRecords(removed, values["verbose"] === true) : "";
    text += keyValues([["Total", formatSize(reclaimed)]]);
    out(text);
  });
}

async function runBuildCommand(values: Values, signal: AbortSignal, out: Out, positionals: string[]): Promise<void> {
  const { runBuild, buildOptionsFromFlags } = await import("./build-command.js");
  // Parse the flags before dialling, so usage errors never wait on a daemon.
  const flags = buildOptionsFromFlags(values, positionals, process.env);
  await withClient(values, signal, async (client) => {
    await runBuild(client, flags, signal, { out, err: (t) => void process.stderr.write(t) });
  });
}

async function runComposeCommand(values: Values, signal: AbortSignal, out: Out, positionals: string[]): Promise<void> {
  const { composePlanFromFlags, runComposeBuild } = await import("./compose-command.js");
  // Load and check the project before dialling: its mistakes are usage errors.
  const plan = composePlanFromFlags(values, positionals, process.env, process.cwd());
  await withClient(values, signal, async (client) => {
    await runComposeBuild(client, plan, signal, { out, err: (t) => void process.stderr.write(t) });
  });
}

const runners: Record<string, (v: Values, s: AbortSignal, out: Out, positionals: string[]) => Promise<void>> = {
  build: runBuildCommand,
  compose: runComposeCommand,
  info: runInfo,
  workers: runWorkers,
  du: runDu,
  prune: runPrune,
};

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const out: Out = (t) => void process.stdout.write(t);
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once("SIGINT", onSigint);
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === "version") {
      out(`bk-build ${version()}\n`);
      return 0;
    }
    if (parsed.kind === "help") {
      out(parsed.text);
      return 0;
    }
    await runners[parsed.spec.name]!(parsed.values, ac.signal, out, parsed.positionals);
    return 0;
  } catch (e) {
    const err = e as { name?: string; message?: string; stack?: string; code?: string };
    if (ac.signal.aborted) {
      process.stderr.write("error: interrupted\n");
      return 130;
    }
    const message = err.message ?? String(e);
    process.stderr.write(`error: ${message}\n`);
    if (debug && err.stack) process.stderr.write(err.stack + "\n");
    return err.code === "USAGE" ? EXIT_USAGE : EXIT_ERROR;
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

process.exitCode = await main(process.argv.slice(2));
