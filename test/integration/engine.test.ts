/**
 * The Docker Engine as the daemon, end to end: Debian's dockerd (20.10, API
 * 1.41, classic image store) started by scripts/test-env.sh, reached over
 * its unix socket and its --tlsverify listener (the GitLab dind shape). The
 * docker CLI is the oracle for what landed in the Engine. The Engine has no
 * bridge network: RUN steps use --network host.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BuildKitClient } from "../../src/index.js";
import { dockerCli, repoRoot, runCliAsync, testEnv, type RunResult } from "../helpers/env.js";
import { startAgent, startSshd, type Sshd } from "../helpers/sshd.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { tempDir } from "../helpers/files.js";
import { startPackageIndex, stepNumbers, type PackageIndex } from "../helpers/package-index.js";
import { httpGet } from "../helpers/registry.js";
import { dockerDriverBuildx } from "../helpers/buildx.js";

leakCheckEachTest();

const env = testEnv();
let index: PackageIndex;
let indexPort = 0;
let seen: string[] = [];

before(async () => {
  index = await startPackageIndex();
  indexPort = index.port;
  seen = index.seen;
});
after(() => index.close());

/** The environment of a CI job that has only the Engine: no BUILDKIT_HOST, DOCKER_HOST set. */
function engineEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    BUILDKIT_HOST: undefined,
    DOCKER_HOST: env.docker.host,
    DOCKER_CONTEXT: undefined,
    DOCKER_TLS_VERIFY: undefined,
    DOCKER_CERT_PATH: undefined,
    ...extra,
  };
}

function build(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<RunResult> {
  return runCliAsync(["build", "--progress", "plain", ...args], { env: engineEnv(extraEnv), timeoutMs: 180_000 });
}

function inspect(name: string): { Id: string; Config: { Labels: Record<string, string> | null } } {
  const r = dockerCli(["image", "inspect", name]);
  assert.equal(r.code, 0, `docker image inspect ${name}: ${r.stderr}`);
  return (JSON.parse(r.stdout.toString()) as Array<{ Id: string; Config: { Labels: Record<string, string> | null } }>)[0]!;
}

function removeImage(name: string): void {
  dockerCli(["image", "rm", "-f", name]);
}

test("through the Engine: rotating CI_JOB_TOKEN keeps the secret step and every later one cached; the token is in no image and no output", async () => {
  const ctx = tempDir("bk-engine-ci-");
  const runId = randomUUID();
  writeFileSync(join(ctx, "requirements.txt"), "internal-pkg\n");
  writeFileSync(
    join(ctx, "Dockerfile"),
    [
      `FROM ${env.registry}/bk-test/busybox:latest`,
      `RUN echo ${runId} > /run-id`,
      "COPY requirements.txt /app/",
      `RUN --mount=type=secret,id=CI_JOB_TOKEN,required=true wget -q --header "Authorization: Bearer $(cat /run/secrets/CI_JOB_TOKEN)" -O /app/installed http://127.0.0.1:${indexPort}/simple/internal-pkg`,
      "RUN cat /app/installed > /app/check && echo installed",
      "",
    ].join("\n"),
  );
  const name = `bk-engine-ci:${runId.slice(0, 8)}`;
  const tokenA = `glcbt-${randomBytes(12).toString("hex")}`;
  const tokenB = `glcbt-${randomBytes(12).toString("hex")}`;
  try {
    index.token = tokenA;
    seen.length = 0;
    const a = await build(["--network", "host", "--secret", "id=CI_JOB_TOKEN", "-t", name, ctx], { CI_JOB_TOKEN: tokenA });
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(seen, [tokenA], "the index was asked once, with token A");
    const first = inspect(name).Id;

    index.token = tokenB;
    seen.length = 0;
    const b = await build(["--network", "host", "--secret", "id=CI_JOB_TOKEN", "-t", name, ctx], { CI_JOB_TOKEN: tokenB });
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(seen, [], "no request reached the index");
    const st = stepNumbers(b.stderr);
    const secretStep = [...st].find(([n]) => n.includes("--mount=type=secret"));
    const lastStep = [...st].find(([n]) => n.includes("RUN cat /app/installed"));
    assert.ok(secretStep && lastStep, b.stderr);
    assert.match(b.stderr, new RegExp(`^#${secretStep[1]} CACHED$`, "m"));
    assert.match(b.stderr, new RegExp(`^#${lastStep[1]} CACHED$`, "m"));
    assert.equal(inspect(name).Id, first, "the same image, tagged in the Engine's store");

    const saved = dockerCli(["save", name]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.ok(saved.stdout.length > 100_000, `docker save gave ${saved.stdout.length} bytes`);
    assert.ok(saved.stdout.includes(Buffer.from("internal-pkg 1.0")), "the installed package is in the image (the check can see layer bytes)");
    for (const t of [tokenA, tokenB]) {
      assert.ok(!saved.stdout.includes(Buffer.from(t)), "no token in docker save");
      for (const text of [a.stdout, a.stderr, b.stdout, b.stderr]) assert.ok(!text.includes(t), "no token in any output");
    }
  } finally {
    removeImage(name);
  }
});

test("through the Engine: info names the Engine and its image store; a build without tag keeps an image, as buildx's docker driver", async () => {
  const info = await runCliAsync(["info", "--format", "json"], { env: engineEnv() });
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout) as {
    address: string;
    engine: { version: string; apiVersion: string; imageStore: string; source: string; transport: string };
  };
  assert.equal(j.address, `docker+${env.docker.host}`);
  assert.match(j.engine.version, /^20\.10\./);
  assert.equal(j.engine.apiVersion, "1.41");
  assert.equal(j.engine.imageStore, "classic");
  assert.equal(j.engine.source, "DOCKER_HOST");
  assert.equal(j.engine.transport, "hijack");

  const ctx = tempDir("bk-engine-default-");
  const marker = randomUUID();
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nLABEL bk.marker=${marker}\n`);
  const r = await runCliAsync(["build", "-q", ctx], { env: engineEnv() });
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  try {
    assert.equal(inspect(id).Config.Labels?.["bk.marker"], marker, "-q printed the ID of the image now in the Engine");
  } finally {
    removeImage(id);
  }
});

test("through the Engine: --ssh default and a key file reach RUN --mount=type=ssh over the Engine's /session", async () => {
  const sshd: Sshd = await startSshd();
  const agent = await startAgent([sshd.clientKey]);
  try {
    for (const [flag, extra] of [
      ["default", { SSH_AUTH_SOCK: agent.socket }],
      [`default=${sshd.clientKey}`, { SSH_AUTH_SOCK: undefined }],
    ] as const) {
      const token = `fetched-${randomUUID()}`;
      writeFileSync(join(sshd.dir, "served.txt"), token);
      const ctx = tempDir("bk-engine-ssh-");
      const ssh = `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p ${sshd.port} root@127.0.0.1`;
      writeFileSync(
        join(ctx, "Dockerfile"),
        `FROM ${env.registry}/bk-test/ssh:latest\nRUN --mount=type=ssh,required=true echo ${token} >/dev/null && ${ssh} cat ${join(sshd.dir, "served.txt")} > /fetched.txt && cat /fetched.txt\n`,
      );
      const name = `bk-engine-ssh:${token.slice(-8)}`;
      const r = await build(["--network", "host", "--ssh", flag, "-t", name, ctx], extra);
      try {
        assert.equal(r.code, 0, `--ssh ${flag}: ${r.stderr}`);
        assert.ok(r.stderr.includes(token), "the step printed the file it fetched over ssh");
        const saved = dockerCli(["save", name]);
        assert.ok(saved.stdout.includes(Buffer.from(token)), "fetched.txt is in the image");
      } finally {
        removeImage(name);
      }
    }
  } finally {
    await agent.stop();
    await sshd.stop();
  }
});

test("--load from the standalone buildkitd streams the image into the Engine; multi-platform into the classic store is refused", async () => {
  const ctx = tempDir("bk-engine-load-");
  const marker = randomUUID();
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nLABEL bk.marker=${marker}\nRUN echo ${marker} > /marker\n`);
  const name = `bk-engine-load:${marker.slice(0, 8)}`;
  const r = await runCliAsync(["build", "--progress", "plain", "--load", "-t", name, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, DOCKER_HOST: env.docker.host },
    timeoutMs: 120_000,
  });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^#\d+ importing to docker$/m);
    assert.equal(inspect(name).Config.Labels?.["bk.marker"], marker);
  } finally {
    removeImage(name);
  }

  const multi = await runCliAsync(["build", "--load", "--platform", "linux/amd64,linux/arm64", "-t", name, ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, DOCKER_HOST: env.docker.host },
  });
  assert.equal(multi.code, 1, multi.stderr);
  assert.match(multi.stderr, /^error: --load of a multi-platform image needs the containerd image store/m);
  assert.equal(multi.stderr.trim().split("\n").length, 1, multi.stderr);

  const none = await runCliAsync(["build", "--load", ctx], {
    env: { BUILDKIT_HOST: env.buildkitHost, DOCKER_HOST: "unix:///nonexistent/docker.sock" },
  });
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /^error: --load needs a Docker Engine, and none answered \(.*no such socket.*\); set DOCKER_HOST/m);
  assert.equal(none.stderr.trim().split("\n").length, 1, none.stderr);
});

test("the dind shape: DOCKER_HOST=tcp://…:PORT, DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH alone give info, a secret build and its image; a wrong CA is one line", async () => {
  const dind = { DOCKER_HOST: env.docker.tlsHost, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: env.docker.certPath };
  const info = await runCliAsync(["info"], { env: engineEnv(dind) });
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, new RegExp(`^Address: +docker\\+${env.docker.tlsHost.replace(/[.]/g, "\\.")}$`, "m"));
  assert.match(info.stdout, /^Docker Engine: +20\.10\.\S+ \(API 1\.41, classic image store, BuildKit over the \/grpc and \/session upgrades\)$/m);

  const ctx = tempDir("bk-engine-dind-");
  const secret = `dind-${randomBytes(8).toString("hex")}`;
  const digest = createHash("sha256").update(secret).digest("hex");
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN --mount=type=secret,id=tok test "$(sha256sum < /run/secrets/tok)" = "${digest}  -"\n`,
  );
  const name = `bk-engine-dind:${secret.slice(-6)}`;
  const r = await build(["--network", "none", "--secret", "id=tok,env=TOK", "-t", name, ctx], { ...dind, TOK: secret });
  try {
    assert.equal(r.code, 0, r.stderr);
    inspect(name);
  } finally {
    removeImage(name);
  }

  const wrong = await runCliAsync(["info"], { env: engineEnv({ ...dind, DOCKER_CERT_PATH: join(env.docker.certPath, "..", "wrong-ca") }) });
  assert.notEqual(wrong.code, 0);
  assert.equal(wrong.stderr.trim().split("\n").length, 1, wrong.stderr);
  assert.match(wrong.stderr, /^error: .*(certificate|TLS).*/m);
  assert.ok(!wrong.stderr.includes("    at "), "no stack trace");
});

test("through the Engine: a RUN step with the default network names the network mode to use; a missing Engine socket is one line", async () => {
  const ctx = tempDir("bk-engine-net-");
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${randomUUID()}\n`);
  const r = await build([ctx]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: .*network bridge not found.*build with --network host or --network none\)$/m);

  const gone = await runCliAsync(["build", ctx], { env: engineEnv({ DOCKER_HOST: "unix:///nonexistent/docker.sock" }) });
  assert.notEqual(gone.code, 0);
  assert.equal(gone.stderr.trim(), "error: cannot connect to the Docker Engine at docker+unix:///nonexistent/docker.sock: no such socket; is dockerd running?");
});

test("through the Engine: --push from the classic store goes through the Engine API with our login (flag or config.json); a refused push reports the registry's words", async () => {
  const auth = env.authRegistry!;
  const ctx = tempDir("bk-engine-push-");
  const marker = randomUUID();
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nLABEL bk.marker=${marker}\n`);
  const name = `${auth.host}/bk-test/engine-push:${marker.slice(0, 8)}`;
  try {
    const ok = await build(["--push", "-t", name, "--registry-auth", `${auth.host}=${auth.user}:REG_PASSWORD`, ctx], { REG_PASSWORD: auth.password });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, new RegExp(`^#\\d+ pushing ${name.replace(/[.]/g, "\\.")} with docker$`, "m"));
    const res = await httpGet(`http://${auth.host}/v2/bk-test/engine-push/manifests/${marker.slice(0, 8)}`, {
      authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`,
      accept: "application/vnd.docker.distribution.manifest.v2+json",
    });
    assert.equal(res.status, 200, "the registry has the pushed manifest");
    assert.ok(!ok.stderr.includes(auth.password) && !ok.stdout.includes(auth.password), "the password is never shown");

    // The same login from a Docker config.json (what `docker login` writes), no flag.
    const config = tempDir("bk-engine-push-config-");
    writeFileSync(
      join(config, "config.json"),
      JSON.stringify({ auths: { [auth.host]: { auth: Buffer.from(`${auth.user}:${auth.password}`).toString("base64") } } }),
    );
    const tag2 = `${marker.slice(0, 8)}-config`;
    const fromConfig = await build(["--push", "-t", `${auth.host}/bk-test/engine-push:${tag2}`, ctx], { DOCKER_CONFIG: config });
    removeImage(`${auth.host}/bk-test/engine-push:${tag2}`);
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    const res2 = await httpGet(`http://${auth.host}/v2/bk-test/engine-push/manifests/${tag2}`, {
      authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`,
      accept: "application/vnd.docker.distribution.manifest.v2+json",
    });
    assert.equal(res2.status, 200, "pushed with the config.json login");
    assert.ok(!fromConfig.stderr.includes(auth.password));

    const bad = await build(["--push", "-t", name, "--registry-auth", `${auth.host}=${auth.user}:REG_PASSWORD`, ctx], { REG_PASSWORD: "not-the-password" });
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /^error: .*(unauthorized|authentication required|no basic auth credentials).*/im);
    assert.ok(!bad.stderr.includes("not-the-password"));
  } finally {
    removeImage(name);
  }
});

test("the library: a BuildKitClient on docker:// runs a build whose result names the image in the Engine", async () => {
  const client = await BuildKitClient.connect({ address: "docker://", env: { DOCKER_HOST: env.docker.host, HOME: tempDir("bk-engine-home-") } });
  try {
    const ctx = tempDir("bk-engine-lib-");
    writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nLABEL bk.lib=1\n`);
    const name = `bk-engine-lib:${randomUUID().slice(0, 8)}`;
    const r = await client.build({ context: ctx, tags: [name], env: {} }).result;
    try {
      assert.equal(r.exports[0]?.type, "moby");
      assert.equal(inspect(name).Id, r.exporterResponse["containerimage.digest"]);
    } finally {
      removeImage(name);
    }
  } finally {
    await client.close();
  }
});

test("compose through the Engine: images land in its store as PROJECT-SERVICE; a service: context on an Engine older than 23 is refused before it can reach Docker Hub", async () => {
  // The test Engine is 20.10: its Dockerfile frontend has no named
  // contexts, and `FROM base` would be looked up on Docker Hub. The path
  // where the context is used from the Engine's store (Engine 23+) is
  // covered by the unit tests of the compose plan.
  const dir = tempDir("bk-engine-compose-");
  const marker = randomUUID();
  const project = `bkengine${marker.slice(0, 8)}`;
  writeFileSync(
    join(dir, "compose.yaml"),
    [
      `name: ${project}`,
      "services:",
      "  base:",
      "    build:",
      "      context: ./base",
      "  app:",
      "    build:",
      "      context: ./app",
      "      additional_contexts:",
      "        base: service:base",
      "",
    ].join("\n"),
  );
  for (const d of ["base", "app"]) mkdirSync(join(dir, d));
  writeFileSync(join(dir, "base", "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nLABEL bk.base=${marker}\n`);
  writeFileSync(join(dir, "app", "Dockerfile"), "FROM base\nLABEL bk.app=1\n");
  const r = await runCliAsync(["compose", "-f", join(dir, "compose.yaml"), "build", "--progress", "plain"], { env: engineEnv(), timeoutMs: 180_000 });
  try {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(inspect(`${project}-base`).Config.Labels?.["bk.base"], marker, "base landed in the Engine's store as PROJECT-base, unpushed");
    assert.match(
      r.stderr,
      /build context "base" \(a named context\) needs Docker Engine 23\.0 or newer, and the Engine at docker\+unix:\/\/\S+ is 20\.10\.\S+/,
    );
    assert.doesNotMatch(r.stderr, /load metadata for docker\.io\/library\/base|registry-1\.docker\.io/, "app's build never started");
    assert.doesNotMatch(r.stderr, /pushing/, "nothing was pushed");
  } finally {
    removeImage(`${project}-app`);
    removeImage(`${project}-base`);
  }
});

/** A step that prints "started-…", sleeps 4 s, then asks the index for a marker path: if that request comes, the step was not stopped. */
function sleepingStep(prefix: string): { ctx: string; marker: string; requested: (ms: number) => Promise<boolean> } {
  const ctx = tempDir(prefix);
  const marker = `/after-cancel-${randomUUID()}`;
  writeFileSync(
    join(ctx, "Dockerfile"),
    `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo started-${randomUUID()} && sleep 4 && wget -q -O- http://127.0.0.1:${indexPort}${marker} || true\n`,
  );
  const urls: string[] = [];
  const track = (req: { url?: string }): void => void urls.push(req.url ?? "");
  index.server.on("request", track);
  return {
    ctx,
    marker,
    requested: async (ms) => {
      await new Promise((r) => setTimeout(r, ms));
      index.server.off("request", track);
      return urls.includes(marker);
    },
  };
}

test("through the Engine: an AbortSignal, and Ctrl-C in the CLI, stop the daemon's step over the hijacked /grpc and /session", async () => {
  // The library: abort once the step runs.
  const api = sleepingStep("bk-engine-abort-");
  const client = await BuildKitClient.connect({ address: "docker://", env: { DOCKER_HOST: env.docker.host, HOME: tempDir("bk-engine-home-") } });
  try {
    const ac = new AbortController();
    const build = client.build({
      context: api.ctx,
      signal: ac.signal,
      frontendAttrs: { "force-network-mode": "host" },
      entitlements: ["network.host"],
      env: {},
    });
    let t = 0;
    for await (const s of build.progress) {
      if (!t && s.logs.some((l) => l.data.toString().includes("started-"))) {
        t = Date.now();
        ac.abort();
      }
    }
    await assert.rejects(build.result, (e: unknown) => (e as { code?: string }).code === "CANCELLED");
    assert.ok(t > 0, "the step started");
    assert.ok(Date.now() - t < 3000, `the build ended ${Date.now() - t} ms after the abort`);
  } finally {
    await client.close();
  }
  assert.ok(!(await api.requested(5000)), "the daemon's step was stopped before its sleep ended");

  // The CLI: SIGINT once the step runs.
  const cli = sleepingStep("bk-engine-sigint-");
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [join(repoRoot, "dist", "src", "cli", "bin.js"), "build", "--progress", "plain", "--network", "host", cli.ctx], {
    env: { ...process.env, ...engineEnv() },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let sent = 0;
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /started-/.test(stderr.replace(/RUN echo started-/g, ""))) {
        sent = Date.now();
        child.kill("SIGINT");
      }
    });
    child.on("close", resolve);
  });
  assert.ok(sent > 0, `the step never started:\n${stderr}`);
  assert.equal(code, 130, stderr);
  assert.ok(Date.now() - sent < 3000, `exited ${Date.now() - sent} ms after the signal`);
  assert.match(stderr, /error: interrupted\n$/);
  assert.ok(!(await cli.requested(5000)), "the daemon's step was stopped before its sleep ended");
});

test("through the Engine, as buildx's docker driver: after its build of a context, ours is cached step for step and gives the same image ID", async () => {
  const bx = dockerDriverBuildx(env.docker.host);
  const ctx = tempDir("bk-engine-bx-");
  writeFileSync(join(ctx, "a.txt"), `${randomUUID()}\n`);
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nLABEL bk.cmp=1\n`);
  const tag = `bk-engine-bx:${randomUUID().slice(0, 8)}`;
  try {
    const theirs = bx.build(["--progress", "plain", "--network", "host", "-t", `${tag}-bx`, "."], ctx);
    assert.equal(theirs.code, 0, theirs.stderr);
    const ours = await build(["--network", "host", "-t", `${tag}-bk`, ctx]);
    assert.equal(ours.code, 0, ours.stderr);
    // Both steps cached: the daemon got the same definition and attributes from us as from buildx.
    for (const step of ["COPY a.txt /a.txt", "RUN cat /a.txt > /b.txt"]) {
      const n = new RegExp(`^#(\\d+) \\[[^\\]]*\\] ${step.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m").exec(ours.stderr)?.[1];
      assert.ok(n, `${step} in our output:\n${ours.stderr}`);
      assert.match(ours.stderr, new RegExp(`^#${n} CACHED$`, "m"), `${step} cached`);
    }
    assert.equal(inspect(`${tag}-bk`).Id, inspect(`${tag}-bx`).Id, "the same image");
    assert.equal(inspect(`${tag}-bk`).Config.Labels?.["bk.cmp"], "1");
  } finally {
    removeImage(`${tag}-bk`);
    removeImage(`${tag}-bx`);
  }
});
