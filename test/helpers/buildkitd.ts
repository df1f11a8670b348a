/**
 * A buildkitd of a test's own, for fault tests: killing, stopping or
 * restarting it disturbs no other test. It runs the binary scripts/test-env.sh
 * built (~/.cache/bk-build/buildkit-v0.24.0/bin), configured as test-env.sh
 * configures the shared one (OCI worker with runc, containerd off, the test
 * registry over plain HTTP), with its own root, unix socket, trace socket and
 * TMPDIR in a temp dir. If it cannot start, startBuildkitd throws with the
 * reason and its log.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from "node:child_process";
import { accessSync, constants, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { tempDir } from "./files.js";
import { cleanup } from "./leaks.js";
import { testEnv } from "./env.js";

const BUILDKIT_TAG = "v0.24.0";

export interface Buildkitd {
  /** unix://<dir>/buildkitd.sock */
  readonly address: string;
  readonly dir: string;
  /** The running daemon's pid (changes on restart). */
  readonly pid: number;
  /** SIGKILL, as a crash: resolves once it (and the build containers it ran) are gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the daemon stays, its socket accepts connections, nothing answers. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Starts it again on the same socket and root; resolves when it answers. */
  restart(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL after 10 s), unmounts what it left and removes its dir. Idempotent. */
  stop(): Promise<void>;
  /** The end of its log. */
  log(lines?: number): string;
}

function binDir(): string {
  return join(process.env["BK_CACHE_DIR"] || join(process.env["HOME"] || homedir(), ".cache", "bk-build"), `buildkit-${BUILDKIT_TAG}`, "bin");
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function which(name: string): string | undefined {
  const dirs = [...(process.env["PATH"] ?? "").split(":"), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  return dirs.map((d) => join(d, name)).find(executable);
}

/** pid -> [ppid, start time] for every process, from /proc. */
function processTable(): Map<number, { ppid: number; start: string }> {
  const out = new Map<number, { ppid: number; start: string }>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(name), { ppid: Number(fields[1]), start: fields[19]! });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The processes below `pid` (runc, build containers), with their start times to guard against pid reuse. */
function descendants(pid: number): Array<{ pid: number; start: string }> {
  const table = processTable();
  const out: Array<{ pid: number; start: string }> = [];
  const walk = (parent: number): void => {
    for (const [p, info] of table) {
      if (info.ppid === parent) {
        out.push({ pid: p, start: info.start });
        walk(p);
      }
    }
  };
  walk(pid);
  return out;
}

function killRecorded(procs: Array<{ pid: number; start: string }>): void {
  const table = processTable();
  for (const p of procs) {
    if (table.get(p.pid)?.start !== p.start) continue;
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Lazily unmounts everything mounted below `dir` (overlay rootfs of killed builds), deepest first. */
function unmountBelow(dir: string): string[] {
  const failed: string[] = [];
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p && p.startsWith(`${dir}/`))
    .map((p) => p.replace(/\\040/g, " "))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    const r = spawnSync("umount", ["-l", p], { encoding: "utf8" });
    if (r.status !== 0) failed.push(`${p}: ${r.stderr.trim()}`);
  }
  return failed;
}

function buildctlInfo(buildctl: string, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(buildctl, ["--addr", address, "--timeout", "2", "debug", "info"], { timeout: 5000 }, (err) => resolve(!err));
  });
}

/**
 * Starts a buildkitd for test `t`; it is stopped and its dir removed when
 * `t` ends (before the leak check). `platforms` limits its worker to those.
 */
export async function startBuildkitd(t: TestContext, options: { platforms?: string[] } = {}): Promise<Buildkitd> {
  const bin = binDir();
  const buildkitd = process.env["BK_BUILDKITD"] || join(bin, "buildkitd");
  const buildctl = process.env["BK_BUILDCTL"] || join(bin, "buildctl");
  if (!executable(buildkitd)) {
    throw new Error(`${buildkitd} is not there: scripts/test-env.sh up builds it (the fault tests start buildkitd ${BUILDKIT_TAG} of their own)`);
  }
  if (!executable(buildctl)) throw new Error(`${buildctl} is not there: scripts/test-env.sh up builds it`);
  if (process.getuid?.() !== 0) throw new Error("the fault tests start their own buildkitd, whose runc worker needs root");
  const runc = which("runc");
  if (!runc) throw new Error("runc is not installed (scripts/test-env.sh up installs it)");
  const registry = testEnv().registry;

  const dir = tempDir("bk-daemon-");
  const sock = join(dir, "buildkitd.sock");
  const address = `unix://${sock}`;
  const root = join(dir, "root");
  const tmp = join(dir, "tmp");
  mkdirSync(tmp);
  const config = join(dir, "buildkitd.toml");
  writeFileSync(
    config,
    [
      `root = "${root}"`,
      "",
      "[grpc]",
      `  address = ["${address}"]`,
      "",
      // The shared daemon's trace socket is /run/buildkit/otel-grpc.sock; a second daemon must not take it over.
      "[otel]",
      `  socketPath = "${join(dir, "otel-grpc.sock")}"`,
      "",
      "[worker.oci]",
      "  enabled = true",
      `  binary = "${runc}"`,
      // A worker limited to these platforms (buildkitd's worker platform setting): lets one machine stand for an arm64 or a 386 node.
      ...(options.platforms ? [`  platforms = [${options.platforms.map((p) => JSON.stringify(p)).join(", ")}]`] : []),
      "",
      "[worker.containerd]",
      "  enabled = false",
      "",
      `[registry."${registry}"]`,
      "  http = true",
      "",
    ].join("\n"),
  );
  const logPath = join(dir, "buildkitd.log");
  let child: ChildProcess | undefined;
  let stopped = false;

  const log = (lines = 15): string => {
    try {
      return readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  };

  const launch = async (): Promise<void> => {
    rmSync(sock, { force: true });
    const fd = openSync(logPath, "a");
    try {
      child = spawn(buildkitd, ["--config", config], {
        detached: true, // its own process group: a signal to ours does not reach it
        stdio: ["ignore", fd, fd],
        env: { ...process.env, TMPDIR: tmp },
      });
    } finally {
      closeSync(fd);
    }
    const c = child;
    let spawnError: Error | undefined;
    c.once("error", (e) => (spawnError = e));
    for (const end = Date.now() + 60_000; Date.now() < end;) {
      if (spawnError) throw new Error(`buildkitd could not be started: ${spawnError.message}`);
      if (c.exitCode !== null || c.signalCode !== null) break;
      if (existsSync(sock) && (await buildctlInfo(buildctl, address))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    const state = c.exitCode !== null || c.signalCode !== null ? `it exited (${c.exitCode ?? c.signalCode})` : "it did not answer within 60 s";
    await stopChild();
    throw new Error(`buildkitd at ${address} did not come up: ${state}; last lines of ${logPath}:\n${log()}`);
  };

  const stopChild = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const below = descendants(c.pid!);
    try {
      process.kill(c.pid!, "SIGCONT");
      process.kill(c.pid!, "SIGTERM");
    } catch {
      // gone
    }
    const timer = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await exited(c);
    clearTimeout(timer);
    killRecorded([...below, ...descendants(c.pid!)]);
  };

  await launch();

  const daemon: Buildkitd = {
    address,
    dir,
    get pid() {
      return child!.pid!;
    },
    async kill() {
      const c = child!;
      const below = descendants(c.pid!);
      c.kill("SIGKILL");
      await exited(c);
      // A crashed daemon's runc and build processes would go on without it.
      killRecorded(below);
    },
    pause() {
      const pid = child!.pid!;
      process.kill(pid, "SIGSTOP");
      // kill() returns before every thread has stopped; a request sent in
      // that gap can still be answered. Wait until the kernel says each of
      // its threads is stopped (the state after the ")" that ends the name).
      const stopped = (): boolean => readdirSync(`/proc/${pid}/task`).every((tid) => /\)\s+[Tt]\s/.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")));
      for (const end = Date.now() + 2000; Date.now() < end;) {
        if (stopped()) return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
      throw new Error(`buildkitd (pid ${pid}) was not stopped 2 s after SIGSTOP`);
    },
    resume() {
      process.kill(child!.pid!, "SIGCONT");
    },
    async restart() {
      if (stopped) throw new Error("restart() after stop()");
      const c = child!;
      if (c.exitCode === null && c.signalCode === null) throw new Error("restart(): buildkitd is still running (kill() or stop() it first)");
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopChild();
      const failed = unmountBelow(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      if (failed.length) throw new Error(`could not unmount what buildkitd left under ${dir}:\n${failed.join("\n")}`);
    },
    log,
  };
  cleanup(t, () => daemon.stop());
  return daemon;
}
