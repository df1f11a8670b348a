/**
 * Control-plane commands against the real buildkitd from scripts/test-env.sh,
 * with buildctl as the oracle.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { BuildKitClient, ConnectionError } from "../../src/index.js";
import { buildctl, runCli, runCliAsync, testEnv, type TestEnv } from "../helpers/env.js";
import { leakCheckEachTest, trackHandles } from "../helpers/leaks.js";
import { tempDir } from "../helpers/files.js";

let env: TestEnv;

leakCheckEachTest();

before(() => {
  env = testEnv();
});

/** Seeds build cache with a build only this call makes (unique RUN). */
function seedCache(): void {
  const dir = tempDir("bk-seed-");
  writeFileSync(
    join(dir, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${randomUUID()} > /seed && dd if=/dev/zero of=/blob bs=1024 count=256 2>/dev/null\n`,
  );
  buildctl(["build", "--progress", "plain", "--frontend", "dockerfile.v0", "--local", `context=${dir}`, "--local", `dockerfile=${dir}`]);
}

/** Record IDs as `buildctl du -v` lists them. */
function buildctlRecordIds(): string[] {
  return buildctl(["du", "-v"])
    .split("\n")
    .filter((l) => l.startsWith("ID:"))
    .map((l) => l.slice(3).trim())
    .sort();
}

test("info: the daemon's version, as buildctl sees it", async () => {
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const info = await client.info();
  const oracle = buildctl(["debug", "info"]); // "BuildKit: github.com/moby/buildkit v0.24.0 <rev>"
  const m = /BuildKit: (\S+) (\S+)/.exec(oracle);
  assert.ok(m, `unexpected buildctl output: ${oracle}`);
  assert.equal(info.buildkit.package, m[1]);
  assert.equal(info.buildkit.version, m[2]);
  assert.equal(info.address, env.buildkitHost);

  const cli = runCli(["info"], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`^Address: +${env.buildkitHost.replace(/[/.]/g, "\\$&")}\nBuildKit: +${m[1]} ${m[2]}`));
  const json = runCli(["info", "--format", "json", "--addr", env.buildkitHost]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout).buildkit.version, m[2]);
});

test("workers: ids, platforms and labels match buildctl", async () => {
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const workers = await client.workers();
  const oracle = buildctl(["debug", "workers"])
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.split(/\s+/));
  assert.deepEqual(workers.map((w) => w.id).sort(), oracle.map((r) => r[0]).sort());
  const w = workers[0]!;
  const platforms = w.platforms.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join("/"));
  assert.equal(platforms.join(","), oracle.find((r) => r[0] === w.id)![1]);
  assert.equal(w.labels["org.mobyproject.buildkit.worker.executor"], "oci");
  assert.ok(w.gcPolicies.length > 0, "the daemon has default GC policies");

  const cli = runCli(["workers", "--addr", env.buildkitHost]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(
    cli.stdout,
    new RegExp(`ID: +${w.id}\nPlatforms: +${platforms.join(",")}\nLabels:\n(  .*\n)*  org\\.mobyproject\\.buildkit\\.worker\\.executor: +oci\n`),
  );
  const json = JSON.parse(runCli(["workers", "--addr", env.buildkitHost, "--format", "json"]).stdout);
  assert.equal(json[0].id, w.id);
});

test("du: the same records and total as buildctl", async () => {
  seedCache();
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const du = await client.diskUsage();
  assert.ok(du.records.length > 0, "seeded cache shows up");
  assert.deepEqual(du.records.map((r) => r.id).sort(), buildctlRecordIds());
  assert.ok(du.total >= 256n * 1024n, `total ${du.total} includes the 256 KiB blob`);
  assert.equal(
    du.total,
    du.records.reduce((n, r) => n + (r.size > 0n ? r.size : 0n), 0n),
  );

  const oracleTotal = /Total:\s+(\S+)/.exec(buildctl(["du"]))![1];
  const cli = runCli(["du", "--addr", env.buildkitHost]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^ID +RECLAIMABLE +SIZE +LAST ACCESSED\n/);
  assert.equal(/Total:\s+(\S+)/.exec(cli.stdout)![1], oracleTotal);

  const verbose = runCli(["du", "--verbose", "--addr", env.buildkitHost]);
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.equal((verbose.stdout.match(/^ID: /gm) ?? []).length, du.records.length);

  const filtered = await client.diskUsage({ filters: ["type==regular"] });
  assert.ok(filtered.records.length > 0 && filtered.records.every((r) => r.recordType === "regular"));

  const json = JSON.parse(runCli(["du", "--format", "json", "--addr", env.buildkitHost]).stdout);
  assert.equal(BigInt(json.total), du.total);
});

test("prune: keep-duration keeps fresh cache; --all removes it", async () => {
  seedCache();
  const before = buildctlRecordIds();
  assert.ok(before.length > 0);

  // Everything was used seconds ago, so keeping 24h removes nothing. If the
  // duration did not reach the daemon in nanoseconds, this would prune.
  const kept = runCli(["prune", "--all", "--keep-duration", "24h", "--format", "json", "--addr", env.buildkitHost]);
  assert.equal(kept.code, 0, kept.stderr);
  assert.deepEqual(JSON.parse(kept.stdout), { records: [], reclaimed: 0 });
  assert.deepEqual(buildctlRecordIds(), before);

  const removed = runCli(["prune", "--all", "--addr", env.buildkitHost]);
  assert.equal(removed.code, 0, removed.stderr);
  const total = /Total:\s+(\S+)/.exec(removed.stdout)?.[1];
  assert.ok(total && total !== "0.00B", `reclaimed: ${removed.stdout}`);
  assert.deepEqual(buildctlRecordIds(), [], "buildctl sees no records left");

  // The library: `await prune()` removes and reports; pruneRecords() yields records as they are removed.
  seedCache();
  await using client = await BuildKitClient.connect({ address: env.buildkitHost });
  const pruned = await client.prune({ all: true });
  assert.ok(pruned.records.length > 0);
  assert.equal(
    pruned.reclaimed,
    pruned.records.reduce((n, r) => n + (r.size > 0n ? r.size : 0n), 0n),
  );
  assert.ok(pruned.reclaimed > 0n);
  assert.equal((await client.diskUsage()).records.length, 0);
  seedCache();
  const records = [];
  for await (const r of client.pruneRecords({ all: true })) records.push(r);
  assert.ok(records.length > 0);
  assert.ok(records.some((r) => r.size > 0n));
  assert.equal((await client.diskUsage()).records.length, 0);
});

test("TLS: the right CA and client certificate connect; wrong ones fail clearly", async (t) => {
  if (!env.tlsHost || !env.tlsDir) {
    // Only when pointed at a daemon the test environment did not start.
    t.skip("BK_TEST_TLS_HOST/BK_TEST_TLS_DIR not set (scripts/test-env.sh up sets them)");
    return;
  }
  const dir = env.tlsDir;
  const files = { caFile: `${dir}/client/ca.pem`, certFile: `${dir}/client/cert.pem`, keyFile: `${dir}/client/key.pem` };

  await using client = await BuildKitClient.connect({ address: env.tlsHost, tls: files });
  await using local = await BuildKitClient.connect({ address: env.buildkitHost });
  assert.equal((await client.info()).buildkit.version, (await local.info()).buildkit.version);

  const byDir = runCli(["info", "--addr", env.tlsHost, "--tlsdir", `${dir}/client`]);
  assert.equal(byDir.code, 0, byDir.stderr);
  const byFiles = runCli([
    "info",
    "--addr",
    env.tlsHost,
    "--tlscacert",
    files.caFile,
    "--tlscert",
    files.certFile,
    "--tlskey",
    files.keyFile,
    "--tlsservername",
    "localhost",
  ]);
  assert.equal(byFiles.code, 0, byFiles.stderr);
  assert.equal(byFiles.stderr, "", "no warnings on stderr");

  const wrongCa = runCli(["info", "--addr", env.tlsHost, "--tlscacert", `${dir}/wrong-ca/ca.pem`, "--tlscert", files.certFile, "--tlskey", files.keyFile]);
  assert.equal(wrongCa.code, 1);
  assert.equal(
    wrongCa.stderr,
    `error: TLS connection to buildkitd at ${env.tlsHost} failed: buildkitd's certificate is not signed by the trusted CA; check --tlscacert (or --tlsdir)\n`,
  );

  const wrongName = runCli(["info", "--addr", env.tlsHost, "--tlsdir", `${dir}/client`, "--tlsservername", "not-buildkitd.example"]);
  assert.equal(wrongName.code, 1);
  assert.match(wrongName.stderr, /^error: TLS connection .* not valid for this host name; check the address or set --tlsservername\n$/);

  const plain = runCli(["info", "--addr", env.tlsHost]);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /^error: .*if buildkitd there uses TLS, pass --tlscacert/);
});

test("TLS with Node's default CAs: NODE_EXTRA_CA_CERTS is trusted, read by the installed executable on first TLS use rather than at start", async (t) => {
  if (!env.tlsHost || !env.tlsDir) {
    // Only when pointed at a daemon the test environment did not start.
    t.skip("BK_TEST_TLS_HOST/BK_TEST_TLS_DIR not set (scripts/test-env.sh up sets them)");
    return;
  }
  const dir = `${env.tlsDir}/client`;
  // A client certificate and no --tlscacert: the server is checked against the default CAs.
  const args = ["info", "--addr", env.tlsHost, "--tlscert", `${dir}/cert.pem`, "--tlskey", `${dir}/key.pem`];
  const deferred = /NODE_EXTRA_CA_CERTS: certificates from .*ca\.pem added on first TLS use/;

  const installed = await runCliAsync(args, { asInstalled: true, env: { NODE_EXTRA_CA_CERTS: `${dir}/ca.pem`, NODE_DEBUG: "bk-build" } });
  assert.equal(installed.code, 0, installed.stderr);
  assert.match(installed.stdout, /BuildKit: +github\.com\/moby\/buildkit v/);
  assert.match(installed.stderr, deferred, "the sh line moved the variable aside and the dialer read it");

  // Run by node itself, Node loads the variable at start as usual: trusted too, nothing deferred.
  const byNode = await runCliAsync(args, { env: { NODE_EXTRA_CA_CERTS: `${dir}/ca.pem`, NODE_DEBUG: "bk-build" } });
  assert.equal(byNode.code, 0, byNode.stderr);
  assert.doesNotMatch(byNode.stderr, deferred);

  // Without it the CA is not trusted: the certificates above are what made the difference.
  const without = await runCliAsync(args, { asInstalled: true, env: { NODE_EXTRA_CA_CERTS: undefined } });
  assert.equal(without.code, 1);
  assert.match(without.stderr, /^error: TLS connection to buildkitd at .* failed: buildkitd's certificate is not signed by the trusted CA/);
  // A file Node could not read is ignored, as Node ignores it.
  const missing = await runCliAsync(args, { asInstalled: true, env: { NODE_EXTRA_CA_CERTS: join(tempDir("bk-extra-ca-", t), "none.pem") } });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not signed by the trusted CA/);
});

test("TLS: connect() without a client certificate is refused clearly, and leaves no socket open", async (t) => {
  if (!env.tlsHost || !env.tlsDir) {
    // Only when pointed at a daemon the test environment did not start.
    t.skip("BK_TEST_TLS_HOST/BK_TEST_TLS_DIR not set (scripts/test-env.sh up sets them)");
    return;
  }
  await assert.rejects(
    BuildKitClient.connect({ address: env.tlsHost, tls: { caFile: `${env.tlsDir}/client/ca.pem` } }),
    (e: unknown) => e instanceof ConnectionError && /requires a client certificate/.test(e.message),
  );
  // The leak check after each test asserts the refused connection was closed.
});

test("unreachable addresses fail with one clear line within the timeout", () => {
  const cases: Array<[string, RegExp]> = [
    [
      "unix:///tmp/bk-build-no-such-dir/buildkitd.sock",
      /^error: cannot connect to buildkitd at unix:\/\/\/tmp\/bk-build-no-such-dir\/buildkitd\.sock: no such socket; is buildkitd running\? \(set --addr or BUILDKIT_HOST/,
    ],
    ["tcp://127.0.0.1:1", /^error: cannot connect to buildkitd at tcp:\/\/127\.0\.0\.1:1: connection refused/],
    [`tcp://${env.registry}`, /^error: tcp:\/\/127\.0\.0\.1:\d+ did not answer as buildkitd/],
  ];
  for (const [addr, re] of cases) {
    const r = runCli(["info", "--addr", addr, "--timeout", "2"]);
    assert.equal(r.code, 1, addr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line, no stack: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.ok(r.ms < 2000 + 3000, `${addr} took ${r.ms} ms`);
  }
  const debug = runCli(["info", "--addr", "tcp://127.0.0.1:1", "--debug"]);
  assert.match(debug.stderr, /\n {4}at /, "--debug adds the stack");
});

test("closing a client leaves no open handles", async () => {
  const leftOpen = trackHandles();
  const client = await BuildKitClient.connect({ address: env.buildkitHost });
  await client.info();
  await client.close();
  await client.close(); // idempotent
  await assert.rejects(client.info(), /this BuildKitClient is closed/);
  assert.deepEqual(await leftOpen(), []);
});
