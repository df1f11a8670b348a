/** Dialling buildkitd from the global flags, and closing the client however a command ends. */
import { str, type Values } from "./args.js";
import { UsageError, parseTimeout } from "../internal.js";
import type { BuildKitClient, ConnectOptions } from "../index.js";
import type { CliIo } from "./io.js";

async function connect(values: Values, io: CliIo): Promise<BuildKitClient> {
  const { BuildKitClient, parseAddress } = await import("../index.js");
  const opts: ConnectOptions = { address: str(values["addr"]), signal: io.signal, env: io.env };
  const fromEnv = io.env["BUILDKIT_HOST"];
  if (!opts.address && fromEnv) {
    // Say where a bad address came from: it is not on the command line.
    try {
      parseAddress(fromEnv);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${e.message} (from BUILDKIT_HOST)`, { cause: e });
      throw e;
    }
  }
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
export async function withClient<T = void>(values: Values, io: CliIo, fn: (client: BuildKitClient) => Promise<T>): Promise<T> {
  const client = await connect(values, io);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
