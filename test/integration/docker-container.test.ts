/**
 * docker-container:// against the real test Engine (dockerd 20.10, no
 * bridge network): an image with buildkitd, buildctl and runc on the test
 * registry's busybox, run with buildkitd as its entrypoint, and bk-build
 * reaching it through `buildctl dial-stdio` exec'd over the Engine API,
 * as buildctl does through the docker CLI. The docker CLI only sets up
 * and inspects (the oracle); bk-build never runs it.
 *
 * The container is not --privileged: where these tests run, the Engine
 * itself lacks CAP_SYS_RESOURCE, which --privileged asks for; buildkitd's
 * runc needs the rest (all other capabilities, no seccomp/AppArmor
 * profile, unmasked /proc, a writable cgroup tree).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { BuildKitClient } from "../../src/index.js";
import { contextDirName } from "../../src/docker/host.js";
import { dockerCli, runCliAsync, testEnv, type RunResult } from "../helpers/env.js";
import { tempDir } from "../helpers/files.js";

const env = testEnv();
const id = randomBytes(4).toString("hex");
const image = `bk-dctest-${id}:buildkitd`;
const bareImage = `bk-dctest-${id}:bare`;
const name = `bk-dctest-${id}`;
const stopped = `bk-dctest-${id}-stopped`;
const bare = `bk-dctest-${id}-bare`;
const created: { containers: string[]; images: string[] } = { containers: [], images: [] };

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function docker(args: string[]): string {
  const r = dockerCli(args);
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.toString();
}

/** A build context for an image: busybox from the test registry plus `root/` (no RUN, so no network needed). */
function imageContext(root: (dir: string) => void): string {
  const ctx = tempDir("bk-dc-image-");
  mkdirSync(join(ctx, "root"));
  root(join(ctx, "root"));
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${base}\nCOPY root/ /\nENV PATH=/usr/bin:/bin\n`);
  return ctx;
}

/** buildkitd and buildctl (static) next to BK_BUILDCTL, runc and the libraries ldd names for it. */
function buildkitdRoot(root: string): void {
  const bin = join(root, "usr", "bin");
  mkdirSync(bin, { recursive: true });
  for (const b of ["buildkitd", "buildctl"]) copyFileSync(join(dirname(env.buildctl), b), join(bin, b));
  copyFileSync("/usr/sbin/runc", join(bin, "runc"));
  execFileSync("chmod", ["755", join(bin, "buildkitd"), join(bin, "buildctl"), join(bin, "runc")]);
  for (const lib of execFileSync("ldd", ["/usr/sbin/runc"], { encoding: "utf8" }).match(/\/\S+/g) ?? []) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
  mkdirSync(join(root, "etc", "buildkit"), { recursive: true });
  writeFileSync(
    join(root, "etc", "buildkit", "buildkitd.toml"),
    `[worker.oci]\n  enabled = true\n  binary = "runc"\n[worker.containerd]\n  enabled = false\n[registry."${env.registry}"]\n  http = true\n`,
  );
}

const RUN_FLAGS = [
  "--network",
  "host",
  "--cap-add",
  "ALL",
  "--cap-drop",
  "SYS_RESOURCE",
  "--security-opt",
  "seccomp=unconfined",
  "--security-opt",
  "apparmor=unconfined",
  "--security-opt",
  "systempaths=unconfined",
  "-v",
  "/sys/fs/cgroup:/sys/fs/cgroup",
  "--tmpfs",
  "/var/lib/buildkit:rw,exec",
];

/** The base image as the Engine's store names it once a build or run has pulled it. */
const base = `${env.registry}/bk-test/busybox:latest`;

before(async () => {
  // The legacy builder and `docker run` pull the base into the store: remove it again unless it was there.
  if (dockerCli(["image", "inspect", base]).code !== 0) created.images.push(base);
  created.images.push(image);
  docker(["build", "-q", "-t", image, imageContext(buildkitdRoot)]);
  created.images.push(bareImage);
  docker(["build", "-q", "-t", bareImage, imageContext(() => undefined)]);
  created.containers.push(name);
  docker(["run", "-d", "--name", name, ...RUN_FLAGS, "--entrypoint", "buildkitd", image]);
  created.containers.push(bare);
  docker(["run", "-d", "--name", bare, "--network", "host", "--entrypoint", "sleep", bareImage, "600"]);
  created.containers.push(stopped);
  docker(["create", "--name", stopped, "--network", "host", "--entrypoint", "buildkitd", image]);
  // buildkitd is up when buildctl in the container reaches it.
  for (let i = 0; ; i++) {
    if (dockerCli(["exec", name, "buildctl", "debug", "workers"]).code === 0) break;
    if (i === 60) throw new Error(`buildkitd did not come up in ${name}: ${dockerCli(["logs", "--tail", "10", name]).stderr}`);
    await new Promise((r) => setTimeout(r, 500));
  }
});

after(() => {
  const problems: string[] = [];
  for (const c of created.containers) {
    const r = dockerCli(["rm", "-f", "-v", c]);
    if (r.code !== 0 && !/No such container/i.test(r.stderr)) problems.push(`docker rm ${c}: ${r.stderr}`);
  }
  for (const i of created.images) {
    const r = dockerCli(["image", "rm", "-f", i]);
    if (r.code !== 0 && !/No such image/i.test(r.stderr)) problems.push(`docker image rm ${i}: ${r.stderr}`);
  }
  assert.deepEqual(problems, []);
});

/** A CI job's environment with only the Engine: no BUILDKIT_HOST, DOCKER_HOST set, nothing else docker. */
function jobEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { BUILDKIT_HOST: undefined, DOCKER_HOST: env.docker.host, DOCKER_CONTEXT: undefined, DOCKER_CONFIG: tempDir("bk-dc-config-"), ...extra };
}

function cli(args: string[], extra: Record<string, string | undefined> = {}): Promise<RunResult> {
  return runCliAsync(args, { env: jobEnv(extra), timeoutMs: 180_000 });
}

/** The processes running `buildctl dial-stdio` in the container, from the Engine's own view. */
function dialStdioProcesses(): string[] {
  return docker(["top", name, "-o", "pid,args"])
    .split("\n")
    .filter((l) => l.includes("dial-stdio"));
}

async function noDialStdioLeft(): Promise<void> {
  for (let i = 0; i < 40 && dialStdioProcesses().length > 0; i++) await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(dialStdioProcesses(), [], "every buildctl dial-stdio exec ended once the connection closed");
}

test("bk-build info --addr docker-container://NAME: buildkitd in the container, through the Engine API", async () => {
  const r = await cli(["info", "--addr", `docker-container://${name}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Address: +docker-container://${name}$`, "m"));
  assert.match(r.stdout, /^BuildKit: +github\.com\/moby\/buildkit v0\.24\.0\b/m);
  assert.doesNotMatch(r.stdout, /Docker Engine/, "buildkitd in a container is not the Engine's BuildKit");
  // BUILDKIT_HOST takes the same form.
  const fromEnv = await cli(["info"], { BUILDKIT_HOST: `docker-container://${name}` });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.match(fromEnv.stdout, new RegExp(`^Address: +docker-container://${name}$`, "m"));
  await noDialStdioLeft();
});

test("?context=CTX picks the docker context's Engine, and DOCKER_HOST is not needed", async () => {
  const config = tempDir("bk-dc-config-");
  const meta = join(config, "contexts", "meta", contextDirName("bk-test-engine"));
  mkdirSync(meta, { recursive: true });
  writeFileSync(join(meta, "meta.json"), JSON.stringify({ Name: "bk-test-engine", Endpoints: { docker: { Host: env.docker.host } } }));
  const addr = `docker-container://${name}?context=bk-test-engine`;
  const r = await cli(["info", "--addr", addr], { DOCKER_HOST: undefined, DOCKER_CONFIG: config });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Address: +docker-container:\/\/.*\?context=bk-test-engine$/m);
  // Without the context the docker CLI's default Engine is used, which is not the test Engine here.
  const none = await cli(["info", "--addr", `docker-container://${name}`], { DOCKER_HOST: "unix:///nonexistent/docker.sock", DOCKER_CONFIG: config });
  assert.notEqual(none.code, 0);
  assert.match(
    none.stderr.trim(),
    new RegExp(
      `^error: cannot run buildctl dial-stdio in container ${name}: cannot connect to the Docker Engine at docker\\+unix:///nonexistent/docker.sock: no such socket; is dockerd running\\?$`,
    ),
  );
});

test("a build with a secret through docker-container://: the secret reaches RUN and is in no output", async () => {
  const secret = `dc-secret-${randomBytes(12).toString("hex")}`;
  const secrets = tempDir("bk-dc-secret-");
  writeFileSync(join(secrets, "token"), secret);
  const ctx = tempDir("bk-dc-ctx-");
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=token,required=true sha256sum /run/secrets/token | cut -d" " -f1 > /digest && echo "${id}" > /run-id\n`,
  );
  const out = tempDir("bk-dc-out-");
  const r = await cli([
    "build",
    "--addr",
    `docker-container://${name}`,
    "--progress",
    "plain",
    "--secret",
    `id=token,src=${join(secrets, "token")}`,
    "-o",
    `type=local,dest=${out}`,
    ctx,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const expected = createHash("sha256").update(secret).digest("hex");
  assert.equal(readFileSync(join(out, "digest"), "utf8").trim(), expected, "RUN saw the secret");
  assert.equal(readFileSync(join(out, "run-id"), "utf8").trim(), id);
  assert.ok(!(r.stdout + r.stderr).includes(secret), "the secret is not in the output");
  for (const f of readdirSync(out, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) assert.ok(!readFileSync(join(f.parentPath, f.name), "utf8").includes(secret), `the secret is not in ${f.name}`);
  }
  await noDialStdioLeft();
});

test("the library: several calls at once over one docker-container:// connection, closed cleanly", async () => {
  const client = await BuildKitClient.connect({ address: `docker-container://${name}`, env: jobEnv() });
  try {
    const [info, workers, du] = await Promise.all([client.info(), client.workers(), client.diskUsage()]);
    assert.equal(info.address, `docker-container://${name}`);
    assert.equal(info.buildkit.version, "v0.24.0");
    assert.equal(workers[0]?.labels["org.mobyproject.buildkit.worker.network"], "host");
    assert.ok(Array.isArray(du.records));
    assert.ok(dialStdioProcesses().length >= 1, "the open connection is a buildctl dial-stdio exec in the container");
  } finally {
    await client.close();
  }
  await noDialStdioLeft();
});

test("unknown, stopped and buildctl-less containers, and a missing Engine: one line each, naming the container", async () => {
  const cases: Array<[string, RegExp, Record<string, string | undefined>?]> = [
    [
      `${name}-missing`,
      new RegExp(
        `^error: the Docker Engine at ${escape(`docker+${env.docker.host}`)} has no container ${name}-missing \\(No such container: ${name}-missing\\); check the name \\(docker ps\\)$`,
      ),
    ],
    [
      stopped,
      new RegExp(
        `^error: container ${stopped} on the Docker Engine at docker\\+unix://\\S+ is not running \\(created\\); start it \\(docker start ${stopped}\\)$`,
      ),
    ],
    [
      bare,
      new RegExp(
        `^error: container ${bare} has no buildctl to run \\(OCI runtime exec failed: .*"buildctl": executable file not found in \\$PATH.*\\); docker-container:// runs "buildctl dial-stdio" in it`,
      ),
    ],
    [
      name,
      /^error: cannot run buildctl dial-stdio in container \S+: cannot connect to the Docker Engine at docker\+unix:\/\/\/nonexistent\/docker\.sock: no such socket/,
      { DOCKER_HOST: "unix:///nonexistent/docker.sock" },
    ],
  ];
  for (const [container, re, extra] of cases) {
    const r = await cli(["info", "--addr", `docker-container://${container}`], extra);
    assert.notEqual(r.code, 0, container);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr.trim(), re, container);
  }
});
