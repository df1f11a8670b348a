/**
 * npm run bench: bk-build side by side with buildctl on the same daemon,
 * reported as ratios (bk-build / buildctl; lower is better).
 *
 * Uses BUILDKIT_HOST and BK_BUILDCTL when set, else scripts/test-env.sh up.
 * BK_BENCH_RUNS sets the number of runs per command (default 30).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const runs = Number(process.env["BK_BENCH_RUNS"] ?? 30);

function environment(): { host: string; buildctl: string } {
  let host = process.env["BUILDKIT_HOST"];
  let buildctl = process.env["BK_BUILDCTL"];
  if (!host || !buildctl) {
    const out = execFileSync("bash", [join(root, "scripts", "test-env.sh"), "up"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    const get = (k: string): string | undefined => new RegExp(`^export ${k}=(.*)$`, "m").exec(out)?.[1];
    host = get("BUILDKIT_HOST");
    buildctl = get("BK_BUILDCTL");
  }
  if (!host || !buildctl) throw new Error("no BUILDKIT_HOST/BK_BUILDCTL: start scripts/test-env.sh up");
  return { host, buildctl };
}

function time(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr.toString()}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Case {
  name: string;
  goal: number;
  ours: [string, string[]];
  theirs: [string, string[]];
}

const { host, buildctl } = environment();
const cli = join(root, "dist", "src", "cli", "main.js");
const cases: Case[] = [
  {
    name: "info (whole process)",
    goal: 2.0,
    ours: [process.execPath, [cli, "info", "--addr", host]],
    theirs: [buildctl, ["--addr", host, "debug", "info"]],
  },
];

console.log(`runs per command: ${runs}; daemon: ${host}`);
console.log(["case", "bk-build median ms", "buildctl median ms", "ratio", "goal", "met"].join("\t"));
let failed = false;
for (const c of cases) {
  // Warm up both, then interleave so drift affects both alike.
  time(...c.ours);
  time(...c.theirs);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(time(...c.ours));
    b.push(time(...c.theirs));
  }
  const ratio = median(a) / median(b);
  const met = ratio <= c.goal;
  failed ||= !met;
  console.log([c.name, median(a).toFixed(1), median(b).toFixed(1), ratio.toFixed(2), `<= ${c.goal}`, met ? "yes" : "NO"].join("\t"));
}
process.exitCode = failed ? 1 : 0;
