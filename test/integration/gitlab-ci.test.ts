/**
 * examples/gitlab-ci/.gitlab-ci.yml, run: each job's bk-build lines, as
 * written, through bash with GitLab's variables set, against the test
 * Engine (standing in for the docker:dind service, over its TLS listener)
 * and the test buildkitd (standing in for the buildkitd service). Only the
 * service addresses are swapped for the test's; the token rotates between
 * the two runs of each job, and between them the daemon's own cache is
 * emptied (each CI job gets a new service), so the second run is cached only
 * by what the job keeps: the registry's inline cache, the cache: directory.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { dockerCli, repoRoot, testEnv } from "../helpers/env.js";
import { BuildKitClient } from "../../src/index.js";
import { httpGet } from "../helpers/registry.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { tempDir } from "../helpers/files.js";
import { startPackageIndex, type PackageIndex } from "../helpers/package-index.js";

leakCheckEachTest();

const env = testEnv();
let index: PackageIndex;
let indexPort = 0;
let seen: string[] = [];

before(async () => {
  index = await startPackageIndex();
  indexPort = index.port;
  seen = index.seen;
});
after(() => index.close());

interface Job {
  variables?: Record<string, string>;
  script: string[];
}
const ci = parse(readFileSync(join(repoRoot, "examples", "gitlab-ci", ".gitlab-ci.yml"), "utf8")) as Record<string, unknown> & {
  variables: Record<string, string>;
};

function run(line: string, cwd: string, vars: Record<string, string | undefined>): Promise<{ code: number | null; out: string }> {
  const cli = join(repoRoot, "dist", "src", "cli", "bin.js");
  const script = `bk-build() { node ${JSON.stringify(cli)} "$@"; }\n${line}\n`;
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", script], { cwd, env: { PATH: process.env["PATH"], HOME: tempDir("bk-gitlab-home-"), ...vars } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** GitLab's predefined variables for a job in project group/app, with the test registry as CI_REGISTRY. */
function gitlabVars(token: string, sha: string): Record<string, string> {
  const auth = env.authRegistry!;
  const vars: Record<string, string> = {
    CI_JOB_TOKEN: token,
    CI_REGISTRY: auth.host,
    CI_REGISTRY_USER: auth.user,
    CI_REGISTRY_PASSWORD: auth.password,
    CI_REGISTRY_IMAGE: `${auth.host}/group/app`,
    CI_COMMIT_SHORT_SHA: sha,
    CI_COMMIT_REF_SLUG: "main",
    INDEX_URL: `http://127.0.0.1:${indexPort}`,
  };
  // The file's global variables, expanded as GitLab does.
  for (const [k, v] of Object.entries(ci.variables)) vars[k] = v.replace(/\$(\w+)/g, (_, n: string) => vars[n] ?? "");
  return vars;
}

async function runJob(
  name: string,
  services: Record<string, string>,
  between: (vars: Record<string, string>) => Promise<void>,
  check: (vars: Record<string, string>) => void,
): Promise<void> {
  const job = ci[name] as Job;
  const lines = job.script.filter((l) => l.startsWith("bk-build "));
  assert.equal(lines.length, 1, `${name} has one bk-build line`);
  const ctx = tempDir("bk-gitlab-ctx-");
  writeFileSync(join(ctx, "requirements.txt"), "internal-pkg\n");
  writeFileSync(
    join(ctx, "Dockerfile"),
    [
      `FROM ${env.registry}/bk-test/busybox:latest`,
      "ARG INDEX_URL",
      `RUN echo ${randomUUID()} > /run-id`,
      "COPY requirements.txt /app/",
      'RUN --mount=type=secret,id=CI_JOB_TOKEN,required=true wget -q --header "Authorization: Bearer $(cat /run/secrets/CI_JOB_TOKEN)" -O /app/internal-pkg "$INDEX_URL/simple/internal-pkg"',
      "RUN cat /app/internal-pkg > /app/done",
      "",
    ].join("\n"),
  );
  const sha = randomBytes(4).toString("hex");
  const outs: string[] = [];
  const tokens: string[] = [];
  for (const round of [1, 2]) {
    const token = `glcbt-${randomBytes(12).toString("hex")}`;
    tokens.push(token);
    index.token = token;
    seen.length = 0;
    const vars = { ...gitlabVars(token, sha), ...(job.variables ?? {}), ...services };
    if (round === 2) await between(vars);
    const r = await run(lines[0]!, ctx, vars);
    outs.push(r.out);
    assert.equal(r.code, 0, `${name} round ${round}:\n${r.out}`);
    if (round === 1) assert.deepEqual(seen, [token], "the index saw the first token once");
    else {
      assert.deepEqual(seen, [], "after the token rotated the index saw nothing");
      const step = /^#(\d+) \[[^\]]*\] RUN --mount=type=secret/m.exec(r.out)?.[1];
      assert.ok(step, r.out);
      assert.match(r.out, new RegExp(`^#${step} CACHED$`, "m"));
      check(vars);
    }
  }
  for (const o of outs) for (const t of tokens) assert.ok(!o.includes(t), "no token in the job log");
  const auth = env.authRegistry!;
  const res = await httpGet(`http://${auth.host}/v2/group/app/manifests/${sha}`, {
    authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`,
    accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
  });
  assert.equal(res.status, 200, `${name}: the image was pushed to CI_REGISTRY_IMAGE:CI_COMMIT_SHORT_SHA`);
}

test("gitlab-ci example, build-dind: the job's line through the Engine's TLS listener from DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, pushed", async () => {
  const job = ci["build-dind"] as Job;
  assert.deepEqual(
    { host: job.variables?.["DOCKER_HOST"], verify: job.variables?.["DOCKER_TLS_VERIFY"], certs: job.variables?.["DOCKER_CERT_PATH"] },
    { host: "tcp://docker:2376", verify: "1", certs: "/certs/client" },
    "GitLab's documented dind variables",
  );
  const fresh = async (vars: Record<string, string>): Promise<void> => {
    // A new dind service: no images and no build cache of the first job.
    dockerCli(["image", "rm", "-f", vars["IMAGE"]!, `${vars["CI_REGISTRY_IMAGE"]!}:cache`]);
    const pruned = dockerCli(["builder", "prune", "-af"]);
    assert.equal(pruned.code, 0, pruned.stderr);
    return Promise.resolve();
  };
  await runJob("build-dind", { DOCKER_HOST: env.docker.tlsHost, DOCKER_CERT_PATH: env.docker.certPath }, fresh, (vars) => {
    const r = dockerCli(["image", "inspect", vars["IMAGE"]!]);
    assert.equal(r.code, 0, `the image is in the Engine's store: ${r.stderr}`);
    dockerCli(["image", "rm", "-f", vars["IMAGE"]!]);
  });
});

test("gitlab-ci example, build-buildkitd: the job's line against buildkitd, the layer cache in the cache: directory, pushed", async () => {
  const job = ci["build-buildkitd"] as Job & { cache: { paths: string[] } };
  assert.deepEqual(job.cache.paths, [".buildkit-cache"]);
  // A new buildkitd service: nothing cached but what the cache: directory holds.
  const fresh = async (): Promise<void> => {
    const client = await BuildKitClient.connect({ address: env.buildkitHost });
    try {
      await client.prune({ all: true });
    } finally {
      await client.close();
    }
  };
  await runJob("build-buildkitd", { BUILDKIT_HOST: env.buildkitHost }, fresh, () => undefined);
});
