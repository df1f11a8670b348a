/**
 * What the bench measures bk-build against, besides buildctl: buildx (the
 * docker CLI with buildx as its plugin, a `remote` builder on the bench's
 * buildkitd) and the Go harness (scripts/bench/harness, buildkit's own
 * client), with the line-protocol driver the warm section uses for the
 * harness and for bk-build's side (scripts/bench-warm.ts).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** A command line and its environment, for time() in bench.ts. */
export type Cmd = [string, string[], NodeJS.ProcessEnv];

/** A path scripts/test-env.sh prints (the last line of its stdout) after building it once. */
function fromTestEnv(root: string, what: string): string {
  const r = spawnSync("bash", [join(root, "scripts", "test-env.sh"), what], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 30 * 60_000,
  });
  const path = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !path) throw new Error(`scripts/test-env.sh ${what} failed (${r.error?.message ?? `exit ${r.status}`}); see the lines above`);
  return path;
}

/**
 * buildx: BK_TEST_BUILDX, else scripts/test-env.sh builds it (once, from the
 * Go module cache, cached under BK_CACHE_DIR as buildkitd is) and prints its
 * path: one recipe for the tests and the bench.
 */
export function buildxBinary(root: string): string {
  return process.env["BK_TEST_BUILDX"] || fromTestEnv(root, "buildx");
}

/** The Go harness: built by scripts/test-env.sh harness (once per version of its sources). */
export function harnessBinary(root: string): string {
  return fromTestEnv(root, "harness");
}

/**
 * `docker buildx build` on a `remote` builder that is the bench's own
 * buildkitd, in a DOCKER_CONFIG of the bench's own (never ~/.docker), as a
 * user of buildx with a standalone buildkitd runs it. Made on first use,
 * removed by close().
 */
export class BuildxRemote {
  readonly builder = `bk-bench-remote-${process.pid}`;
  readonly env: NodeJS.ProcessEnv;
  readonly #base: string;
  #created = false;

  constructor(root: string, host: string, extraEnv: NodeJS.ProcessEnv) {
    this.#base = mkdtempSync(join(tmpdir(), "bk-bench-buildx-"));
    const cfg = join(this.#base, "docker-config");
    // Only --builder picks the daemon: no Engine, context or builder from the caller's environment.
    const unset = new Set(["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "BUILDKIT_HOST", "BUILDX_BUILDER"]);
    this.env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !unset.has(k))), ...extraEnv, DOCKER_CONFIG: cfg };
    try {
      mkdirSync(join(cfg, "cli-plugins"), { recursive: true });
      symlinkSync(buildxBinary(root), join(cfg, "cli-plugins", "docker-buildx"));
      const v = this.#docker("buildx", "version");
      if (v.status !== 0) throw new Error(`docker buildx does not run (is the docker CLI installed?): ${v.out.trim()}`);
      const c = this.#docker("buildx", "create", "--name", this.builder, "--driver", "remote", host);
      if (c.status !== 0) throw new Error(`docker buildx create --driver remote ${host} failed: ${c.out.trim()}`);
      this.#created = true;
      const b = this.#docker("buildx", "inspect", "--bootstrap", this.builder);
      if (b.status !== 0) throw new Error(`docker buildx inspect --bootstrap ${this.builder} failed: ${b.out.trim()}`);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** `docker buildx build --builder B --progress quiet ARGS...` */
  build(...args: string[]): Cmd {
    return ["docker", ["buildx", "build", "--builder", this.builder, "--progress", "quiet", ...args], this.env];
  }

  close(): void {
    if (this.#created) this.#docker("buildx", "rm", this.builder);
    this.#created = false;
    rmSync(this.#base, { recursive: true, force: true });
  }

  #docker(...args: string[]): { status: number | null; out: string } {
    const r = spawnSync("docker", args, { encoding: "utf8", env: this.env, timeout: 120_000 });
    return { status: r.error ? -1 : r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error?.message ?? ""}` };
  }
}

/** One command's answer in the warm line protocol (see scripts/bench-warm.ts and scripts/bench/harness/main.go). */
export interface WarmReply {
  op: "seq" | "conc";
  n: number;
  /** Each build's ms. */
  ms: number[];
  /** The whole command's ms. */
  wallMs: number;
  notCached: number;
  error?: string;
}

/**
 * A long-lived warm-section client (bk-build's or the Go harness): one
 * command at a time on its stdin, one JSON line back on its stdout.
 */
export class WarmClient {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  #stderr = "";
  readonly #exited: Promise<number | null>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.#child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stderr.setEncoding("utf8").on("data", (d: string) => (this.#stderr = (this.#stderr + d).slice(-4000)));
    this.#exited = new Promise((resolve) => {
      this.#child.on("error", (e) => {
        this.#stderr += e.message;
        resolve(-1);
      });
      this.#child.on("close", (code) => resolve(code));
    });
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  /** Runs "seq N" or "conc N"; throws if the client failed, died, or took longer than timeoutMs. */
  async run(op: "seq" | "conc", n: number, timeoutMs: number): Promise<WarmReply> {
    this.#child.stdin.write(`${op} ${n}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: "${op} ${n}" did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next.done) throw new Error(`${this.name} exited (${await this.#exited}) before answering "${op} ${n}": ${this.#stderr.trim()}`);
      const reply = JSON.parse(next.value) as WarmReply;
      if (reply.error) throw new Error(`${this.name}: a build failed: ${reply.error}`);
      return reply;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends its stdin (it closes its client and exits); killed if it has not exited 10 s later. */
  async close(): Promise<void> {
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    const code = await this.#exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${this.name} exited with ${code}: ${this.#stderr.trim()}`);
  }
}
