/**
 * A Docker Engine that goes away in the middle of a build: a dockerd of this
 * test's own (the shared one must not be disturbed), stopped while a RUN
 * step runs. The CLI must end within 10 s with one line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, testEnv } from "../helpers/env.js";
import { leakCheckEachTest } from "../helpers/leaks.js";
import { tempDir } from "../helpers/files.js";

leakCheckEachTest();

const env = testEnv();

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/_ping", agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Kills processes whose command line holds `marker` (a build step the dead Engine left behind). */
function killMarked(marker: string): void {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(marker)) process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already
    }
  }
}

test("the Engine stopped mid-build: the CLI ends within 10 s with one line naming the Engine", async () => {
  const dir = tempDir("bk-dockerd-");
  const socket = join(dir, "docker.sock");
  writeFileSync(join(dir, "daemon.json"), "{}");
  const dockerd = spawn(
    "dockerd",
    [
      "--config-file",
      join(dir, "daemon.json"),
      "--data-root",
      join(dir, "root"),
      "--exec-root",
      join(dir, "exec"),
      "--pidfile",
      join(dir, "dockerd.pid"),
      "-H",
      `unix://${socket}`,
      "--iptables=false",
      "--ip-masq=false",
      "--bridge=none",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  dockerd.stderr.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const marker = `engine-stop-${randomUUID()}`;
  let cli: ChildProcess | undefined;
  try {
    const deadline = Date.now() + 60_000;
    while (!(await ping(socket))) {
      if (dockerd.exitCode !== null || Date.now() > deadline) assert.fail(`dockerd did not come up: ${log.split("\n").slice(-6).join(" | ")}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const ctx = tempDir("bk-dockerd-ctx-");
    writeFileSync(join(ctx, "Dockerfile"), `FROM ${env.registry}/bk-test/busybox:latest\nRUN echo ${marker} && sleep 120\n`);
    const child = spawn(process.execPath, [join(repoRoot, "dist", "src", "cli", "bin.js"), "build", "--progress", "plain", "--network", "host", ctx], {
      env: { ...process.env, BUILDKIT_HOST: undefined, DOCKER_HOST: `unix://${socket}` },
      stdio: ["ignore", "ignore", "pipe"],
    });
    cli = child;
    let stderr = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the step never started: ${stderr}`)), 90_000);
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes(`\n${marker}`) || new RegExp(`^#\\d+ \\d+\\.\\d+ ${marker}$`, "m").test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        reject(new Error(`the build ended before the step ran: ${stderr}`));
      });
    });
    const t0 = Date.now();
    dockerd.kill("SIGTERM");
    const ended = await exited(child, 15_000);
    const ms = Date.now() - t0;
    assert.ok(ended, `the CLI was still running 15 s after the Engine stopped:\n${stderr}`);
    assert.ok(ms <= 10_000, `the CLI took ${ms} ms to end`);
    assert.notEqual(child.exitCode, 0);
    const errors = stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, stderr);
    assert.match(errors[0]!, /Docker Engine at docker\+unix:\/\/\S+docker\.sock/, errors[0]);
    assert.ok(!stderr.includes("    at "), "no stack trace");
  } finally {
    cli?.kill("SIGKILL");
    if (!(await exited(dockerd, 20_000))) {
      dockerd.kill("SIGKILL");
      await exited(dockerd, 5000);
    }
    const containerd = join(dir, "exec", "containerd", "containerd.pid");
    if (existsSync(containerd)) {
      try {
        process.kill(Number(readFileSync(containerd, "utf8")), "SIGKILL");
      } catch {
        // already gone
      }
    }
    killMarked(marker);
    // What dockerd mounted under its roots, deepest first, before the temp dir is removed.
    const mounts = readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m.startsWith(dir))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync("umount", ["-l", m]);
  }
});
