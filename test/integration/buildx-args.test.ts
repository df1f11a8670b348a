/**
 * What buildx adds to a build from outside the flags, against the real
 * buildkitd and registry (docker/buildx build/opt.go toSolveOpt at 461836b):
 * `--build-arg BUILDKIT_INLINE_CACHE=1` becomes an inline cache export, so
 * the pushed image config carries buildkit's cache metadata; the Docker
 * config's `proxies` become HTTP_PROXY/HTTPS_PROXY/NO_PROXY/FTP_PROXY build
 * args that the RUN steps see, unless --build-arg names one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
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

test("the Docker config's proxies reach RUN as build args: the docker host's entry over default, an explicit --build-arg in any case wins", async (t) => {
  const id = randomUUID().slice(0, 8);
  const host = "unix:///tmp/bk-no-such-docker.sock";
  const cfg = tempDir("bk-proxy-cfg-", t);
  writeFileSync(
    join(cfg, "config.json"),
    JSON.stringify({
      proxies: {
        default: { httpProxy: "http://127.0.0.1:1/default" },
        [host]: {
          httpProxy: "http://127.0.0.1:3128",
          httpsProxy: "http://127.0.0.1:3129",
          noProxy: "cfg.internal",
          ftpProxy: "ftp://127.0.0.1:21",
          allProxy: "socks5://127.0.0.1:1080",
        },
      },
    }),
  );
  const ctx = fileTree(
    "bk-proxy-",
    {
      Dockerfile: `FROM ${busybox}\nRUN echo "${id} http=[$HTTP_PROXY] https=[$HTTPS_PROXY] no=[$NO_PROXY] lno=[$no_proxy] ftp=[$FTP_PROXY] all=[$ALL_PROXY]"\n`,
    },
    t,
  );
  const r = await runCliAsync(["build", "--no-cache", "--progress", "plain", "--build-arg", "no_proxy=cli.internal", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, DOCKER_CONFIG: cfg, DOCKER_HOST: host },
  });
  assert.equal(r.code, 0, r.stderr);
  // The frontend gives RUN each proxy variable in both cases; no_proxy=cli.internal kept the config's noProxy out, and allProxy is not buildx's.
  assert.match(
    r.stderr,
    new RegExp(
      `${id} http=\\[http://127\\.0\\.0\\.1:3128\\] https=\\[http://127\\.0\\.0\\.1:3129\\] no=\\[cli\\.internal\\] lno=\\[cli\\.internal\\] ftp=\\[ftp://127\\.0\\.0\\.1:21\\] all=\\[\\]`,
    ),
  );
  assert.doesNotMatch(r.stderr, /cfg\.internal/);
  // Another docker host: the default entry.
  const d = await runCliAsync(["build", "--no-cache", "--progress", "plain", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, DOCKER_CONFIG: cfg, DOCKER_HOST: "unix:///tmp/bk-other-docker.sock" },
  });
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stderr, new RegExp(`${id} http=\\[http://127\\.0\\.0\\.1:1/default\\] https=\\[\\] no=\\[\\]`));
});
