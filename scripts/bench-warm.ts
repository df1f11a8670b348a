/**
 * bk-build's side of the bench's "warm" section: one BuildKitClient for the
 * whole run, cached Dockerfile builds with a secret on it when asked. The
 * Go harness (scripts/bench/harness) is the other side and speaks the same
 * line protocol, so scripts/bench.ts drives and measures both the same way:
 *
 *   stdin:  "seq N"   N builds one after another
 *           "conc N"  N builds started at once, waited for together
 *   stdout: one JSON line per command:
 *           {"op","n","ms":[each build, from build() to its last progress update],
 *            "wallMs": the whole command, "notCached": builds whose RUN step
 *            was not answered from the cache, "error"?: the first failure}
 *   EOF on stdin: the client is closed and the process ends.
 *
 *   node dist/scripts/bench-warm.js ADDRESS CONTEXT_DIR DOCKERFILE_DIR
 *
 * The secret's value comes from BK_BENCH_SECRET and is never printed.
 */
import { join } from "node:path";
import { createInterface } from "node:readline";
import { BuildKitClient } from "../src/index.js";

const [address, context, dockerfileDir] = process.argv.slice(2);
const secret = process.env["BK_BENCH_SECRET"];
if (!address || !context || !dockerfileDir || secret === undefined) {
  throw new Error("usage: bench-warm.js ADDRESS CONTEXT_DIR DOCKERFILE_DIR, with the secret in BK_BENCH_SECRET");
}
// Nothing below needs it in the environment any more (the build gets it as a value).
delete process.env["BK_BENCH_SECRET"];
const dockerfile = join(dockerfileDir, "Dockerfile");

interface One {
  ms: number;
  cached: boolean;
  error?: string;
}

const client = await BuildKitClient.connect({ address });

/** One build, its progress read to the end (as a caller showing progress must; the harness drains its status channel too). */
async function build(): Promise<One> {
  const t = process.hrtime.bigint();
  let cached = false;
  try {
    const b = client.build({ context, dockerfile, secrets: { tok: secret! } });
    for await (const s of b.progress) {
      for (const v of s.vertexes) if (v.name.includes("RUN ") && v.completed) cached = v.cached;
    }
    await b.result;
    return { ms: Number(process.hrtime.bigint() - t) / 1e6, cached };
  } catch (e) {
    return { ms: Number(process.hrtime.bigint() - t) / 1e6, cached, error: (e as Error).message };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const m = /^(seq|conc) ([1-9]\d*)$/.exec(line.trim());
  if (!m) throw new Error(`bad command ${JSON.stringify(line)}: want "seq N" or "conc N"`);
  const op = m[1]!;
  const n = Number(m[2]);
  const t = process.hrtime.bigint();
  let results: One[];
  if (op === "seq") {
    results = [];
    for (let i = 0; i < n; i++) results.push(await build());
  } else {
    results = await Promise.all(Array.from({ length: n }, build));
  }
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
  const error = results.find((r) => r.error)?.error;
  const reply = { op, n, ms: results.map((r) => r.ms), wallMs, notCached: results.filter((r) => !r.cached).length, ...(error ? { error } : {}) };
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}
await client.close();
