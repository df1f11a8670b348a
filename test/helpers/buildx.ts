/**
 * buildx (v0.38.2, built by scripts/test-env.sh) as an oracle: a `remote`
 * builder on the test buildkitd, in a Docker config of its own so the
 * user's is never touched. BUILDX_NO_DEFAULT_ATTESTATIONS=1 unless a test
 * compares attestations.
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { buildxBinary, type RunResult } from "./env.js";
import { tempDir } from "./files.js";

export interface Buildx {
  /** The Docker config directory buildx runs with (its builders are in buildx/instances there). */
  dockerConfig: string;
  /** `docker buildx build --builder B ARGS` in `cwd`; `input` goes to its stdin. */
  build(args: string[], cwd: string, env?: Record<string, string | undefined>, input?: string | Buffer): RunResult;
  /** Any `docker` command with this Docker config; an `env` value of undefined removes that variable. */
  docker(args: string[], cwd?: string, env?: Record<string, string | undefined>, input?: string | Buffer): RunResult;
}

/** buildx's default builder on the Engine at `dockerHost`: its `docker` driver (DOCKER_HOST set, nothing else). */
export function dockerDriverBuildx(dockerHost: string): Buildx {
  const bx = withPlugin({ DOCKER_HOST: dockerHost, DOCKER_CONTEXT: undefined, BUILDKIT_HOST: undefined });
  return { ...bx, build: (args, cwd, env, input) => bx.docker(["buildx", "build", "--builder", "default", ...args], cwd, env, input) };
}

/** Creates the remote builder on `buildkitHost` (throws with buildx's words if it cannot). */
export function remoteBuildx(buildkitHost: string, name: string): Buildx {
  const bx = withPlugin({});
  const r = bx.docker(["buildx", "create", "--driver", "remote", "--name", name, buildkitHost]);
  if (r.code !== 0) throw new Error(`docker buildx create failed: ${r.stderr}`);
  return { ...bx, build: (args, cwd, env, input) => bx.docker(["buildx", "build", "--builder", name, ...args], cwd, env, input) };
}

/** A Docker config of its own with buildx as its plugin, and `docker` run with it (and `base` in its environment). */
function withPlugin(base: Record<string, string | undefined>): Omit<Buildx, "build"> {
  const dockerConfig = tempDir("bk-buildx-config-");
  mkdirSync(join(dockerConfig, "cli-plugins"));
  symlinkSync(buildxBinary(), join(dockerConfig, "cli-plugins", "docker-buildx"));
  const docker = (args: string[], cwd?: string, env: Record<string, string | undefined> = {}, input?: string | Buffer): RunResult => {
    const t = Date.now();
    const all: Record<string, string | undefined> = {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      DOCKER_CONFIG: dockerConfig,
      BUILDX_NO_DEFAULT_ATTESTATIONS: "1",
      ...base,
      ...env,
    };
    const r = spawnSync("docker", args, {
      encoding: "utf8",
      cwd,
      env: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined)),
      timeout: 120_000,
      input,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr + (r.error?.message ?? ""), ms: Date.now() - t };
  };
  return { dockerConfig, docker };
}
