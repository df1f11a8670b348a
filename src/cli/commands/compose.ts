/** `bk-build compose [...] build [...] [SERVICE...]`: docker compose build, with buildkitd or a Docker Engine. */
import { join } from "node:path";
import { list, str, type Values } from "../args.js";
import { chosenBuilder, withTarget, type BuildTarget, type WarningRelay } from "../connect.js";
import type { CliIo } from "../io.js";
import { parseBuildArgs, parseProgress, progressFromEnv, resolveProgress } from "../parse-build.js";
import { servicePrefixer, startProgress } from "../progress.js";
import {
  BuildKitError,
  UsageError,
  SolveError,
  checkCompose,
  composeBakeDefinition,
  composeProxyArgs,
  planCompose,
  runCompose,
  shorthandAttestation,
  targetsEngine,
  withEngineImageNames,
} from "../../internal.js";
import { builds, defaultAttestations } from "./build.js";
import { formatCheck, loadCompose, renderSnippet, type ComposeBuildOptions, type ComposeProject, type ComposeService } from "../../index.js";

export interface ComposePlan {
  project: ComposeProject;
  plan: ComposeService[];
  options: ComposeBuildOptions;
  progress: ReturnType<typeof parseProgress>;
  progressFromEnv: boolean;
  debug: boolean;
  /** --check: lint each service instead of building it. */
  check: boolean;
  /** --print: print the bake definition instead of building. */
  print: boolean;
}

/** Loads and checks everything a compose build needs, before any connection. */
export function composePlanFromFlags(values: Values, positionals: string[], env: Record<string, string | undefined>, cwd: string): ComposePlan {
  const [sub, ...services] = positionals;
  if (sub !== "build") {
    throw new UsageError(sub === undefined ? "'bk-build compose' needs a subcommand: build" : `unknown compose subcommand "${sub}": only build is supported`);
  }
  // --builder with --addr is said before the project is read.
  const builder = chosenBuilder(values, env);
  const loaded = loadCompose({
    files: list(values["file"]),
    envFiles: list(values["env-file"]),
    projectDirectory: str(values["project-directory"]),
    projectName: str(values["project-name"]),
    profiles: list(values["profile"]).length ? list(values["profile"]) : undefined,
    env,
    workingDir: cwd,
  });
  const parallel = parallelFrom(str(values["parallel"]), env);
  // Through an Engine (known from the address alone), images stay in its store as PROJECT-SERVICE;
  // never on a builder, whose services may run on different nodes (as BuildKitPool.composeBuild).
  const engine = !builder && targetsEngine(str(values["addr"]), env);
  const project = engine ? withEngineImageNames(loaded) : loaded;
  const plan = planCompose(project, services, { withDependencies: values["with-dependencies"] === true });
  if (plan.length === 0) throw new UsageError(`no service to build: none of ${project.files.join(", ")}'s active services has a build section`);
  const options: ComposeBuildOptions = {
    push: values["push"] === true,
    noCache: values["no-cache"] === true,
    pull: values["pull"] === true,
    parallel,
    localImages: engine,
    // A bare K takes its value from the project's environment, as docker compose.
    buildArgs: list(values["build-arg"]).length ? parseBuildArgs(list(values["build-arg"]), project.environment) : undefined,
    fallbackBuildArgs: composeProxyArgs(env),
    ssh: composeSsh(str(values["ssh"])),
    provenance: str(values["provenance"]),
    sbom: str(values["sbom"]),
    defaultProvenance: defaultAttestations(env),
  };
  // Checked now, before the daemon is dialled (each service parses them again when it is built).
  if (options.provenance) shorthandAttestation("provenance", options.provenance, "--provenance");
  if (options.sbom) shorthandAttestation("sbom", options.sbom, "--sbom");
  return {
    project,
    plan,
    options,
    progress: values["quiet"] === true ? "quiet" : parseProgress(str(values["progress"]), env),
    progressFromEnv: values["quiet"] !== true && progressFromEnv(str(values["progress"]), env),
    debug: values["debug"] === true,
    check: values["check"] === true,
    print: values["print"] === true,
  };
}

/**
 * The build limit: --parallel N, else COMPOSE_PARALLEL_LIMIT, as docker
 * compose (-1 = no limit); the deprecated bare --parallel changes nothing.
 */
function parallelFrom(flag: string | undefined, env: Record<string, string | undefined>): number | undefined {
  const fromEnv = flag === undefined || flag === "true" || flag === "false";
  const text = fromEnv ? env["COMPOSE_PARALLEL_LIMIT"] || undefined : flag;
  if (text === undefined) return undefined;
  const n = Number(text);
  if (n === -1) return Number.MAX_SAFE_INTEGER;
  if (!/^-?\d+$/.test(text) || n < 1) {
    throw new UsageError(`invalid ${fromEnv ? "COMPOSE_PARALLEL_LIMIT" : "--parallel"} "${text}": use a whole number of at least 1, or -1 for no limit`);
  }
  return n;
}

/** --ssh as docker compose build takes it: `default` (an empty value too) or ID=PATH. */
function composeSsh(spec: string | undefined): Record<string, string | null> | undefined {
  if (spec === undefined) return undefined;
  if (spec === "" || spec === "default") return { default: null };
  const eq = spec.indexOf("=");
  if (eq < 0) throw new UsageError(`invalid --ssh "${spec}": use default or ID=PATH`);
  return { [spec.slice(0, eq)]: spec.slice(eq + 1) || null };
}

/** Runs the builds: plain lines prefixed with the service, one tty display for the project. */
export async function runComposeBuild(
  client: Pick<BuildTarget, "build">,
  p: ComposePlan,
  signal: AbortSignal,
  io: Pick<CliIo, "out" | "err"> & Partial<Pick<CliIo, "env" | "stderr">> & { relay?: WarningRelay | undefined },
): Promise<void> {
  const progress = resolveProgress(p.progress, io.stderr?.isTTY === true, p.progressFromEnv);
  const services = p.plan.map((s) => s.name);
  const prefixed = servicePrefixer(services, io.err);
  const display = startProgress(progress, { err: io.err, env: io.env ?? {}, stderr: io.stderr }, { debug: p.debug, services });
  // A builder's warnings (a node skipped, a build run again) go through the display while it runs.
  const toStderr = io.relay?.write;
  if (io.relay) io.relay.write = (line) => display.message(line);
  let results;
  try {
    results = await runCompose(p.project, p.plan, (o) => client.build(o), {
      ...p.options,
      signal,
      onStatus: (service, status) => display.update(status, service),
    });
  } catch (e) {
    display.end(true);
    throw e;
  } finally {
    if (io.relay && toStderr) io.relay.write = toStderr;
  }
  const failed = results.filter((r) => r.outcome !== "built");
  display.end(failed.some((r) => r.outcome === "failed"));
  for (const r of results) {
    if (r.outcome === "built") {
      const name = r.images[0];
      // -q prints nothing on success, as docker compose build -q.
      if (progress !== "quiet") io.err(`service "${r.service}": built${name ? ` ${name}` : ""}${r.digest ? ` ${r.digest}` : ""}\n`);
      continue;
    }
    if (r.error instanceof SolveError) for (const src of r.error.sources) prefixed(r.service)(renderSnippet(src));
    io.err(`service "${r.service}": ${r.outcome}: ${r.error?.message ?? "unknown error"}\n`);
  }
  if (failed.length) {
    throw new BuildKitError(`${failed.length} of ${results.length} services did not build: ${failed.map((r) => r.service).join(", ")}`, { code: "BUILD" });
  }
}

/**
 * `compose build --check`: each service's check printed as `build --check`
 * prints it, every line prefixed with the service. Resolves with 1 when a
 * service has warnings or its check failed, else 0.
 */
export async function runComposeCheck(
  client: Pick<BuildTarget, "check">,
  p: ComposePlan,
  signal: AbortSignal,
  io: { out: (t: string) => void; err: (t: string) => void },
): Promise<number> {
  const width = Math.max(...p.plan.map((s) => s.name.length));
  const prefix = (service: string, text: string): string => text.replace(/^/gm, `${service.padEnd(width)} | `).replace(/\| $/gm, "|");
  const results = await checkCompose(p.project, p.plan, (o) => client.check(o), { ...p.options, signal });
  let code = 0;
  for (const r of results) {
    if (!r.result) {
      io.err(prefix(r.service, `error: ${r.error?.message ?? "unknown error"}`) + "\n");
      code = 1;
      continue;
    }
    const build = p.plan.find((s) => s.name === r.service)!.build!;
    const printed = formatCheck(r.result, { dockerfileName: build.dockerfile ?? join(build.context, "Dockerfile") });
    io.out(prefix(r.service, printed.out.replace(/\n$/, "")) + "\n");
    if (printed.error !== undefined) io.err(prefix(r.service, `error: ${printed.error.replace(/\n$/, "")}`) + "\n");
    if (printed.error !== undefined || r.result.statusCode !== 0) code = 1;
  }
  return code;
}

/** `bk-build compose ... build`: the project is loaded and checked before the daemon is dialled. */
export async function runComposeCommand(values: Values, positionals: string[], io: CliIo): Promise<number | undefined> {
  const plan = composePlanFromFlags(values, positionals, io.env, io.cwd);
  if (plan.print) {
    io.out(composeBakeDefinition(plan.project, plan.plan, plan.options) + "\n");
    return undefined;
  }
  const placement = { retryOnNodeFailure: values["retry-on-node-failure"] === true };
  if (plan.check) return withTarget(values, io, (t) => runComposeCheck(builds(t), plan, io.signal, io), { placement });
  resolveProgress(plan.progress, io.stderr?.isTTY === true, plan.progressFromEnv);
  const relay: WarningRelay = { write: (line) => io.err(line) };
  await withTarget(values, io, (t) => runComposeBuild(builds(t), plan, io.signal, { ...io, relay }), { placement, relay });
  return undefined;
}
