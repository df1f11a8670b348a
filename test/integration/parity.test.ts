/**
 * buildx and compose behaviours that reach the daemon: --add-host with
 * several IPs and brackets, host-gateway refused where the daemon has no
 * gateway IP, and a compose project whose .env expands variables and whose
 * tags use ${COMPOSE_PROJECT_NAME}.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, testEnv } from "../helpers/env.js";
import { fileTree } from "../helpers/files.js";
import { getBlob, getDocument, getManifest } from "../helpers/registry.js";

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;

test("--add-host: several IPs for one host and a bracketed IPv6 land in /etc/hosts; host-gateway on buildkitd is one clear line", (t) => {
  const marker = randomUUID();
  const ctx = fileTree("bk-addhost-", { Dockerfile: `FROM ${busybox}\nRUN echo ${marker} && grep -E 'multi|v6host' /etc/hosts\n` }, t);
  const r = runCli(["build", "--no-cache", "--progress", "plain", "--add-host", "multi=10.1.1.1,10.1.1.2", "--add-host", "v6host=[fd00::7]", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /10\.1\.1\.1\s+multi/);
  assert.match(r.stderr, /10\.1\.1\.2\s+multi/);
  assert.match(r.stderr, /fd00::7\s+v6host/);
  const gw = runCli(["build", "--progress", "plain", "--add-host", "gw.internal:host-gateway", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(gw.code, 2, gw.stderr);
  assert.equal(
    gw.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("error:")).length,
    1,
    gw.stderr,
  );
  assert.match(gw.stderr, /error: add-host "host-gateway" needs the daemon's gateway IP, and buildkitd at .* reports none .*: give the IP instead\n$/);
  const bad = runCli(["build", "--add-host", "h=10.0.0.999", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'error: invalid --add-host "h=10.0.0.999": "10.0.0.999" is not an IP address\n');
});

test("compose: .env values that expand, multi-line values, ${COMPOSE_PROJECT_NAME} in a tag, no_cache as a string", async (t) => {
  const run = randomUUID().slice(0, 8);
  const dir = fileTree(
    "bk-parity-compose-",
    {
      "compose.yaml": [
        `name: parity-${run}`,
        "services:",
        "  app:",
        `    image: ${env.registry}/bk-test/\${COMPOSE_PROJECT_NAME}:1`,
        "    build:",
        "      context: .",
        "      args: [URL, CERT]",
        '      no_cache: "true"',
        "",
      ].join("\n"),
      ".env": `HOST=index.internal\nURL="http://\${HOST}:\${PORT:-8080}/simple"\nCERT="-----BEGIN CERT-----\nline-${run}\n-----END CERT-----"\n`,
      Dockerfile: `FROM ${busybox}\nARG URL\nARG CERT\nRUN echo "url=$URL" && echo "$CERT" | grep -c CERT\n`,
    },
    t,
  );
  const r = runCli(["compose", "-f", join(dir, "compose.yaml"), "build", "--progress", "plain", "--push"], {
    env: { BUILDKIT_HOST: env.buildkitHost, PORT: "9000" },
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /url=http:\/\/index\.internal:9000\/simple/);
  assert.match(r.stderr, /#\d+ [\d.]+ 2\n/, "both CERT lines of the multi-line value reached the build");
  // A second build runs the step again (its output shows): no_cache: "true" is true.
  const again = runCli(["compose", "-f", join(dir, "compose.yaml"), "build", "--progress", "plain"], {
    env: { BUILDKIT_HOST: env.buildkitHost, PORT: "9000" },
    timeoutMs: 120_000,
  });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /url=http:\/\/index\.internal:9000\/simple/, again.stderr);
  const m = await getManifest(env.registry, `bk-test/parity-${run}`, "1");
  assert.match(m.digest, /^sha256:[0-9a-f]{64}$/, "the image was pushed under the project's name");
});

test("compose: extends from another file and include of a sub-project build with their own paths and .env", (t) => {
  const run = randomUUID().slice(0, 8);
  const dir = fileTree(
    "bk-parity-extends-",
    {
      "compose.yaml": [
        "include:",
        "  - ./tools/compose.yaml",
        "services:",
        "  web:",
        "    extends: {file: ./common/base.yaml, service: base}",
        "    build:",
        "      args: [WHO=web]",
        "",
      ].join("\n"),
      "common/base.yaml": "services:\n  base:\n    build:\n      context: ./ctx\n      args: [WHO=base, RUN_ID]\n",
      "common/ctx/Dockerfile": `FROM ${busybox}\nARG WHO\nARG RUN_ID\nCOPY marker.txt /\nRUN echo "who=$WHO run=$RUN_ID $(cat /marker.txt)"\n`,
      "common/ctx/marker.txt": "from-common-ctx\n",
      // The include's .env is for interpolating its files (a bare arg takes the project's environment, as docker compose's).
      "tools/compose.yaml": "services:\n  tool:\n    build:\n      context: .\n      args: ['TOOL_NOTE=${TOOL_NOTE}']\n",
      "tools/.env": `TOOL_NOTE=tool-env-${run}\n`,
      "tools/Dockerfile": `FROM ${busybox}\nARG TOOL_NOTE\nRUN echo "note=$TOOL_NOTE"\n`,
    },
    t,
  );
  const r = runCli(["compose", "-f", join(dir, "compose.yaml"), "build", "--progress", "plain"], {
    env: { BUILDKIT_HOST: env.buildkitHost, RUN_ID: run },
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`who=web run=${run} from-common-ctx`), "extends: the base's context (relative to its file) and args, our WHO over its");
  assert.match(r.stderr, new RegExp(`note=tool-env-${run}`), "include: the sub-project's own .env");
  assert.match(r.stderr, /service "web": built/);
  assert.match(r.stderr, /service "tool": built/);
});

test("SOURCE_DATE_EPOCH from the environment: two builds a second apart give the same image digest; without it they differ", async (t) => {
  const out = fileTree("bk-epoch-out-", {}, t);
  const same = fileTree("bk-epoch-same-", { Dockerfile: `FROM ${busybox}\nRUN echo reproducible > /f\n` }, t);
  const d = (name: string, epoch: string | undefined): string => {
    const meta = join(out, `${name}.json`);
    const r = runCli(
      ["build", "--no-cache", "--progress", "quiet", "-o", `type=oci,dest=${join(out, `${name}.tar`)},rewrite-timestamp=true`, "--metadata-file", meta, same],
      {
        env: { BUILDKIT_HOST: env.buildkitHost, SOURCE_DATE_EPOCH: epoch },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    return String((JSON.parse(readFileSync(meta, "utf8")) as Record<string, unknown>)["containerimage.digest"]);
  };
  const a = d("a", "1700000000");
  await new Promise((r) => setTimeout(r, 1100));
  const b = d("b", "1700000000");
  assert.match(a, /^sha256:[0-9a-f]{64}$/);
  assert.equal(a, b, "the same SOURCE_DATE_EPOCH gives the same image");
  await new Promise((r) => setTimeout(r, 1100));
  const c = d("c", undefined);
  assert.notEqual(c, a, "without it the build time is in the image");
});

test("--allow security.insecure reaches the daemon, which refuses it unless its configuration grants it; without --allow the frontend refuses first", (t) => {
  const ctx = fileTree("bk-allow-", { Dockerfile: `FROM ${busybox}\nRUN --security=insecure echo insecure-${randomUUID()}\n` }, t);
  const without = runCli(["build", "--progress", "plain", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  const withAllow = runCli(["build", "--progress", "plain", "--allow", "security.insecure", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.notEqual(without.code, 0, without.stderr);
  assert.notEqual(withAllow.code, 0, withAllow.stderr);
  // The test daemon does not list security.insecure in insecure-entitlements:
  // asked for it, it says its configuration does not allow it.
  assert.match(withAllow.stderr, /granting entitlement security\.insecure is not allowed by build daemon configuration/);
  assert.doesNotMatch(without.stderr, /granting entitlement security\.insecure/);
  const bad = runCli(["build", "--allow", "root", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'error: invalid --allow "root": use network.host, security.insecure or device[=NAME]\n');
});

test("compose: provenance: mode=max and the labels compose adds reach the pushed image; privileged: true asks the daemon for security.insecure; -q is silent; --print builds nothing", async (t) => {
  const run = randomUUID().slice(0, 8);
  const repo = `bk-test/compose-attest-${run}`;
  const dir = fileTree(
    "bk-parity-compose-attest-",
    {
      "compose.yaml": [
        `name: attest-${run}`,
        "services:",
        "  app:",
        `    image: ${env.registry}/${repo}:1`,
        "    build:",
        "      context: .",
        "      provenance: mode=max",
        "  insecure:",
        "    build:",
        "      context: .",
        "      dockerfile: Insecure.Dockerfile",
        "      privileged: true",
        "",
      ].join("\n"),
      Dockerfile: `FROM ${busybox}\nRUN echo ${run} > /built\n`,
      "Insecure.Dockerfile": `FROM ${busybox}\nRUN --security=insecure echo insecure-${run}\n`,
    },
    t,
  );
  const compose = (args: string[]): ReturnType<typeof runCli> =>
    runCli(["compose", "-f", join(dir, "compose.yaml"), ...args], { env: { BUILDKIT_HOST: env.buildkitHost } });
  const printed = compose(["build", "--print", "app"]);
  assert.equal(printed.code, 0, printed.stderr);
  const def = JSON.parse(printed.stdout) as { target: Record<string, { attest?: string[] }> };
  assert.deepEqual(def.target["app"]?.attest, ["type=provenance,mode=max"]);
  await assert.rejects(getDocument(env.registry, repo, "1"), /404/, "--print pushed nothing");
  const q = compose(["build", "-q", "--push", "app"]);
  assert.equal(q.code, 0, q.stderr);
  assert.deepEqual([q.stdout, q.stderr], ["", ""]);
  const index = await getDocument(env.registry, repo, "1");
  const att = index.manifests?.find((d) => d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest");
  assert.ok(att, "an attestation manifest in the index");
  const layer = (await getDocument(env.registry, repo, att.digest)).layers?.[0];
  const stmt = JSON.parse((await getBlob(env.registry, repo, layer!.digest)).toString("utf8")) as { predicate: Record<string, unknown> };
  assert.ok(stmt.predicate["buildConfig"], "mode=max");
  const m = await getManifest(env.registry, repo, "1");
  const config = JSON.parse((await getBlob(env.registry, repo, m.config.digest)).toString("utf8")) as { config: { Labels: Record<string, string> } };
  assert.equal(config.config.Labels["com.docker.compose.project"], `attest-${run}`);
  assert.equal(config.config.Labels["com.docker.compose.service"], "app");
  const insecure = compose(["build", "--progress", "plain", "insecure"]);
  assert.equal(insecure.code, 1, insecure.stderr);
  assert.match(insecure.stderr, /granting entitlement security\.insecure is not allowed by build daemon configuration/);
});

// The frontend checks .dockerignore itself (patternmatcher) before it asks for the context; bk-build's own matcher refuses the same patterns (unit tests).
test("a malformed .dockerignore pattern fails the build in one error line, exit 1", (t) => {
  const ctx = fileTree("bk-badignore-", { Dockerfile: `FROM ${busybox}\nCOPY . /ctx\n`, ".dockerignore": "node_modules\n[Local-Only\n", "a.txt": "a\n" }, t);
  const r = runCli(["build", "--progress", "plain", ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: failed to solve: syntax error in pattern\n$/m);
  assert.equal(r.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1, r.stderr);
});
