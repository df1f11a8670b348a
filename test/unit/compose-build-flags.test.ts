/**
 * docker compose build's flags and the build keys compose maps (not
 * ignores): entitlements, privileged, provenance, sbom, no_cache_filter,
 * isolation, depends_on with --with-dependencies, compose's labels, and
 * --print's bake definition. Mappings from docker/compose at f72979427:
 * cmd/compose/build.go (flags, --ssh, --parallel) and
 * pkg/compose/build_bake.go (bakeTarget, bakeEntitlements, toBakeAttest,
 * bakeOutputs, bakeTargetNames, resolveAndMergeBuildArgs).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { loadCompose } from "../../src/compose/load.js";
import { planCompose, serviceBuildOptions } from "../../src/compose/build.js";
import { composeBakeDefinition } from "../../src/compose/print.js";
import { composePlanFromFlags } from "../../src/cli/commands/compose.js";
import { parseCommandLine } from "../../src/cli/args.js";
import { DEFAULT_PROVENANCE, attestationAttrs } from "../../src/solve/attest.js";
import { fileTree } from "../helpers/files.js";

const COMPOSE = [
  "name: shop",
  "services:",
  "  api:",
  "    image: reg/api:1",
  "    depends_on: [db, worker]",
  "    build:",
  "      context: .",
  "      entitlements: [network.host]",
  "      privileged: true",
  "      provenance: mode=max",
  '      sbom: "true"',
  "      no_cache_filter: deps",
  "      args: { A: '1', PRICE: '${PRICE}', T: '$${HOME}' }",
  "      labels: { owner: team }",
  "      ssh: [default]",
  "      extra_hosts: ['db.internal=10.0.0.5']",
  "      shm_size: 64m",
  "  worker.jobs:",
  "    build:",
  "      context: .",
  "      provenance: false",
  "      additional_contexts: { api: service:api }",
  "  worker:",
  "    depends_on: { worker.jobs: { condition: service_started } }",
  "    build: { context: ., isolation: default }",
  "  db:",
  "    image: reg/db:1",
  "",
].join("\n");

function load(files: Record<string, string> = {}): ReturnType<typeof loadCompose> {
  const dir = fileTree("bk-compose-flags-", { "compose.yaml": COMPOSE, Dockerfile: "FROM scratch\n", ...files });
  return loadCompose({ workingDir: dir, env: { PRICE: "$5", SSH_AUTH_SOCK: "/nonexistent/agent.sock" } });
}

test("entitlements and privileged become entitlements; provenance/sbom attestations as compose hands them to bake; no_cache_filter", () => {
  const p = load();
  const api = p.services.find((s) => s.name === "api")!;
  const { options } = serviceBuildOptions(p, api, {}, new Map(), false);
  assert.deepEqual(options.entitlements, ["network.host", "security.insecure"]);
  assert.deepEqual(options.noCache, ["deps"]);
  assert.deepEqual(options.attestations, [{ type: "provenance", attrs: { mode: "max" } }, { type: "sbom" }]);
  assert.deepEqual(options.labels, { owner: "team", "com.docker.compose.project": "shop", "com.docker.compose.service": "api" });
  // The command line's --provenance/--sbom replace the service's, a boolean turning it on or off.
  const over = serviceBuildOptions(p, api, { provenance: "false", sbom: "generator=reg/scan:1", defaultProvenance: true }, new Map(), false).options;
  assert.deepEqual(over.attestations, [
    { type: "provenance", disabled: true },
    { type: "sbom", attrs: { generator: "reg/scan:1" } },
  ]);
  assert.deepEqual(attestationAttrs(over.attestations ?? [], over.defaultProvenance === true), { "attest:sbom": "type=sbom,generator=reg/scan:1" });
  // provenance: false adds nothing, so buildx's default still applies, as in docker compose.
  const jobs = p.services.find((s) => s.name === "worker.jobs")!;
  const j = serviceBuildOptions(
    p,
    jobs,
    { defaultProvenance: true },
    new Map([["api", { service: "api", outcome: "built", images: ["reg/api:1"] }]]),
    false,
  ).options;
  assert.equal(j.attestations, undefined);
  assert.deepEqual(attestationAttrs(j.attestations ?? [], j.defaultProvenance === true), { "attest:provenance": DEFAULT_PROVENANCE });
});

test("keys compose cannot honour through BuildKit are errors naming them, not silently dropped", () => {
  const bad = (build: string): string => {
    const dir = fileTree("bk-compose-bad-", { "compose.yaml": `services:\n  app:\n    build:\n${build}` });
    try {
      loadCompose({ workingDir: dir, env: {} });
      return "(loaded)";
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.match(bad("      context: .\n      isolation: hyperv\n"), /build\.isolation "hyperv" is a Windows container setting BuildKit does not apply/);
  assert.match(bad("      context: .\n      entitlements: [network.bridge]\n"), /build\.entitlements entry "network\.bridge" is not one of network\.host/);
  assert.match(bad('      context: .\n      privileged: "maybe"\n'), /build\.privileged: "maybe" is not a boolean/);
  // compose-spec's type for provenance (string or boolean), in compose-go's words.
  assert.match(bad("      context: .\n      provenance: [a]\n"), /services\.app\.build\.provenance must be a boolean or a string/);
});

test("--with-dependencies adds depends_on transitively (services without a build section are not built); without it, only the named", () => {
  const p = load();
  assert.deepEqual(
    planCompose(p, ["api"]).map((s) => s.name),
    ["api"],
  );
  assert.deepEqual(
    planCompose(p, ["api"], { withDependencies: true })
      .map((s) => s.name)
      .sort(),
    ["api", "worker", "worker.jobs"],
  );
});

test("compose build flags: --build-arg over the services' (bare K from the project environment), --ssh, --provenance checked, --parallel forms, COMPOSE_PARALLEL_LIMIT", () => {
  const p = load();
  const dir = p.directory;
  const flags = (args: string[], env: Record<string, string | undefined> = {}): ReturnType<typeof composePlanFromFlags> => {
    const parsed = parseCommandLine(["compose", ...args]);
    assert.equal(parsed.kind, "command");
    if (parsed.kind !== "command") throw new Error("not a command");
    return composePlanFromFlags(parsed.values, parsed.positionals, { PRICE: "$5", SSH_AUTH_SOCK: "/nonexistent/agent.sock", ...env }, dir);
  };
  const a = flags(["build", "--build-arg", "A=2", "--build-arg", "PRICE", "--build-arg", "UNSET", "--ssh", "default", "api"]);
  assert.deepEqual(a.options.buildArgs, { A: "2", PRICE: "$5" });
  assert.deepEqual(a.options.ssh, { default: null });
  assert.equal(a.options.defaultProvenance, true);
  const api = serviceBuildOptions(a.project, a.plan[0]!, a.options, new Map(), false).options;
  assert.equal(api.buildArgs?.["A"], "2");
  assert.equal(flags(["build", "--ssh=", "api"]).options.ssh?.["default"], null, "an empty --ssh is the default agent");
  assert.deepEqual(flags(["build", "--ssh", "git=/k/id", "api"]).options.ssh, { git: "/k/id" });
  assert.throws(() => flags(["build", "--ssh", "nokey", "api"]), /^UsageError: invalid --ssh "nokey": use default or ID=PATH$/);
  assert.throws(() => flags(["build", "--provenance", "mode", "api"]), /^UsageError: invalid field 'mode' in --provenance "type=provenance,mode"/);
  assert.equal(flags(["build", "api"], { BUILDX_NO_DEFAULT_ATTESTATIONS: "1" }).options.defaultProvenance, false);
  assert.equal(flags(["--parallel", "2", "build", "api"]).options.parallel, 2);
  assert.equal(flags(["build", "--parallel", "api"]).options.parallel, undefined, "compose build's deprecated bare --parallel");
  assert.deepEqual(
    flags(["build", "--parallel", "api"]).plan.map((s) => s.name),
    ["api"],
    "the service after a bare --parallel stays a service",
  );
  assert.equal(flags(["build", "api"], { COMPOSE_PARALLEL_LIMIT: "3" }).options.parallel, 3);
  assert.equal(flags(["--parallel", "-1", "build", "api"]).options.parallel, Number.MAX_SAFE_INTEGER, "-1: no limit");
  assert.throws(() => flags(["--parallel", "0", "build", "api"]), /^UsageError: invalid --parallel "0": use a whole number of at least 1, or -1 for no limit$/);
  assert.throws(() => flags(["build", "api"], { COMPOSE_PARALLEL_LIMIT: "x" }), /^UsageError: invalid COMPOSE_PARALLEL_LIMIT "x"/);
  assert.equal(flags(["build", "--print", "--with-dependencies", "-m", "1g", "--compress", "api"]).print, true, "deprecated flags are accepted");
});

test("--print: docker compose's bake definition: every build a target (dots made _), the plan the default group, its fields and omissions", () => {
  const p = load();
  const plan = planCompose(p, ["api"]);
  const printed = composeBakeDefinition(p, plan, { push: true, buildArgs: { B: "<&>" }, ssh: { git: "/k" } });
  assert.match(printed, /"B": "\\u003c\\u0026\\u003e"/, "Go's HTML escaping");
  const def = JSON.parse(printed) as { group: Record<string, { targets: string[] }>; target: Record<string, Record<string, unknown>> };
  assert.deepEqual(def.group, { default: { targets: ["api"] } });
  assert.deepEqual(Object.keys(def.target), ["api", "worker", "worker_jobs"]);
  assert.deepEqual(def.target["api"], {
    context: p.directory,
    // compose-go's default Dockerfile, as docker compose's dockerFilePath gives it to bake: absolute, symlinks resolved.
    dockerfile: join(realpathSync(p.directory), "Dockerfile"),
    args: { A: "1", B: "<&>", PRICE: "$5", T: "$${HOME}" },
    labels: { "com.docker.compose.project": "shop", "com.docker.compose.service": "api", owner: "team" },
    tags: ["reg/api:1"],
    ssh: ["default=", "git=/k"],
    "no-cache-filter": ["deps"],
    "shm-size": 67108864,
    entitlements: ["network.host", "security.insecure"],
    "extra-hosts": { "db.internal": "10.0.0.5" },
    output: ["type=registry"],
    attest: ["type=provenance,mode=max", "type=sbom"],
  });
  assert.deepEqual(def.target["worker_jobs"]!["contexts"], { api: "target:api" });
  assert.deepEqual(def.target["worker_jobs"]!["tags"], ["shop-worker.jobs"], "the default image name");
  assert.deepEqual(def.target["worker_jobs"]!["output"], ["type=docker"], "no image: to push, so loaded, as compose");
  assert.equal(def.target["worker_jobs"]!["attest"], undefined, "provenance: false adds no attest");
  assert.deepEqual(Object.keys(JSON.parse(printed) as object), ["group", "target"]);
  assert.ok(printed.startsWith('{\n  "group": {\n    "default": {\n      "targets": [\n        "api"\n      ]'), "MarshalIndent's two spaces");
});

test("the Docker config's proxies reach every service as docker compose adds them (ParseProxyConfig: both cases, ALL_PROXY); a service's own arg of that exact name wins", () => {
  const p = load();
  const cfg = fileTree("bk-compose-proxy-cfg-", {
    "config.json": JSON.stringify({
      proxies: {
        default: { httpProxy: "http://proxy.internal:3128", noProxy: "localhost", allProxy: "socks5://s.internal:1080" },
        "unix:///nonexistent/docker.sock": { httpProxy: "http://host-proxy:1" },
      },
    }),
  });
  const parsed = parseCommandLine(["compose", "build", "--build-arg", "no_proxy=cli", "api"]);
  if (parsed.kind !== "command") throw new Error("not a command");
  const plan = composePlanFromFlags(
    parsed.values,
    parsed.positionals,
    { DOCKER_CONFIG: cfg, DOCKER_HOST: "tcp://127.0.0.1:2375", SSH_AUTH_SOCK: "/x" },
    p.directory,
  );
  assert.deepEqual(plan.options.fallbackBuildArgs, {
    HTTP_PROXY: "http://proxy.internal:3128",
    http_proxy: "http://proxy.internal:3128",
    NO_PROXY: "localhost",
    no_proxy: "localhost",
    ALL_PROXY: "socks5://s.internal:1080",
    all_proxy: "socks5://s.internal:1080",
  });
  const args = serviceBuildOptions(p, plan.plan[0]!, plan.options, new Map(), false).options.buildArgs!;
  assert.equal(args["no_proxy"], "cli", "--build-arg wins");
  assert.equal(args["NO_PROXY"], "localhost", "the other case is still added, as compose matches names exactly");
  assert.equal(args["A"], "1");
  const host = composePlanFromFlags(
    parsed.values,
    parsed.positionals,
    { DOCKER_CONFIG: cfg, DOCKER_HOST: "unix:///nonexistent/docker.sock", SSH_AUTH_SOCK: "/x" },
    p.directory,
  );
  assert.equal(host.options.fallbackBuildArgs?.["HTTP_PROXY"], "http://host-proxy:1", "the daemon host's entry over default");
  assert.equal(host.options.fallbackBuildArgs?.["NO_PROXY"], undefined);
});

test("compose-go's load checks: an empty compose file is an error (loader_test TestEmptyFile); a .env that is a directory is skipped (cli/options.go)", () => {
  const empty = fileTree("bk-compose-empty-", { "compose.yaml": "# nothing here\n" });
  assert.throws(() => loadCompose({ workingDir: empty, env: {} }), /compose\.yaml: empty compose file$/);
  const dir = fileTree("bk-compose-envdir-", {
    "compose.yaml": "services:\n  a:\n    build: .\n    image: x/${TAG:-fallback}\n",
    ".env/README": "a directory\n",
  });
  const p = loadCompose({ workingDir: dir, env: {} });
  assert.equal(p.services[0]!.image, "x/fallback");
});

test("!reset and !override in a later file, as compose-go's ResetProcessor (merge_reset_test.go Test_LoadWithReset, reset_test.go TestOverrideReplace)", () => {
  const dir = fileTree("bk-compose-reset-", {
    "base.yml": [
      "name: test",
      "services:",
      "  foo:",
      "    build:",
      "      context: .",
      "      dockerfile: foo.Dockerfile",
      "  bar:",
      "    build:",
      "      context: .",
      "      args: { A: '1', B: '2' }",
      "      tags: [reg/bar:1, reg/bar:2]",
      "",
    ].join("\n"),
    "override.yml": [
      "services:",
      "  foo:",
      "    image: foo",
      "    build: !reset",
      "  bar:",
      "    build:",
      "      args: !override { C: '3' }",
      "      tags: !override [reg/bar:3]",
      "      target: !reset",
      "",
    ].join("\n"),
    Dockerfile: "FROM scratch\n",
  });
  const p = loadCompose({ workingDir: dir, files: ["base.yml", "override.yml"], env: {} });
  const foo = p.services.find((s) => s.name === "foo")!;
  assert.equal(foo.build, undefined, "build: !reset removes the base file's build section");
  assert.equal(foo.image, "foo");
  const bar = p.services.find((s) => s.name === "bar")!.build!;
  assert.deepEqual(bar.args, { C: "3" }, "!override replaces instead of merging by key");
  assert.deepEqual(bar.tags, ["reg/bar:3"], "!override replaces instead of the union");
  assert.equal(bar.target, undefined);
  assert.equal(bar.context, dir, "untagged keys still merge");
  // A !reset item of a sequence leaves its own file's list (compose-go's resolveContainer); an earlier file's list is not touched.
  const seq = fileTree("bk-compose-reset-seq-", {
    "compose.yaml": "services:\n  a:\n    build:\n      context: .\n      tags: [reg/a:1, !reset reg/a:2, reg/a:3]\n",
  });
  assert.deepEqual(loadCompose({ workingDir: seq, env: {} }).services[0]!.build!.tags, ["reg/a:1", "reg/a:3"]);
});
