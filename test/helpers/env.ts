/**
 * The real test environment. Uses BUILDKIT_HOST / BK_TEST_REGISTRY when set;
 * otherwise runs scripts/test-env.sh up. Never skips: if the environment
 * cannot be had, this throws with the reason and the tests fail.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (tests run from dist/test/...). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface TestEnv {
  buildkitHost: string;
  registry: string;
  buildctl: string;
  /** tcp:// address of the mTLS listener, when the environment has one. */
  tlsHost: string | undefined;
  /** Directory with ca/, client/, server/, wrong-ca/ subdirectories. */
  tlsDir: string | undefined;
  /** A registry that requires a login, with bk-test/private-base:latest in it. */
  authRegistry: { host: string; user: string; password: string } | undefined;
  /** The Docker Engine: its unix socket, and its --tlsverify listener with the client's cert directory (the dind shape). */
  docker: { host: string; tlsHost: string; certPath: string };
}

let cached: TestEnv | undefined;

export function testEnv(): TestEnv {
  if (cached) return cached;
  const env = { ...process.env };
  if (!env["BUILDKIT_HOST"] || !env["BK_TEST_REGISTRY"]) {
    let out: string;
    try {
      out = execFileSync("bash", [join(repoRoot, "scripts", "test-env.sh"), "up"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      });
    } catch (e) {
      throw new Error(`the BuildKit test environment could not be started (scripts/test-env.sh up failed: ${(e as Error).message})`);
    }
    for (const line of out.split("\n")) {
      const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
  }
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set: start the environment with eval "$(scripts/test-env.sh up)"`);
    return v;
  };
  cached = {
    buildkitHost: need("BUILDKIT_HOST"),
    registry: need("BK_TEST_REGISTRY"),
    buildctl: env["BK_BUILDCTL"] || "buildctl",
    tlsHost: env["BK_TEST_TLS_HOST"] || undefined,
    tlsDir: env["BK_TEST_TLS_DIR"] || undefined,
    authRegistry: env["BK_TEST_AUTH_REGISTRY"]
      ? { host: env["BK_TEST_AUTH_REGISTRY"], user: need("BK_TEST_AUTH_USER"), password: need("BK_TEST_AUTH_PASSWORD") }
      : undefined,
    docker: { host: need("BK_TEST_DOCKER_HOST"), tlsHost: need("BK_TEST_DOCKER_TLS_HOST"), certPath: need("BK_TEST_DOCKER_CERT_PATH") },
  };
  return cached;
}

/**
 * buildx, the oracle for --call (BK_TEST_BUILDX, which scripts/test-env.sh
 * up exports; else where it caches the build). Throws when it is missing.
 */
export function buildxBinary(): string {
  const path =
    process.env["BK_TEST_BUILDX"] || join(process.env["BK_CACHE_DIR"] ?? join(process.env["HOME"] ?? "/root", ".cache", "bk-build"), "buildx-v0.38.2");
  const r = spawnSync(path, ["version"], { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`buildx is not at ${path} (${r.error?.message ?? r.stderr.trim()}): run scripts/test-env.sh buildx (or up)`);
  return path;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the docker CLI (the oracle for what landed in the Engine) against the
 * test Engine, with an empty Docker config of its own.
 */
export function dockerCli(args: string[], options: { input?: Buffer; maxBuffer?: number } = {}): { code: number | null; stdout: Buffer; stderr: string } {
  const env = testEnv();
  const r = spawnSync("docker", args, {
    env: { PATH: process.env["PATH"], HOME: process.env["HOME"], DOCKER_HOST: env.docker.host, DOCKER_CONFIG: join(repoRoot, "dist", ".docker-oracle") },
    input: options.input,
    maxBuffer: options.maxBuffer ?? 256 << 20,
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Runs the built bk-build CLI as a user would; `input` is piped to its stdin. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string; input?: Buffer | string } = {},
): RunResult {
  const t = Date.now();
  const r = spawnSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "bin.js"), ...args], {
    encoding: "utf8",
    cwd: options.cwd,
    env: { ...process.env, ...(options.env ?? {}) },
    timeout: options.timeoutMs ?? 60_000,
    input: options.input,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t };
}

/** Runs buildctl against the test daemon (our oracle; the library never calls it). */
export function buildctl(args: string[], input?: string): string {
  const e = testEnv();
  const r = spawnSync(e.buildctl, ["--addr", e.buildkitHost, ...args], { encoding: "utf8", input, timeout: 300_000 });
  if (r.status !== 0) {
    throw new Error(`buildctl ${args.join(" ")} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  }
  return r.stdout + r.stderr;
}

/** buildctl's Dockerfile build of `ctx` (its own Dockerfile) to `output` (a --output value), as the oracle. */
export function buildctlBuild(ctx: string, output: string, extra: string[] = []): string {
  return buildctl(["build", "--frontend", "dockerfile.v0", "--local", `context=${ctx}`, "--local", `dockerfile=${ctx}`, "--output", output, ...extra]);
}

/**
 * Runs the CLI without blocking this process, for tests that serve HTTP to
 * the build themselves (spawnSync would stall their server).
 */
export function runCliAsync(
  args: string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string; asInstalled?: boolean } = {},
): Promise<RunResult> {
  const t = Date.now();
  const bin = join(repoRoot, "dist", "src", "cli", "bin.js");
  // asInstalled: run the file itself, through its #! line, as an npm-installed `bk-build` runs.
  if (options.asInstalled) chmodSync(bin, 0o755);
  const [cmd, argv] = options.asInstalled ? [bin, args] : [process.execPath, [bin, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd: options.cwd,
      env: { ...process.env, ...(options.env ?? {}) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t });
    });
  });
}
