/** `bk-build info`: the daemon's address and version; with a builder, one line per node. */
import { outputFormat, type Values } from "../args.js";
import { withTarget } from "../connect.js";
import { keyValues, table, toJson } from "../output.js";
import type { CliIo } from "../io.js";
import type { BuildKitClient, BuildKitPool } from "../../index.js";

export async function runInfo(values: Values, _positionals: string[], io: CliIo): Promise<void> {
  const format = outputFormat(values);
  await withTarget(
    values,
    io,
    async (target) => {
      if (target.kind === "daemon") return daemonInfo(target.client, format, io);
      return builderInfo(target.pool, target.builder.name, format, io);
    },
    { poolWarnings: false },
  );
}

async function daemonInfo(client: BuildKitClient, format: "table" | "json", io: CliIo): Promise<void> {
  const info = await client.info({ signal: io.signal });
  if (format === "json") return io.out(toJson(info));
  const b = info.buildkit;
  const pairs: Array<[string, string]> = [["Address", info.address]];
  const e = info.engine;
  if (e) {
    const via = e.transport === "native" ? "native gRPC" : "the /grpc and /session upgrades";
    pairs.push(["Docker Engine", `${e.version} (API ${e.apiVersion}, ${e.imageStore} image store, BuildKit over ${via})`]);
    pairs.push(["Engine from", e.source]);
  }
  pairs.push([
    "BuildKit",
    [b.package, b.version, b.revision].filter(Boolean).join(" ") || (e ? "older than v0.11 (the Engine's BuildKit does not report its version)" : "unknown"),
  ]);
  if (b.dockerfileVersion) pairs.push(["Dockerfile frontend", b.dockerfileVersion]);
  io.out(keyValues(pairs));
}

/** Each node's name, address, state and BuildKit version; a down node's reason as a warning line. */
async function builderInfo(pool: BuildKitPool, builder: string, format: "table" | "json", io: CliIo): Promise<void> {
  const { nodes } = await pool.info({ signal: io.signal });
  if (format === "json") return io.out(toJson({ builder, nodes }));
  const rows = nodes.map((n) => [n.name, n.address, n.state, n.buildkit?.version ?? ""]);
  io.out(table(["NAME", "ADDRESS", "STATE", "BUILDKIT"], rows));
  for (const n of nodes) if (n.error) io.err(`warning: builder node ${n.name} (${n.address}) is down: ${n.error.split("\n")[0]!}\n`);
}
