/**
 * Builder pools against real buildkitd nodes (each test starts its own,
 * test/helpers/buildkitd.ts): platform routing with workers limited to one
 * platform, cache-sticky placement and spread, a stopped node skipped with
 * one warning, a node killed mid-build (failing, or re-run with
 * retryOnNodeFailure), and the seed scenario (a secret and an SSH agent)
 * on every node of a pool of two.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient, BuildKitPool, ConnectionError, UsageError, type Build, type Vertex } from "../../src/index.js";
import { runCliAsync, testEnv } from "../helpers/env.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { startBuildkitd, type Buildkitd } from "../helpers/buildkitd.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";
import { getBlob, getDocument } from "../helpers/registry.js";
import { placementKey, rendezvousOrder } from "../../src/pool/placement.js";
import type { TestContext } from "node:test";

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;

leakCheckEachTest();

let sshd: Sshd;
before(async () => {
  sshd = await startSshd();
});
after(() => sshd.stop());

/** The build's steps as they ended (last update of each vertex), and its log text. */
async function drain(build: Build): Promise<{ steps: Vertex[]; logs: string }> {
  const byDigest = new Map<string, Vertex>();
  let logs = "";
  for await (const s of build.progress) {
    for (const v of s.vertexes) byDigest.set(v.digest, { ...byDigest.get(v.digest), ...v });
    for (const l of s.logs) logs += l.data.toString();
  }
  return { steps: [...byDigest.values()], logs };
}

async function nodes(t: TestContext, n: number, options: { platforms?: string[] } = {}): Promise<Buildkitd[]> {
  return Promise.all(Array.from({ length: n }, () => startBuildkitd(t, options)));
}

/** True when the node's history has the build `ref`. */
async function ranOn(pool: BuildKitPool, node: string, ref: string): Promise<boolean> {
  const client = await pool.client(node);
  for await (const r of client.history({ ref })) if (r.ref === ref) return true;
  return false;
}

test("pool: each platform goes to the node whose worker has it; no platform means this machine's; an unknown one is one line", async (t) => {
  const [n386, nArm, nAmd] = await Promise.all([
    startBuildkitd(t, { platforms: ["linux/386"] }),
    startBuildkitd(t, { platforms: ["linux/arm64"] }),
    startBuildkitd(t, { platforms: ["linux/amd64"] }),
  ]);
  await using pool = await BuildKitPool.connect({
    nodes: [
      { name: "n386", address: n386.address },
      { name: "narm", address: nArm.address },
      { name: "namd", address: nAmd.address },
    ],
  });
  const info = await pool.info();
  // buildkitd adds the micro-architecture levels this CPU has (linux/amd64/v2...) to an amd64 worker.
  assert.deepEqual(
    info.nodes.map((n) => [n.name, n.state, n.native.filter((p) => !/^linux\/amd64\/v\d$/.test(p))]),
    [
      ["n386", "up", ["linux/386"]],
      ["narm", "up", ["linux/arm64"]],
      ["namd", "up", ["linux/amd64"]],
    ],
  );
  assert.ok(
    info.nodes.every((n) => n.buildkit?.version === "v0.24.0"),
    JSON.stringify(info.nodes.map((n) => n.buildkit)),
  );
  const ctx = fileTree("bk-pool-plat-", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
  for (const [platform, want] of [
    ["linux/386", "n386"],
    ["linux/arm64", "narm"],
    ["linux/amd64", "namd"],
    [undefined, "namd"],
  ] as const) {
    const result = await pool.build({ context: ctx, platforms: platform ? [platform] : undefined }).result;
    assert.equal(result.node?.name, want, `platform ${platform ?? "(none)"}`);
    assert.ok(await ranOn(pool, want, result.ref), `${want}'s history has ${result.ref}`);
  }
  await assert.rejects(
    pool.build({ context: ctx, platforms: ["linux/s390x"] }).result,
    (e: Error) =>
      e instanceof UsageError &&
      /^no node of the builder can build platform linux\/s390x, natively or by emulation \(n386: linux\/386; narm: linux\/arm64; namd: linux\/amd64\)/.test(
        e.message,
      ),
  );
});

test("pool: a platform no node has natively goes to a node whose worker emulates it", async (t) => {
  // Workers limited to linux/386 and to linux/arm64 still list the host's linux/amd64 after their own: emulated, for placement.
  const [n386, nArm] = await Promise.all([startBuildkitd(t, { platforms: ["linux/386"] }), startBuildkitd(t, { platforms: ["linux/arm64"] })]);
  await using pool = await BuildKitPool.connect({
    nodes: [
      { name: "n386", address: n386.address },
      { name: "narm", address: nArm.address },
    ],
  });
  const info = await pool.info();
  for (const n of info.nodes) assert.ok(n.platforms.includes("linux/amd64") && !n.native.includes("linux/amd64"), `${n.name}: ${n.platforms.join(",")}`);
  const ctx = fileTree("bk-pool-emulated-", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
  const [where] = await pool.placement({ context: ctx, platforms: ["linux/amd64"] });
  const result = await pool.build({ context: ctx, platforms: ["linux/amd64"] }).result;
  assert.equal(result.node?.name, where?.node);
  assert.ok(await ranOn(pool, result.node!.name, result.ref));
});

test("pool: the same build goes to the same node and is CACHED there; 30 contexts spread over 3 nodes, none with more than half", async (t) => {
  const daemons = await nodes(t, 3);
  await using pool = await BuildKitPool.connect({ nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })) });
  const ctx = fileTree(
    "bk-pool-sticky-",
    { Dockerfile: `FROM ${busybox}\nCOPY f /f\nRUN cat /f && head -c 8 /dev/urandom | od -An -tx1 > /r\n`, f: randomUUID() },
    t,
  );
  const first = pool.build({ context: ctx });
  const [one] = await Promise.all([first.result, drain(first)]);
  const second = pool.build({ context: ctx });
  const [two, progress] = await Promise.all([second.result, drain(second)]);
  assert.equal(two.node?.name, one.node?.name);
  const steps = progress.steps.filter((v) => /^\[\d+\/\d+\] (RUN|COPY)/.test(v.name));
  assert.equal(steps.length, 2, progress.steps.map((v) => v.name).join(" | "));
  for (const v of steps) assert.equal(v.cached, true, `${v.name} is CACHED on the second build`);

  const contexts = Array.from({ length: 30 }, (_, i) =>
    fileTree(`bk-pool-spread-${i}-`, { Dockerfile: "FROM scratch\nCOPY f /f\n", f: `ctx ${i} ${randomUUID()}` }, t),
  );
  // One at a time: each goes to the node its key's rendezvous order puts first.
  const names = ["n1", "n2", "n3"].map((id) => ({ id }));
  const placed: string[] = [];
  for (const c of contexts) {
    const got = (await pool.build({ context: c }).result).node!.name;
    assert.equal(got, rendezvousOrder(placementKey({ context: c }), names)[0]!.id, c);
    placed.push(got);
  }
  const count = (list: string[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const n of list) m.set(n, (m.get(n) ?? 0) + 1);
    return m;
  };
  t.diagnostic(`30 contexts one at a time: ${JSON.stringify(Object.fromEntries(count(placed)))}`);
  assert.equal(count(placed).size, 3, "every node got builds");
  // The same 30 again, all at once (as a CI fleet sends them): the busy threshold spreads them, none gets more than half.
  const together = await Promise.all(contexts.map(async (c) => (await pool.build({ context: c }).result).node!.name));
  t.diagnostic(`30 contexts at once: ${JSON.stringify(Object.fromEntries(count(together)))}`);
  for (const [n, c] of count(together)) assert.ok(c <= 15, `${n} got ${c} of 30`);
  assert.equal(count(together).size, 3);
});

test("pool: a stopped node is skipped with one warning naming it; its builds go to another node", async (t) => {
  const daemons = await nodes(t, 2);
  const warnings: string[] = [];
  await using pool = await BuildKitPool.connect({
    nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })),
    onWarning: (w) => warnings.push(w),
  });
  const ctx = fileTree("bk-pool-failover-", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
  const home = (await pool.build({ context: ctx }).result).node!.name;
  const victim = daemons[Number(home.slice(1)) - 1]!;
  await victim.kill();
  const started = Date.now();
  const moved = await pool.build({ context: ctx }).result;
  const ms = Date.now() - started;
  assert.notEqual(moved.node?.name, home);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, new RegExp(`^builder node ${home} \\(${victim.address.replace(/[/.]/g, "\\$&")}\\) is down and was skipped: `));
  assert.ok(!warnings[0]!.includes("\n"));
  t.diagnostic(`build after the node's death: ${ms} ms`);
  // Left out for its backoff: no second warning, no delay.
  assert.notEqual((await pool.build({ context: ctx }).result).node?.name, home);
  assert.equal(warnings.length, 1);
  const status = (await pool.info()).nodes.find((n) => n.name === home)!;
  assert.equal(status.state, "down");
});

/** Starts `ctx`'s build, waits for its RUN step to log `marker`, then kills the node it runs on. */
async function killMidBuild(
  pool: BuildKitPool,
  daemons: Buildkitd[],
  build: Build,
  marker: string,
): Promise<{ node: string; progress: Promise<unknown>; killedAt: number }> {
  let seen: () => void = () => undefined;
  const started = new Promise<void>((r) => (seen = r));
  const progress = (async () => {
    for await (const s of build.progress) if (s.logs.some((l) => l.data.toString().includes(marker))) seen();
  })();
  await Promise.race([started, build.result]);
  const busy = (await pool.info()).nodes.find((n) => n.activeBuilds > 0);
  assert.ok(busy, "a node runs the build");
  const killedAt = Date.now();
  await daemons[Number(busy.name.slice(1)) - 1]!.kill();
  return { node: busy.name, progress, killedAt };
}

test("pool: a node killed mid-build fails that build within 10 s, naming the node", async (t) => {
  const daemons = await nodes(t, 2);
  await using pool = await BuildKitPool.connect({ nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })) });
  const marker = `started-${randomUUID()}`;
  const ctx = fileTree("bk-pool-kill-", { Dockerfile: `FROM ${busybox}\nRUN echo ${marker} && sleep 60\n` }, t);
  const build = pool.build({ context: ctx });
  const { node, progress, killedAt } = await killMidBuild(pool, daemons, build, marker);
  await assert.rejects(
    build.result,
    (e: Error) => e instanceof ConnectionError && e.message.startsWith(`builder node ${node} failed during the build: `) && !e.message.includes("\n"),
  );
  const ms = Date.now() - killedAt;
  t.diagnostic(`failed ${ms} ms after the kill`);
  assert.ok(ms < 10_000, `${ms} ms`);
  await progress;
});

test("pool: with retryOnNodeFailure a build whose node dies is run again on another node, with one warning", async (t) => {
  const daemons = await nodes(t, 2);
  const warnings: string[] = [];
  await using pool = await BuildKitPool.connect({
    nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })),
    placement: { retryOnNodeFailure: true },
    onWarning: (w) => warnings.push(w),
  });
  const marker = `started-${randomUUID()}`;
  const ctx = fileTree("bk-pool-retry-", { Dockerfile: `FROM ${busybox}\nRUN echo ${marker} && sleep 2 && echo done > /done\n` }, t);
  const build = pool.build({ context: ctx });
  const { node, progress } = await killMidBuild(pool, daemons, build, marker);
  const result = await build.result;
  await progress;
  assert.notEqual(result.node?.name, node);
  assert.ok(await ranOn(pool, result.node!.name, result.ref));
  assert.deepEqual(warnings, [
    `builder node ${node} (${daemons[Number(node.slice(1)) - 1]!.address}) went away during the build; running it again on another node`,
  ]);
});

test("pool: a secret and an SSH agent work on every node of a pool of two (the seed scenario)", async (t) => {
  const daemons = await nodes(t, 2);
  await using pool = await BuildKitPool.connect({ nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })) });
  const token = `tok-${randomUUID()}`;
  const served = `served-${randomUUID()}`;
  writeFileSync(join(sshd.dir, "pool-served.txt"), served);
  const ssh = `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p ${sshd.port} root@127.0.0.1`;
  const seen = new Set<string>();
  for (let i = 0; i < 12 && seen.size < 2; i++) {
    const ctx = fileTree(
      `bk-pool-seed-${i}-`,
      {
        Dockerfile: [
          `FROM ${env.registry}/bk-test/ssh:latest`,
          `RUN --mount=type=secret,id=tok,required=true echo ${i} && test "$(cat /run/secrets/tok)" = "${token}" && echo secret-ok`,
          `RUN --mount=type=ssh,required=true echo ${i} && ${ssh} cat ${join(sshd.dir, "pool-served.txt")}`,
          "",
        ].join("\n"),
      },
      t,
    );
    const build = pool.build({ context: ctx, secrets: { tok: token }, ssh: { default: { keys: [sshd.clientKey] } } });
    const [result, { logs }] = await Promise.all([build.result, drain(build)]);
    assert.match(logs, /secret-ok/);
    assert.ok(logs.includes(served), "the ssh step read the file through the forwarded agent");
    assert.ok(!logs.includes(token), "the secret's value is not in the logs");
    seen.add(result.node!.name);
  }
  assert.deepEqual([...seen].sort(), ["n1", "n2"], "both nodes ran the scenario");
});

/** The platform each image manifest of an index was built for, read from its config. */
async function configPlatforms(repo: string, digest: string): Promise<string[]> {
  const index = await getDocument(env.registry, repo, digest);
  const out: string[] = [];
  for (const d of index.manifests ?? []) {
    if (d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest") continue;
    const m = await getDocument(env.registry, repo, d.digest);
    const config = JSON.parse((await getBlob(env.registry, repo, m.config!.digest)).toString("utf8")) as { os: string; architecture: string };
    out.push(`${config.os}/${config.architecture}`);
    assert.equal(`${d.platform?.os}/${d.platform?.architecture}`, `${config.os}/${config.architecture}`, "the index's platform is the config's");
  }
  return out.sort();
}

test("pool: --platform linux/amd64,linux/386 with each platform on its own node pushes one index with both manifests", async (t) => {
  const [n386, nAmd] = await Promise.all([startBuildkitd(t, { platforms: ["linux/386"] }), startBuildkitd(t, { platforms: ["linux/amd64"] })]);
  await using pool = await BuildKitPool.connect({
    nodes: [
      { name: "n386", address: n386.address },
      { name: "namd", address: nAmd.address },
    ],
  });
  // FROM scratch: the test registry's busybox is amd64 only, so a 386 node could not pull it.
  const ctx = fileTree("bk-pool-multi-", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
  const repo = "bk-test/pool-multi";
  const tag = randomUUID().slice(0, 8);
  const placement = await pool.placement({ context: ctx, platforms: ["linux/amd64", "linux/386"] });
  assert.deepEqual(placement, [
    { node: "namd", platforms: ["linux/amd64"] },
    { node: "n386", platforms: ["linux/386"] },
  ]);
  const build = pool.build({
    context: ctx,
    platforms: ["linux/amd64", "linux/386"],
    tags: [`${env.registry}/${repo}:${tag}`, `${env.registry}/${repo}:${tag}-b`],
    push: true,
  });
  const [result] = await Promise.all([build.result, drain(build)]);
  const index = await getDocument(env.registry, repo, tag);
  // The media type a one-node push of both platforms gets (buildkitd v0.24 without attestations: a Docker manifest list), as buildx's merge keeps it.
  await using one = await BuildKitClient.connect({ address: env.buildkitHost });
  const single = await one.build({ context: ctx, platforms: ["linux/amd64", "linux/386"], tags: [`${env.registry}/${repo}:${tag}-one`], push: true }).result;
  const oneNode = await getDocument(env.registry, repo, `${tag}-one`);
  assert.equal(single.exporterResponse["containerimage.digest"], oneNode.digest);
  assert.equal(index.mediaType, oneNode.mediaType);
  assert.equal(result.exporterResponse["containerimage.digest"], index.digest, "the result's digest is the registry's index digest");
  assert.equal(result.exports[0]?.digest, index.digest);
  assert.equal((await getDocument(env.registry, repo, `${tag}-b`)).digest, index.digest, "every tag names the index");
  assert.deepEqual(await configPlatforms(repo, index.digest), ["linux/386", "linux/amd64"]);
  assert.deepEqual(result.parts?.map((p) => [p.node, p.platforms]).sort(), [
    ["n386", ["linux/386"]],
    ["namd", ["linux/amd64"]],
  ]);
  for (const p of result.parts) assert.ok(await ranOn(pool, p.node, p.ref), `${p.node} ran ${p.ref}`);

  // With buildx's default provenance each part is an index of its own; the merge keeps the attestation manifests.
  const withProv = await pool.build({
    context: ctx,
    platforms: ["linux/amd64", "linux/386"],
    tags: [`${env.registry}/${repo}:${tag}-prov`],
    push: true,
    defaultProvenance: true,
  }).result;
  const merged = await getDocument(env.registry, repo, `${tag}-prov`);
  assert.equal(withProv.exporterResponse["containerimage.digest"], merged.digest);
  const kinds = merged.manifests!.map((d) => d.annotations?.["vnd.docker.reference.type"] ?? `image ${d.platform?.architecture}`).sort();
  assert.deepEqual(kinds, ["attestation-manifest", "attestation-manifest", "image 386", "image amd64"]);
  assert.deepEqual(await configPlatforms(repo, merged.digest), ["linux/386", "linux/amd64"]);
});

test("pool: a split build that is not a push is one line, before anything runs", async (t) => {
  const [n386, nAmd] = await Promise.all([startBuildkitd(t, { platforms: ["linux/386"] }), startBuildkitd(t, { platforms: ["linux/amd64"] })]);
  await using pool = await BuildKitPool.connect({
    nodes: [
      { name: "n386", address: n386.address },
      { name: "namd", address: nAmd.address },
    ],
  });
  const ctx = fileTree("bk-pool-nopush-", { Dockerfile: "FROM scratch\nCOPY Dockerfile /\n" }, t);
  const out = join(ctx, "out");
  await assert.rejects(
    pool.build({ context: ctx, platforms: ["linux/amd64", "linux/386"], outputs: [{ type: "local", dest: out }] }).result,
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        "this build's platforms are on different nodes (linux/amd64 on namd, linux/386 on n386); a build split over nodes can only push to a registry: use --push with -t NAME (output type=local cannot be merged), or build on a node that has every platform",
  );
  assert.equal(
    (await pool.info()).nodes.reduce((n, s) => n + s.activeBuilds, 0),
    0,
    "no node is left counted busy",
  );
  for (const name of pool.nodeNames) {
    const client = await pool.client(name);
    const records = [];
    for await (const r of client.history()) records.push(r);
    assert.equal(records.length, 0, `${name} ran nothing`);
  }
});

test("pool: compose services spread over the nodes; a service: context reaches a dependent on another node", async (t) => {
  const daemons = await nodes(t, 2);
  // A high busy threshold: the services build at once, and placement must follow the hash alone for the check below.
  await using pool = await BuildKitPool.connect({
    nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })),
    placement: { maxActivePerNode: 64 },
  });
  const run = randomUUID();
  const dir = fileTree("bk-pool-compose-", {}, t);
  const names = [{ id: "n1" }, { id: "n2" }];
  // Compose sends each service's context and its Dockerfile (default CONTEXT/Dockerfile) as absolute paths.
  const home = (sub: string): string => rendezvousOrder(placementKey({ context: join(dir, sub), dockerfile: join(dir, sub, "Dockerfile") }), names)[0]!.id;
  // The dependent's directory is picked so that the hash puts it on the other node from s0's.
  const last = Array.from({ length: 64 }, (_, i) => `last${i}`).find((d) => home(d) !== home("s0"))!;
  const services = Array.from({ length: 6 }, (_, i) => `s${i}`);
  const files: Record<string, string> = {
    "compose.yaml": [
      `name: pool-${run.slice(0, 8)}`,
      "services:",
      ...services.flatMap((s) => [`  ${s}:`, `    build: ./${s}`]),
      "  last:",
      "    build:",
      `      context: ./${last}`,
      "      additional_contexts: { base: service:s0 }",
      "",
    ].join("\n"),
    [`${last}/Dockerfile`]: "FROM base\nRUN cat /mark.txt\n",
  };
  for (const s of services) files[`${s}/Dockerfile`] = `FROM ${busybox}\nRUN echo ${s}-${run} > /mark.txt\n`;
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const results = await pool.composeBuild({ workingDir: dir, env: {} });
  const node = (service: string): string | undefined => results.find((r) => r.service === service)?.result?.node?.name;
  for (const r of results) assert.equal(r.outcome, "built", `${r.service}: ${r.error?.message ?? ""}`);
  t.diagnostic(`services per node: ${JSON.stringify(results.map((r) => [r.service, r.result?.node?.name]))}`);
  assert.deepEqual([...new Set(results.map((r) => r.result?.node?.name))].sort(), ["n1", "n2"], "services went to both nodes");
  assert.notEqual(node("last"), node("s0"), "the dependent ran on the other node");
  assert.equal(node("last"), home(last));
});

test("pool: a node that stops answering (SIGSTOP) is skipped after the health timeout; after its backoff it is used again", async (t) => {
  const daemons = await nodes(t, 2);
  const warnings: string[] = [];
  await using pool = await BuildKitPool.connect({
    nodes: daemons.map((d, i) => ({ name: `n${i + 1}`, address: d.address })),
    // Probe before every placement, with a short deadline, and a short backoff.
    placement: { healthTtlMs: 0, healthTimeoutMs: 500, downBackoffMs: 1500 },
    onWarning: (w) => warnings.push(w),
  });
  const ctx = fileTree("bk-pool-frozen-", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
  const home = (await pool.build({ context: ctx }).result).node!.name;
  const frozen = daemons[Number(home.slice(1)) - 1]!;
  frozen.pause();
  try {
    const started = Date.now();
    const moved = await pool.build({ context: ctx }).result;
    const ms = Date.now() - started;
    t.diagnostic(`placed elsewhere ${ms} ms after the freeze`);
    assert.notEqual(moved.node?.name, home);
    assert.ok(ms < 5000, `${ms} ms`);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0]!, new RegExp(`^builder node ${home} .* is down and was skipped: no answer from buildkitd`));
  } finally {
    frozen.resume();
  }
  await new Promise((r) => setTimeout(r, 1600));
  assert.equal((await pool.build({ context: ctx }).result).node?.name, home, "back on its node once the backoff is over and it answers");
});

test("pool: a Docker Engine is a node like any other", async (t) => {
  const daemons = await nodes(t, 1);
  await using pool = await BuildKitPool.connect({
    nodes: [
      { name: "engine", address: `docker+${env.docker.host}` },
      { name: "bk", address: daemons[0]!.address },
    ],
  });
  const info = await pool.info();
  const engine = info.nodes.find((n) => n.name === "engine")!;
  assert.equal(engine.state, "up");
  assert.ok(engine.engine?.version, "the Engine's version is reported");
  assert.ok(engine.native.includes("linux/amd64"), engine.native.join(","));
  const seen = new Set<string>();
  for (let i = 0; i < 12 && seen.size < 2; i++) {
    const ctx = fileTree(`bk-pool-engine-${i}-`, { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
    seen.add((await pool.build({ context: ctx }).result).node!.name);
  }
  assert.deepEqual([...seen].sort(), ["bk", "engine"]);
});

test("CLI: build --builder over two single-platform nodes, --platform both, --push: the metadata file's digest is the registry's index digest", async (t) => {
  const [n386, nAmd] = await Promise.all([startBuildkitd(t, { platforms: ["linux/386"] }), startBuildkitd(t, { platforms: ["linux/amd64"] })]);
  const config = tempDir("bk-pool-cli-config-", t);
  const cli = (args: string[]) =>
    runCliAsync(args, {
      env: { XDG_CONFIG_HOME: config, DOCKER_CONFIG: join(config, "docker"), BK_BUILDER: undefined, BUILDKIT_HOST: undefined, BUILDX_CONFIG: undefined },
    });
  for (const [i, d] of [n386, nAmd].entries()) {
    const r = await cli(["builder", "create", "split", d.address, "--node", i === 0 ? "n386" : "namd", ...(i ? ["--append"] : [])]);
    assert.equal(r.code, 0, r.stderr);
  }
  const ctx = fileTree("bk-pool-cli-", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: randomUUID() }, t);
  const repo = "bk-test/pool-cli";
  const tag = randomUUID().slice(0, 8);
  const meta = join(tempDir("bk-pool-cli-meta-", t), "metadata.json");
  const r = await cli([
    "build",
    "--builder",
    "split",
    "--progress",
    "plain",
    "--platform",
    "linux/amd64,linux/386",
    "--push",
    "-t",
    `${env.registry}/${repo}:${tag}`,
    "--metadata-file",
    meta,
    ctx,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const metadata = JSON.parse(readFileSync(meta, "utf8")) as Record<string, unknown>;
  const index = await getDocument(env.registry, repo, tag);
  assert.equal(metadata["containerimage.digest"], index.digest, JSON.stringify(metadata));
  // buildx's default provenance is on in the CLI: each part's attestation manifest is in the merged index.
  const kinds = index.manifests!.map((d) => d.annotations?.["vnd.docker.reference.type"] ?? `image ${d.platform?.architecture}`).sort();
  assert.deepEqual(kinds, ["attestation-manifest", "attestation-manifest", "image 386", "image amd64"]);
  assert.deepEqual(await configPlatforms(repo, index.digest), ["linux/386", "linux/amd64"]);
});
