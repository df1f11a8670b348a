/**
 * What buildx adds to a build from outside the flags, against the real
 * buildkitd and registry (docker/buildx build/opt.go toSolveOpt at 461836b):
 * `--build-arg BUILDKIT_INLINE_CACHE=1` becomes an inline cache export, so
 * the pushed image config carries buildkit's cache metadata.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { runCliAsync, testEnv } from "../helpers/env.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { getBlob, getManifest } from "../helpers/registry.js";

const env = testEnv();
const busybox = `${env.registry}/bk-test/busybox:latest`;

async function configKeys(repo: string, tag: string): Promise<string[]> {
  const m = await getManifest(env.registry, repo, tag);
  const config = JSON.parse((await getBlob(env.registry, repo, m.config.digest)).toString("utf8")) as Record<string, unknown>;
  return Object.keys(config);
}

test("--build-arg BUILDKIT_INLINE_CACHE=1 pushes an image whose config carries the inline cache (moby.buildkit.cache.v0); without it, none", async (t) => {
  const id = randomUUID().slice(0, 8);
  const ctx = fileTree("bk-inline-", { Dockerfile: `FROM ${busybox}\nRUN echo ${id} > /marker\n` }, t);
  const repo = `bk-test/inline-${id}`;
  const cfg = tempDir("bk-inline-cfg-", t); // no proxies, no logins: the test registry is anonymous
  const run = (tag: string, extra: string[]) =>
    runCliAsync(["build", "--progress", "plain", "--push", "-t", `${env.registry}/${repo}:${tag}`, ...extra, ctx], {
      env: { BUILDKIT_HOST: env.buildkitHost, DOCKER_CONFIG: cfg },
    });
  const withArg = await run("inline", ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]);
  assert.equal(withArg.code, 0, withArg.stderr);
  assert.ok((await configKeys(repo, "inline")).includes("moby.buildkit.cache.v0"), "the inline cache metadata is in the config");
  const without = await run("plain", ["--build-arg", "BUILDKIT_INLINE_CACHE=0"]);
  assert.equal(without.code, 0, without.stderr);
  assert.ok(!(await configKeys(repo, "plain")).includes("moby.buildkit.cache.v0"), "BUILDKIT_INLINE_CACHE=0 exports no inline cache");
});
