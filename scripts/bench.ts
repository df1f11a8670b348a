/**
 * npm run bench: bk-build side by side with its anchors on the same
 * buildkitd: buildctl, buildx (`docker buildx build` on a `remote` builder
 * that is that buildkitd) and, for the warm API rows, a Go harness on
 * buildkit's own client package (scripts/bench/harness), the floor for any
 * client. In each case the tools run paired and interleaved (each once per
 * round, the order rotating every round, so drift hits them alike); a row
 * is one anchor: medians, their ratio (ours / anchor; lower is better), the
 * goal (issue 15), and min-max. The table goes to stdout, the same as JSON
 * to BK_BENCH_JSON (default dist/bench-results.json). The goals are
 * information: the bench reports and exits 0.
 *
 * Sections (BK_BENCH_ONLY: one, or several separated by commas; default all
 * but scale, which runs only when named):
 *   info    `bk-build info` against `buildctl debug info`, whole process
 *   build   a 500 MB / 10,000-file context bind-mounted by a RUN step, with
 *           the CLI, whole process: fresh (daemon pruned before each run),
 *           one changed file, cached no-op, against buildctl and buildx; and
 *           bk-build's peak RSS while it sends that context
 *   files   100,000 small files (100 bytes each): fresh and cached no-op,
 *           against buildctl and buildx
 *   scale   the growth curve: fresh builds of 1,000 to 300,000 small files
 *           and of 100 MB to 5 GB (BK_BENCH_SCALE_FILES, BK_BENCH_SCALE_MB:
 *           the points, comma-separated; BK_BENCH_SCALE_RUNS: runs per
 *           point, default 2), time and peak RSS against buildctl, and
 *           whether the cost grows linearly and RSS stays flat
 *   secret  a cached no-op of a small context whose RUN step mounts a
 *           secret, the secret given from the environment, whole process,
 *           against buildx (and buildctl, as information)
 *   warm    the API on one long-lived client: sequential cached builds with
 *           a secret, and 20 and 50 at once, against the Go harness (both
 *           warm, in alternating blocks; see scripts/bench-warm.ts)
 *   export  -o type=local and type=tar of a 500 MB / 10,000-file image, a
 *           local cache round trip, against buildctl
 *   engine  through a Docker Engine, against `docker buildx build` with the
 *           docker driver; --load into it from buildkitd (remote driver)
 *   tty     bk-build against itself: a build that logs 100,000 lines with
 *           --progress tty (in a pseudo-terminal, via script(1)) against
 *           --progress quiet, wall and CPU time
 *   pool    builder pools: 30 cached builds at once over 3 nodes against 1,
 *           and the placement decision's cost
 *
 * The CLI rows of build, files and secret run every tool with
 * BUILDX_NO_DEFAULT_ATTESTATIONS=1 (buildx and bk-build would otherwise
 * add a provenance attestation buildctl does not), so all send the same
 * request.
 *
 * Uses BUILDKIT_HOST, BK_BUILDCTL, BK_TEST_REGISTRY, BK_TEST_DOCKER_HOST and
 * BK_TEST_BUILDX when set, else scripts/test-env.sh up. BK_BENCH_RUNS sets
 * the number of runs per quick command (default 30; also the sequential
 * builds per warm block), BK_BENCH_BUILD_RUNS per slow one (default 3; the
 * warm section runs max(3, 2x) blocks), BK_BENCH_TIMEOUT_S the limit for
 * one command (default 300).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BuildxRemote, buildxBinary, harnessBinary, WarmClient, type Cmd, type WarmReply } from "./bench/anchors.js";
import { median, Report } from "./bench/report.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const runs = Number(process.env["BK_BENCH_RUNS"] ?? 30);
const buildRuns = Number(process.env["BK_BENCH_BUILD_RUNS"] ?? 3);
const timeoutS = Number(process.env["BK_BENCH_TIMEOUT_S"] ?? 300);
const only = process.env["BK_BENCH_ONLY"]
  ?.split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const want = (section: string): boolean => !only?.length || only.includes(section);
/** The growth curve takes an hour on this machine: run only when asked for by name. */
const asked = (section: string): boolean => only?.includes(section) ?? false;

function environment(): { host: string; buildctl: string; registry: string; dockerHost: string | undefined } {
  let host = process.env["BUILDKIT_HOST"];
  let buildctl = process.env["BK_BUILDCTL"];
  let registry = process.env["BK_TEST_REGISTRY"];
  let dockerHost = process.env["BK_TEST_DOCKER_HOST"];
  if (!host || !buildctl || (!dockerHost && want("engine"))) {
    const out = execFileSync("bash", [join(root, "scripts", "test-env.sh"), "up"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    const get = (k: string): string | undefined => new RegExp(`^export ${k}=(.*)$`, "m").exec(out)?.[1];
    host = get("BUILDKIT_HOST");
    buildctl = get("BK_BUILDCTL");
    registry = get("BK_TEST_REGISTRY");
    dockerHost = get("BK_TEST_DOCKER_HOST");
    process.env["BK_TEST_BUILDX"] ||= get("BK_TEST_BUILDX");
  }
  if (!host || !buildctl || !registry) throw new Error("no BUILDKIT_HOST/BK_BUILDCTL/BK_TEST_REGISTRY: start scripts/test-env.sh up");
  return { host, buildctl, registry, dockerHost };
}

/** Runs a command to completion and returns its wall time; a command still running after BK_BENCH_TIMEOUT_S is killed and throws. */
function time(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"], timeout: timeoutS * 1000, env: env ?? process.env });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  // bk-build exits 143 on the SIGTERM spawnSync sends at the limit.
  if (r.signal || (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT")
    throw new Error(`${cmd.split("/").pop()!} did not finish within ${timeoutS} s`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr.toString()}`);
  return ms;
}

/**
 * Each command once per round, `rounds` rounds, the order rotating every
 * round (A B C, B C A, C A B, ...) so drift and order effects hit them
 * alike; `before` runs, untimed, before every run. Returns each command's
 * times, in the order given.
 */
function interleave(cmds: Cmd[], rounds: number, before?: () => void): number[][] {
  const out = cmds.map((): number[] => []);
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < cmds.length; j++) {
      const k = (i + j) % cmds.length;
      before?.();
      out[k]!.push(time(...cmds[k]!));
    }
  }
  return out;
}

/** Wall time (ms) and peak RSS (MB, GNU time's %M) of one run of a command. */
function timeAndRss([cmd, args, env]: Cmd): { ms: number; mb: number } {
  const t = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", cmd, ...args], { encoding: "utf8", env, timeout: timeoutS * 1000 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.signal || (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT")
    throw new Error(`${cmd.split("/").pop()!} did not finish within ${timeoutS} s`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} under /usr/bin/time failed (${r.status}): ${r.stderr.slice(-500)}`);
  return { ms, mb: Number(/(\d+)\s*$/.exec(r.stderr.trim())?.[1] ?? NaN) / 1024 };
}

/** Peak RSS in MB of a command. */
const peakRss = (cmd: Cmd): number => timeAndRss(cmd).mb;

const { host, buildctl, registry, dockerHost } = environment();
// Run as installed: the file itself, through its #! line, as npm's bin link
// runs it (its sh line is part of what a user's start costs).
const cli = join(root, "dist", "src", "cli", "bin.js");
chmodSync(cli, 0o755);
const report = new Report(resolve(process.env["BK_BENCH_JSON"] || join(root, "dist", "bench-results.json")), {
  daemon: host,
  runs,
  buildRuns,
  timeoutS,
  only: only ?? "all",
});

/** The CLI rows' environment: the same request from every tool (no default provenance). */
const cliEnv: NodeJS.ProcessEnv = { ...process.env, BUILDX_NO_DEFAULT_ATTESTATIONS: "1" };
const prune = (): void => void spawnSync(buildctl, ["--addr", host, "prune", "--all"], { stdio: "ignore" });
const bkBuild = (...args: string[]): Cmd => [cli, ["build", "--addr", host, "--progress", "quiet", ...args], cliEnv];
const buildctlBuild = (ctx: string, dfDir: string, ...args: string[]): Cmd => [
  buildctl,
  ["--addr", host, "build", "--progress", "quiet", "--frontend", "dockerfile.v0", "--local", `context=${ctx}`, "--local", `dockerfile=${dfDir}`, ...args],
  cliEnv,
];

/** The buildx remote builder, made once for the sections that use it and removed when the bench ends. */
let buildxRemote: BuildxRemote | undefined;
process.on("exit", () => buildxRemote?.close());
/** buildx as an anchor, or none (reported) when it cannot be set up: the other anchors still run. */
function buildxAnchor(section: string): BuildxRemote[] {
  try {
    buildxRemote ??= new BuildxRemote(root, host, { BUILDX_NO_DEFAULT_ATTESTATIONS: "1" });
    return [buildxRemote];
  } catch (e) {
    report.fail(section, "buildx as an anchor", e);
    return [];
  }
}

interface Anchor {
  name: string;
  cmd: Cmd;
}

/**
 * The CLI rows for one context: fresh builds (the daemon pruned before every
 * run), one changed file (the same file appended to before every run, so
 * each tool finds that one file changed since its own last build), cached
 * no-ops; ours against each anchor.
 */
function contextRows(
  section: string,
  what: string,
  mine: Cmd,
  anchors: Anchor[],
  goals: { fresh: number; changed?: { file: string; goal: number }; noop: number },
): void {
  const cmds = [mine, ...anchors.map((a) => a.cmd)];
  const rows = (name: string, goal: number, measure: () => number[][]): void => {
    try {
      const [a, ...others] = measure();
      anchors.forEach((anchor, i) => report.ratio(section, name, anchor.name, goal, a!, others[i]!));
    } catch (e) {
      report.fail(section, name, e);
    }
  };
  rows(`CLI fresh build, ${what}`, goals.fresh, () => interleave(cmds, buildRuns, prune));
  const changed = goals.changed;
  if (changed) {
    rows(`CLI one changed file in ${what}`, changed.goal, () => {
      for (const c of cmds) time(...c);
      return interleave(cmds, buildRuns, () => appendFileSync(changed.file, "x"));
    });
  }
  rows(`CLI cached no-op, ${what}, whole process`, goals.noop, () => {
    for (const c of cmds) time(...c);
    return interleave(cmds, Math.max(Math.round(runs / 3), buildRuns));
  });
}

/** A context that a RUN step bind-mounts whole, and its Dockerfile in a directory of its own (-f). */
function bindMountContext(base: string): { ctx: string; df: string } {
  const ctx = join(base, "context");
  const df = join(base, "df");
  mkdirSync(ctx);
  mkdirSync(df);
  writeFileSync(join(df, "Dockerfile"), `FROM ${registry}/bk-test/busybox:latest\nRUN --mount=type=bind,target=/ctx ls /ctx > /dev/null\n`);
  return { ctx, df };
}

/** A small context whose RUN step mounts the secret `tok` (cached after the first build, as the value is not in the cache key). */
function secretContext(base: string): string {
  const ctx = join(base, "secret-context");
  mkdirSync(ctx);
  writeFileSync(join(ctx, "app.txt"), "bk-bench\n");
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${registry}/bk-test/busybox:latest\nCOPY app.txt /app/\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok > /dev/null\n`,
  );
  return ctx;
}

console.log(`daemon: ${host}`);
report.header();

if (want("info")) {
  const mine: Cmd = [cli, ["info", "--addr", host], process.env];
  const theirs: Cmd = [buildctl, ["--addr", host, "debug", "info"], process.env];
  try {
    time(...mine);
    time(...theirs);
    const [a, b] = interleave([mine, theirs], runs);
    report.ratio("info", "info, whole process", "buildctl", 2.0, a!, b!);
  } catch (e) {
    report.fail("info", "info, whole process", e);
  }
}

if (want("build")) {
  // 500 MB in 10,000 files, and a Dockerfile that bind-mounts the context.
  const base = mkdtempSync(join(tmpdir(), "bk-bench-"));
  try {
    const { ctx, df } = bindMountContext(base);
    for (let d = 0; d < 100; d++) mkdirSync(join(ctx, `d${d}`));
    for (let i = 0; i < 10_000; i++) writeFileSync(join(ctx, `d${i % 100}`, `f${i}.bin`), randomBytes(50 * 1024));
    const dockerfile = join(df, "Dockerfile");
    const mine = bkBuild("-f", dockerfile, ctx);
    const anchors: Anchor[] = [
      { name: "buildctl", cmd: buildctlBuild(ctx, df) },
      ...buildxAnchor("build").map((bx) => ({ name: "buildx", cmd: bx.build("-f", dockerfile, ctx) })),
    ];
    contextRows("build", "500 MB / 10,000 files", mine, anchors, {
      fresh: 1.0,
      changed: { file: join(ctx, "d7", "f7.bin"), goal: 1.1 },
      noop: 1.2,
    });

    // Peak RSS of bk-build while it sends the whole context to a pruned daemon.
    const name = "peak RSS sending 500 MB / 10,000 files";
    try {
      const mb: number[] = [];
      for (let i = 0; i < buildRuns; i++) {
        prune();
        mb.push(peakRss(mine));
      }
      report.limit("build", name, "MB", 100, mb);
    } catch (e) {
      report.fail("build", name, e);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (want("files")) {
  // 100,000 files of 100 bytes (10 MB) in 1,000 directories: what a
  // context costs per file, in the sync's walk and its requests.
  const base = mkdtempSync(join(tmpdir(), "bk-bench-files-"));
  try {
    const { ctx, df } = bindMountContext(base);
    for (let d = 0; d < 1000; d++) mkdirSync(join(ctx, `d${d}`));
    for (let i = 0; i < 100_000; i++) writeFileSync(join(ctx, `d${i % 1000}`, `f${i}.txt`), randomBytes(50).toString("hex"));
    const dockerfile = join(df, "Dockerfile");
    const anchors: Anchor[] = [
      { name: "buildctl", cmd: buildctlBuild(ctx, df) },
      ...buildxAnchor("files").map((bx) => ({ name: "buildx", cmd: bx.build("-f", dockerfile, ctx) })),
    ];
    contextRows("files", "100,000 small files", bkBuild("-f", dockerfile, ctx), anchors, { fresh: 1.0, noop: 0.8 });
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (asked("scale")) {
  // The growth curve: a fresh build (daemon pruned first) of a context that
  // a RUN step bind-mounts, ours against buildctl, each run's wall time and
  // peak RSS, as the file count grows (100-byte files, 100 to a directory)
  // and as the total size grows (1,000 files). Cost must grow linearly: the
  // cost per file between the two largest points is compared with the cost
  // per file between the two before them (the fixed cost of a build drops
  // out of both). RSS must stay flat with total size.
  const points = (name: string, dflt: number[]): number[] => {
    const v = process.env[name];
    const xs = v ? v.split(",").map(Number) : dflt;
    if (xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new Error(`${name}=${v ?? ""}: give positive whole numbers separated by commas`);
    return xs;
  };
  const fileCounts = points("BK_BENCH_SCALE_FILES", [1_000, 10_000, 100_000, 300_000]);
  const totalsMb = points("BK_BENCH_SCALE_MB", [100, 1_000, 5_000]);
  const scaleRuns = Math.max(1, Number(process.env["BK_BENCH_SCALE_RUNS"] ?? 2));
  interface Point {
    x: number;
    ours: { ms: number; mb: number };
    theirs: { ms: number; mb: number };
  }
  /** One point of a curve: the context made by fill, measured, removed. */
  const point = (x: number, what: string, fill: (ctx: string) => void): Point | undefined => {
    const base = mkdtempSync(join(tmpdir(), "bk-bench-scale-"));
    const name = `scale: fresh build, ${what}`;
    try {
      const { ctx, df } = bindMountContext(base);
      fill(ctx);
      const cmds = [bkBuild("-f", join(df, "Dockerfile"), ctx), buildctlBuild(ctx, df)];
      const got = cmds.map((): { ms: number; mb: number }[] => []);
      for (let i = 0; i < scaleRuns; i++) {
        for (let j = 0; j < cmds.length; j++) {
          const k = (i + j) % cmds.length;
          prune();
          got[k]!.push(timeAndRss(cmds[k]!));
        }
      }
      const [ours, theirs] = got.map((g) => ({ ms: median(g.map((r) => r.ms)), mb: median(g.map((r) => r.mb)) }));
      // Information: the goals are on the growth, below (the fresh rows of build and files hold the ratio goals).
      report.ratio(
        "scale",
        name,
        "buildctl",
        Infinity,
        got[0]!.map((r) => r.ms),
        got[1]!.map((r) => r.ms),
        `peak RSS ${ours!.mb.toFixed(0)} MB (buildctl ${theirs!.mb.toFixed(0)} MB)`,
      );
      return { x, ours: ours!, theirs: theirs! };
    } catch (e) {
      report.fail("scale", name, e);
      return undefined;
    } finally {
      rmSync(base, { recursive: true, force: true });
      prune();
    }
  };
  /** The cost per unit between the two largest points against that between the two before them, for both tools. */
  const growth = (curve: Point[], what: string, unit: string): void => {
    if (curve.length < 3) return;
    const [a, b, c] = curve.slice(-3) as [Point, Point, Point];
    const slope = (p: Point, q: Point, who: "ours" | "theirs"): number => (q[who].ms - p[who].ms) / (q.x - p.x);
    const name = `scale: ${what}, ms per ${unit} from ${b.x} to ${c.x} against from ${a.x} to ${b.x} (1.0: linear)`;
    report.ratio(
      "scale",
      name,
      "its own earlier slope",
      1.5,
      [slope(b, c, "ours")],
      [slope(a, b, "ours")],
      `buildctl ${(slope(b, c, "theirs") / slope(a, b, "theirs")).toFixed(2)}`,
    );
  };
  const byFiles: Point[] = [];
  for (const n of fileCounts) {
    const p = point(n, `${n} files of 100 bytes`, (ctx) => {
      for (let d = 0; d < Math.ceil(n / 100); d++) mkdirSync(join(ctx, `d${d}`));
      for (let i = 0; i < n; i++) writeFileSync(join(ctx, `d${Math.floor(i / 100)}`, `f${i}.txt`), randomBytes(50).toString("hex"));
    });
    if (p) byFiles.push(p);
  }
  growth(byFiles, "file count", "file");
  const bySize: Point[] = [];
  for (const mb of totalsMb) {
    const p = point(mb, `${mb} MB in 1,000 files`, (ctx) => {
      const size = Math.round((mb * 1024 * 1024) / 1000);
      for (let d = 0; d < 10; d++) mkdirSync(join(ctx, `d${d}`));
      for (let i = 0; i < 1000; i++) writeFileSync(join(ctx, `d${i % 10}`, `f${i}.bin`), randomBytes(size));
    });
    if (p) bySize.push(p);
  }
  growth(bySize, "total size", "MB");
  if (bySize.length >= 2) {
    const first = bySize[0]!;
    const last = bySize.at(-1)!;
    report.limit(
      "scale",
      `scale: peak RSS at ${last.x} MB minus at ${first.x} MB (flat: 0)`,
      "MB",
      20,
      [last.ours.mb - first.ours.mb],
      `buildctl ${(last.theirs.mb - first.theirs.mb).toFixed(0)} MB`,
    );
  }
}

if (want("secret")) {
  // What a CI job pays per cached build with a secret: the whole process,
  // the secret read from the environment (--secret id=tok,env=...).
  const base = mkdtempSync(join(tmpdir(), "bk-bench-secret-"));
  const name = "CLI cached no-op, small context + secret, whole process";
  try {
    const ctx = secretContext(base);
    const flag = ["--secret", "id=tok,env=BK_BENCH_SECRET"];
    const env = { BK_BENCH_SECRET: `bk-bench-${randomBytes(16).toString("hex")}` };
    const withSecret = ([cmd, args, e]: Cmd): Cmd => [cmd, args, { ...e, ...env }];
    const anchors: (Anchor & { goal: number })[] = [
      ...buildxAnchor("secret").map((bx) => ({ name: "buildx", cmd: withSecret(bx.build(...flag, ctx)), goal: 1.2 })),
      { name: "buildctl", cmd: withSecret(buildctlBuild(ctx, ctx, ...flag)), goal: Infinity },
    ];
    const cmds = [withSecret(bkBuild(...flag, ctx)), ...anchors.map((a) => a.cmd)];
    for (const c of cmds) time(...c);
    const [a, ...others] = interleave(cmds, runs);
    anchors.forEach((anchor, i) => report.ratio("secret", name, anchor.name, anchor.goal, a!, others[i]!));
  } catch (e) {
    report.fail("secret", name, e);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (want("warm")) {
  // The API on one long-lived client, against the Go harness doing the same
  // with buildkit's client.Client: the same context and Dockerfile, the
  // same request (dockerfile.v0, no exporter, the secret served), both warm
  // and cached. Both run as child processes driven by the same line
  // protocol and time their builds themselves; they take turns in blocks
  // (which goes first alternating), so drift hits both.
  const base = mkdtempSync(join(tmpdir(), "bk-bench-warm-"));
  const clients: WarmClient[] = [];
  const blocks = Math.max(3, buildRuns * 2);
  const names = {
    seq: "warm API, sequential cached build with a secret, one client",
    c20: "warm API, 20 concurrent cached builds on one client, whole batch",
    c50: "warm API, 50 concurrent cached builds on one client, whole batch",
  };
  try {
    const ctx = secretContext(base);
    // No credentials from the caller's Docker config: both serve an empty one.
    const dockerConfig = join(base, "docker-config");
    mkdirSync(dockerConfig);
    const env = { ...process.env, DOCKER_CONFIG: dockerConfig, BK_BENCH_SECRET: `bk-bench-${randomBytes(16).toString("hex")}` };
    const node = new WarmClient("bk-build (bench-warm.js)", process.execPath, [join(root, "dist", "scripts", "bench-warm.js"), host, ctx, ctx], env);
    clients.push(node);
    const go = new WarmClient("the Go harness", harnessBinary(root), ["-addr", host, "-context", ctx, "-dockerfile", ctx], env);
    clients.push(go);
    const limit = timeoutS * 1000;
    // Warm-up: the first build may run the steps; then every path is hot.
    for (const c of clients) {
      await c.run("seq", 3, limit);
      await c.run("conc", 20, limit);
      await c.run("conc", 50, limit);
    }
    const got = new Map<WarmClient, { seq: number[]; c20: number[]; c50: number[]; notCached: number }>(
      clients.map((c) => [c, { seq: [], c20: [], c50: [], notCached: 0 }]),
    );
    const take = (c: WarmClient, r: WarmReply): WarmReply => {
      got.get(c)!.notCached += r.notCached;
      return r;
    };
    for (let b = 0; b < blocks; b++) {
      const order = b % 2 ? [go, node] : [node, go];
      for (const c of order) got.get(c)!.seq.push(...take(c, await c.run("seq", runs, limit)).ms);
      for (const c of order) got.get(c)!.c20.push(take(c, await c.run("conc", 20, limit)).wallMs);
      for (const c of order) got.get(c)!.c50.push(take(c, await c.run("conc", 50, limit)).wallMs);
    }
    const n = got.get(node)!;
    const g = got.get(go)!;
    // Both must have been answered from the cache throughout, or the rows compare different work.
    const note = n.notCached || g.notCached ? `not cached: bk-build ${n.notCached}, harness ${g.notCached} builds` : undefined;
    report.ratio("warm", names.seq, "Go harness", 1.0, n.seq, g.seq, note);
    report.ratio("warm", names.c20, "Go harness", 1.0, n.c20, g.c20, note);
    report.ratio("warm", names.c50, "Go harness", 1.0, n.c50, g.c50, note);
  } catch (e) {
    report.fail("warm", "warm API against the Go harness", e);
  } finally {
    for (const c of clients) await c.close().catch((e: unknown) => report.fail("warm", `closing ${c.name}`, e));
    rmSync(base, { recursive: true, force: true });
  }
}

if (want("export")) {
  // Exports of a 500 MB / 10,000-file image: -o type=local and type=tar, a
  // local cache round trip, each against buildctl on the same cached build.
  const base = mkdtempSync(join(tmpdir(), "bk-bench-exp-"));
  const ctx = join(base, "context");
  mkdirSync(ctx);
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${registry}/bk-test/busybox:latest AS gen\nRUN mkdir /out && cd /out && for d in $(seq 0 99); do mkdir d$d; for f in $(seq 0 99); do head -c 51200 /dev/urandom > d$d/f$f.bin; done; done\nFROM scratch\nCOPY --from=gen /out /\n`,
  );
  const mine = (out: string, ...extra: string[]): [string, string[]] => [cli, ["build", "--addr", host, "--progress", "quiet", ...extra, "-o", out, ctx]];
  const theirs = (out: string, ...extra: string[]): [string, string[]] => [
    buildctl,
    [
      "--addr",
      host,
      "build",
      "--progress",
      "quiet",
      "--frontend",
      "dockerfile.v0",
      "--local",
      `context=${ctx}`,
      "--local",
      `dockerfile=${ctx}`,
      ...extra,
      "--output",
      out,
    ],
  ];
  const clean = (): void => {
    for (const n of ["a", "b", "a.tar", "b.tar"]) rmSync(join(base, n), { recursive: true, force: true });
  };
  time(...mine(`type=tar,dest=${join(base, "a.tar")}`)); // builds the image once
  clean();
  for (const [name, a, b] of [
    ["-o type=local", `type=local,dest=${join(base, "a")}`, `type=local,dest=${join(base, "b")}`],
    ["-o type=tar", `type=tar,dest=${join(base, "a.tar")}`, `type=tar,dest=${join(base, "b.tar")}`],
  ] as const) {
    const xa: number[] = [];
    const xb: number[] = [];
    try {
      for (let i = 0; i < buildRuns; i++) {
        clean();
        xa.push(time(...mine(a)));
        clean();
        xb.push(time(...theirs(b)));
      }
      report.ratio("export", `${name} of 500 MB / 10,000 files`, "buildctl", 1.0, xa, xb);
    } catch (e) {
      // buildctl v0.24's own local export of this image stalls on some machines.
      report.fail("export", `${name} of 500 MB / 10,000 files (bk-build ${xa.map((x) => x.toFixed(0)).join(", ")} ms)`, e);
    }
    clean();
    try {
      report.limit("export", `peak RSS ${name}`, "MB", 150, [peakRss([...mine(a), process.env])]);
    } catch (e) {
      report.fail("export", `peak RSS ${name}`, e);
    }
  }
  // Local cache: export (mode=max), prune, import: the whole round trip.
  const cacheRun = (who: "ours" | "theirs", flag: "to" | "from", cache: string): number => {
    const spec = flag === "to" ? `type=local,dest=${cache},mode=max` : `type=local,src=${cache}`;
    if (who === "ours") return time(cli, ["build", "--addr", host, "--progress", "quiet", `--cache-${flag}`, spec, ctx]);
    const args = ["--addr", host, "build", "--progress", "quiet", "--frontend", "dockerfile.v0", "--local", `context=${ctx}`, "--local", `dockerfile=${ctx}`];
    return time(buildctl, [...args, flag === "to" ? "--export-cache" : "--import-cache", spec]);
  };
  const ra: number[] = [];
  const rb: number[] = [];
  for (let i = 0; i < buildRuns; i++) {
    for (const [list, who] of [
      [ra, "ours"],
      [rb, "theirs"],
    ] as const) {
      const cache = join(base, `cache-${who}`);
      rmSync(cache, { recursive: true, force: true });
      const t0 = cacheRun(who, "to", cache);
      prune();
      list.push(t0 + cacheRun(who, "from", cache));
    }
  }
  report.ratio("export", "local cache export + import", "buildctl", 1.1, ra, rb);
  rmSync(base, { recursive: true, force: true });
}

if (want("engine")) {
  // bk-build side by side with `docker buildx build` (the docker CLI with
  // buildx as its plugin, in a DOCKER_CONFIG of our own, never ~/.docker).
  const base = mkdtempSync(join(tmpdir(), "bk-bench-engine-"));
  const cfg = join(base, "docker-config");
  const builder = `bk-bench-${process.pid}`;
  const tags = { noop: "bk-bench-engine-noop", load: "bk-bench-engine-load" };
  // Only DOCKER_HOST picks the Engine, and both tools keep their defaults.
  const unset = new Set(["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "BUILDKIT_HOST", "BUILDX_BUILDER", "BUILDX_NO_DEFAULT_LOAD"]);
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !unset.has(k))),
    DOCKER_CONFIG: cfg,
    DOCKER_HOST: dockerHost,
  };
  const docker = (...args: string[]): { status: number | null; out: string } => {
    const r = spawnSync("docker", args, { encoding: "utf8", env });
    return { status: r.error ? -1 : r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error?.message ?? ""}` };
  };
  const rmi = (...names: string[]): void => void docker("rmi", ...names);
  let created = false;
  console.log(`engine: ${dockerHost ?? "(none)"}`);
  try {
    if (!dockerHost) throw new Error("no BK_TEST_DOCKER_HOST: start scripts/test-env.sh up (it runs a Docker Engine)");
    mkdirSync(join(cfg, "cli-plugins"), { recursive: true });
    symlinkSync(buildxBinary(root), join(cfg, "cli-plugins", "docker-buildx"));
    const v = docker("buildx", "version");
    if (v.status !== 0) throw new Error(`docker buildx does not run (is the docker CLI installed?): ${v.out.trim()}`);
    // With DOCKER_HOST set, buildx's docker-driver builder for that Engine is "default" (the context's name).
    const d = docker("buildx", "inspect", "default");
    if (d.status !== 0 || !/^Driver:\s+docker$/m.test(d.out)) throw new Error(`no buildx builder "default" with the docker driver: ${d.out.trim()}`);

    // 1. A cached no-op build through the Engine; both tag it (the Engine's
    // BuildKit stores it, as the docker driver does by default). The Engine
    // has no bridge network, hence --network host for both.
    const noop = join(base, "noop");
    mkdirSync(noop);
    writeFileSync(join(noop, "app.txt"), "bk-bench\n");
    writeFileSync(join(noop, "Dockerfile"), `FROM ${registry}/bk-test/busybox:latest\nCOPY app.txt /app/\nRUN cat /app/app.txt > /app/copy\n`);
    const common = ["--progress", "quiet", "--network", "host"];
    const ours: [string, string[], NodeJS.ProcessEnv] = [cli, ["build", "--addr", `docker+${dockerHost}`, ...common, "-t", `${tags.noop}:bk`, noop], env];
    const theirs: [string, string[], NodeJS.ProcessEnv] = [
      "docker",
      ["buildx", "build", "--builder", "default", ...common, "-t", `${tags.noop}:bx`, noop],
      env,
    ];
    time(...ours);
    time(...theirs);
    const na: number[] = [];
    const nb: number[] = [];
    for (let i = 0; i < runs; i++) {
      na.push(time(...ours));
      nb.push(time(...theirs));
    }
    report.ratio("engine", "cached no-op build through the Engine, -t, whole process", "buildx (docker driver)", 1.2, na, nb);
    rmi(`${tags.noop}:bk`, `${tags.noop}:bx`);

    // 2. --load of a 200 MB image from buildkitd into the Engine. The random
    // 200 MB stage is cached in buildkitd, so each run re-exports the docker
    // tarball and the Engine loads it. The image is removed from the Engine
    // before every run (a new tag alone would not do: the classic store
    // skips layers it already holds), and no other image may hold the layer.
    const load = join(base, "load");
    mkdirSync(load);
    writeFileSync(join(load, "Dockerfile"), `FROM ${registry}/bk-test/busybox:latest\nRUN head -c 200000000 /dev/urandom > /blob\n`);
    const c = docker("buildx", "create", "--name", builder, "--driver", "remote", host);
    if (c.status !== 0) throw new Error(`docker buildx create --driver remote ${host} failed: ${c.out.trim()}`);
    created = true;
    const lours: [string, string[], NodeJS.ProcessEnv] = [cli, ["build", "--addr", host, "--progress", "quiet", "--load", "-t", `${tags.load}:bk`, load], env];
    const ltheirs: [string, string[], NodeJS.ProcessEnv] = [
      "docker",
      ["buildx", "build", "--builder", builder, "--progress", "quiet", "--load", "-t", `${tags.load}:bx`, load],
      env,
    ];
    rmi(`${tags.load}:bk`, `${tags.load}:bx`);
    time(...lours);
    const layers = docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", `${tags.load}:bk`);
    const blob = (JSON.parse(layers.out) as string[]).at(-1)!;
    rmi(`${tags.load}:bk`);
    time(...ltheirs);
    rmi(`${tags.load}:bx`);
    const fresh = (): void => {
      const ids = docker("image", "ls", "-aq").out.split(/\s+/).filter(Boolean);
      const held = ids.length ? docker("image", "inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", ...new Set(ids)).out : "";
      const holder = held.split("\n").find((l) => l.includes(blob));
      if (holder) throw new Error(`image ${holder.split(" ")[0]} in the Engine holds the 200 MB layer, so a load would not re-import it: remove it`);
    };
    const la: number[] = [];
    const lb: number[] = [];
    for (let i = 0; i < buildRuns; i++) {
      fresh();
      la.push(time(...lours));
      rmi(`${tags.load}:bk`);
      fresh();
      lb.push(time(...ltheirs));
      rmi(`${tags.load}:bx`);
    }
    report.ratio("engine", "--load of 200 MB from buildkitd into the Engine", "buildx (remote driver)", 1.0, la, lb);
  } catch (e) {
    report.fail("engine", "engine", e);
  } finally {
    if (dockerHost) rmi(`${tags.noop}:bk`, `${tags.noop}:bx`, `${tags.load}:bk`, `${tags.load}:bx`);
    if (created) docker("buildx", "rm", builder);
    rmSync(base, { recursive: true, force: true });
  }
}

if (want("tty")) {
  // The tty display must not slow a build that logs a lot: `seq 100000` in
  // one step, uncached, drawn in a 120x40 pseudo-terminal, against the same
  // build with --progress quiet in the same terminal.
  const base = mkdtempSync(join(tmpdir(), "bk-bench-tty-"));
  writeFileSync(join(base, "Dockerfile"), `FROM ${registry}/bk-test/busybox:latest\nRUN seq 100000\n`);
  const n = Math.max(5, buildRuns * 2);
  /** Wall ms and the child's CPU ms (user + sys, from the shell's `times`). */
  const inPty = (mode: string): { wall: number; cpu: number } => {
    const inner = `stty cols 120 rows 40; ${JSON.stringify(cli)} build --addr ${host} --no-cache --progress ${mode} ${base} >/dev/null || exit 1; times`;
    const t = process.hrtime.bigint();
    const r = spawnSync("script", ["-qfec", `bash -c ${JSON.stringify(inner)}`, "/dev/null"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
    });
    const wall = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`the ${mode} build in a pseudo-terminal failed (${r.status}): ${(r.stdout + r.stderr).slice(-500)}`);
    const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stdout.replace(/\r/g, ""));
    if (!m) throw new Error(`no CPU times from the ${mode} run: ${r.stdout.slice(-300)}`);
    const cpu = (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
    return { wall, cpu };
  };
  try {
    inPty("tty");
    inPty("quiet");
    const tw: number[] = [];
    const qw: number[] = [];
    const tc: number[] = [];
    const qc: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = inPty("tty");
      const b = inPty("quiet");
      tw.push(a.wall);
      tc.push(a.cpu);
      qw.push(b.wall);
      qc.push(b.cpu);
    }
    report.ratio("tty", "seq 100000 in one step, --progress tty, wall", "bk-build --progress quiet", 1.1, tw, qw);
    report.ratio("tty", "seq 100000 in one step, --progress tty, CPU", "bk-build --progress quiet", Infinity, tc, qc);
  } catch (e) {
    report.fail("tty", "seq 100000 in one step, --progress tty", e);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (want("pool")) {
  // Builder pools: 30 independent cached builds sent at once through a pool
  // of 3 nodes against the same 30 through a pool of one of them (the
  // nodes come from scripts/test-env.sh nodes, all with the worker's
  // default platforms); and what the placement decision costs a build
  // when every node's health answer is cached.
  const base = mkdtempSync(join(tmpdir(), "bk-bench-pool-"));
  const { BuildKitPool } = await import("../src/index.js");
  try {
    const out = execFileSync("bash", [join(root, "scripts", "test-env.sh"), "nodes", "3"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, BK_TEST_NODE_PLATFORMS: "-,-,-" },
    });
    const addrs = /^export BK_TEST_NODES=(.*)$/m.exec(out)?.[1]?.split(",") ?? [];
    if (addrs.length !== 3) throw new Error(`scripts/test-env.sh nodes 3 gave ${addrs.length} nodes`);
    const contexts = Array.from({ length: 30 }, (_, i) => {
      const dir = join(base, `ctx-${i}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "f"), `service ${i}\n`);
      writeFileSync(join(dir, "Dockerfile"), `FROM ${registry}/bk-test/busybox:latest\nCOPY f /f\nRUN cat /f\n`);
      return dir;
    });
    const three = await BuildKitPool.connect({ nodes: addrs.map((address, i) => ({ name: `node${i + 1}`, address })) });
    const one = await BuildKitPool.connect({ nodes: [{ name: "node1", address: addrs[0]! }] });
    const all = async (target: { build: (typeof three)["build"] }): Promise<number> => {
      const t = process.hrtime.bigint();
      await Promise.all(contexts.map((c) => target.build({ context: c }).result));
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    try {
      await all(three);
      await all(one);
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < Math.max(5, buildRuns * 2); i++) {
        a.push(await all(three));
        b.push(await all(one));
      }
      report.ratio("pool", "30 cached builds at once, pool of 3 nodes", "pool of 1 node", 0.5, a, b);
      // The decision alone, health answers cached: pool.placement() makes the same choice build() does.
      const decide: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const t = process.hrtime.bigint();
        await three.placement({ context: contexts[i % contexts.length]! });
        decide.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      report.limit("pool", "placement decision per build, pool of 3, healthy", "ms", 2, decide);
    } finally {
      await Promise.all([three.close(), one.close()]);
    }
  } catch (e) {
    report.fail("pool", "pool", e);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

report.print();
console.log(report.allMet ? "every goal is met" : "some goals are not met (see the table); the bench reports, it does not fail");
