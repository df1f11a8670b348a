/**
 * The soak test's child process (test/integration/faults.test.ts): one
 * uncached build, then BUILDS cached builds on one BuildKitClient, each with
 * a secret attached. Reports as JSON lines on stdout: RSS, heap and external
 * memory (after a forced GC when run with --expose-gc) every 50 builds and at
 * the last, open file descriptors before connect() and after close(), and
 * durations.
 *
 * It never calls process.exit(): the parent asserts that it exits by itself
 * once its last build is done and the client is closed.
 *
 *   node --expose-gc --min-semi-space-size=16 soak-child.js ADDRESS CONTEXT_DIR BUILDS
 *
 * (--min-semi-space-size: V8 grows its young generation from 1 to 16 MB per
 * semi-space as allocation goes on, which alone added 23 % RSS between
 * builds 100 and 350 while the live heap stayed at 8-9 MB. Starting it at
 * its full size leaves RSS growth to memory that is actually kept.)
 */
import { readdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { BuildKitClient } from "../../src/index.js";

const [address, contextArg, countArg] = process.argv.slice(2);
if (!address || !contextArg || !countArg) throw new Error("usage: soak-child.js ADDRESS CONTEXT_DIR BUILDS");
const context: string = contextArg;
const count = Number(countArg);

const report = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const openFds = (): number => readdirSync("/proc/self/fd").length;
const gc = (globalThis as { gc?: () => void }).gc;
function memory(): { rss: number; heapUsed: number; heapTotal: number; external: number; gc: boolean } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, gc: gc !== undefined };
}

// libuv opens one reserve descriptor (/dev/null, its EMFILE fallback) the
// first time the process makes a stream handle, and keeps it: let
// process.stdout (a pipe to the parent) make it before the count starts, so
// the count is the client's alone.
report({ event: "start" });
const fdStart = openFds();
const client = await BuildKitClient.connect({ address, env: {} });
const secret = `soak-${randomBytes(16).toString("hex")}`;

/** One build; true when its RUN step completed as "cached" (it is announced uncached first). */
async function build(noCache: boolean): Promise<boolean> {
  const b = client.build({ context, secrets: { tok: secret }, noCache, env: {} });
  let cached: boolean | undefined;
  for await (const s of b.progress) {
    for (const v of s.vertexes) if (v.name.includes("RUN ") && v.completed) cached = v.cached;
  }
  await b.result;
  return cached === true;
}

const start = Date.now();
const firstCached = await build(true);
report({ event: "uncached", ms: Date.now() - start, cached: firstCached });

const loop = Date.now();
let notCached = 0;
for (let i = 1; i <= count; i++) {
  if (!(await build(false))) notCached++;
  if (i % 50 === 0 || i === count) report({ event: "memory", build: i, ms: Date.now() - loop, ...memory() });
}
report({ event: "builds", count, notCached, ms: Date.now() - loop });

await client.close();
let fdEnd = openFds();
for (const end = Date.now() + 3000; fdEnd !== fdStart && Date.now() < end; fdEnd = openFds()) {
  await new Promise((r) => setTimeout(r, 50));
}
report({ event: "closed", fdStart, fdEnd });
// No process.exit(): nothing may keep this process alive now.
