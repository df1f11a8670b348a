/**
 * `bk-build builder ...` and `--builder`/BK_BUILDER: parsing, the usage
 * errors (one line, exit 2, before anything is dialled), create/use/rm on
 * a store in a temp directory, and ls/inspect/info of builders whose nodes
 * are not there.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseCommandLine } from "../../src/cli/args.js";
import { main, type CliIo } from "../../src/cli/main.js";
import { formatPlatforms } from "../../src/cli/commands/builder.js";
import { builderStorePath } from "../../src/pool/store.js";
import { tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

type TestIo = CliIo & { stdout: string; stderr: string };

/** A CLI io whose stores live in `dir`; BUILDKIT_HOST points at nothing. */
function io(dir: string, env: Record<string, string | undefined> = {}): TestIo {
  const r = {
    stdout: "",
    stderr: "",
    out: (t: string) => void (r.stdout += t),
    err: (t: string) => void (r.stderr += t),
    env: {
      HOME: join(dir, "home"),
      XDG_CONFIG_HOME: join(dir, "xdg"),
      BUILDX_CONFIG: join(dir, "buildx"),
      BUILDKIT_HOST: `unix://${join(dir, "no-buildkitd.sock")}`,
      ...env,
    },
    cwd: dir,
    signal: new AbortController().signal,
  };
  return r as unknown as TestIo;
}

async function run(o: TestIo, argv: string[]): Promise<number> {
  return main(argv, o);
}

function buildxInstance(dir: string, json: Record<string, unknown>): string {
  const inst = join(dir, "buildx", "instances");
  mkdirSync(inst, { recursive: true });
  const file = join(inst, String(json["Name"]).toLowerCase());
  writeFileSync(file, JSON.stringify(json));
  return file;
}

test("builder takes its subcommand and arguments as positionals; --builder is a global flag", () => {
  const p = parseCommandLine([
    "builder",
    "create",
    "ci",
    "tcp://a:1",
    "--node",
    "n1",
    "--platform",
    "linux/amd64,linux/arm64",
    "--label",
    "zone=a",
    "--append",
  ]);
  assert.ok(p.kind === "command");
  assert.equal(p.spec.name, "builder");
  assert.deepEqual(p.positionals, ["create", "ci", "tcp://a:1"]);
  assert.equal(p.values["node"], "n1");
  assert.deepEqual(p.values["platform"], ["linux/amd64,linux/arm64"]);
  assert.deepEqual(p.values["label"], ["zone=a"]);
  assert.equal(p.values["append"], true);
  for (const argv of [
    ["--builder", "ci", "build", "."],
    ["build", "--builder=ci", "."],
    ["--builder", "ci", "du"],
  ]) {
    const b = parseCommandLine(argv);
    assert.ok(b.kind === "command" && b.values["builder"] === "ci", argv.join(" "));
  }
  const r = parseCommandLine(["build", "--retry-on-node-failure", "."]);
  assert.ok(r.kind === "command" && r.values["retry-on-node-failure"] === true);
  const help = parseCommandLine(["builder", "--help"]);
  assert.ok(help.kind === "help");
  assert.match(help.text, /bk-build builder create NAME ADDR \[--node NODE\]/);
  assert.match(help.text, /One node per 'create', as docker buildx create/);
  assert.match(help.text, /bk-build builder use NAME\|default/);
  const main = parseCommandLine(["--help"]);
  assert.ok(main.kind === "help" && /\n {2}builder {2,}Manage named builders/.test(main.text) && main.text.includes("--builder NAME"));
});

test("builder and --builder mistakes are one line and exit 2, before anything is dialled", async (t) => {
  const dir = tempDir("bk-builder-usage-", t);
  writeFileSync(join(dir, "Dockerfile"), "FROM scratch\n");
  const cases: Array<[string[], string | RegExp, Record<string, string>?]> = [
    [["builder"], "error: 'bk-build builder' needs a subcommand: create, ls, inspect, rm, use; run 'bk-build builder --help'\n"],
    [["builder", "frob"], 'error: unknown builder subcommand "frob": use create, ls, inspect, rm, use\n'],
    [["builder", "create", "ci"], "error: 'bk-build builder create' needs a builder name and a node address: bk-build builder create NAME ADDR\n"],
    [
      ["builder", "create", "ci", "--node", "tcp://a:1"],
      "error: --node names the node (as docker buildx create --node); give the address after the builder's name: bk-build builder create ci tcp://a:1\n",
    ],
    [
      ["builder", "create", "ci", "tcp://a:1", "tcp://b:1"],
      "error: 'bk-build builder create' takes a name and one address, got 3 arguments: add further nodes with --append, one per call\n",
    ],
    [
      ["builder", "create", "9ci", "tcp://a:1"],
      `error: invalid builder name "9ci": a name starts with a letter and has only letters, digits and . _ - (buildx's rule)\n`,
    ],
    [["builder", "create", "ci", "tcp://a:1", "--node", "n 1"], /^error: invalid node name "n 1"/],
    [["builder", "create", "default", "tcp://a:1"], /^error: "default" is a reserved name/],
    [["builder", "create", "ci", "frob://a"], /^error: unsupported buildkitd address scheme "frob:\/\/"/],
    [["builder", "create", "ci", "unix:///x.sock", "--tlscacert", "ca.pem"], /^error: TLS options are only used with tcp:\/\/ addresses/],
    [["builder", "create", "ci", "tcp://a:1", "--ssh-key", "k"], /^error: --ssh-key is not stored with a node: give it to each command that uses the builder/],
    [["builder", "create", "ci", "tcp://a:1", "--append"], 'error: no builder "ci" to append to; create it first without --append\n'],
    [["builder", "create", "ci", "tcp://a:1", "--format", "json"], "error: --format is for 'bk-build builder ls' and 'inspect', not 'create'\n"],
    [["builder", "ls", "x"], "error: 'bk-build builder ls' takes no arguments, got \"x\"\n"],
    [["builder", "ls", "--platform", "linux/amd64"], "error: --platform is for 'bk-build builder create', not 'ls'\n"],
    [["builder", "rm"], "error: 'bk-build builder rm' takes one builder name, got 0\n"],
    [["builder", "use", "a", "b"], "error: 'bk-build builder use' takes one builder name, got 2\n"],
    [["--addr", "tcp://a:1", "builder", "ls"], "error: --addr is not used by 'bk-build builder': a node's address is create's ADDR argument\n"],
    [["--builder", "ci", "builder", "ls"], "error: --builder is not used by 'bk-build builder': name the builder as the argument (bk-build builder ls NAME)\n"],
    [["info", "--builder", "ci", "--addr", "tcp://a:1"], "error: --builder and --addr both choose where to build: give one of them\n"],
    [["build", "--builder", "ci", "--addr", "tcp://a:1", dir], "error: --builder and --addr both choose where to build: give one of them\n"],
    [["--builder", "ci", "--addr", "tcp://a:1", "compose", "build"], "error: --builder and --addr both choose where to build: give one of them\n"],
    [["--builder", "ci", "--tlscacert", "ca.pem", "du"], /^error: --tlscacert is for --addr: a builder's nodes keep their own TLS files/],
    [["--builder", "", "info"], "error: --builder needs a builder name; 'bk-build builder ls' lists them\n"],
    [["--builder", "no way", "info"], /^error: invalid builder name "no way"/],
    [
      ["--builder", "nope", "history", "ls"],
      new RegExp(
        `^error: unknown builder "nope": not in bk-build's store \\(${re(join(dir, "xdg", "bk-build", "builders.json"))}\\) nor in buildx's \\(${re(join(dir, "buildx", "instances"))}\\); 'bk-build builder ls' lists the builders\n$`,
      ),
    ],
    [["info"], /^error: unknown builder "nope": .* \(the default builder, from BK_BUILDER; unset BK_BUILDER\)\n$/, { BK_BUILDER: "nope" }],
    [["builder", "use", "nope"], /^error: unknown builder "nope": not in bk-build's store/],
    [["builder", "rm", "nope"], /^error: no builder "nope" in bk-build's store \(.*builders\.json\); 'bk-build builder ls' lists the builders\n$/],
    [["builder", "inspect", "nope"], /^error: unknown builder "nope"/],
  ];
  for (const [argv, want, env] of cases) {
    const o = io(dir, env);
    const code = await run(o, argv);
    assert.equal(code, 2, `${argv.join(" ")}: ${o.stderr}`);
    if (typeof want === "string") assert.equal(o.stderr, want, argv.join(" "));
    else assert.match(o.stderr, want, argv.join(" "));
    assert.equal(o.stderr.split("\n").length, 2, `one line: ${o.stderr}`);
    assert.equal(o.stdout, "", argv.join(" "));
  }
});

test("create, append, use, rm: the store changes as buildx's would; use default and rm clear the default", async (t) => {
  const dir = tempDir("bk-builder-flow-", t);
  for (const f of ["ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(dir, f), "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n");
  const file = builderStorePath(io(dir).env);
  let o = io(dir);
  assert.equal(await run(o, ["builder", "create", "CI", "unix:///run/a.sock", "--label", "zone=a", "--label", "gpu"]), 0, o.stderr);
  assert.equal(o.stdout, "ci\n");
  o = io(dir);
  assert.equal(
    await run(o, [
      "builder",
      "create",
      "ci",
      "tcp://127.0.0.1:9",
      "--append",
      "--node",
      "arm",
      "--platform",
      "linux/arm64,linux/arm/v7",
      "--tlscacert",
      "ca.pem",
      "--tlscert",
      "cert.pem",
      "--tlskey",
      "key.pem",
    ]),
    0,
    o.stderr,
  );
  o = io(dir);
  assert.equal(await run(o, ["builder", "use", "ci"]), 0, o.stderr);
  assert.equal(o.stderr, "");
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), {
    version: 1,
    current: "ci",
    builders: {
      ci: {
        nodes: [
          { name: "ci0", address: "unix:///run/a.sock", labels: { zone: "a", gpu: "" } },
          {
            name: "arm",
            address: "tcp://127.0.0.1:9",
            platforms: ["linux/arm64", "linux/arm/v7"],
            tls: { caFile: join(dir, "ca.pem"), certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") },
          },
        ],
      },
    },
  });
  o = io(dir, { BK_BUILDER: "other" });
  assert.equal(await run(o, ["builder", "use", "ci"]), 0);
  assert.equal(o.stderr, "warning: BK_BUILDER=other is set and is used instead while it is\n");

  // The default builder is used without --builder; --addr (or --tls*) means one daemon again.
  o = io(dir);
  assert.equal(await run(o, ["du"]), 1);
  assert.match(
    o.stderr,
    /^error: no node of builder ci answers \(ci0: cannot connect to buildkitd at unix:\/\/\/run\/a\.sock: no such socket; is buildkitd running\?; arm: [^\n]*\)\n$/,
  );
  o = io(dir);
  assert.equal(await run(o, ["--addr", `unix://${join(dir, "other.sock")}`, "du"]), 1);
  assert.match(o.stderr, /other\.sock/);
  assert.doesNotMatch(o.stderr, /a\.sock/);
  for (const [argv, env] of [
    [["--builder", "default", "du"], {}],
    [["du"], { BK_BUILDER: "Default" }],
  ] as Array<[string[], Record<string, string>]>) {
    o = io(dir, env);
    assert.equal(await run(o, argv), 1, argv.join(" "));
    assert.match(o.stderr, /no-buildkitd\.sock/, `${argv.join(" ")}: the one daemon of BUILDKIT_HOST, not the default builder`);
  }

  o = io(dir);
  assert.equal(await run(o, ["builder", "use", "default"]), 0);
  assert.equal(JSON.parse(readFileSync(file, "utf8")).current, undefined);
  await run(io(dir), ["builder", "use", "ci"]);
  o = io(dir);
  assert.equal(await run(o, ["builder", "rm", "CI"]), 0);
  assert.equal(o.stderr, "ci removed\n");
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), { version: 1, builders: {} });

  // buildx's builders are read, never changed.
  const bx = buildxInstance(dir, { Name: "Remote", Driver: "remote", Nodes: [{ Name: "remote0", Endpoint: "tcp://127.0.0.1:1" }], Dynamic: false });
  o = io(dir);
  assert.equal(await run(o, ["builder", "rm", "remote"]), 2);
  assert.equal(o.stderr, `error: builder "Remote" is buildx's (${bx}), not bk-build's: remove it with docker buildx rm Remote\n`);
  o = io(dir);
  assert.equal(await run(o, ["builder", "use", "remote"]), 0, o.stderr);
  assert.equal(JSON.parse(readFileSync(file, "utf8")).current, "remote");
});

test("builder ls and inspect: each node's state (a pool of one per node), declared platforms marked *, buildx's builders as such", async (t) => {
  const dir = tempDir("bk-builder-ls-", t);
  let o = io(dir);
  assert.equal(await run(o, ["builder", "ls"]), 0);
  assert.equal(o.stdout, "no builders: 'bk-build builder create NAME ADDR' makes one (buildx's remote builders are listed too)\n");

  const gone = `unix://${join(dir, "gone.sock")}`;
  await run(io(dir), ["builder", "create", "ci", gone, "--platform", "linux/arm64", "--label", "zone=a"]);
  buildxInstance(dir, {
    Name: "kube",
    Driver: "kubernetes",
    Nodes: [{ Name: "kube0", Endpoint: "kubernetes:///kube?deployment=kube0", Platforms: null, DriverOpts: null, Flags: null, Files: null }],
    Dynamic: false,
  });
  o = io(dir, { BK_BUILDER: "ci" });
  assert.equal(await run(o, ["builder", "ls"]), 0, o.stderr);
  const lines = o.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^NAME\/NODE +SOURCE\/ENDPOINT +STATUS +BUILDKIT +ACTIVE +PLATFORMS$/);
  assert.match(lines[1]!, /^ci\* +bk-build$/);
  assert.match(lines[2]!, new RegExp(`^ \\\\_ ci0 + \\\\_ ${re(gone)} +down +linux/arm64\\*$`));
  assert.match(lines[3]!, /^kube +buildx kubernetes +unusable$/);
  assert.match(lines[4]!, /^ \\_ kube0 + \\_ kubernetes:\/\/\/kube\?deployment=kube0$/);
  assert.match(
    o.stderr,
    new RegExp(
      `^warning: builder ci node ci0 \\(${re(gone)}\\) is down: .*gone\\.sock.*\nwarning: cannot use builder kube: buildx builder "kube" uses the kubernetes driver;`,
    ),
  );

  o = io(dir);
  assert.equal(await run(o, ["builder", "ls", "--format", "json"]), 0);
  const json = JSON.parse(o.stdout);
  assert.equal(json.length, 2);
  assert.equal(json[0].name, "ci");
  assert.equal(json[0].source, "bk-build");
  assert.equal(json[0].nodes[0].state, "down");
  assert.deepEqual(json[0].nodes[0].declaredPlatforms, ["linux/arm64"]);
  assert.deepEqual(json[0].nodes[0].labels, { zone: "a" });
  assert.equal(json[1].driver, "kubernetes");
  assert.match(json[1].unusable, /kubernetes driver/);

  o = io(dir);
  assert.equal(await run(o, ["builder", "inspect", "ci"]), 0, o.stderr);
  assert.match(
    o.stdout,
    /^Name: {3}ci\nSource: bk-build \(.*builders\.json\)\n\nNodes:\nName: {15}ci0\nEndpoint: {11}unix:\/\/.*gone\.sock\nDeclared platforms: linux\/arm64\nLabels: {13}zone=a\nStatus: {13}down\nPlatforms: {10}linux\/arm64\nError: {14}.*gone\.sock/,
  );
  o = io(dir);
  assert.equal(await run(o, ["builder", "inspect", "kube"]), 2);
  assert.match(o.stderr, /^error: buildx builder "kube" uses the kubernetes driver; bk-build uses only buildx's remote builders/);

  // info on the builder: one line per node; none answering is the pool's error.
  o = io(dir);
  assert.equal(await run(o, ["--builder", "ci", "info"]), 1);
  assert.match(o.stderr, /^error: .*gone\.sock/);
});

test("ls's platform column as buildx's: declared marked *, os/arch groups with (+N), four groups, then (N more)", () => {
  assert.equal(formatPlatforms([], ["linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4", "linux/386"]), "linux/amd64 (+4), linux/386");
  assert.equal(formatPlatforms(["linux/amd64", "linux/arm64"], ["linux/amd64", "linux/386"]), "linux/amd64*, linux/arm64*, linux/386");
  assert.equal(formatPlatforms(["linux/amd64"], ["linux/amd64/v2"]), "linux/amd64* (+2)");
  assert.equal(
    formatPlatforms([], ["linux/amd64", "linux/arm64", "linux/riscv64", "linux/ppc64le", "linux/s390x", "linux/386", "linux/mips64le"]),
    "linux/amd64, linux/arm64, linux/ppc64le, linux/s390x, (3 more)",
  );
  assert.equal(formatPlatforms([], []), "");
});
