/** `bk-build build [OPTIONS] PATH`: flags follow docker buildx build. */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { list, str, type Values } from "../args.js";
import { withTarget, type BuildTarget, type Target, type WarningRelay } from "../connect.js";
import type { CliIo, CliStdout } from "../io.js";
import { checkOutputFile, writeOutputFile } from "../output-file.js";
import {
  formatCheck,
  formatOutline,
  formatTargets,
  renderSnippet,
  SecretLeakError,
  type BuildOptions,
  type ExportResult,
  type ExportSpec,
  type RegistryCredential,
  type SecretSource,
  type SshAgentSource,
  rawJsonWarning,
} from "../../index.js";
import {
  DEFAULT_SSH_ID,
  formatAuditSummary,
  formatFinding,
  MAX_TEXT_FILE_BYTES,
  SolveError,
  UsageError,
  checkPlatform,
  hostPlatform,
  isEntitlement,
  isRemoteContext,
  normalizePlatform,
  parseBool,
  lowercaseDockerfile,
  parseCacheEntries,
  parseSsh,
  readInputFile,
  resolveBuild,
  runEnvironmentAttrs,
  withDockerProxyArgs,
} from "../../internal.js";
import {
  dockerfileMountIds,
  metadataJson,
  parseAnnotations,
  parseAttests,
  parseBuildArgs,
  parseBuildContexts,
  parseLabels,
  parseOutput,
  parseProgress,
  parseSecret,
  progressFromEnv,
  parseRegistryAuth,
  resolveProgress,
} from "../parse-build.js";
import { callFromFlags, type CallSpec } from "../parse-call.js";
import { startProgress } from "../progress.js";
import { readStdinInputs, stdinUse, type StdinUse } from "../stdin.js";

export interface BuildIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env?: Record<string, string | undefined>;
  stderr?: CliIo["stderr"];
  /** A builder's pool warnings: routed through the progress display while it runs. */
  relay?: WarningRelay | undefined;
  /** The builder the build runs on (for the ref line's `history` command). */
  builder?: string | undefined;
}

/** A build's flags, checked and mapped. */
export interface BuildFlags {
  options: BuildOptions;
  progress: ReturnType<typeof parseProgress>;
  /** The progress mode came from BUILDKIT_PROGRESS, not --progress. */
  progressFromEnv: boolean;
  metadataFile: string | undefined;
  iidFile: string | undefined;
  debug: boolean;
  /** One line each, printed before the build: flags accepted and ignored. */
  warnings: string[];
  /** --call check|outline|targets (or --check): ask the frontend instead of building. */
  call: CallSpec | undefined;
  /** `-` (the context) or `-f -` (the Dockerfile): stdin is read into options before the build. */
  stdin: StdinUse | undefined;
}

/** Go's strconv.ParseBool false values. */
const isFalse = (v: string | undefined): boolean => v !== undefined && /^(0|f|false)$/i.test(v);

/**
 * buildx's stdout rule: a tarball output (tar, and oci/docker unless
 * tar=false) with dest=- (or no dest, except docker) goes to stdout; only one
 * may, and never to a terminal.
 */
function outputsToStdout(outputs: ExportSpec[], stdout: CliStdout | undefined, quiet: boolean): ExportSpec[] {
  let used = false;
  return outputs.map((o) => {
    const tarball = o.type === "tar" || ((o.type === "oci" || o.type === "docker") && !isFalse(o.attrs?.["tar"]));
    if (!tarball) return o;
    // Without dest, docker means --load (into the Docker Engine), as buildx.
    if (o.dest === undefined && o.type === "docker") return o;
    if (o.dest !== undefined && o.dest !== "-") return o;
    if (used) throw new UsageError("multiple outputs configured to write to stdout: give the others dest=FILE");
    if (!stdout || stdout.isTTY) {
      throw new UsageError(`dest file is required for ${o.type} exporter. refusing to write to console: give dest=FILE or redirect stdout`);
    }
    if (quiet) throw new UsageError("-q prints the image ID on stdout, which this --output also writes to: give the output dest=FILE");
    used = true;
    const rest = { ...o };
    delete rest.dest;
    return { ...rest, stream: stdout.writable() };
  });
}

/** --allow: entitlements as buildx takes them (comma lists; network.host, security.insecure, device[=NAME]). */
export function parseAllow(value: string): string[] {
  return value
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => {
      if (isEntitlement(e)) return e;
      throw new UsageError(`invalid --allow "${e}": use network.host, security.insecure or device[=NAME]`);
    });
}

/** This machine's platform as containerd's platforms.DefaultSpec() names it (what buildx's --platform local means). */
export const localPlatform = hostPlatform;

/** Whether buildx would add its default provenance: unless BUILDX_NO_DEFAULT_ATTESTATIONS is true (an empty value counts as unset). */
export function defaultAttestations(env: Record<string, string | undefined>): boolean {
  const v = env["BUILDX_NO_DEFAULT_ATTESTATIONS"];
  if (!v) return true;
  const b = parseBool(v);
  if (b === undefined) throw new UsageError(`invalid BUILDX_NO_DEFAULT_ATTESTATIONS "${v}": use true or false`);
  return !b;
}

/** buildx copies a non-empty SOURCE_DATE_EPOCH into the build args unless --build-arg sets it (reproducible builds). */
function withSourceDateEpoch(args: Record<string, string>, env: Record<string, string | undefined>): Record<string, string> {
  const v = env["SOURCE_DATE_EPOCH"];
  return v && !("SOURCE_DATE_EPOCH" in args) ? { ...args, SOURCE_DATE_EPOCH: v } : args;
}

/** Turns flags into BuildOptions; throws UsageError for bad input. */
export function buildOptionsFromFlags(values: Values, positionals: string[], env: Record<string, string | undefined>, stdout?: CliStdout): BuildFlags {
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length ? `'bk-build build' takes one PATH, got ${positionals.length}` : "'bk-build build' needs a context PATH (e.g. '.')",
    );
  }
  const secrets: Record<string, SecretSource> = {};
  // buildx skips empty --secret and --output values.
  for (const s of list(values["secret"]).filter((v) => v !== "")) {
    const p = parseSecret(s, env);
    secrets[p.id] = p.source; // the last one wins, as buildx
  }
  const ssh: Record<string, SshAgentSource> = {};
  for (const spec of list(values["ssh"])) {
    const [id, source] = parseSsh(spec, env);
    ssh[id] = source; // the last one wins, as buildx
  }
  // As buildx: DOCKER_DEFAULT_PLATFORM when no --platform, and "local" is this machine's platform.
  const platformFlags = list(values["platform"]).length ? list(values["platform"]) : env["DOCKER_DEFAULT_PLATFORM"] ? [env["DOCKER_DEFAULT_PLATFORM"]] : [];
  // Normalised and de-duplicated as buildx's platformutil.Parse (linux/arm64/v8 and linux/aarch64 are linux/arm64).
  const given = platformFlags
    .flatMap((p) => p.split(","))
    .filter(Boolean)
    .map((p) => (p.toLowerCase() === "local" ? localPlatform() : p));
  for (const p of given) checkPlatform(p, "--platform");
  const platforms = [...new Set(given.map((p) => normalizePlatform(p)))];
  const logins: Record<string, RegistryCredential> = {};
  for (const spec of list(values["registry-auth"])) {
    const [host, cred] = parseRegistryAuth(spec, env);
    logins[host] = cred;
  }
  const use = stdinUse(positionals[0]!, str(values["file"]));
  const options: BuildOptions = {
    context: positionals[0]!,
    dockerfile: str(values["file"]),
    target: str(values["target"]),
    buildArgs: withSourceDateEpoch(parseBuildArgs(list(values["build-arg"]), env), env),
    labels: parseLabels(list(values["label"])),
    platforms,
    buildContexts: parseBuildContexts(list(values["build-context"])),
    secrets,
    ssh,
    registryAuth: { credentials: logins },
    cacheFrom: list(values["cache-from"]).flatMap((c) => parseCacheEntries(c, "--cache-from")),
    cacheTo: list(values["cache-to"]).flatMap((c) => parseCacheEntries(c, "--cache-to")),
    tags: list(values["tag"]),
    push: values["push"] === true,
    load: values["load"] === true,
    outputs: outputsToStdout(list(values["output"]).filter(Boolean).map(parseOutput), stdout, values["quiet"] === true),
    env,
  };
  if (values["no-cache"] === true && list(values["no-cache-filter"]).length) {
    throw new UsageError("--no-cache and --no-cache-filter cannot currently be used together (as buildx): give one of them");
  }
  if (values["no-cache"] === true) options.noCache = true;
  else if (list(values["no-cache-filter"]).length) options.noCache = list(values["no-cache-filter"]);
  const { attrs, entitlements } = runEnvironmentAttrs(
    { addHosts: list(values["add-host"]), shmSize: str(values["shm-size"]), ulimits: list(values["ulimit"]), network: str(values["network"]) },
    (flag) => `--${flag}`,
  );
  const allowed = [...new Set([...entitlements, ...list(values["allow"]).flatMap(parseAllow)])];
  if (allowed.length) options.entitlements = allowed;
  const cgroupParent = str(values["cgroup-parent"]);
  if (cgroupParent) attrs["cgroup-parent"] = cgroupParent;
  options.frontendAttrs = attrs;
  const progress = values["quiet"] === true ? "quiet" : parseProgress(str(values["progress"]), env);
  if (values["audit-secrets"] === true) options.auditSecrets = true;
  if (values["pull"] === true) options.pull = true;
  const attestations = parseAttests(list(values["attest"]), str(values["provenance"]), str(values["sbom"]));
  if (attestations.length) options.attestations = attestations;
  if (defaultAttestations(env)) options.defaultProvenance = true;
  const annotations = parseAnnotations(list(values["annotation"]));
  if (annotations.length) options.annotations = annotations;
  const iidFile = str(values["iidfile"]);
  if (iidFile !== undefined && (options.outputs ?? []).some((o) => o.type === "local" || o.type === "tar")) {
    throw new UsageError("--iidfile needs an image output: local and tar outputs have no image ID");
  }
  const call = callFromFlags(str(values["call"]), values["check"] === true);
  return {
    options,
    progress,
    progressFromEnv: values["quiet"] !== true && progressFromEnv(str(values["progress"]), env),
    metadataFile: str(values["metadata-file"]),
    iidFile,
    debug: values["debug"] === true,
    call,
    stdin: use,
    warnings: legacyFlagWarnings(values),
  };
}

/**
 * docker build's flags that buildx accepts and ignores: the three it warns
 * about get its words; the resource limits, which buildkitd's Dockerfile
 * builds cannot apply, get one line each; --compress, --rm and --force-rm
 * pass silently, as in buildx.
 */
function legacyFlagWarnings(values: Values): string[] {
  const out: string[] = [];
  if (values["isolation"] !== undefined) out.push("isolation flag is deprecated with BuildKit.");
  if (values["security-opt"] !== undefined) out.push('security-opt flag is deprecated. "RUN --security=insecure" should be used with BuildKit.');
  if (values["squash"] !== undefined) {
    out.push("experimental flag squash is removed with BuildKit. You should squash inside build using a multi-stage Dockerfile for efficiency.");
  }
  for (const f of ["memory", "memory-swap", "cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems"]) {
    if (values[f] !== undefined) out.push(`--${f} is ignored: a Dockerfile build's steps get no resource limits from the client`);
  }
  return out;
}

/** The image ID from the outputs' own reports (an oci/docker tarball's stream headers). */
function imageIdOf(exports: readonly ExportResult[]): string | undefined {
  for (const e of exports) if (e.configDigest ?? e.digest) return e.configDigest ?? e.digest;
  return undefined;
}

/**
 * buildx.build.provenance (buildx.build.provenance/PLATFORM for several
 * results) for --metadata-file: the record's provenance, min unless
 * BUILDX_METADATA_PROVENANCE=max, none with disabled or false (buildx's
 * ParseMetadataProvenance), nor from a daemon without build history.
 */
async function metadataProvenance(
  client: BuildTarget,
  ref: string,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const v = env["BUILDX_METADATA_PROVENANCE"] ?? "";
  if (v === "disabled" || parseBool(v) === false) return {};
  const mode = v === "max" ? "max" : "min";
  let found;
  try {
    found = await client.buildProvenance(ref, { mode, signal });
  } catch (e) {
    if ((e as { code?: string }).code === "UNIMPLEMENTED") return {};
    throw e;
  }
  const out: Record<string, unknown> = {};
  for (const p of found) out[p.platform === undefined ? "buildx.build.provenance" : `buildx.build.provenance/${p.platform}`] = p.predicate;
  return out;
}

/** The line that names a build's history record (and, on a builder, the node it ran on). */
function refLine(ref: string, builder?: string, node?: string): string {
  if (builder === undefined) return `build ref: ${ref} (bk-build history inspect ${ref})\n`;
  return `build ref: ${ref}${node === undefined ? "" : ` on node ${node}`} (bk-build history --builder ${builder} inspect ${ref})\n`;
}

/** Runs a build from flags already parsed by buildOptionsFromFlags. */
export async function runBuild(client: BuildTarget, flags: BuildFlags, signal: AbortSignal, io: BuildIo): Promise<void> {
  const { options, metadataFile, iidFile } = flags;
  const progress = resolveProgress(flags.progress, io.stderr?.isTTY === true, flags.progressFromEnv);
  options.signal = signal;

  // Warn about secrets the Dockerfile mounts but nobody provides. A remote
  // context holds its own Dockerfile; a local one that is not there is
  // startBuild's to report. Never a plain readFileSync: a FIFO would block
  // the event loop, signals included.
  let dockerfileText = "";
  const { context, dockerfile } = options;
  if (typeof dockerfile === "object") {
    dockerfileText = Buffer.from(dockerfile.contents).toString("utf8");
  } else if (typeof context === "string" && !isRemoteContext(context)) {
    const dockerfilePath = dockerfile ?? lowercaseDockerfile(`${context}/Dockerfile`);
    if (existsSync(dockerfilePath)) {
      dockerfileText = readInputFile(dockerfilePath, {
        what: "Dockerfile",
        flag: dockerfile === undefined ? undefined : "-f",
        maxBytes: MAX_TEXT_FILE_BYTES,
      }).toString("utf8");
    }
  }
  for (const { type, id, required } of dockerfileMountIds(dockerfileText)) {
    const req = required ? " (required)" : "";
    if (type === "secret" && !(id in (options.secrets ?? {}))) {
      io.err(`warning: the Dockerfile mounts secret "${id}"${req} but no --secret provides it; pass --secret id=${id},src=FILE or env=VAR\n`);
    }
    if (type === "ssh" && !(id in (options.ssh ?? {}))) {
      io.err(
        `warning: the Dockerfile mounts SSH agent "${id}"${req} but no --ssh provides it; pass --ssh ${id === DEFAULT_SSH_ID ? id : `${id}=SOCKET|KEY`}\n`,
      );
    }
  }

  // The record's ref, for 'bk-build history': not with quiet (stdout is the image ID) or rawjson (a JSON stream).
  const showRef = progress === "plain" || progress === "tty";
  const display = startProgress(progress, { err: io.err, env: io.env ?? {}, stderr: io.stderr }, { debug: flags.debug });
  options.onWarning = (w) => display.message(`warning: ${w}\n`);
  const relay = io.relay;
  const toStderr = relay?.write;
  if (relay) relay.write = (line) => display.message(line);
  const build = (() => {
    try {
      return client.build(options);
    } catch (e) {
      if (relay && toStderr) relay.write = toStderr;
      throw e;
    }
  })();
  // Whether the daemon reported on the build: only then does it keep a record.
  const daemon = { reported: false };
  const warnings: Array<Record<string, unknown>> = [];
  const consume = (async () => {
    for await (const s of build.progress) {
      daemon.reported = true;
      for (const w of s.warnings) warnings.push(rawJsonWarning(w));
      display.update(s);
    }
  })();
  try {
    const result = await build.result;
    await consume;
    display.end(false);
    if (relay && toStderr) relay.write = toStderr;
    // The image ID, as buildx: the config digest, else the manifest digest.
    const response = result.exporterResponse;
    const imageId = response["containerimage.config.digest"] ?? response["containerimage.digest"] ?? imageIdOf(result.exports);
    if (progress === "quiet" && imageId) io.out(imageId + "\n");
    if (iidFile !== undefined && imageId) writeOutputFile(iidFile, imageId, "--iidfile");
    if (result.audit) io.err(formatAuditSummary(result.audit) + "\n");
    if (metadataFile !== undefined) {
      // buildx writes builder/node/ref here; bk-build the bare ref, as 'history' takes it (with --builder, on any node).
      const metadata: Record<string, unknown> = metadataJson({ ...result.exporterResponse, "buildx.build.ref": result.ref });
      Object.assign(metadata, await metadataProvenance(client, result.ref, io.env ?? {}, signal));
      if (warnings.length && parseBool(io.env?.["BUILDX_METADATA_WARNINGS"] ?? "") === true) metadata["buildx.build.warnings"] = warnings;
      writeOutputFile(metadataFile, JSON.stringify(metadata, null, 2) + "\n", "--metadata-file");
    }
    if (showRef) io.err(refLine(result.ref, io.builder, result.node?.name));
  } catch (e) {
    await consume.catch(() => undefined);
    display.end(true);
    if (relay && toStderr) relay.write = toStderr;
    if (e instanceof SolveError) for (const src of e.sources) io.err(renderSnippet(src));
    // A build refused before the daemon saw it (bad input, an Engine that cannot take a --load) has no record.
    if (showRef && daemon.reported && (e as { code?: string }).code !== "USAGE") io.err(refLine(build.ref, io.builder));
    if (e instanceof SecretLeakError) {
      for (const f of e.findings) io.err(`leak: ${formatFinding(f)}\n`);
      io.err(formatAuditSummary(e.report) + "\n");
    }
    throw e;
  }
}

/**
 * --call check|outline|targets: the frontend's answer printed as buildx
 * prints it, on stdout. Resolves with the exit code: check's status code
 * (1 with warnings) unless ignorestatus; 1 when the Dockerfile does not
 * parse (printed as an error, with its snippet).
 */
export async function runCall(client: BuildTarget, options: BuildOptions, call: CallSpec, io: BuildIo, stdin?: StdinUse): Promise<number> {
  try {
    return await printCall(client, options, call, io, stdin);
  } catch (e) {
    // The frontend failed (e.g. outline of a Dockerfile that does not parse): its snippet, then the error line.
    if (e instanceof SolveError) for (const src of e.sources) io.err(renderSnippet(src));
    throw e;
  }
}

async function printCall(client: BuildTarget, options: BuildOptions, call: CallSpec, io: BuildIo, stdin: StdinUse | undefined): Promise<number> {
  const format = call.json ? "json" : "text";
  if (call.name === "outline") {
    io.out(formatOutline(await client.outline(options), { format }));
    return 0;
  }
  if (call.name === "targets") {
    io.out(formatTargets(await client.targets(options), { format }));
    return 0;
  }
  const result = await client.check(options);
  // As buildx names the Dockerfile in snippets (its DockerfileMappingSrc): "stdin" for -f -, the -f path as given, else
  // CONTEXT/Dockerfile, which is "-/Dockerfile" for a context on stdin (an archive, or a Dockerfile read as one).
  const { context, dockerfile } = options;
  const dockerfileName =
    stdin === "dockerfile"
      ? "stdin"
      : typeof dockerfile === "string"
        ? dockerfile
        : typeof context === "string" && stdin !== "context"
          ? join(context, "Dockerfile")
          : join("-", "Dockerfile");
  const printed = formatCheck(result, { format, dockerfileName });
  io.out(printed.out);
  if (printed.error !== undefined) {
    io.err(`error: ${printed.error}`);
    return 1;
  }
  return call.ignoreStatus ? 0 : result.statusCode;
}

/** `bk-build build`: flags are checked before the daemon is dialled, so usage errors never wait on it. */
export async function runBuildCommand(values: Values, positionals: string[], io: CliIo): Promise<number | undefined> {
  const flags = buildOptionsFromFlags(values, positionals, io.env, io.stdout);
  flags.options.buildArgs = withDockerProxyArgs(flags.options.buildArgs ?? {}, io.env); // as buildx, for every build
  for (const w of flags.warnings) io.err(`warning: ${w}\n`);
  // --progress tty without a terminal is refused before anything else.
  resolveProgress(flags.progress, io.stderr?.isTTY === true, flags.progressFromEnv);
  // `-` or `-f -`: stdin read (an archive only peeked at) before anything else is checked against it.
  if (flags.stdin) await readStdinInputs(flags.options, flags.stdin, io.stdin);
  // The context, the Dockerfile, tags and image names: what client.build checks, checked now.
  resolveBuild(flags.options);
  const call = flags.call;
  const placement = { retryOnNodeFailure: values["retry-on-node-failure"] === true };
  if (call) {
    flags.options.signal = io.signal;
    return withTarget(values, io, (t) => runCall(builds(t), flags.options, call, { ...io, builder: builderName(t) }, flags.stdin), { placement });
  }
  if (flags.metadataFile !== undefined) checkOutputFile(flags.metadataFile, "--metadata-file");
  if (flags.iidFile !== undefined) {
    checkOutputFile(flags.iidFile, "--iidfile");
    // As buildx: a stale ID file never outlives a failed build.
    rmSync(flags.iidFile, { force: true });
  }
  const relay: WarningRelay = { write: (line) => io.err(line) };
  await withTarget(values, io, (t) => runBuild(builds(t), flags, io.signal, { ...io, relay, builder: builderName(t) }), { placement, relay });
  return undefined;
}

/** What the build runs on: the daemon's client or the builder's pool. */
export function builds(t: Target): BuildTarget {
  return t.kind === "daemon" ? t.client : t.pool;
}

function builderName(t: Target): string | undefined {
  return t.kind === "builder" ? t.builder.name : undefined;
}
