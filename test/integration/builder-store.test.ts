/**
 * Named builders against the real environment: a bk-build builder whose
 * node is the shared buildkitd (create, ls, inspect, info, build, history,
 * du, the default builder, a node that is down), and buildx's own builders
 * (v0.38.2, `docker buildx create --driver remote`, in a Docker config of
 * their own) used by name: plain and mTLS, listed as buildx's.
 */
import { before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, testEnv, type RunResult } from "../helpers/env.js";
import { remoteBuildx, type Buildx } from "../helpers/buildx.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

const env = testEnv();
const base = `${env.registry}/bk-test/busybox:latest`;

leakCheckEachTest();

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The daemon's version, as `info` reports it. */
let version = "";
let oracle: Buildx | undefined;
const buildxName = `bkx-${process.pid}`;

before(() => {
  const r = runCli(["info", "--format", "json"], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(r.code, 0, r.stderr);
  version = (JSON.parse(r.stdout) as { buildkit: { version: string } }).buildkit.version;
  assert.match(version, /^v\d+\.\d+\.\d+/);
  // docker buildx create --driver remote --name bkx-PID $BUILDKIT_HOST, in a Docker config of its own.
  oracle = remoteBuildx(env.buildkitHost, buildxName);
});

/**
 * bk-build with its store in `config` and buildx's in `dockerConfig` (an
 * empty one by default), with no BUILDKIT_HOST: only a builder can answer.
 */
function cli(
  args: string[],
  stores: { config: string; dockerConfig?: string | undefined },
  cwd?: string,
  extra: Record<string, string | undefined> = {},
): RunResult {
  return runCli(args, {
    ...(cwd === undefined ? {} : { cwd }),
    env: {
      XDG_CONFIG_HOME: stores.config,
      DOCKER_CONFIG: stores.dockerConfig ?? join(stores.config, "no-docker"),
      BUILDX_CONFIG: undefined,
      BK_BUILDER: undefined,
      BUILDKIT_HOST: undefined,
      ...extra,
    },
  });
}

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr.slice(-2000)}`);
  return r;
}

function context(t: TestContext, marker: string): string {
  return fileTree("bk-builder-ctx-", { Dockerfile: `FROM ${base}\nRUN echo ${marker} > /marker\n` }, t);
}

test("builder create with the shared buildkitd as its node: ls and inspect show it up with its version; build --builder builds on it", (t) => {
  const config = tempDir("bk-builder-cfg-", t);
  const stores = { config };
  assert.equal(ok(cli(["builder", "create", "bkci", env.buildkitHost, "--label", "role=test"], stores), "create").stdout, "bkci\n");
  const stored = JSON.parse(readFileSync(join(config, "bk-build", "builders.json"), "utf8"));
  assert.deepEqual(stored.builders.bkci.nodes, [{ name: "bkci0", address: env.buildkitHost, labels: { role: "test" } }]);

  const ls = ok(cli(["builder", "ls"], stores), "ls");
  assert.match(ls.stdout, /^NAME\/NODE +SOURCE\/ENDPOINT +STATUS +BUILDKIT +ACTIVE +PLATFORMS\n/);
  assert.match(ls.stdout, /\nbkci +bk-build\n/);
  assert.match(ls.stdout, new RegExp(`\\n \\\\_ bkci0 + \\\\_ ${re(env.buildkitHost)} +up +${re(version)} +\\d+ +linux/`));
  assert.equal(ls.stderr, "");
  const lsJson = JSON.parse(ok(cli(["builder", "ls", "--format", "json"], stores), "ls json").stdout);
  assert.equal(lsJson[0].nodes[0].state, "up");
  assert.equal(lsJson[0].nodes[0].buildkit, version);
  assert.ok(lsJson[0].nodes[0].platforms.length > 0, "platforms from the node's workers");

  const inspect = ok(cli(["builder", "inspect", "bkci"], stores), "inspect");
  assert.match(inspect.stdout, /^Name: {3}bkci\nSource: bk-build \(.*builders\.json\)\n\nNodes:\n/);
  assert.match(
    inspect.stdout,
    new RegExp(
      `Endpoint: {11}${re(env.buildkitHost)}\\nDeclared platforms: none \\(from its workers\\)\\nLabels: {13}role=test\\nStatus: {13}up\\nBuildKit version: {3}${re(version)}\\nPlatforms: {10}linux/`,
    ),
  );
  assert.match(inspect.stdout, /\nActive builds: {6}\d+\n/);

  const info = ok(cli(["--builder", "bkci", "info"], stores), "info");
  assert.match(info.stdout, new RegExp(`^NAME +ADDRESS +STATE +BUILDKIT\\nbkci0 +${re(env.buildkitHost)} +up +${re(version)}\\n$`));

  const ctx = context(t, `bkci-${Date.now()}`);
  const out = join(tempDir("bk-builder-out-", t), "out");
  const b = ok(cli(["build", "--builder", "bkci", "--progress", "plain", "-o", `type=local,dest=${out}`, "."], stores, ctx), "build --builder");
  assert.match(readFileSync(join(out, "marker"), "utf8"), /^bkci-\d+\n$/);
  const ref = /build ref: (\w+) on node bkci0 \(bk-build history --builder bkci inspect \1\)\n/.exec(b.stderr)?.[1];
  assert.ok(ref, `the ref line names the node and the history command: ${b.stderr.slice(-500)}`);
  const h = ok(cli(["--builder", "bkci", "history", "inspect", ref], stores), "history inspect");
  assert.match(h.stdout, new RegExp(`Ref: +${ref}`));
});

test("the default builder ('builder use', BK_BUILDER) is used without --builder; --addr means one daemon; a node that is down is skipped with one warning", (t) => {
  const config = tempDir("bk-builder-default-", t);
  const stores = { config };
  ok(cli(["builder", "create", "dflt", env.buildkitHost], stores), "create");
  ok(cli(["builder", "use", "dflt"], stores), "use");
  const info = ok(cli(["info"], stores), "info with the default builder");
  assert.match(info.stdout, /^NAME +ADDRESS +STATE +BUILDKIT\ndflt0 /);
  const one = ok(cli(["--addr", env.buildkitHost, "info"], stores), "--addr");
  assert.match(one.stdout, new RegExp(`^Address: +${re(env.buildkitHost)}\\n`), "--addr: the single-daemon info");
  const none = ok(cli(["--builder", "default", "info"], stores, undefined, { BUILDKIT_HOST: env.buildkitHost }), "--builder default");
  assert.match(none.stdout, new RegExp(`^Address: +${re(env.buildkitHost)}\\n`), "--builder default: the one daemon of BUILDKIT_HOST");
  const fromEnv = cli(["info"], stores, undefined, { BK_BUILDER: "nosuch" });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /^error: unknown builder "nosuch": .*\(the default builder, from BK_BUILDER; unset BK_BUILDER\)\n$/);

  // A second node that is not there: builds and per-node commands go on without it, saying so once.
  const gone = `unix://${join(tempDir("bk-builder-gone-", t), "buildkitd.sock")}`;
  ok(cli(["builder", "create", "dflt", gone, "--append", "--node", "gone"], stores), "append");
  const du = ok(cli(["du"], stores), "du on the default builder");
  assert.match(du.stdout, new RegExp(`^node dflt0 \\(${re(env.buildkitHost)}\\)\\n`));
  assert.match(du.stdout, /\nTotal: +\S+\n$/);
  assert.equal(du.stderr.split("\n").filter(Boolean).length, 1, du.stderr);
  assert.match(du.stderr, new RegExp(`^warning: builder node gone \\(${re(gone)}\\) is down and was skipped: .*buildkitd\\.sock`));
  const ctx = context(t, "default-builder");
  const b = ok(cli(["build", "--progress", "plain", "."], stores, ctx), "build on the default builder");
  assert.match(b.stderr, new RegExp(`^warning: builder node gone \\(${re(gone)}\\) is down and was skipped: `, "m"));
  assert.match(b.stderr, /build ref: \w+ on node dflt0 /);
  const ls = ok(cli(["builder", "ls"], stores), "ls");
  assert.match(ls.stdout, /\ndflt\* +bk-build\n/);
  assert.match(ls.stdout, new RegExp(`\\n \\\\_ gone + \\\\_ ${re(gone)} +down\\n`));
});

test("buildx's remote builder (docker buildx create --driver remote): bk-build build --builder uses it, builder ls lists it as buildx's", (t) => {
  const stores = { config: tempDir("bk-builder-bx-", t), dockerConfig: oracle!.dockerConfig };
  const ctx = context(t, "from-buildx");
  const out = join(tempDir("bk-builder-bxout-", t), "out");
  ok(cli(["build", "--builder", buildxName, "--progress", "plain", "-o", `type=local,dest=${out}`, "."], stores, ctx), "build --builder (buildx's)");
  assert.equal(readFileSync(join(out, "marker"), "utf8"), "from-buildx\n");
  const ls = ok(cli(["builder", "ls"], stores), "ls");
  assert.match(ls.stdout, new RegExp(`\\n${re(buildxName)} +buildx remote\\n \\\\_ ${re(buildxName)}0 + \\\\_ ${re(env.buildkitHost)} +up +${re(version)} `));
  const inspect = ok(cli(["builder", "inspect", buildxName], stores), "inspect");
  assert.match(
    inspect.stdout,
    new RegExp(`^Name: +${re(buildxName)}\\nSource: +buildx \\(${re(join(oracle!.dockerConfig, "buildx", "instances", buildxName))}\\)\\nDriver: +remote\\n`),
  );

  // buildx's current builder is not bk-build's default: with BUILDKIT_HOST, info is the one daemon's.
  const use = oracle!.docker(["buildx", "use", buildxName]);
  assert.equal(use.code, 0, use.stderr);
  const info = ok(cli(["info"], stores, undefined, { BUILDKIT_HOST: env.buildkitHost }), "info");
  assert.match(info.stdout, /^Address: /);

  // buildx lowercases names and keeps its files under the lowercased name; bk-build finds them either way.
  const upper = `BkUp${process.pid}`;
  const c = oracle!.docker(["buildx", "create", "--driver", "remote", "--name", upper, "--platform", "linux/amd64", env.buildkitHost]);
  assert.equal(c.code, 0, c.stderr);
  const i2 = ok(cli(["--builder", upper.toLowerCase(), "info", "--format", "json"], stores), "info on an upper-case buildx builder");
  const nodes = (JSON.parse(i2.stdout) as { nodes: Array<{ state: string; platforms: string[] }> }).nodes;
  assert.deepEqual(
    nodes.map((n) => [n.state, n.platforms]),
    [["up", ["linux/amd64"]]],
    "buildx's --platform is the node's declared platform",
  );
});

test("buildx's remote builder over mTLS (--driver-opt cacert,cert,key): its TLS files are used", (t) => {
  assert.ok(env.tlsHost && env.tlsDir, "the environment has buildkitd's mTLS listener (scripts/test-env.sh up)");
  const stores = { config: tempDir("bk-builder-tls-", t), dockerConfig: oracle!.dockerConfig };
  const name = `bkxtls-${process.pid}`;
  const client = join(env.tlsDir, "client");
  const c = oracle!.docker([
    "buildx",
    "create",
    "--driver",
    "remote",
    "--name",
    name,
    "--driver-opt",
    `cacert=${join(client, "ca.pem")},cert=${join(client, "cert.pem")},key=${join(client, "key.pem")}`,
    env.tlsHost,
  ]);
  assert.equal(c.code, 0, c.stderr);
  const info = ok(cli(["--builder", name, "info"], stores), "info over mTLS");
  assert.match(info.stdout, new RegExp(`\\n${re(name)}0 +${re(env.tlsHost)} +up +${re(version)}\\n$`));
  const inspect = ok(cli(["builder", "inspect", name], stores), "inspect");
  assert.match(
    inspect.stdout,
    new RegExp(`TLS: +ca ${re(join(client, "ca.pem"))}, cert ${re(join(client, "cert.pem"))}, key ${re(join(client, "key.pem"))}\\n`),
  );
  const ctx = context(t, "over-tls");
  ok(cli(["build", "--builder", name, "--progress", "quiet", "."], stores, ctx), "build over mTLS");
});
