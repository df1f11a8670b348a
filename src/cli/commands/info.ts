/** `bk-build info`: the daemon's address and version. */
import { outputFormat, type Values } from "../args.js";
import { withClient } from "../connect.js";
import { keyValues, toJson } from "../output.js";
import type { CliIo } from "../io.js";

export async function runInfo(values: Values, _positionals: string[], io: CliIo): Promise<void> {
  const format = outputFormat(values);
  await withClient(values, io, async (client) => {
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
  });
}
