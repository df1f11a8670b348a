/**
 * What buildx adds to a build from outside the flags, against the real
 * buildkitd and registry (docker/buildx build/opt.go toSolveOpt at 461836b):
 * `--build-arg BUILDKIT_INLINE_CACHE=1` becomes an inline cache export, so
 * the pushed image config carries buildkit's cache metadata; the Docker
 * config's `proxies` become HTTP_PROXY/HTTPS_PROXY/NO_PROXY/FTP_PROXY build
 * args that the RUN steps see, unless --build-arg names one; `-f https://...`
 * is fetched by the daemon and builds what buildx builds from it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { remoteBuildx } from "../helpers/buildx.js";
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

test("-f http://URL: the daemon fetches the Dockerfile, the context stays local; the same files as buildx's build; a 404 and a remote context are one line", async (t) => {
  const id = randomUUID().slice(0, 8);
  // The server runs in a child: buildx is run with spawnSync, which would block a server in this process.
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const served = { "/df/Dockerfile": "FROM scratch\\nCOPY hello.txt /hello.txt\\nCOPY sub/ /sub/\\n" };
       const s = require("node:http").createServer((req, res) => { console.log("GET " + req.url); const b = served[req.url]; res.writeHead(b === undefined ? 404 : 200); res.end(b ?? "not found"); });
       s.listen(0, "127.0.0.1", () => console.log("port " + s.address().port));`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.after(() => {
    child.kill();
  });
  let log = "";
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      log += d;
      const m = /port (\d+)/.exec(log);
      if (m) resolve(m[1]!);
    });
    child.once("exit", () => reject(new Error("the Dockerfile server exited")));
  });
  const requests = (): string => log;
  const url = `http://127.0.0.1:${port}`;
  const ctx = fileTree("bk-dfurl-", { "hello.txt": `hello ${id}\n`, "sub/a.txt": "a\n", Dockerfile: "FROM scratch\nCOPY Dockerfile /wrong\n" }, t);
  const ours = tempDir("bk-dfurl-ours-", t);
  const r = await runCliAsync(["build", "--progress", "plain", "-f", `${url}/df/Dockerfile`, "-o", `type=local,dest=${ours}`, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`\\[internal\\] load ${url.replace(/[.]/g, "\\.")}/df/Dockerfile`), "the fetch is a step of the build");
  assert.match(requests(), /^GET \/df\/Dockerfile$/m, "the daemon fetched it");
  assert.equal(readFileSync(join(ours, "hello.txt"), "utf8"), `hello ${id}\n`);
  assert.equal(readFileSync(join(ours, "sub", "a.txt"), "utf8"), "a\n");

  const oracle = remoteBuildx(env.buildkitHost, `bk-dfurl-${process.pid}`);
  const theirs = tempDir("bk-dfurl-buildx-", t);
  const bx = oracle.build(["--progress", "plain", "-f", `${url}/df/Dockerfile`, "-o", `type=local,dest=${theirs}`, ctx], ctx);
  assert.equal(bx.code, 0, bx.stderr);
  for (const f of ["hello.txt", "sub/a.txt"]) assert.equal(readFileSync(join(ours, f), "utf8"), readFileSync(join(theirs, f), "utf8"), f);

  const missing = await runCliAsync(["build", "--progress", "plain", "-f", `${url}/nope/Dockerfile`, ctx], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(missing.code, 1, missing.stderr);
  const lines = missing.stderr.split("\n").filter((l) => l.startsWith("error: "));
  assert.equal(lines.length, 1, missing.stderr);
  assert.match(lines[0]!, /404/);

  const remote = await runCliAsync(["build", "-f", `${url}/df/Dockerfile`, "https://127.0.0.1:1/repo.git"], { env: { BUILDKIT_HOST: env.buildkitHost } });
  assert.equal(remote.code, 2, remote.stderr);
  assert.equal(
    remote.stderr,
    `error: -f ${url}/df/Dockerfile: a Dockerfile from a URL needs a local (or empty) build context, not https://127.0.0.1:1/repo.git\n`,
  );
});
