/**
 * `bk-build builder create|ls|inspect|rm|use`: named builders, as docker
 * buildx create/ls/inspect/rm/use. One node per `create`, as buildx: the
 * first call makes the builder, `--append` adds a node, `--node NODE`
 * without it replaces that node.
 */
import { list, outputFormat, str, type Values } from "../args.js";
import { connectPool } from "../connect.js";
import { keyValues, table, toJson } from "../output.js";
import { parseLabels } from "../parse-build.js";
import type { CliIo } from "../io.js";
import {
  UsageError,
  checkBuilderName,
  checkNodeInput,
  defaultBuilder,
  findBuilder,
  readBuilderStore,
  readBuildxBuilders,
  setBuilderNode,
  updateBuilderStore,
  type BuildxBuilder,
} from "../../internal.js";
import type { NodeStatus, PoolNode } from "../../index.js";

const SUBCOMMANDS = ["create", "ls", "inspect", "rm", "use"];
const CREATE_FLAGS = ["node", "platform", "label", "append", "tlscacert", "tlscert", "tlskey", "tlsservername", "tlsdir"];
const SSH_FLAGS = ["ssh-key", "ssh-known-hosts", "ssh-insecure-ignore-host-key"];

/** A builder as ls and inspect show it: where it comes from, its nodes as declared, why it cannot be used. */
interface BuilderView {
  name: string;
  source: "bk-build" | "buildx";
  file: string;
  driver?: string | undefined;
  /** Nodes bk-build dials; empty when `unusable`. */
  nodes: Array<PoolNode & { name: string }>;
  /** buildx's node endpoints, for a builder bk-build cannot use. */
  endpoints: Array<{ name: string; endpoint: string }>;
  unusable?: string | undefined;
}

/** What a node answered. */
interface Probed {
  state: NodeStatus["state"];
  error?: string | undefined;
  version?: string | undefined;
  platforms: string[];
  /** Builds running on the node now (its history's running records, from any client); undefined when it cannot say. */
  activeBuilds?: number | undefined;
}

export async function runBuilder(values: Values, positionals: string[], io: CliIo): Promise<void> {
  const [sub, ...args] = positionals;
  if (sub === undefined) throw new UsageError(`'bk-build builder' needs a subcommand: ${SUBCOMMANDS.join(", ")}; run 'bk-build builder --help'`);
  if (!SUBCOMMANDS.includes(sub)) throw new UsageError(`unknown builder subcommand "${sub}": use ${SUBCOMMANDS.join(", ")}`);
  if (values["addr"] !== undefined) throw new UsageError("--addr is not used by 'bk-build builder': a node's address is create's ADDR argument");
  if (values["builder"] !== undefined)
    throw new UsageError(`--builder is not used by 'bk-build builder': name the builder as the argument (bk-build builder ${sub} NAME)`);
  if (sub !== "create") {
    const misplaced = CREATE_FLAGS.find((f) => values[f] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is for 'bk-build builder create', not '${sub}'`);
  }
  if (values["format"] !== undefined && sub !== "ls" && sub !== "inspect")
    throw new UsageError(`--format is for 'bk-build builder ls' and 'inspect', not '${sub}'`);
  const format = outputFormat(values);
  switch (sub) {
    case "create":
      return create(values, args, io);
    case "ls":
      if (args.length) throw new UsageError(`'bk-build builder ls' takes no arguments, got "${args[0]!}"`);
      return ls(values, format, io);
    case "inspect":
      return inspect(values, one(sub, args), format, io);
    case "rm":
      return rm(one(sub, args), io);
    case "use":
      return use(one(sub, args), io);
  }
}

function one(sub: string, args: string[]): string {
  if (args.length !== 1) throw new UsageError(`'bk-build builder ${sub}' takes one builder name, got ${args.length}`);
  return args[0]!;
}

function create(values: Values, args: string[], io: CliIo): void {
  const node = str(values["node"]);
  if (args.length === 1 && node?.includes("://")) {
    throw new UsageError(
      `--node names the node (as docker buildx create --node); give the address after the builder's name: bk-build builder create ${args[0]!} ${node}`,
    );
  }
  if (args.length !== 2) {
    throw new UsageError(
      args.length < 2
        ? "'bk-build builder create' needs a builder name and a node address: bk-build builder create NAME ADDR"
        : `'bk-build builder create' takes a name and one address, got ${args.length} arguments: add further nodes with --append, one per call`,
    );
  }
  const ssh = SSH_FLAGS.find((f) => values[f] !== undefined);
  if (ssh) {
    throw new UsageError(`--${ssh} is not stored with a node: give it to each command that uses the builder (ssh:// nodes otherwise use the agent and ~/.ssh)`);
  }
  const [name, address] = args as [string, string];
  const key = checkBuilderName(name);
  const input = checkNodeInput(
    {
      address,
      name: node,
      platforms: list(values["platform"])
        .flatMap((p) => p.split(","))
        .filter(Boolean),
      tls: {
        caFile: str(values["tlscacert"]),
        certFile: str(values["tlscert"]),
        keyFile: str(values["tlskey"]),
        serverName: str(values["tlsservername"]),
        dir: str(values["tlsdir"]),
      },
      labels: parseLabels(list(values["label"])),
    },
    io.cwd,
  );
  updateBuilderStore(io.env, (store) => setBuilderNode(store, key, input, values["append"] === true));
  // As docker buildx create: the builder's name on stdout.
  io.out(key + "\n");
}

/** bk-build's builders, then buildx's (a name bk-build has hides buildx's). */
function allBuilders(env: Record<string, string | undefined>): BuilderView[] {
  const { file, store } = readBuilderStore(env);
  const own: BuilderView[] = Object.keys(store.builders)
    .sort()
    .map((name) => ({ name, source: "bk-build", file, nodes: findBuilder(name, env).nodes, endpoints: [] }));
  const taken = new Set(own.map((b) => b.name));
  const buildx = readBuildxBuilders(env)
    .filter((b) => !taken.has(b.name.toLowerCase()))
    .map(buildxView);
  return [...own, ...buildx];
}

function buildxView(b: BuildxBuilder): BuilderView {
  return { name: b.name, source: "buildx", file: b.file, driver: b.driver, nodes: b.nodes ?? [], endpoints: b.endpoints, unusable: b.unusable };
}

/** Each node probed on its own (a pool of one), so every node's own answer is shown even when none is up. */
async function probe(node: PoolNode & { name: string }, values: Values, io: CliIo): Promise<Probed> {
  let pool;
  try {
    pool = await connectPool([node], values, io);
  } catch (e) {
    if (io.signal.aborted) throw e;
    return { state: "down", error: firstLine(e), platforms: node.platforms ?? [] };
  }
  try {
    const [s] = (await pool.info({ signal: io.signal })).nodes;
    const out: Probed = { state: s!.state, error: s!.error, version: s!.buildkit?.version, platforms: s!.platforms };
    try {
      const client = await pool.client(node.name);
      const running = [];
      for await (const r of client.history({ activeOnly: true, signal: io.signal })) running.push(r.ref);
      out.activeBuilds = running.length;
    } catch (e) {
      if (io.signal.aborted) throw e;
      // A daemon without build history (an old Engine's BuildKit) cannot say.
    }
    return out;
  } finally {
    await pool.close();
  }
}

function firstLine(e: unknown): string {
  return ((e instanceof Error ? e.message : String(e)) || "no answer").split("\n")[0]!;
}

/** The default builder's name, lowercased, when there is one. */
function defaultName(env: Record<string, string | undefined>): string | undefined {
  return defaultBuilder(env)?.name.toLowerCase();
}

/** buildx's ls platform column: declared platforms marked *, grouped by os/arch ("linux/amd64 (+4)"), four groups at most, then "(N more)". */
export function formatPlatforms(declared: readonly string[], probed: readonly string[], max = 4): string {
  const all = [...declared.map((p) => `${p}*`), ...probed.filter((p) => !declared.includes(p))];
  const groups = new Map<string, string[]>();
  for (const p of all) {
    const key = p.replace(/\*$/, "").split("/").slice(0, 2).join("/");
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const major = ["linux/amd64", "linux/arm64", "linux/arm", "linux/ppc64le", "linux/s390x", "linux/riscv64", "linux/mips64"];
  const keys = [...major.filter((k) => groups.has(k)), ...[...groups.keys()].filter((k) => !major.includes(k)).sort()];
  const out: string[] = [];
  let shown = 0;
  for (const k of keys.slice(0, max)) {
    const g = groups.get(k)!;
    shown += g.length;
    out.push(g.length === 1 ? g[0]! : `${k}${g.some((p) => p.endsWith("*")) ? "*" : ""} (+${g.length})`);
  }
  if (all.length > shown) out.push(`(${all.length - shown} more)`);
  return out.join(", ");
}

function sourceColumn(b: BuilderView): string {
  return b.source === "bk-build" ? "bk-build" : `buildx ${b.driver || "?"}`;
}

async function ls(values: Values, format: "table" | "json", io: CliIo): Promise<void> {
  const builders = allBuilders(io.env);
  const current = defaultName(io.env);
  const probed = await Promise.all(builders.map((b) => Promise.all(b.nodes.map((n) => probe(n, values, io)))));
  if (format === "json") {
    io.out(toJson(builders.map((b, i) => builderJson(b, probed[i]!, b.name.toLowerCase() === current))));
    return;
  }
  const I = " \\_ ";
  const rows: string[][] = [];
  const problems: string[] = [];
  builders.forEach((b, i) => {
    rows.push([b.name + (b.name.toLowerCase() === current ? "*" : ""), sourceColumn(b), b.unusable ? "unusable" : "", "", "", ""]);
    if (b.unusable) {
      problems.push(`warning: cannot use builder ${b.name}: ${b.unusable}\n`);
      for (const e of b.endpoints) rows.push([I + e.name, I + e.endpoint, "", "", "", ""]);
      return;
    }
    b.nodes.forEach((n, j) => {
      const p = probed[i]![j]!;
      rows.push([
        I + n.name,
        I + n.address,
        p.state,
        p.version ?? "",
        p.activeBuilds === undefined ? "" : String(p.activeBuilds),
        formatPlatforms(n.platforms ?? [], p.platforms),
      ]);
      if (p.error) problems.push(`warning: builder ${b.name} node ${n.name} (${n.address}) is down: ${p.error.split("\n")[0]!}\n`);
    });
  });
  if (!builders.length) {
    io.out("no builders: 'bk-build builder create NAME ADDR' makes one (buildx's remote builders are listed too)\n");
    return;
  }
  io.out(table(["NAME/NODE", "SOURCE/ENDPOINT", "STATUS", "BUILDKIT", "ACTIVE", "PLATFORMS"], rows));
  for (const line of problems) io.err(line);
}

function builderJson(b: BuilderView, probed: Probed[], isDefault: boolean): Record<string, unknown> {
  return {
    name: b.name,
    source: b.source,
    file: b.file,
    ...(b.driver ? { driver: b.driver } : {}),
    default: isDefault,
    ...(b.unusable ? { unusable: b.unusable, endpoints: b.endpoints } : {}),
    nodes: b.nodes.map((n, j) => {
      const p = probed[j]!;
      return {
        name: n.name,
        address: n.address,
        declaredPlatforms: n.platforms ?? [],
        labels: n.labels ?? {},
        ...(n.tls ? { tls: n.tls } : {}),
        state: p.state,
        ...(p.error ? { error: p.error } : {}),
        ...(p.version ? { buildkit: p.version } : {}),
        platforms: p.platforms,
        ...(p.activeBuilds === undefined ? {} : { activeBuilds: p.activeBuilds }),
      };
    }),
  };
}

/** The builder `name` names (bk-build's, else buildx's, usable or not); unknown names are findBuilder's error. */
function viewOf(name: string, env: Record<string, string | undefined>): BuilderView {
  const key = checkBuilderName(name);
  const { file, store } = readBuilderStore(env);
  if (store.builders[key]) return { name: key, source: "bk-build", file, nodes: findBuilder(key, env).nodes, endpoints: [] };
  const bx = readBuildxBuilders(env).find((b) => b.name.toLowerCase() === key);
  if (bx) return buildxView(bx);
  findBuilder(key, env); // throws: unknown builder, naming both stores
  throw new UsageError(`unknown builder "${name}"`);
}

async function inspect(values: Values, name: string, format: "table" | "json", io: CliIo): Promise<void> {
  const b = viewOf(name, io.env);
  if (b.unusable) throw new UsageError(b.unusable);
  const probed = await Promise.all(b.nodes.map((n) => probe(n, values, io)));
  const isDefault = b.name.toLowerCase() === defaultName(io.env);
  if (format === "json") {
    io.out(toJson(builderJson(b, probed, isDefault)));
    return;
  }
  const head: Array<[string, string]> = [
    ["Name", b.name],
    ["Source", `${b.source} (${b.file})`],
  ];
  if (b.driver) head.push(["Driver", b.driver]);
  if (isDefault) head.push(["Default", "yes"]);
  let text = keyValues(head) + "\nNodes:\n";
  text += b.nodes
    .map((n, j) => {
      const p = probed[j]!;
      const pairs: Array<[string, string]> = [
        ["Name", n.name],
        ["Endpoint", n.address],
        ["Declared platforms", n.platforms?.join(", ") || "none (from its workers)"],
      ];
      const labels = Object.entries(n.labels ?? {});
      if (labels.length) pairs.push(["Labels", labels.map(([k, v]) => `${k}=${v}`).join(", ")]);
      if (n.tls) {
        const t = n.tls;
        const parts = [
          t.caFile && `ca ${t.caFile}`,
          t.certFile && `cert ${t.certFile}`,
          t.keyFile && `key ${t.keyFile}`,
          t.serverName && `server name ${t.serverName}`,
        ];
        pairs.push(["TLS", parts.filter(Boolean).join(", ")]);
      }
      pairs.push(["Status", p.state]);
      if (p.version) pairs.push(["BuildKit version", p.version]);
      if (p.platforms.length) pairs.push(["Platforms", p.platforms.join(", ")]);
      if (p.activeBuilds !== undefined) pairs.push(["Active builds", String(p.activeBuilds)]);
      if (p.error) pairs.push(["Error", p.error.split("\n")[0]!]);
      return keyValues(pairs);
    })
    .join("\n");
  io.out(text);
}

function rm(name: string, io: CliIo): void {
  const key = checkBuilderName(name);
  updateBuilderStore(io.env, (store, file) => {
    if (!store.builders[key]) {
      const bx = readBuildxBuilders(io.env).find((b) => b.name.toLowerCase() === key);
      if (bx) throw new UsageError(`builder "${bx.name}" is buildx's (${bx.file}), not bk-build's: remove it with docker buildx rm ${bx.name}`);
      throw new UsageError(`no builder "${name}" in bk-build's store (${file}); 'bk-build builder ls' lists the builders`);
    }
    store.builders = Object.fromEntries(Object.entries(store.builders).filter(([k]) => k !== key));
    if (store.current === key) delete store.current;
  });
  // As docker buildx rm.
  io.err(`${key} removed\n`);
}

function use(name: string, io: CliIo): void {
  const key = checkBuilderName(name);
  // Checked now, so that a typo never becomes every later command's error.
  if (key !== "default") findBuilder(key, io.env);
  updateBuilderStore(io.env, (store) => {
    if (key === "default") delete store.current;
    else store.current = key;
  });
  const env = io.env["BK_BUILDER"];
  if (env) io.err(`warning: BK_BUILDER=${env} is set and is used instead while it is\n`);
}
