/**
 * --audit-secrets against the real buildkitd: a build that writes its
 * secret into a layer (raw, base64, split across two files) fails with exit
 * code 3 and one line per finding, for a local tree, a tarball and an image
 * that is only pushed; a clean build passes and says what it scanned. The
 * value appears in no output.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient, SecretLeakError } from "../../src/index.js";
import { runCli, testEnv, type TestEnv } from "../helpers/env.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { fileTree, tempDir } from "../helpers/files.js";

leakCheckEachTest();

let env: TestEnv;
before(() => {
  env = testEnv();
});

function leakyContext(t: { name: string }): string {
  return fileTree(`bk-audit-${t.name.replace(/\W+/g, "-").slice(0, 12)}-`, {
    Dockerfile: [
      `FROM ${env.registry}/bk-test/busybox:latest`,
      // A fresh step each time: secrets are not in cache keys, so a cached layer holds an earlier run's value.
      `RUN echo ${randomBytes(8).toString("hex")} > /marker`,
      "RUN --mount=type=secret,id=tok mkdir /split && cat /run/secrets/tok > /leak-raw && base64 /run/secrets/tok > /leak-b64 && \\",
      "    head -c 12 /run/secrets/tok > /split/1 && tail -c +13 /run/secrets/tok > /split/2 && echo clean > /clean",
    ].join("\n"),
  });
}

function forms(value: string): string[] {
  const b = Buffer.from(value);
  return [value, b.toString("base64"), b.toString("hex"), value.slice(0, 12), value.slice(12)];
}

test("--audit-secrets: a leak in a local tree, a tarball, or an image only pushed: exit 3, one line per finding, the value nowhere", async (t) => {
  const secret = `glcbt-${randomBytes(16).toString("hex")}`;
  const ctx = leakyContext(t);
  const out = tempDir("bk-audit-out-", t);
  const cases: Array<[string, string[], RegExp]> = [
    ["local", ["-o", `type=local,dest=${join(out, "tree")}`], /in the output/],
    ["tar", ["-o", `type=tar,dest=${join(out, "x.tar")}`], /in the output/],
    ["push", ["-t", `${env.registry}/bk-test/audit:${randomBytes(4).toString("hex")}`, "--push"], /in layer sha256:[0-9a-f]{64}/],
  ];
  for (const [what, args, layer] of cases) {
    const r = runCli(["build", "--addr", env.buildkitHost, "--progress", "plain", "--audit-secrets", "--secret", "id=tok,env=TOK", ...args, ctx], {
      env: { TOK: secret },
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 3, `${what}: ${r.stderr}`);
    const leaks = r.stderr.split("\n").filter((l) => l.startsWith("leak: "));
    const find = (re: RegExp): string | undefined => leaks.find((l) => re.test(l));
    assert.ok(find(/secret "tok" \(raw\) .*file leak-raw$/), `${what}: raw finding missing:\n${leaks.join("\n")}`);
    assert.ok(find(/secret "tok" \(base64\) .*file leak-b64$/), `${what}: base64 finding missing:\n${leaks.join("\n")}`);
    assert.ok(find(/secret "tok" \(raw\) .*file split\/1.*split\/2/), `${what}: split finding missing:\n${leaks.join("\n")}`);
    for (const l of leaks) assert.match(l, layer, what);
    assert.match(r.stderr, /^error: the build's output holds \d+ secret values it was given/m);
    for (const f of forms(secret)) assert.ok(!r.stdout.includes(f) && !r.stderr.includes(f), `${what}: a form of the secret is in the output`);
  }
  // Nothing was moved into place: a leaking build's files stay out of DEST.
  assert.deepEqual(readdirSync(out), []);
});

test("--audit-secrets on a clean build passes and says what it scanned; the API reports it too", async (t) => {
  const secret = `tok-${randomBytes(16).toString("hex")}`;
  const ctx = fileTree(
    "bk-audit-clean-",
    { Dockerfile: `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=tok sha256sum /run/secrets/tok > /hash\n` },
    t,
  );
  const out = tempDir("bk-audit-clean-out-", t);
  const r = runCli(["build", "--addr", env.buildkitHost, "--audit-secrets", "--secret", "id=tok,env=TOK", "-o", `type=oci,dest=${join(out, "x.tar")}`, ctx], {
    env: { TOK: secret },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^secret audit: [2-9] layers, \d+ files, [\d.]+ MB scanned; no secret found$/m);
  assert.ok(existsSync(join(out, "x.tar")));

  const client = await BuildKitClient.connect({ address: env.buildkitHost });
  try {
    const result = await client.build({ context: ctx, secrets: { tok: secret }, auditSecrets: true }).result;
    assert.ok(result.audit && result.audit.layers >= 2 && result.audit.bytes > 1000, JSON.stringify(result.audit));
    assert.deepEqual(result.exports, [], "the audit's own export is not reported as an output");
    const leaky = leakyContext(t);
    await assert.rejects(
      client.build({ context: leaky, secrets: { tok: secret }, auditSecrets: true }).result,
      (e: unknown) => e instanceof SecretLeakError && e.findings.length >= 3 && !JSON.stringify(e.findings).includes(secret) && !e.message.includes(secret),
    );
  } finally {
    await client.close();
  }
});
