/**
 * `bk-build build` behaviours that must be buildx's (docker/buildx at
 * 461836b): --build-context names (util/buildflags/context.go
 * ParseContextNames; buildx has no test of its own for it, so the cases
 * follow its code: ParseNormalizedNamed, FamiliarString, ":latest"
 * trimmed), --no-cache with --no-cache-filter (commands/build.go), the
 * BUILDKIT_INLINE_CACHE build arg (build/opt.go toSolveOpt), the Docker
 * config's proxies (store/storeutil/storeutil.go GetProxyConfig and
 * build/opt.go proxyArgKeyExists; TestProxyArgKeyExists of build/opt_test.go
 * is translated below) and tags checked up front (build/opt.go "invalid tag").
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseBuildContexts } from "../../src/cli/parse-build.js";
import { buildOptionsFromFlags } from "../../src/cli/commands/build.js";
import { withInlineCacheArg } from "../../src/solve/cache.js";
import { resolveBuild } from "../../src/solve/options.js";
import { daemonHost, proxyArgsFromConfig, withDockerProxyArgs } from "../../src/solve/proxy.js";
import { UsageError } from "../../src/errors.js";
import { fileTree, tempDir } from "../helpers/files.js";

const usage = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes("\n"), re.source);
};

test("--build-context names are image names in their familiar form, without :latest (ParseContextNames)", () => {
  const cases: Array<[string, string]> = [
    ["alpine", "alpine"],
    ["alpine:latest", "alpine"],
    ["docker.io/library/alpine:latest", "alpine"],
    ["library/alpine", "alpine"],
    ["docker.io/alpine", "alpine"],
    ["index.docker.io/library/alpine", "alpine"], // the legacy Docker Hub domain is docker.io
    ["alpine:3.20", "alpine:3.20"],
    ["docker.io/library/alpine:3.20", "alpine:3.20"],
    ["docker.io/team/app:latest", "team/app"],
    ["localhost:5000/app:latest", "localhost:5000/app"],
    ["ghcr.io/o/app:1", "ghcr.io/o/app:1"],
    ["base", "base"],
    ["my-stage_2", "my-stage_2"],
    [`app@sha256:${"a".repeat(64)}`, `app@sha256:${"a".repeat(64)}`],
    ["app:latest-dev", "app:latest-dev"], // only a whole ":latest" tag goes
  ];
  for (const [name, want] of cases) assert.deepEqual(parseBuildContexts([`${name}=../x`]), { [want]: "../x" }, name);
  // Later values win, after normalising, as buildx's map.
  assert.deepEqual(parseBuildContexts(["alpine=a", "docker.io/library/alpine:latest=b"]), { alpine: "b" });
  assert.deepEqual(parseBuildContexts(["alpine=a", "docker.io/library/alpine=b", "alpine=c"]), { alpine: "c" });
  // Empty values are skipped; the value may hold "=".
  assert.deepEqual(parseBuildContexts(["", "a=docker-image://x?y=z"]), { a: "docker-image://x?y=z" });
});

test("--build-context: names that are not image names, missing values and target: are refused", () => {
  usage(() => parseBuildContexts(["Alpine=../x"]), /^invalid --build-context name "Alpine" in "Alpine=..\/x": repository name must be lowercase$/);
  usage(() => parseBuildContexts(["my stage=../x"]), /^invalid --build-context name "my stage" .*white space/);
  usage(() => parseBuildContexts(["-x=../x"]), /^invalid --build-context name "-x"/);
  usage(() => parseBuildContexts([`${"f".repeat(64)}=../x`]), /is an image ID, not a repository name/);
  usage(() => parseBuildContexts(["nope"]), /^invalid --build-context "nope": use NAME=DIR/);
  usage(() => parseBuildContexts(["=../x"]), /^invalid --build-context "=..\/x": use NAME=DIR/);
  usage(() => parseBuildContexts(["a="]), /^invalid --build-context "a=": use NAME=DIR/);
  usage(() => parseBuildContexts(["base=target:other"]), /^--build-context "base=target:other": target: contexts link bake targets/);
});

test("--no-cache with --no-cache-filter is an error, as buildx", () => {
  usage(
    () => buildOptionsFromFlags({ "no-cache": true, "no-cache-filter": ["build"] }, ["."], {}),
    /^--no-cache and --no-cache-filter cannot currently be used together/,
  );
  assert.equal(buildOptionsFromFlags({ "no-cache": true }, ["."], {}).options.noCache, true);
  assert.deepEqual(buildOptionsFromFlags({ "no-cache-filter": ["a", "b"] }, ["."], {}).options.noCache, ["a", "b"]);
  assert.deepEqual(
    buildOptionsFromFlags({ "no-cache": false, "no-cache-filter": ["a"] }, ["."], {}).options.noCache,
    ["a"],
    "--no-cache=false is no --no-cache",
  );
});

test("BUILDKIT_INLINE_CACHE=<true> adds an inline cache export (strconv.ParseBool), on top of --cache-to", () => {
  const inline = { type: "inline", attrs: {} };
  for (const v of ["1", "t", "T", "true", "TRUE", "True"]) assert.deepEqual(withInlineCacheArg([], { BUILDKIT_INLINE_CACHE: v }), [inline], v);
  for (const v of ["0", "false", "", "yes", "2"]) assert.deepEqual(withInlineCacheArg([], { BUILDKIT_INLINE_CACHE: v }), [], v);
  assert.deepEqual(withInlineCacheArg([], { buildkit_inline_cache: "1" }), [], "the name is case-sensitive");
  assert.deepEqual(withInlineCacheArg([], undefined), []);
  const reg = { type: "registry", attrs: { ref: "r/x:cache" } };
  assert.deepEqual(withInlineCacheArg([reg], { BUILDKIT_INLINE_CACHE: "1" }), [reg, inline]);
  // Through the build's resolution, as the daemon gets it.
  const dir = fileTree("bk-inline-", { Dockerfile: "FROM scratch\n" });
  assert.deepEqual(resolveBuild({ context: dir, buildArgs: { BUILDKIT_INLINE_CACHE: "1" }, env: {} }).caches.exports, [inline]);
  assert.deepEqual(resolveBuild({ context: dir, buildArgs: {}, env: {} }).caches.exports, []);
});

test("buildx TestProxyArgKeyExists: a build arg of the same name in any case keeps the proxy arg out", () => {
  const config = { proxies: { default: { noProxy: "cfg" } } };
  const dir = tempDir("bk-proxy-");
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const env = { DOCKER_CONFIG: dir, DOCKER_HOST: "unix:///nonexistent.sock" };
  const cases: Array<[string, Record<string, string>, boolean]> = [
    ["exact match", { NO_PROXY: "cli" }, true],
    ["case insensitive match", { no_proxy: "cli" }, true],
    ["no match", { HTTP_PROXY: "cli" }, false],
    ["nil map", {}, false],
  ];
  for (const [name, args, exists] of cases) {
    const out = withDockerProxyArgs(args, env);
    assert.deepEqual(out, exists ? args : { ...args, NO_PROXY: "cfg" }, name);
  }
});

test("proxies: the daemon host's entry, else default; four upper-case args, no allProxy", () => {
  const all = { httpProxy: "http://p:3128", httpsProxy: "https://p:3129", noProxy: "localhost,.corp", ftpProxy: "ftp://p:21", allProxy: "socks5://p:1080" };
  assert.deepEqual(proxyArgsFromConfig({ proxies: { default: all } }, "unix:///var/run/docker.sock"), {
    HTTP_PROXY: "http://p:3128",
    HTTPS_PROXY: "https://p:3129",
    NO_PROXY: "localhost,.corp",
    FTP_PROXY: "ftp://p:21",
  });
  const byHost = { proxies: { default: { httpProxy: "d" }, "tcp://10.0.0.1:2375": { httpsProxy: "h" } } };
  assert.deepEqual(proxyArgsFromConfig(byHost, "tcp://10.0.0.1:2375"), { HTTPS_PROXY: "h" }, "the host's entry replaces default, not merged");
  assert.deepEqual(proxyArgsFromConfig(byHost, "unix:///var/run/docker.sock"), { HTTP_PROXY: "d" });
  assert.deepEqual(proxyArgsFromConfig(byHost, undefined), { HTTP_PROXY: "d" });
  // Go's encoding/json: struct fields match without case; empty values are no value.
  assert.deepEqual(proxyArgsFromConfig({ Proxies: { default: { HTTPPROXY: "x", noProxy: "" } } }, undefined), { HTTP_PROXY: "x" });
  assert.deepEqual(proxyArgsFromConfig({}, undefined), {});
  assert.deepEqual(proxyArgsFromConfig({ proxies: { default: "x" } }, undefined), {});
  assert.deepEqual(proxyArgsFromConfig(null, undefined), {});
});

test("proxies: the daemon host is the Go client's DaemonHost() of the docker CLI's endpoint", () => {
  assert.equal(daemonHost({ kind: "unix", path: "/var/run/docker.sock" }), "unix:///var/run/docker.sock");
  assert.equal(daemonHost({ kind: "tcp", host: "10.0.0.1", port: 2375, basePath: "", tls: undefined }), "tcp://10.0.0.1:2375");
  assert.equal(daemonHost({ kind: "tcp", host: "::1", port: 2376, basePath: "/b", tls: undefined }), "tcp://[::1]:2376/b");
  const dir = tempDir("bk-proxy-");
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ proxies: { default: { httpProxy: "d" }, "tcp://127.0.0.1:2375": { httpProxy: "t" }, "unix:///var/run/docker.sock": { httpProxy: "u" } } }),
  );
  assert.deepEqual(withDockerProxyArgs({}, { DOCKER_CONFIG: dir, DOCKER_HOST: "tcp://127.0.0.1" }), { HTTP_PROXY: "t" }, "DOCKER_HOST gets its default port");
  assert.deepEqual(withDockerProxyArgs({}, { DOCKER_CONFIG: dir, HOME: dir }), { HTTP_PROXY: "u" }, "no DOCKER_HOST: the default socket");
  assert.deepEqual(withDockerProxyArgs({}, { DOCKER_CONFIG: dir, DOCKER_HOST: "unix:///other.sock" }), { HTTP_PROXY: "d" });
  assert.deepEqual(
    withDockerProxyArgs({ A: "1" }, { DOCKER_CONFIG: dir, DOCKER_HOST: "bogus://x" }),
    { A: "1", HTTP_PROXY: "d" },
    "a host it cannot read: default",
  );
  // No config, or a broken one: nothing added, nothing thrown.
  assert.deepEqual(withDockerProxyArgs({ A: "1" }, { DOCKER_CONFIG: join(dir, "missing") }), { A: "1" });
  const broken = tempDir("bk-proxy-");
  writeFileSync(join(broken, "config.json"), "{not json");
  assert.deepEqual(withDockerProxyArgs({ A: "1" }, { DOCKER_CONFIG: broken }), { A: "1" });
  assert.deepEqual(withDockerProxyArgs({}, { DOCKER_CONFIG: dir }, false), {}, "configDir false reads none");
});

test("tags are checked with the reference grammar before the build (buildx: invalid tag)", () => {
  const dir = fileTree("bk-tags-", { Dockerfile: "FROM scratch\n" });
  usage(() => resolveBuild({ context: dir, tags: ["ok:1", "Bad:tag"], env: {} }), /^invalid tag "Bad:tag": repository name must be lowercase$/);
  usage(() => resolveBuild({ context: dir, tags: ["app:-x"], env: {} }), /^invalid tag "app:-x"/);
  assert.ok(resolveBuild({ context: dir, tags: ["localhost:5000/team/app:1.2"], env: {} }));
});

test("tags name every image, oci and docker output over their name=, as buildx's toSolveOpt; local and tar are left alone", async () => {
  const { exporters } = await import("../../src/solve/options.js");
  const out = exporters({
    context: ".",
    tags: ["reg/app:1", "reg/app:latest"],
    outputs: [
      { type: "image", attrs: { name: "other/name:9", push: "true" } },
      { type: "oci", dest: join(tempDir("bk-tags-"), "o.tar"), attrs: { name: "x" } },
      { type: "tar", dest: join(tempDir("bk-tags-"), "t.tar"), attrs: { name: "kept" } },
    ],
  });
  assert.deepEqual(
    out.map((o) => [o.type, o.attrs["name"]]),
    [
      ["image", "reg/app:1,reg/app:latest"],
      ["oci", "reg/app:1,reg/app:latest"],
      ["tar", "kept"],
    ],
  );
});

test("booleans are Go's strconv.ParseBool spellings only", async () => {
  const { parseBool } = await import("../../src/units.js");
  for (const t of ["1", "t", "T", "TRUE", "true", "True"]) assert.equal(parseBool(t), true, t);
  for (const f of ["0", "f", "F", "FALSE", "false", "False"]) assert.equal(parseBool(f), false, f);
  for (const x of ["tRuE", "yes", "", " true", "2"]) assert.equal(parseBool(x), undefined, JSON.stringify(x));
});

test("a --build-context value in git's SSH form goes to the frontend as a remote, as buildx; a directory of that name wins", () => {
  const ctx = fileTree("bk-ctx-git-", { Dockerfile: "FROM scratch\n" });
  const r = resolveBuild({ context: ctx, buildContexts: { lib: "git@github.com:moby/buildkit.git#v0.24.0" }, env: {} });
  assert.equal(r.attrs["context:lib"], "git@github.com:moby/buildkit.git#v0.24.0");
  assert.equal(
    [...r.dirs.keys()].some((k) => k.startsWith("named-")),
    false,
  );
});
