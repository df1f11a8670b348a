import { test } from "node:test";
import assert from "node:assert/strict";
import { csvFields } from "../../src/csv.js";
import { parseSsh } from "../../src/solve/ssh.js";
import {
  dockerfileMountIds,
  metadataJson,
  parseBuildArgs,
  parseBuildContexts,
  parseOutput,
  parseProgress,
  parseSecret,
  resolveProgress,
} from "../../src/cli/parse-build.js";
import { buildOptionsFromFlags, localPlatform, parseAllow } from "../../src/cli/commands/build.js";
import { parseCommandLine } from "../../src/cli/args.js";
import { frontendAttrs } from "../../src/solve/options.js";
import { UsageError } from "../../src/errors.js";

test("csvFields follows go-csvvalue's quoting (its own table is in csv.test.ts)", () => {
  assert.deepEqual(csvFields("a=1,b=2"), ["a=1", "b=2"]);
  assert.deepEqual(csvFields('id=x,"src=/path/with,comma"'), ["id=x", "src=/path/with,comma"]);
  assert.throws(() => csvFields('a="",b', ",", "--secret"), /^UsageError: invalid --secret "a=\\"\\",b": column 3: bare " in non-quoted field/);
  assert.throws(() => csvFields('"open'), /column 2: extraneous or missing " in quoted field/);
});

test("--secret is parsed as buildx parses it", () => {
  const env = { TOKEN: "x", EMPTY: "" };
  assert.deepEqual(parseSecret("id=npm,src=.npmrc", env).source, { file: ".npmrc" });
  assert.deepEqual(parseSecret("id=npm,source=.npmrc", env).source, { file: ".npmrc" });
  assert.deepEqual(parseSecret("id=t,env=TOKEN", env).source, { env: "TOKEN" });
  assert.deepEqual(parseSecret("type=env,id=t,src=TOKEN", env).source, { env: "TOKEN" }, "type=env takes src as the variable");
  assert.deepEqual(parseSecret("id=TOKEN", env).source, { env: "TOKEN" }, "id only: the variable when set");
  assert.deepEqual(parseSecret("id=EMPTY", env).source, { env: "EMPTY" }, "set but empty still counts");
  assert.deepEqual(parseSecret("id=creds.json", env).source, { file: "creds.json" }, "id only: else the file");
  assert.deepEqual(parseSecret("type=file,id=TOKEN", env).source, { env: "TOKEN" }, "type=file alone is not stored, as buildx");
  assert.deepEqual(parseSecret("ID=a,SRC=b", env).source, { file: "b" }, "keys are case-insensitive");
  const bad: Array<[string, RegExp]> = [
    ["src=x", /--secret "src=x" has no id/],
    ["id=a,foo=b", /unexpected key 'foo' in --secret "id=a,foo=b"/],
    ["id=a,type=ssh", /unsupported secret type "ssh"/],
    ["id", /invalid field 'id' in --secret "id": must be a key=value pair/],
  ];
  for (const [spec, re] of bad)
    assert.throws(
      () => parseSecret(spec, env),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      spec,
    );
});

test("--build-arg: a bare name takes the environment's value, or is dropped", () => {
  assert.deepEqual(parseBuildArgs(["A=1", "B", "C", "D=x=y"], { B: "from-env" }), { A: "1", B: "from-env", D: "x=y" });
  assert.throws(() => parseBuildArgs(["=1"], {}), /invalid --build-arg "=1"/);
});

test("--output and --build-context", () => {
  assert.deepEqual(parseOutput("type=image,name=r/x:1,push=true"), { type: "image", attrs: { name: "r/x:1", push: "true" } });
  // registry becomes image+push when the build is resolved (exporters()).
  assert.deepEqual(parseOutput("type=registry,name=r/x"), { type: "registry", attrs: { name: "r/x" } });
  assert.throws(() => parseOutput("name=x,push=true"), /has no type/);
  assert.deepEqual(parseOutput("type=local,dest=out"), { type: "local", attrs: {}, dest: "out" });
  assert.deepEqual(parseBuildContexts(["base=docker-image://alpine", "src=../src"]), { base: "docker-image://alpine", src: "../src" });
  assert.throws(() => parseBuildContexts(["nope"]), /invalid --build-context "nope"/);
});

test("--progress and BUILDKIT_PROGRESS", () => {
  assert.equal(parseProgress(undefined, {}), "auto");
  assert.equal(parseProgress(undefined, { BUILDKIT_PROGRESS: "" }), "auto");
  assert.equal(parseProgress(undefined, { BUILDKIT_PROGRESS: "tty" }), "tty");
  assert.equal(parseProgress("none", {}), "none");
  assert.equal(parseProgress(undefined, { BUILDKIT_PROGRESS: "rawjson" }), "rawjson");
  assert.equal(parseProgress("quiet", { BUILDKIT_PROGRESS: "rawjson" }), "quiet");
  assert.equal(parseProgress("auto", { BUILDKIT_PROGRESS: "plain" }), "plain", "an explicit auto still reads the variable, as buildx");
  assert.throws(() => parseProgress("auto", { BUILDKIT_PROGRESS: "fancy" }), /\(from BUILDKIT_PROGRESS\)/);
  assert.throws(() => parseProgress(undefined, { BUILDKIT_PROGRESS: "fancy" }), /invalid progress mode "fancy" \(from BUILDKIT_PROGRESS\)/);
  // auto: tty on a terminal, plain otherwise (CI's pipes included); tty without a terminal is refused.
  assert.equal(resolveProgress("auto", true), "tty");
  assert.equal(resolveProgress("auto", false), "plain");
  assert.equal(resolveProgress("plain", true), "plain");
  assert.throws(() => resolveProgress("tty", false), /progress mode tty needs stderr to be a terminal: use --progress plain or auto/);
  assert.throws(() => resolveProgress("tty", false, true), /progress mode tty \(from BUILDKIT_PROGRESS\) needs stderr/);
});

test("secret and SSH ids mounted by a Dockerfile", () => {
  const df = [
    "RUN --mount=type=secret,id=CI_JOB_TOKEN,env=CI_JOB_TOKEN pip install x",
    "RUN --mount=type=secret,target=/root/.npmrc,required=true \\",
    "    --mount=type=cache,target=/root/.npm npm ci",
    "RUN --mount=type=secret,id=a --mount=type=secret,id=a,required npm ci",
    "RUN --mount=type=ssh git clone x && true --mount=type=ssh,id=deploy,required=true",
  ].join("\n");
  assert.deepEqual(dockerfileMountIds(df), [
    { type: "secret", id: "CI_JOB_TOKEN", required: false },
    { type: "secret", id: ".npmrc", required: true },
    { type: "secret", id: "a", required: true },
    { type: "ssh", id: "default", required: false },
    { type: "ssh", id: "deploy", required: true },
  ]);
});

test("--ssh is parsed as buildx: id, paths, SSH_AUTH_SOCK, raw and passphrase-env", () => {
  const env = { SSH_AUTH_SOCK: "/run/agent.sock", PASS: "pw" };
  const isSocket = (p: string): boolean => p.endsWith(".sock");
  assert.deepEqual(parseSsh("default", env, isSocket), ["default", { socket: "/run/agent.sock", raw: false }]);
  assert.deepEqual(parseSsh("=", env, isSocket), ["default", { socket: "/run/agent.sock", raw: false }]);
  assert.deepEqual(parseSsh("gh=/tmp/other.sock,raw=true", env, isSocket), ["gh", { socket: "/tmp/other.sock", raw: true }]);
  assert.deepEqual(parseSsh("deploy=/k/a,/k/b", env, isSocket), ["deploy", { keys: ["/k/a", "/k/b"], passphrase: undefined }]);
  assert.deepEqual(parseSsh("deploy=/k/a,passphrase-env=PASS", env, isSocket), ["deploy", { keys: ["/k/a"], passphrase: "pw" }]);
  assert.throws(() => parseSsh("default", {}, isSocket), /^UsageError: --ssh "default": SSH_AUTH_SOCK is not set; start an ssh-agent/);
  assert.throws(() => parseSsh("x=/a.sock,/k/a", env, isSocket), /give one agent socket, or key files, not both/);
  assert.throws(() => parseSsh("x=/k/a,raw=true", env, isSocket), /raw=true needs an agent socket/);
  assert.throws(() => parseSsh("x=/k/a,raw=maybe", env, isSocket), /invalid raw value "maybe"/);
  assert.throws(() => parseSsh("x=/k/a,passphrase-env=NOPE", env, isSocket), /environment variable NOPE \(passphrase-env\) is not set/);
});

test("--metadata-file inlines base64 JSON values", () => {
  const desc = Buffer.from(JSON.stringify({ digest: "sha256:abc", size: 3 })).toString("base64");
  assert.deepEqual(metadataJson({ "containerimage.digest": "sha256:abc", "containerimage.descriptor": desc, "image.name": "x" }), {
    "containerimage.digest": "sha256:abc",
    "containerimage.descriptor": { digest: "sha256:abc", size: 3 },
    "image.name": "x",
  });
});

test("build flags become frontend attributes", () => {
  const { options, progress } = buildOptionsFromFlags(
    {
      "add-host": ["db:10.0.0.2", "v6:fe80::1"],
      "shm-size": "64MB",
      ulimit: ["nofile=1024:2048"],
      network: "host",
      "no-cache-filter": ["build"],
      platform: ["linux/amd64,linux/arm64"],
      secret: ["id=a,src=x", "id=a,src=y"],
    },
    ["."],
    {},
  );
  assert.equal(progress, "auto");
  assert.deepEqual(options.frontendAttrs, {
    "add-hosts": "db=10.0.0.2,v6=fe80::1",
    "shm-size": String(64 * 1024 * 1024),
    ulimit: "nofile=1024:2048",
    "force-network-mode": "host",
  });
  assert.deepEqual(options.entitlements, ["network.host"]);
  assert.deepEqual(options.noCache, ["build"]);
  assert.deepEqual(options.platforms, ["linux/amd64", "linux/arm64"]);
  assert.deepEqual(options.secrets, { a: { file: "y" } }, "the last --secret with an id wins");
  assert.throws(() => buildOptionsFromFlags({}, [], {}), /needs a context PATH/);
  assert.throws(() => buildOptionsFromFlags({ network: "bridge" }, ["."], {}), /invalid --network "bridge"/);
  assert.throws(() => buildOptionsFromFlags({ ulimit: ["nofile"] }, ["."], {}), /invalid --ulimit "nofile"/);
  assert.throws(
    () => buildOptionsFromFlags({ platform: ["linux/amd64,linux/amd64/v8/x"] }, ["."], {}),
    /^UsageError: invalid --platform "linux\/amd64\/v8\/x": use OS\/ARCH\[\/VARIANT\]/,
  );
  assert.throws(() => buildOptionsFromFlags({ platform: ["linux/arm 64"] }, ["."], {}), /invalid --platform "linux\/arm 64"/);
  assert.deepEqual(
    buildOptionsFromFlags({ platform: ["LOCAL", "windows(10.0.17763)/amd64", "linux/arm64/v8", "linux/aarch64,Linux/ARM64"] }, ["."], {}).options.platforms,
    [localPlatform(), "windows(10.0.17763)/amd64", "linux/arm64"],
    "normalised and de-duplicated, as buildx",
  );
});

test("buildx's environment defaults: DOCKER_DEFAULT_PLATFORM without --platform, SOURCE_DATE_EPOCH unless --build-arg sets it; local is this machine", () => {
  assert.equal(localPlatform("x64"), "linux/amd64");
  assert.equal(localPlatform("arm64"), "linux/arm64");
  assert.equal(localPlatform("arm"), "linux/arm/v7");
  const env = { DOCKER_DEFAULT_PLATFORM: "linux/arm64", SOURCE_DATE_EPOCH: "1700000000" };
  const a = buildOptionsFromFlags({}, ["."], env).options;
  assert.deepEqual(a.platforms, ["linux/arm64"]);
  assert.equal(a.buildArgs?.["SOURCE_DATE_EPOCH"], "1700000000");
  const b = buildOptionsFromFlags({ platform: ["linux/amd64"], "build-arg": ["SOURCE_DATE_EPOCH=1"] }, ["."], env).options;
  assert.deepEqual(b.platforms, ["linux/amd64"]);
  assert.equal(b.buildArgs?.["SOURCE_DATE_EPOCH"], "1");
  assert.equal(buildOptionsFromFlags({}, ["."], { SOURCE_DATE_EPOCH: "" }).options.buildArgs?.["SOURCE_DATE_EPOCH"], undefined);
});

test("docker build's legacy flags are accepted; buildx's warnings for isolation, security-opt, squash; --pull resolves base images again", () => {
  const parsed = parseCommandLine([
    "build",
    "--rm",
    "--force-rm=false",
    "--compress",
    "-m",
    "2g",
    "--cpu-shares=512",
    "--isolation",
    "default",
    "--security-opt",
    "seccomp=unconfined",
    "--squash",
    "--pull",
    ".",
  ]);
  assert.equal(parsed.kind, "command");
  if (parsed.kind !== "command") return;
  const flags = buildOptionsFromFlags(parsed.values, parsed.positionals, {});
  assert.deepEqual(flags.warnings, [
    "isolation flag is deprecated with BuildKit.",
    'security-opt flag is deprecated. "RUN --security=insecure" should be used with BuildKit.',
    "experimental flag squash is removed with BuildKit. You should squash inside build using a multi-stage Dockerfile for efficiency.",
    "--memory is ignored: a Dockerfile build's steps get no resource limits from the client",
    "--cpu-shares is ignored: a Dockerfile build's steps get no resource limits from the client",
  ]);
  assert.equal(flags.options.pull, true);
  assert.equal(frontendAttrs(flags.options, "Dockerfile", new Map())["image-resolve-mode"], "pull");
  assert.deepEqual(buildOptionsFromFlags({ rm: true }, ["."], {}).warnings, []);
});

test("--allow entitlements and --cgroup-parent, as buildx takes them", () => {
  assert.deepEqual(parseAllow("network.host,security.insecure"), ["network.host", "security.insecure"]);
  assert.deepEqual(parseAllow("device=/dev/fuse"), ["device=/dev/fuse"]);
  assert.throws(() => parseAllow("root"), /^UsageError: invalid --allow "root": use network.host, security.insecure or device\[=NAME\]$/);
  const o = buildOptionsFromFlags({ allow: ["security.insecure", "network.host"], network: "host", "cgroup-parent": "/ci" }, ["."], {}).options;
  assert.deepEqual(o.entitlements, ["network.host", "security.insecure"]);
  assert.equal(o.frontendAttrs?.["cgroup-parent"], "/ci");
});
