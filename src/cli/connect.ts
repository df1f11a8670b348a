/**
 * What a command runs on, from the global flags: one buildkitd (--addr,
 * BUILDKIT_HOST, the defaults) or a named builder's nodes (--builder,
 * BK_BUILDER, `bk-build builder use`), and closing it however the command
 * ends.
 */
import { str, type Values } from "./args.js";
import { ConnectionError, UsageError, defaultBuilder, findBuilder, parseTimeout, type FoundBuilder } from "../internal.js";
import type { BuildKitClient, BuildKitPool, ConnectOptions, PlacementOptions, PoolNode, SshOptions } from "../index.js";
import type { CliIo } from "./io.js";

/** What builds run on: the surface BuildKitClient and BuildKitPool share. */
export type BuildTarget = Pick<BuildKitClient, "build" | "check" | "outline" | "targets" | "buildProvenance">;

/** One daemon, or a builder's pool. */
export type Target = { kind: "daemon"; client: BuildKitClient } | { kind: "builder"; pool: BuildKitPool; builder: FoundBuilder };

/**
 * Where a pool's warnings go: stderr as `warning: ...` lines, until a build
 * display takes them over (so a tty display is not torn by them).
 */
export interface WarningRelay {
  write: (line: string) => void;
}

const TLS_FLAGS = ["tlscacert", "tlscert", "tlskey", "tlsservername", "tlsdir"];

/**
 * The builder the command line chooses, if any: --builder (`default`:
 * none); else, unless --addr or a --tls* flag points at one daemon,
 * BK_BUILDER, else the store's current builder. --builder NAME with --addr
 * (or --tls*) is a usage error.
 */
export function chosenBuilder(values: Values, env: Record<string, string | undefined>): { name: string; from: string | undefined } | undefined {
  const flag = str(values["builder"]);
  const addr = str(values["addr"]);
  const tls = TLS_FLAGS.filter((f) => values[f] !== undefined);
  if (flag !== undefined) {
    if (flag === "") throw new UsageError("--builder needs a builder name; 'bk-build builder ls' lists them");
    // As buildx's "default": no builder, the one daemon (--addr, BUILDKIT_HOST, the defaults), whatever the default builder is.
    if (flag.toLowerCase() === "default") return undefined;
    if (addr !== undefined) throw new UsageError("--builder and --addr both choose where to build: give one of them");
    if (tls.length) {
      throw new UsageError(`--${tls[0]!} is for --addr: a builder's nodes keep their own TLS files (bk-build builder create NAME ADDR --tlscacert ...)`);
    }
    return { name: flag, from: undefined };
  }
  if (addr !== undefined || tls.length) return undefined;
  const d = defaultBuilder(env);
  // `builder use default` is stored as no current builder; BK_BUILDER=default means none too, as buildx's "default".
  if (!d || d.name.toLowerCase() === "default") return undefined;
  return d;
}

/** The builder named by `choice`, its errors saying where a default name came from. */
function builderOf(choice: { name: string; from: string | undefined }, env: Record<string, string | undefined>): FoundBuilder {
  try {
    return findBuilder(choice.name, env);
  } catch (e) {
    if (choice.from === undefined || !(e instanceof UsageError)) throw e;
    const undo = choice.from === "BK_BUILDER" ? "unset BK_BUILDER" : "'bk-build builder use default' clears it";
    throw new UsageError(`${e.message} (the default builder, from ${choice.from}; ${undo})`, { cause: e });
  }
}

function sshOptions(values: Values): SshOptions | undefined {
  const ssh = {
    identityFile: str(values["ssh-key"]),
    knownHostsFile: str(values["ssh-known-hosts"]),
    insecureIgnoreHostKey: values["ssh-insecure-ignore-host-key"] === true ? true : undefined,
  };
  return Object.values(ssh).some((x) => x !== undefined) ? ssh : undefined;
}

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
  opts.ssh = sshOptions(values);
  return BuildKitClient.connect(opts);
}

/** A pool over a builder's nodes; the global ssh flags apply to each node, --timeout to each connection. */
export async function connectPool(
  nodes: readonly PoolNode[],
  values: Values,
  io: CliIo,
  options: { placement?: PlacementOptions | undefined; onWarning?: ((message: string) => void) | undefined; name?: string | undefined } = {},
): Promise<BuildKitPool> {
  const { BuildKitPool } = await import("../index.js");
  const ssh = sshOptions(values);
  const timeout = str(values["timeout"]);
  return BuildKitPool.connect({
    nodes: nodes.map((n) => (ssh ? { ...n, ssh } : n)),
    placement: options.placement,
    timeoutMs: timeout === undefined ? undefined : parseTimeout(timeout),
    signal: io.signal,
    env: io.env,
    onWarning: options.onWarning,
    name: options.name,
  });
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

/**
 * Connects to the daemon or the chosen builder, runs `fn`, and closes it
 * however `fn` ends. The pool's warnings go to `relay` (default: stderr).
 */
export async function withTarget<T = void>(
  values: Values,
  io: CliIo,
  fn: (target: Target) => Promise<T>,
  options: { placement?: PlacementOptions | undefined; relay?: WarningRelay | undefined; poolWarnings?: boolean | undefined } = {},
): Promise<T> {
  const choice = chosenBuilder(values, io.env);
  if (!choice) return withClient(values, io, (client) => fn({ kind: "daemon", client }));
  const builder = builderOf(choice, io.env);
  const relay = options.relay ?? { write: (line: string) => io.err(line) };
  const pool = await connectPool(builder.nodes, values, io, {
    name: builder.name,
    placement: options.placement,
    onWarning: options.poolWarnings === false ? undefined : (m) => relay.write(`warning: ${m}\n`),
  });
  try {
    return await fn({ kind: "builder", pool, builder });
  } finally {
    await pool.close();
  }
}

/** One node a per-node command ran on. */
export interface NodeRun<T> {
  node: { name: string; address: string } | undefined;
  value: T;
}

/**
 * Runs `fn` on the daemon, or on each node of the builder in order; a node
 * that is down is skipped with one warning line (and none answering is an
 * error).
 */
export async function eachNode<T>(
  target: Target,
  io: Pick<CliIo, "err">,
  fn: (client: BuildKitClient, node: { name: string; address: string } | undefined) => Promise<T>,
): Promise<Array<NodeRun<T>>> {
  if (target.kind === "daemon") return [{ node: undefined, value: await fn(target.client, undefined) }];
  const out: Array<NodeRun<T>> = [];
  for (const n of target.builder.nodes) {
    let client: BuildKitClient;
    try {
      client = await target.pool.client(n.name);
    } catch (e) {
      if ((e as { code?: string }).code === "USAGE" || (e as { code?: string }).code === "CANCELLED") throw e;
      io.err(`warning: builder node ${n.name} (${n.address}) is down and was skipped: ${((e as Error).message || String(e)).split("\n")[0]!}\n`);
      continue;
    }
    const node = { name: n.name, address: n.address };
    out.push({ node, value: await fn(client, node) });
  }
  if (!out.length) throw new ConnectionError(`no node of builder "${target.builder.name}" answers`, target.builder.nodes.map((n) => n.address).join(","));
  return out;
}

/** The header before a node's output when the builder has several nodes (and nothing for one). */
export function nodeHeader(target: Target, node: { name: string; address: string } | undefined, first: boolean): string {
  if (target.kind === "daemon" || !node || target.builder.nodes.length < 2) return "";
  return `${first ? "" : "\n"}node ${node.name} (${node.address})\n`;
}
