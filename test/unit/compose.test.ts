import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { interpolate } from "../../src/compose/interpolate.js";
import { loadCompose, parseEnvFile } from "../../src/compose/load.js";
import { planCompose, serviceBuildOptions } from "../../src/compose/build.js";
import { fileTree, tempDir } from "../helpers/files.js";
import { UsageError } from "../../src/errors.js";

test("interpolation: every form, nesting, $$, and errors", () => {
  const env: Record<string, string> = { SET: "v", EMPTY: "", OTHER: "o" };
  const look = (n: string): string | undefined => env[n];
  const table: Array<[string, string]> = [
    ["$SET", "v"],
    ["${SET}", "v"],
    ["a${SET}b$SET.c", "av" + "bv.c"],
    ["${UNSET}", ""],
    ["$UNSET-x", "-x"],
    ["${SET:-d}", "v"],
    ["${EMPTY:-d}", "d"],
    ["${UNSET:-d}", "d"],
    ["${SET-d}", "v"],
    ["${EMPTY-d}", ""],
    ["${UNSET-d}", "d"],
    ["${SET:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${UNSET:+alt}", ""],
    ["${SET+alt}", "alt"],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET+alt}", ""],
    ["${SET:?boom}", "v"],
    ["${EMPTY?boom}", ""],
    ["${UNSET:-${OTHER}}", "o"],
    ["${UNSET:-${ALSO_UNSET:-deep}}", "deep"],
    ["${UNSET:-a-$OTHER-b}", "a-o-b"],
    ["$$SET", "$SET"],
    ["$${SET}", "${SET}"],
    ["cost: 5$", "cost: 5$"],
    ["$ alone", "$ alone"],
    ["${SET:-}", "v"],
    ["${UNSET:-}", ""],
  ];
  for (const [input, want] of table) assert.equal(interpolate(input, look), want, input);
  assert.throws(() => interpolate("${UNSET:?set it in .env}", look), /^InterpolationError: required variable UNSET is missing a value: set it in \.env$/);
  assert.throws(() => interpolate("${EMPTY:?}", look), /^InterpolationError: required variable EMPTY is missing a value$/);
  assert.throws(() => interpolate("${UNSET?no ${OTHER}}", look), /required variable UNSET is missing a value: no o/);
  assert.throws(() => interpolate("${SET", look), /a "\$\{" is never closed/);
  assert.throws(() => interpolate("${1BAD}", look), /invalid interpolation format/);
  assert.throws(() => interpolate("${SET%x}", look), /invalid interpolation format/);
});

test(".env files: quotes, comments, export, bad lines named", () => {
  assert.deepEqual(parseEnvFile("A=1\n# c\nexport B=\"two words\"\nC='$raw'\nD=x # comment\nE=\n", ".env"), {
    A: "1",
    B: "two words",
    C: "$raw",
    D: "x",
    E: "",
  });
  assert.throws(() => parseEnvFile("A=1\nnot a line\n", "/p/.env"), /^UsageError: \/p\/\.env:2: key cannot contain a space$/);
  assert.throws(() => parseEnvFile('A=1\nB="open\n', "/p/.env"), /^UsageError: \/p\/\.env:3: unterminated quoted value "open$/);
  assert.throws(() => parseEnvFile("A=${NOPE:?set NOPE}\n", "/p/.env"), /^UsageError: \/p\/\.env:1: required variable NOPE is missing a value: set NOPE$/);
});

function project(files: Record<string, string>): string {
  return fileTree("bk-compose-", files);
}

test("discovery upwards, .env interpolation, args as list and map, ssh list and map, paths against the project", () => {
  const dir = project({
    "compose.yaml": [
      "services:",
      "  app:",
      "    image: reg/app:${TAG:-dev}",
      "    build:",
      "      context: ./app",
      "      dockerfile: Containerfile",
      "      args: [GREETING, FROM_SHELL, MISSING, 'FIXED=1']",
      "      ssh: [default, 'deploy=./keys/id']",
      "      tags: ['reg/app:extra']",
      "  other:",
      "    build:",
      "      context: .",
      "      args: { A: '${GREETING}', B: }",
      "      ssh: { default: , deploy: '~/k' }",
      "      extra_hosts: ['a.example:10.0.0.1']",
      "      labels: [FROM_SHELL, 'k=v']",
      "",
    ].join("\n"),
    ".env": "GREETING=hello\nTAG=1.2\n",
    "app/sub/.keep": "",
  });
  const p = loadCompose({ workingDir: join(dir, "app", "sub"), env: { FROM_SHELL: "sh", HOME: "/home/u", TAG: "shell-wins" } });
  assert.equal(p.directory, dir);
  const [app, other] = p.services;
  assert.equal(app!.image, "reg/app:shell-wins");
  assert.equal(app!.build!.context, join(dir, "app"));
  assert.deepEqual(app!.build!.args, { GREETING: "hello", FROM_SHELL: "sh", FIXED: "1" });
  assert.deepEqual(app!.build!.ssh, { default: null, deploy: join(dir, "keys", "id") });
  assert.deepEqual(other!.build!.args, { A: "hello" });
  assert.deepEqual(other!.build!.ssh, { default: null, deploy: "/home/u/k" });
  assert.deepEqual(other!.build!.extraHosts, ["a.example=10.0.0.1"], "HOST:IP read as compose-go's HostsList, one host=ip per address");
  // A bare label is a label without a value, not an environment lookup.
  assert.deepEqual(other!.build!.labels, { FROM_SHELL: "", k: "v" });
  assert.equal(
    p.name,
    join(dir)
      .split("/")
      .pop()!
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, ""),
  );
});

test("several -f files merge: build keys override, args merge by key, tags union, build secrets appended", () => {
  const dir = project({
    "a.yaml":
      "services:\n  app:\n    build:\n      context: .\n      target: one\n      args: {X: '1', Y: '1'}\n      tags: [t1]\n      secrets: [s1]\nsecrets:\n  s1: {file: ./s1.txt}\n  s2: {environment: TOKEN}\n",
    "b.yaml":
      "services:\n  app:\n    build:\n      target: two\n      args: [Y=2, Z=3]\n      tags: [t2, t1]\n      secrets: [{source: s1, target: renamed}, s2]\n",
  });
  const p = loadCompose({ files: ["a.yaml", "b.yaml"], workingDir: dir, env: {} });
  const b = p.services[0]!.build!;
  assert.equal(b.target, "two");
  assert.deepEqual(b.args, { X: "1", Y: "2", Z: "3" });
  assert.deepEqual(b.tags, ["t1", "t2"]);
  // compose-go appends a later file's build secrets (no unicity rule for them): s1 is mounted under both ids.
  assert.deepEqual(b.secrets, [{ source: "s1" }, { source: "s1", target: "renamed" }, { source: "s2" }]);
  assert.equal(p.secrets["s1"]!.file, join(dir, "s1.txt"));
});

test("profiles: inactive services are built only when active or named; only-image services are not built", () => {
  const dir = project({
    "compose.yaml": "services:\n  web: {build: .}\n  debug: {build: ., profiles: [dev]}\n  db: {image: postgres}\n",
  });
  const names = (profiles: string[] | undefined, wanted?: string[]): string[] =>
    planCompose(loadCompose({ workingDir: dir, env: {}, profiles }), wanted).map((s) => s.name);
  assert.deepEqual(names(undefined), ["web"]);
  assert.deepEqual(names(["dev"]), ["web", "debug"]);
  assert.deepEqual(names(undefined, ["debug"]), ["debug"]);
  assert.deepEqual(names(undefined, ["db"]), []);
  assert.deepEqual(
    planCompose(loadCompose({ workingDir: dir, env: { COMPOSE_PROFILES: "dev" } }), undefined).map((s) => s.name),
    ["web", "debug"],
  );
  assert.throws(() => names(undefined, ["nope"]), /no such service: nope \(services: web, debug, db\)/);
});

test("loader errors: missing file, bad YAML with its line, undefined and external secrets, missing variable, unknown build key", () => {
  const dir = project({
    "bad.yaml": "services:\n  app:\n    build: .\n    image: [unclosed\n",
    "undef.yaml": "services:\n  app:\n    build:\n      context: .\n      secrets: [nope]\n",
    "ext.yaml": "services:\n  app:\n    build:\n      context: .\n      secrets: [ext]\nsecrets:\n  ext: {external: true}\n",
    "req.yaml": "services:\n  app:\n    image: 'x:${VERSION:?set VERSION}'\n    build: .\n",
    "key.yaml": "services:\n  app:\n    build:\n      context: .\n      dockerfil: x\n",
  });
  assert.throws(
    () => loadCompose({ files: ["missing.yaml"], workingDir: dir, env: {} }),
    new RegExp(`^UsageError: cannot read compose file "${dir}/missing\\.yaml" \\(-f\\): no such file; check the path$`),
  );
  assert.throws(() => loadCompose({ files: ["bad.yaml"], workingDir: dir, env: {} }), new RegExp(`^UsageError: ${dir}/bad\\.yaml:[45]:\\d+: invalid YAML: `));
  assert.throws(
    () => loadCompose({ files: ["undef.yaml"], workingDir: dir, env: {} }),
    /service "app" refers to undefined build secret nope; define it under the top-level secrets:/,
  );
  const ext = loadCompose({ files: ["ext.yaml"], workingDir: dir, env: {} });
  assert.throws(
    () => serviceBuildOptions(ext, ext.services[0]!, {}, new Map(), false),
    /service "app": secret "ext" is external; external secrets do not exist at build time/,
  );
  assert.throws(
    () => loadCompose({ files: ["req.yaml"], workingDir: dir, env: {} }),
    new RegExp(`^UsageError: ${dir}/req\\.yaml:3: services\\.app\\.image: required variable VERSION is missing a value: set VERSION$`),
  );
  assert.throws(() => loadCompose({ files: ["key.yaml"], workingDir: dir, env: {} }), /service "app": build has no key "dockerfil"/);
  assert.throws(() => loadCompose({ workingDir: tempDir("bk-empty-"), env: {} }), /no compose file found in .* or its parents/);
});

test("a build secret's id is its target, else its source; file and environment sources", () => {
  const dir = project({
    "compose.yaml":
      "services:\n  app:\n    build:\n      context: .\n      secrets: [{source: tok, target: CI_JOB_TOKEN}, npmrc]\nsecrets:\n  tok: {environment: CI_JOB_TOKEN_VALUE}\n  npmrc: {file: ~/.npmrc}\n",
  });
  const home = tempDir("bk-home-");
  writeFileSync(join(home, ".npmrc"), "//registry/:_authToken=x");
  const p = loadCompose({ workingDir: dir, env: { HOME: home, CI_JOB_TOKEN_VALUE: "x" } });
  const { options } = serviceBuildOptions(p, p.services[0]!, {}, new Map(), false);
  assert.deepEqual(options.secrets, { CI_JOB_TOKEN: { env: "CI_JOB_TOKEN_VALUE" }, npmrc: { file: join(home, ".npmrc") } });
  assert.equal(options.env, p.environment);
  const noFile = loadCompose({ workingDir: dir, env: { HOME: "/nonexistent", CI_JOB_TOKEN_VALUE: "x" } });
  assert.throws(
    () => serviceBuildOptions(noFile, noFile.services[0]!, {}, new Map(), false),
    /service "app": secret "npmrc": file \/nonexistent\/\.npmrc does not exist/,
  );
  const noVar = loadCompose({ workingDir: dir, env: { HOME: home } });
  assert.throws(
    () => serviceBuildOptions(noVar, noVar.services[0]!, {}, new Map(), false),
    /secret "tok": environment variable CI_JOB_TOKEN_VALUE is not set; set it or put it in \.env/,
  );
});

test("files shaped like the compose-spec's build examples load as documented", () => {
  const home = tempDir("bk-home-");
  const dir = project({
    "compose.yaml": [
      "services:",
      "  frontend:",
      "    image: example/webapp",
      "    build: ./webapp",
      "  backend:",
      "    image: example/database",
      "    build:",
      "      context: backend",
      "      dockerfile: ../backend.Dockerfile",
      "  custom:",
      "    build: ~/custom",
      "  full:",
      "    build:",
      "      context: .",
      "      args:",
      "        - GIT_COMMIT=cdc3b19",
      "      labels:",
      '        com.example.description: "Accounting webapp"',
      "      ssh:",
      "        - default",
      "        - myproject=~/.ssh/myproject.pem",
      "      secrets:",
      "        - server-certificate",
      "        - source: server-certificate",
      "          target: cert",
      '          uid: "103"',
      '          gid: "103"',
      "          mode: 0440",
      "      tags:",
      '        - "myimage:mytag"',
      '        - "registry/username/myrepos:my-other-tag"',
      "      platforms:",
      '        - "linux/amd64"',
      '        - "linux/arm64"',
      "      extra_hosts:",
      '        - "somehost=162.242.195.82"',
      '        - "otherhost:50.31.209.229"',
      "      cache_from:",
      "        - alpine:latest",
      "        - type=local,src=path/to/cache",
      "      cache_to:",
      "        - type=inline",
      "      shm_size: '2gb'",
      "      ulimits:",
      "        nproc: 65535",
      "        nofile: { soft: 20000, hard: 40000 }",
      "      network: host",
      "      target: prod",
      "secrets:",
      "  server-certificate:",
      "    file: ./server.cert",
      "",
    ].join("\n"),
    "server.cert": "cert",
  });
  const p = loadCompose({ workingDir: dir, env: { HOME: home } });
  const by = Object.fromEntries(p.services.map((s) => [s.name, s]));
  assert.equal(by["frontend"]!.build!.context, join(dir, "webapp"));
  assert.equal(by["backend"]!.build!.context, join(dir, "backend"));
  assert.equal(by["custom"]!.build!.context, join(home, "custom"));
  const full = by["full"]!;
  const b = full.build!;
  assert.deepEqual(b.args, { GIT_COMMIT: "cdc3b19" });
  assert.deepEqual(b.labels, { "com.example.description": "Accounting webapp" });
  assert.deepEqual(b.ssh, { default: null, myproject: join(home, ".ssh", "myproject.pem") });
  assert.deepEqual(b.secrets, [{ source: "server-certificate" }, { source: "server-certificate", target: "cert" }]);
  const { options } = serviceBuildOptions(p, { ...full, build: { ...b, ssh: {} } }, {}, new Map(), false);
  assert.deepEqual(options.secrets, { "server-certificate": { file: join(dir, "server.cert") }, cert: { file: join(dir, "server.cert") } });
  assert.deepEqual(options.tags, ["myimage:mytag", "registry/username/myrepos:my-other-tag"]);
  assert.deepEqual(options.platforms, ["linux/amd64", "linux/arm64"]);
  assert.deepEqual(options.cacheFrom, [
    { type: "registry", attrs: { ref: "alpine:latest" } },
    // A relative cache directory is the project's, as the context is.
    { type: "local", attrs: { src: join(dir, "path/to/cache") } },
  ]);
  assert.deepEqual(options.cacheTo, [{ type: "inline", attrs: {} }]);
  assert.equal(options.target, "prod");
  assert.deepEqual(options.entitlements, ["network.host"]);
  assert.deepEqual(options.frontendAttrs, {
    "add-hosts": "somehost=162.242.195.82,otherhost=50.31.209.229",
    "shm-size": String(2 * 1024 * 1024 * 1024),
    ulimit: "nproc=65535:65535,nofile=20000:40000",
    "force-network-mode": "host",
  });
  // The backend's Dockerfile path is relative to its context.
  const be = serviceBuildOptions(p, by["backend"]!, {}, new Map(), false).options;
  assert.equal(be.dockerfile, join(dir, "backend.Dockerfile"));
  assert.deepEqual(be.tags, ["example/database"]);
});

test("the runner: at most --parallel builds at once, service: contexts first, failures skip only dependents", async () => {
  const { runCompose } = await import("../../src/compose/build.js");
  type BuildOptions = import("../../src/solve/options.js").BuildOptions;
  type Build = import("../../src/solve/solve.js").Build;
  type BuildResult = import("../../src/solve/solve.js").BuildResult;
  const svc = (name: string, extra = ""): string =>
    `  ${name}: {${extra}build: {context: ., args: {SVC: ${name}}${name.startsWith("app") ? ", additional_contexts: {b: 'service:base'}" : name === "after-bad" ? ", additional_contexts: {x: 'service:bad'}" : ""}}}`;
  const dir = project({
    "compose.yaml": [
      "services:",
      svc("base", "image: reg/base, "),
      svc("app1"),
      svc("app2"),
      svc("bad", "image: reg/bad, "),
      svc("after-bad"),
      svc("solo1"),
      svc("solo2"),
      "",
    ].join("\n"),
    Dockerfile: "FROM scratch\n",
  });
  const p = loadCompose({ workingDir: dir, env: {} });
  const plan = planCompose(p, undefined);
  let running = 0;
  let peak = 0;
  const order: string[] = [];
  const seen = new Map<string, BuildOptions>();
  const fakeBuild = (o: BuildOptions): Build => {
    const service = o.buildArgs!["SVC"]!;
    order.push(service);
    seen.set(service, o);
    running++;
    peak = Math.max(peak, running);
    const result = new Promise<BuildResult>((resolve, reject) =>
      setTimeout(() => {
        running--;
        if (service === "bad") reject(new Error("failed to solve: exit code: 1"));
        else resolve({ ref: `ref-${service}`, exporterResponse: { "containerimage.digest": `sha256:${service}` }, bytesSent: {}, exports: [], warnings: [] });
      }, 20),
    );
    result.catch(() => undefined);
    return {
      ref: service,
      progress: (async function* () {})(),
      result,
      cancel: () => undefined,
      [Symbol.asyncDispose]: () =>
        result.then(
          () => undefined,
          () => undefined,
        ),
    };
  };
  const results = await runCompose(p, plan, fakeBuild, { parallel: 2 });
  assert.ok(peak === 2, `peak ${peak}`);
  const by = Object.fromEntries(results.map((r) => [r.service, r]));
  assert.equal(by["bad"]!.outcome, "failed");
  assert.match(by["bad"]!.error!.message, /exit code: 1/);
  assert.equal(by["after-bad"]!.outcome, "skipped");
  for (const s of ["base", "app1", "app2", "solo1", "solo2"]) assert.equal(by[s]!.outcome, "built", s);
  assert.ok(order.indexOf("base") < order.indexOf("app1") && order.indexOf("base") < order.indexOf("app2"));
  assert.ok(!order.includes("after-bad"));
  // Without --push, a service used as a context reaches the next build through an OCI layout, not a registry.
  assert.equal(seen.get("base")!.push, false, "nothing is pushed without --push");
  const layout = seen.get("base")!.outputs!.find((o) => o.type === "oci")!;
  assert.deepEqual(layout.attrs, { tar: "false" });
  assert.match(layout.dest!, /bk-compose-context-/);
  assert.deepEqual(seen.get("base")!.outputs![0], { type: "image" }, "its tags still name an image in the daemon's store");
  assert.deepEqual(seen.get("app1")!.buildContexts, { b: `oci-layout://${layout.dest!}@sha256:base` });
  assert.equal(existsSync(layout.dest!), false, "the layout is removed when the run ends");
  assert.equal(seen.get("solo1")!.push, false);
  assert.equal(seen.get("solo1")!.outputs, undefined);
  // With --push: the named service is pushed and used by digest (the registry route).
  seen.clear();
  await runCompose(p, plan, fakeBuild, { parallel: 2, push: true });
  assert.equal(seen.get("base")!.push, true);
  assert.equal(seen.get("base")!.outputs, undefined);
  assert.deepEqual(seen.get("app1")!.buildContexts, { b: "docker-image://reg/base@sha256:base" });
});

test("through a Docker Engine: services are named PROJECT-SERVICE, and service: contexts use that name from the Engine's store, unpushed", async () => {
  const { runCompose, withEngineImageNames } = await import("../../src/compose/build.js");
  type BuildOptions = import("../../src/solve/options.js").BuildOptions;
  type Build = import("../../src/solve/solve.js").Build;
  const dir = project({
    "compose.yaml": [
      "name: shop",
      "services:",
      "  base: {build: {context: .}}",
      "  app: {build: {context: ., additional_contexts: {b: 'service:base'}}}",
      "  named: {image: reg/named, build: {context: .}}",
      "  pulled: {image: reg/pulled}",
      "",
    ].join("\n"),
    Dockerfile: "FROM scratch\n",
  });
  const loaded = loadCompose({ workingDir: dir, env: {} });
  assert.deepEqual(
    planCompose(loaded, undefined).map((s) => s.name),
    ["base", "app", "named"],
    "with buildkitd an unnamed service can be a context too (through an OCI layout)",
  );
  const p = withEngineImageNames(loaded);
  assert.deepEqual(
    p.services.map((s) => [s.name, s.image]),
    [
      ["base", "shop-base"],
      ["app", "shop-app"],
      ["named", "reg/named"],
      ["pulled", "reg/pulled"],
    ],
  );
  assert.equal(loaded.services[0]!.image, undefined, "the loaded project is not changed");
  const seen = new Map<string, BuildOptions>();
  const fakeBuild = (o: BuildOptions): Build => {
    seen.set(o.tags![0]!, o);
    const result = Promise.resolve({ ref: "r", exporterResponse: { "containerimage.digest": "sha256:id" }, bytesSent: {}, exports: [], warnings: [] });
    return { ref: "r", progress: (async function* () {})(), result, cancel: () => undefined, [Symbol.asyncDispose]: async () => undefined };
  };
  const results = await runCompose(p, planCompose(p, undefined), fakeBuild, { localImages: true });
  assert.deepEqual(results.map((r) => [r.service, r.outcome]).sort(), [
    ["app", "built"],
    ["base", "built"],
    ["named", "built"],
  ]);
  assert.equal(seen.get("shop-base")!.push, false, "not pushed: the Engine keeps it");
  assert.deepEqual(seen.get("shop-app")!.buildContexts, { b: "docker-image://shop-base" }, "by name, not name@ID");
});

test("COMPOSE_PROJECT_NAME during interpolation: -p, then the variable, then name:, then the directory; an invalid -p is refused", () => {
  const dir = project({
    "compose.yaml": "name: My_App-${STAGE:-dev}\nservices:\n  web:\n    image: reg/${COMPOSE_PROJECT_NAME}-web:1\n    build: .\n",
  });
  const load = (o: { projectName?: string; env?: Record<string, string> }) => loadCompose({ workingDir: dir, env: o.env ?? {}, projectName: o.projectName });
  assert.equal(load({}).name, "my_app-dev", "name: interpolated and normalised");
  assert.equal(load({}).services[0]!.image, "reg/my_app-dev-web:1");
  assert.equal(load({ env: { STAGE: "prod" } }).services[0]!.image, "reg/my_app-prod-web:1");
  assert.equal(load({ projectName: "explicit" }).services[0]!.image, "reg/explicit-web:1");
  assert.equal(load({ env: { COMPOSE_PROJECT_NAME: "fromenv" } }).services[0]!.image, "reg/fromenv-web:1");
  assert.throws(() => load({ projectName: "Bad Name" }), /^UsageError: invalid project name "Bad Name": use lowercase letters/);
  assert.throws(() => load({ env: { COMPOSE_PROJECT_NAME: "_x" } }), /invalid project name "_x" \(from COMPOSE_PROJECT_NAME\)/);
  const unnamed = project({ "compose.yaml": "services:\n  web:\n    image: ${COMPOSE_PROJECT_NAME}:1.0.0\n    build: .\n" });
  const p = loadCompose({ workingDir: unnamed, env: {} });
  assert.match(p.services[0]!.image!, /^bk-compose-[a-z0-9]+:1\.0\.0$/, "the directory's name, normalised");
});

test(".env values expand (shell first, then earlier lines and files); multi-line values and bare keys; compose's string booleans", () => {
  const dir = project({
    "compose.yaml": [
      "services:",
      "  app:",
      "    build:",
      "      context: .",
      "      args: [URL, PEM, FROM_SHELL]",
      "      no_cache: ${NO_CACHE:-true}",
      "      pull: 'false'",
      "",
    ].join("\n"),
    ".env": 'HOST=localhost\nURL=http://${HOST}:${PORT:-5000}\nPEM="-----BEGIN KEY-----\nabc\n-----END KEY-----"\nFROM_SHELL\n',
  });
  const p = loadCompose({ workingDir: dir, env: { HOST: "shell-host", FROM_SHELL: "yes" } });
  const b = p.services[0]!.build!;
  assert.equal(b.args["URL"], "http://shell-host:5000");
  assert.equal(b.args["PEM"], "-----BEGIN KEY-----\nabc\n-----END KEY-----");
  assert.equal(b.args["FROM_SHELL"], "yes");
  assert.equal(b.noCache, true, 'no_cache: "true" (from a default) is true');
  assert.equal(b.pull, false);
  const bad = project({ "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      no_cache: maybe\n" });
  assert.throws(() => loadCompose({ workingDir: bad, env: {} }), /build\.no_cache: "maybe" is not a boolean \(use true or false\)/);
});

test("additional_contexts merge by key across files whether lists or mappings; a default may hold braces", () => {
  const dir = project({
    "a.yaml": "services:\n  app:\n    build:\n      context: .\n      additional_contexts: ['resources=/path', 'base=docker-image://busybox']\n",
    "b.yaml": "services:\n  app:\n    build:\n      additional_contexts:\n        base: docker-image://alpine\n        extra: ./extra\n",
  });
  const p = loadCompose({ files: ["a.yaml", "b.yaml"], workingDir: dir, env: {} });
  assert.deepEqual(p.services[0]!.build!.additionalContexts, { resources: "/path", base: "docker-image://alpine", extra: join(dir, "extra") });
  assert.equal(
    interpolate('${JSON:-{"json":1}}', (k) => ({ JSON: '{"json":2}' })[k]),
    '{"json":2}',
  );
  assert.equal(
    interpolate('${JSON:-{"json":1}}', () => undefined),
    '{"json":1}',
  );
});

test("COMPOSE_FILE (with COMPOSE_PATH_SEPARATOR) and COMPOSE_ENV_FILES stand in for -f and --env-file", () => {
  const dir = project({
    "base.yaml": "services:\n  app:\n    build:\n      context: .\n      args: [A]\n",
    "over.yaml": "services:\n  app:\n    build:\n      target: t2\n",
    "one.env": "A=from-one\n",
    "two.env": "A=${A}-and-two\n",
  });
  const p = loadCompose({ workingDir: dir, env: { COMPOSE_FILE: "base.yaml:over.yaml", COMPOSE_ENV_FILES: "one.env,two.env" } });
  assert.deepEqual(p.files, [join(dir, "base.yaml"), join(dir, "over.yaml")]);
  assert.equal(p.services[0]!.build!.target, "t2");
  assert.equal(p.services[0]!.build!.args["A"], "from-one-and-two");
  const semi = loadCompose({ workingDir: dir, env: { COMPOSE_FILE: "base.yaml;over.yaml", COMPOSE_PATH_SEPARATOR: ";" } });
  assert.equal(semi.files.length, 2);
  assert.throws(
    () => loadCompose({ workingDir: dir, env: { COMPOSE_FILE: "missing.yaml" } }),
    /COMPOSE_FILE names .*missing\.yaml, which does not exist: fix COMPOSE_FILE or pass -f/,
  );
  // -f wins over COMPOSE_FILE.
  assert.deepEqual(loadCompose({ workingDir: dir, files: ["base.yaml"], env: { COMPOSE_FILE: "missing.yaml" } }).files, [join(dir, "base.yaml")]);
});

test("extends: a service in the same file or another, chains, own keys over the base's; relative paths stay the base file's; cycles and missing bases named", () => {
  const dir = project({
    "compose.yaml": [
      "services:",
      "  base:",
      "    build:",
      "      context: ./app",
      "      args: {A: '1', B: '1'}",
      "      target: dev",
      "  web:",
      "    extends: base",
      "    build:",
      "      args: [B=2]",
      "  api:",
      "    extends: {service: web}",
      "    build:",
      "      target: prod",
      "  shared:",
      "    extends: {file: ./common/common.yaml, service: tool}",
      "",
    ].join("\n"),
    "common/common.yaml": "services:\n  tool:\n    build:\n      context: ./tool\n      additional_contexts: {assets: ./assets}\n",
  });
  const p = loadCompose({ workingDir: dir, env: {} });
  const get = (n: string) => p.services.find((s) => s.name === n)!.build!;
  assert.deepEqual(get("web").args, { A: "1", B: "2" });
  assert.equal(get("web").context, join(dir, "app"));
  assert.equal(get("web").target, "dev");
  assert.equal(get("api").target, "prod");
  assert.deepEqual(get("api").args, { A: "1", B: "2" });
  assert.equal(get("shared").context, join(dir, "common", "tool"), "relative to the file it came from");
  assert.deepEqual(get("shared").additionalContexts, { assets: join(dir, "common", "assets") });

  const cyc = project({ "compose.yaml": "services:\n  a:\n    extends: b\n    build: .\n  b:\n    extends: a\n" });
  assert.throws(() => loadCompose({ workingDir: cyc, env: {} }), /service "a": extends makes a cycle: a -> b -> a/);
  const missing = project({ "compose.yaml": "services:\n  a:\n    extends: nope\n    build: .\n" });
  assert.throws(() => loadCompose({ workingDir: missing, env: {} }), /service "a": extends service "nope", which .*compose\.yaml does not define/);
  const noFile = project({ "compose.yaml": "services:\n  a:\n    extends: {file: gone.yaml, service: x}\n" });
  assert.throws(() => loadCompose({ workingDir: noFile, env: {} }), /extends names .*gone\.yaml, which does not exist/);
});

test("include: another project's services join this one, with paths and .env of its own; one defined on both sides merges; cycles are named", () => {
  const dir = project({
    "compose.yaml": [
      "include:",
      "  - ./lib/compose.yaml",
      "  - path: ./other/compose.yaml",
      "    env_file: ./other.env",
      "services:",
      "  app:",
      "    build: ./app",
      "",
    ].join("\n"),
    "lib/compose.yaml": "services:\n  lib:\n    image: reg/${COMPOSE_PROJECT_NAME}-lib:${LIB_TAG}\n    build: ./src\n",
    "lib/.env": "LIB_TAG=from-lib-env\n",
    "other/compose.yaml": "services:\n  other:\n    build:\n      context: .\n      args: [X, 'Y=${X}']\n",
    "other.env": "X=from-other-env\n",
  });
  const p = loadCompose({ workingDir: dir, env: {} });
  const names = p.services.map((s) => s.name).sort();
  assert.deepEqual(names, ["app", "lib", "other"]);
  const lib = p.services.find((s) => s.name === "lib")!;
  assert.equal(lib.build!.context, join(dir, "lib", "src"), "relative to the included file");
  assert.equal(lib.image, `reg/${p.name}-lib:from-lib-env`, "its own .env, the parent's project name");
  // The include's env_file is for interpolating its files; a bare arg takes the project's environment, as compose-go's normalize.
  assert.deepEqual(p.services.find((s) => s.name === "other")!.build!.args, { Y: "from-other-env" });

  // compose-go's importResources: this file's definition merged over the included one.
  const clash = project({
    "compose.yaml": "include: [./b.yaml]\nservices:\n  x:\n    build:\n      target: mine\n",
    "b.yaml": "services:\n  x:\n    build:\n      context: ./sub\n      target: theirs\n",
  });
  const merged = loadCompose({ workingDir: clash, env: {} }).services;
  assert.equal(merged.length, 1);
  assert.equal(merged[0]!.build!.target, "mine");
  assert.equal(merged[0]!.build!.context, join(clash, "sub"), "the included file's path, made absolute there");
  const loop = project({
    "compose.yaml": "include: [./b.yaml]\nservices:\n  x:\n    build: .\n",
    "b.yaml": "include: [./compose.yaml]\nservices:\n  y:\n    build: .\n",
  });
  assert.throws(() => loadCompose({ workingDir: loop, env: {} }), /include cycle detected: .*compose\.yaml includes .*b\.yaml includes .*compose\.yaml/);
  const gone = project({ "compose.yaml": "include: [./nope.yaml]\nservices: {}\n" });
  assert.throws(() => loadCompose({ workingDir: gone, env: {} }), /include names .*nope\.yaml, which does not exist/);
});

test("top-level secrets as compose-go checks them, unused ones too: validation's TestValidateSecret table (for secrets) and validate.go's rule", () => {
  const cases: Array<[string, string | undefined]> = [
    ["file: ./s.txt", undefined],
    ["environment: TOKEN", undefined],
    ["environment: TOKEN\n    file: ./s.txt", "secrets.tok: file|environment attributes are mutually exclusive"],
    ["name: test", "secrets.tok: one of file|environment must be set"],
    ["external: true", undefined],
    ["driver: vault", 'secret "tok" must declare either `file` or `environment`'],
    ['file: ""', 'secret "tok" must declare either `file` or `environment`'],
  ];
  for (const [body, err] of cases) {
    const dir = project({ "compose.yaml": `services:\n  app:\n    build: .\nsecrets:\n  tok:\n    ${body}\n` });
    const load = (): unknown => loadCompose({ workingDir: dir, env: {} });
    if (err === undefined) assert.doesNotThrow(load, body);
    else assert.throws(load, (e: Error) => e instanceof UsageError && e.message === err, body);
  }
});
