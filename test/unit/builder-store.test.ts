/**
 * The builder store: bk-build's builders.json (paths, shape, atomic
 * writes, the lock, broken files), buildx's name rule, and buildx's
 * instance files as buildx v0.38.2 writes them (the JSON below is what
 * `docker buildx create` wrote, with the paths changed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/files.js";
import {
  builderStorePath,
  buildxConfigDir,
  checkBuilderName,
  checkNodeInput,
  defaultBuilder,
  findBuilder,
  loadBuilder,
  readBuilderStore,
  readBuildxBuilders,
  setBuilderNode,
  updateBuilderStore,
  writeFileAtomic,
  type BuilderStore,
} from "../../src/pool/store.js";
import { UsageError } from "../../src/errors.js";

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function usage(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && pattern.test(e.message) && !e.message.includes("\n"), pattern.source);
}

/** An environment whose stores are in a fresh directory. */
function envIn(dir: string): Record<string, string | undefined> {
  return { HOME: join(dir, "home"), XDG_CONFIG_HOME: join(dir, "xdg"), BUILDX_CONFIG: join(dir, "buildx") };
}

/** Writes buildx's instance file for `name` (as buildx does: the lowercased name, JSON on one line). */
function buildxInstance(env: Record<string, string | undefined>, json: Record<string, unknown>): string {
  const dir = join(env["BUILDX_CONFIG"]!, "instances");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, String(json["Name"]).toLowerCase());
  writeFileSync(file, JSON.stringify(json));
  return file;
}

test("where the stores are: XDG_CONFIG_HOME (absolute only), else ~/.config; BUILDX_CONFIG, else $DOCKER_CONFIG/buildx, else ~/.docker/buildx", () => {
  assert.equal(builderStorePath({ XDG_CONFIG_HOME: "/x/cfg", HOME: "/h" }), "/x/cfg/bk-build/builders.json");
  assert.equal(builderStorePath({ XDG_CONFIG_HOME: "rel/cfg", HOME: "/h" }), "/h/.config/bk-build/builders.json");
  assert.equal(builderStorePath({ HOME: "/h" }), "/h/.config/bk-build/builders.json");
  assert.equal(buildxConfigDir({ BUILDX_CONFIG: "/bx", DOCKER_CONFIG: "/dc", HOME: "/h" }), "/bx");
  assert.equal(buildxConfigDir({ DOCKER_CONFIG: "/dc", HOME: "/h" }), "/dc/buildx");
  assert.equal(buildxConfigDir({ HOME: "/h" }), "/h/.docker/buildx");
});

test("names follow buildx's rule (a letter, then letters, digits, . _ -) and are kept lowercased", () => {
  assert.equal(checkBuilderName("CI-amd64_2.x"), "ci-amd64_2.x");
  for (const bad of ["", "1ci", "-ci", "c i", "ci/x", "ci:1", "ç"]) {
    usage(
      () => checkBuilderName(bad),
      new RegExp(`^invalid builder name "${re(bad)}": a name starts with a letter and has only letters, digits and \\. _ - \\(buildx's rule\\)$`),
    );
  }
  usage(() => checkBuilderName("n 1", "node name"), /^invalid node name "n 1"/);
});

test("create, append, replace: one node per call as buildx; node names NAME0, NAME1...; mistakes are one line", () => {
  const store: BuilderStore = { version: 1, builders: {} };
  assert.equal(setBuilderNode(store, "CI", { address: "tcp://a:1" }, false), "created");
  assert.equal(setBuilderNode(store, "ci", { address: "tcp://b:1", platforms: ["linux/arm64"] }, true), "appended");
  assert.equal(setBuilderNode(store, "ci", { address: "tcp://c:1", name: "gpu" }, true), "appended");
  assert.deepEqual(
    store.builders["ci"]!.nodes.map((n) => [n.name, n.address]),
    [
      ["ci0", "tcp://a:1"],
      ["ci1", "tcp://b:1"],
      ["gpu", "tcp://c:1"],
    ],
  );
  assert.equal(setBuilderNode(store, "ci", { address: "tcp://b:2", name: "ci1" }, false), "replaced");
  assert.deepEqual(store.builders["ci"]!.nodes[1], { address: "tcp://b:2", name: "ci1" }, "replaced whole: the old platforms are gone");

  usage(
    () => setBuilderNode(store, "ci", { address: "tcp://d:1" }, false),
    /^builder "ci" already exists: --append adds a node to it, --node NAME replaces one, 'bk-build builder rm ci' removes it$/,
  );
  usage(
    () => setBuilderNode(store, "ci", { address: "tcp://d:1", name: "gpu" }, true),
    /^builder "ci" already has a node "gpu": without --append, --node gpu replaces it$/,
  );
  usage(() => setBuilderNode(store, "ci", { address: "tcp://d:1", name: "nope" }, false), /^builder "ci" has no node "nope": add it with --append$/);
  usage(() => setBuilderNode(store, "other", { address: "tcp://d:1" }, true), /^no builder "other" to append to; create it first without --append$/);
  usage(
    () => setBuilderNode(store, "ci", { address: "tcp://a:1" }, true),
    /^builder "ci" would have two nodes at tcp:\/\/a:1: each node needs its own address$/,
  );
  usage(() => setBuilderNode(store, "default", { address: "tcp://d:1" }, false), /^"default" is a reserved name/);
  usage(() => setBuilderNode(store, "9x", { address: "tcp://d:1" }, false), /^invalid builder name "9x"/);
  assert.equal(store.builders["ci"]!.nodes.length, 3, "refused changes change nothing");
});

test("a node's input is checked at create time: address, platforms normalised, TLS files read and kept absolute, --tlsdir expanded", (t) => {
  const dir = tempDir("bk-store-tls-", t);
  for (const f of ["ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(dir, f), "-----BEGIN CERTIFICATE-----\n");
  const n = checkNodeInput(
    {
      address: "tcp://10.0.0.5:1234",
      platforms: ["linux/aarch64", "linux/arm64/v8", "linux/amd64"],
      tls: { caFile: "ca.pem", serverName: "bk" },
      labels: { zone: "a" },
    },
    dir,
  );
  assert.deepEqual(n, {
    address: "tcp://10.0.0.5:1234",
    platforms: ["linux/arm64", "linux/amd64"],
    tls: { caFile: join(dir, "ca.pem"), serverName: "bk" },
    labels: { zone: "a" },
  });
  const fromDir = checkNodeInput({ address: "tcp://h:1", tls: { dir: "." } }, dir);
  assert.deepEqual(fromDir.tls, { caFile: join(dir, "ca.pem"), certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") });
  assert.equal(checkNodeInput({ address: "unix:///run/b.sock", tls: {} }, dir).tls, undefined, "no TLS flag: no tls");

  usage(() => checkNodeInput({ address: "unix:///run/b.sock", tls: { caFile: "ca.pem" } }, dir), /^TLS options are only used with tcp:\/\/ addresses/);
  usage(() => checkNodeInput({ address: "tcp://h:1", tls: { caFile: "nope.pem" } }, dir), /nope\.pem/);
  usage(() => checkNodeInput({ address: "tcp://h:1", tls: { certFile: "cert.pem" } }, dir), /--tlscert and --tlskey must be given together/);
  usage(() => checkNodeInput({ address: "tcp://h:1", platforms: ["linux/"] }, dir), /--platform/);
  usage(() => checkNodeInput({ address: "htp://h:1" }, dir), /unsupported buildkitd address scheme/);
  usage(() => checkNodeInput({ address: "tcp://h:1", name: "a b" }, dir), /^invalid node name "a b"/);
});

test("builders.json: written whole (0600 in a 0700 directory, no temporary left), read back; the store's shape", (t) => {
  const env = envIn(tempDir("bk-store-rw-", t));
  const file = builderStorePath(env);
  assert.deepEqual(readBuilderStore(env), { file, store: { version: 1, builders: {} } }, "no file: an empty store");
  updateBuilderStore(env, (s) => {
    setBuilderNode(s, "zeta", { address: "tcp://z:1" }, false);
    setBuilderNode(s, "ci", { address: "tcp://a:1", platforms: ["linux/amd64"], labels: { zone: "a" }, tls: { caFile: "/c/ca.pem" } }, false);
    s.current = "ci";
  });
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(join(file, "..")).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(join(file, "..")), ["builders.json"], "no temporary or lock file left");
  assert.equal(
    readFileSync(file, "utf8"),
    JSON.stringify(
      {
        version: 1,
        current: "ci",
        builders: {
          ci: { nodes: [{ name: "ci0", address: "tcp://a:1", platforms: ["linux/amd64"], tls: { caFile: "/c/ca.pem" }, labels: { zone: "a" } }] },
          zeta: { nodes: [{ name: "zeta0", address: "tcp://z:1" }] },
        },
      },
      null,
      2,
    ) + "\n",
  );
  assert.deepEqual(readBuilderStore(env).store.builders["ci"]!.nodes[0]!.labels, { zone: "a" });
  assert.deepEqual(loadBuilder("CI", { env }), [
    { name: "ci0", address: "tcp://a:1", platforms: ["linux/amd64"], tls: { caFile: "/c/ca.pem" }, labels: { zone: "a" } },
  ]);

  // A change that throws writes nothing.
  const before = readFileSync(file, "utf8");
  assert.throws(() =>
    updateBuilderStore(env, (s) => {
      s.current = "zeta";
      throw new UsageError("no");
    }),
  );
  assert.equal(readFileSync(file, "utf8"), before);
  assert.deepEqual(readdirSync(join(file, "..")), ["builders.json"]);
});

test("writeFileAtomic: a write that cannot be put in place leaves the old contents and no temporary", (t) => {
  const dir = tempDir("bk-store-atomic-", t);
  const target = join(dir, "builders.json");
  mkdirSync(join(target, "busy"), { recursive: true }); // a non-empty directory where the file goes: rename fails
  assert.throws(() => writeFileAtomic(target, "{}"), /EISDIR|ENOTEMPTY|EEXIST|is a directory/i);
  assert.deepEqual(readdirSync(dir), ["builders.json"]);
  assert.deepEqual(readdirSync(target), ["busy"]);
  const file = join(dir, "ok.json");
  writeFileAtomic(file, "one\n");
  writeFileAtomic(file, "two\n");
  assert.equal(readFileSync(file, "utf8"), "two\n");
  assert.deepEqual(readdirSync(dir).sort(), ["builders.json", "ok.json"]);
});

test("the lock: a lock left behind (older than 30 s) is taken over; the lock is gone after each change", (t) => {
  const env = envIn(tempDir("bk-store-lock-", t));
  const file = builderStorePath(env);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(`${file}.lock`, "");
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${file}.lock`, old, old);
  updateBuilderStore(env, (s) => setBuilderNode(s, "ci", { address: "tcp://a:1" }, false));
  assert.deepEqual(readdirSync(join(file, "..")), ["builders.json"]);
});

test("a broken builders.json is one line naming the file and what is wrong", (t) => {
  const env = envIn(tempDir("bk-store-bad-", t));
  const file = builderStorePath(env);
  mkdirSync(join(file, ".."), { recursive: true });
  const cases: Array<[string, RegExp]> = [
    ["{ not json", new RegExp(`^bk-build's builder store ${re(file)} is not valid JSON \\(.+\\); fix or remove it$`)],
    ["", new RegExp(`^bk-build's builder store ${re(file)} is not valid JSON`)],
    ["[]", /is not valid: it is not a JSON object; fix or remove it$/],
    ['{"version":2,"builders":{}}', /is not valid: version is 2, this bk-build reads version 1; fix or remove it$/],
    ['{"version":1,"builders":{"ci":{"nodes":[]}}}', /is not valid: builders\.ci has no nodes/],
    ['{"version":1,"builders":{"ci":{"nodes":[{"name":"ci0"}]}}}', /is not valid: builders\.ci\.nodes\[0\] has no address/],
    [
      '{"version":1,"builders":{"ci":{"nodes":[{"name":"ci0","address":"tcp://a:1","tls":{"caFile":1}}]}}}',
      /builders\.ci\.nodes\[0\]\.tls\.caFile is not a string/,
    ],
    ['{"version":1,"builders":{"CI":{"nodes":[{"name":"ci0","address":"tcp://a:1"}]}}}', /is not valid: "CI" is not a builder name/],
    ['{"version":1,"current":"a b","builders":{}}', /current is not a builder name/],
  ];
  for (const [text, pattern] of cases) {
    writeFileSync(file, text);
    usage(() => readBuilderStore(env), pattern);
    usage(() => findBuilder("ci", env), pattern);
  }
});

test("buildx's instance files (v0.38.2's format): remote nodes with Platforms and TLS DriverOpts become pool nodes", (t) => {
  const env = envIn(tempDir("bk-store-buildx-", t));
  buildxInstance(env, {
    Name: "MyRemote",
    Driver: "remote",
    Nodes: [
      { Name: "myremote0", Endpoint: "unix:///run/buildkit/buildkitd.sock", Platforms: null, DriverOpts: null, Flags: null, Files: null },
      { Name: "extra", Endpoint: "tcp://127.0.0.1:1", Platforms: [], DriverOpts: null, Flags: null, Files: null },
    ],
    Dynamic: false,
  });
  buildxInstance(env, {
    Name: "tlsb",
    Driver: "remote",
    Nodes: [
      {
        Name: "n1",
        Endpoint: "tcp://127.0.0.1:39421",
        Platforms: [
          { architecture: "amd64", os: "linux" },
          { architecture: "arm", os: "linux", variant: "v7" },
        ],
        DriverOpts: { cacert: "/certs/ca.pem", cert: "/certs/cert.pem", key: "/certs/key.pem", servername: "bk", "default-load": "true" },
        Flags: null,
        Files: null,
      },
    ],
    Dynamic: false,
  });
  const found = findBuilder("myremote", env);
  assert.equal(found.source, "buildx");
  assert.equal(found.name, "MyRemote");
  assert.equal(found.driver, "remote");
  assert.equal(found.file, join(env["BUILDX_CONFIG"]!, "instances", "myremote"));
  assert.deepEqual(found.nodes, [
    { name: "myremote0", address: "unix:///run/buildkit/buildkitd.sock" },
    { name: "extra", address: "tcp://127.0.0.1:1" },
  ]);
  assert.deepEqual(findBuilder("TLSB", env).nodes, [
    {
      name: "n1",
      address: "tcp://127.0.0.1:39421",
      platforms: ["linux/amd64", "linux/arm/v7"],
      tls: { caFile: "/certs/ca.pem", certFile: "/certs/cert.pem", keyFile: "/certs/key.pem", serverName: "bk" },
    },
  ]);
  assert.deepEqual(
    readBuildxBuilders(env).map((b) => [b.name, b.driver, b.unusable]),
    [
      ["MyRemote", "remote", undefined],
      ["tlsb", "remote", undefined],
    ],
  );
});

test("buildx's docker-container builders: buildx_buildkit_NODE through docker-container://, on the Engine buildx recorded", (t) => {
  const env = { ...envIn(tempDir("bk-store-dc-", t)), DOCKER_HOST: "unix:///tmp/bk-test-docker.sock" };
  const node = (Endpoint: string): Record<string, unknown> => ({
    Name: "dc0",
    Endpoint,
    Platforms: null,
    DriverOpts: null,
    Flags: ["--allow-insecure-entitlement=network.host"],
    Files: null,
  });
  buildxInstance(env, { Name: "ctx", Driver: "docker-container", Nodes: [node("remote-engine")], Dynamic: false });
  buildxInstance(env, { Name: "here", Driver: "docker-container", Nodes: [node("unix:///tmp/bk-test-docker.sock")], Dynamic: false });
  buildxInstance(env, { Name: "there", Driver: "docker-container", Nodes: [node("unix:///elsewhere/docker.sock")], Dynamic: false });
  assert.deepEqual(findBuilder("ctx", env).nodes, [{ name: "dc0", address: "docker-container://buildx_buildkit_dc0?context=remote-engine" }]);
  assert.deepEqual(findBuilder("here", env).nodes, [{ name: "dc0", address: "docker-container://buildx_buildkit_dc0" }]);
  usage(
    () => findBuilder("there", env),
    /^buildx builder "there" runs buildx_buildkit_dc0 on the Docker Engine at unix:\/\/\/elsewhere\/docker\.sock, but bk-build would look for it on docker\+unix:\/\/\/tmp\/bk-test-docker\.sock \(DOCKER_HOST\): set DOCKER_HOST=unix:\/\/\/elsewhere\/docker\.sock$/,
  );
});

test("buildx builders of other drivers, and broken instance files: one line saying which driver, and that bk-build uses remote builders", (t) => {
  const env = envIn(tempDir("bk-store-k8s-", t));
  buildxInstance(env, {
    Name: "kube",
    Driver: "kubernetes",
    Nodes: [{ Name: "kube0", Endpoint: "kubernetes:///kube?deployment=kube0&kubeconfig=", Platforms: null, DriverOpts: null, Flags: null, Files: null }],
    Dynamic: false,
  });
  const broken = buildxInstance(env, { Name: "broken" });
  writeFileSync(broken, "{");
  usage(
    () => findBuilder("kube", env),
    /^buildx builder "kube" uses the kubernetes driver; bk-build uses only buildx's remote builders \(and docker-container ones, through docker-container:\/\/\): create one with 'docker buildx create --driver remote ADDR' or 'bk-build builder create'$/,
  );
  usage(
    () => findBuilder("broken", env),
    new RegExp(`^buildx's builder file ${re(broken)} is not valid JSON \\(.+\\); fix it or remove it with docker buildx rm$`),
  );
  const listed = readBuildxBuilders(env);
  assert.deepEqual(
    listed.map((b) => [b.name, b.nodes, /kubernetes driver|not valid JSON/.test(b.unusable ?? "")]),
    [
      ["broken", undefined, true],
      ["kube", undefined, true],
    ],
  );
  assert.deepEqual(listed[1]!.endpoints, [{ name: "kube0", endpoint: "kubernetes:///kube?deployment=kube0&kubeconfig=" }]);
});

test("lookup: bk-build's store first, then buildx's; an unknown name says where it looked; the default is BK_BUILDER, else current", (t) => {
  const env = envIn(tempDir("bk-store-find-", t));
  buildxInstance(env, { Name: "ci", Driver: "remote", Nodes: [{ Name: "ci0", Endpoint: "tcp://buildx:1" }], Dynamic: false });
  assert.equal(findBuilder("ci", env).nodes[0]!.address, "tcp://buildx:1");
  updateBuilderStore(env, (s) => setBuilderNode(s, "ci", { address: "tcp://ours:1" }, false));
  assert.equal(findBuilder("ci", env).source, "bk-build");
  assert.equal(findBuilder("ci", env).nodes[0]!.address, "tcp://ours:1");
  usage(
    () => findBuilder("nope", env),
    new RegExp(
      `^unknown builder "nope": not in bk-build's store \\(${re(builderStorePath(env))}\\) nor in buildx's \\(${re(join(env["BUILDX_CONFIG"]!, "instances"))}\\); 'bk-build builder ls' lists the builders$`,
    ),
  );
  usage(() => findBuilder("no way", env), /^invalid builder name "no way"/);

  assert.equal(defaultBuilder(env), undefined);
  updateBuilderStore(env, (s) => void (s.current = "ci"));
  assert.deepEqual(defaultBuilder(env), { name: "ci", from: "'bk-build builder use'" });
  assert.deepEqual(defaultBuilder({ ...env, BK_BUILDER: "other" }), { name: "other", from: "BK_BUILDER" });
});
