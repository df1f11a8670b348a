/** Command-line parsing: pure, no I/O. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError, parseBool, parseTimeout } from "../internal.js";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command takes (names as buildctl's global flags). */
export const globalOptions: OptionSpec = {
  addr: { type: "string" },
  builder: { type: "string" },
  tlscacert: { type: "string" },
  tlscert: { type: "string" },
  tlskey: { type: "string" },
  tlsservername: { type: "string" },
  tlsdir: { type: "string" },
  timeout: { type: "string" },
  "ssh-key": { type: "string" },
  "ssh-known-hosts": { type: "string" },
  "ssh-insecure-ignore-host-key": { type: "boolean" },
  debug: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec;
  /** Help lines for the command's own flags. */
  flags: string[];
}

const formatFlag = "  --format table|json       output format (default table)";
/** What the global --builder does for a command. */
const builderFlag = (what: string): string => `  --builder NAME            ${what}`;

export const commands: CommandSpec[] = [
  {
    name: "build",
    summary: "Build from a Dockerfile",
    usage: "bk-build build [OPTIONS] PATH | URL | -",
    options: {
      file: { type: "string", short: "f" },
      target: { type: "string" },
      "build-arg": { type: "string", multiple: true },
      label: { type: "string", multiple: true },
      platform: { type: "string", multiple: true },
      "no-cache": { type: "boolean" },
      "no-cache-filter": { type: "string", multiple: true },
      "add-host": { type: "string", multiple: true },
      "shm-size": { type: "string" },
      ulimit: { type: "string", multiple: true },
      network: { type: "string" },
      "build-context": { type: "string", multiple: true },
      secret: { type: "string", multiple: true },
      ssh: { type: "string", multiple: true },
      "registry-auth": { type: "string", multiple: true },
      "cache-from": { type: "string", multiple: true },
      "cache-to": { type: "string", multiple: true },
      tag: { type: "string", short: "t", multiple: true },
      push: { type: "boolean" },
      load: { type: "boolean" },
      output: { type: "string", short: "o", multiple: true },
      progress: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      "metadata-file": { type: "string" },
      iidfile: { type: "string" },
      "audit-secrets": { type: "boolean" },
      call: { type: "string" },
      check: { type: "boolean" },
      pull: { type: "boolean" },
      allow: { type: "string", multiple: true },
      "cgroup-parent": { type: "string" },
      attest: { type: "string", multiple: true },
      provenance: { type: "string" },
      sbom: { type: "string" },
      annotation: { type: "string", multiple: true },
      // docker build's flags that buildx accepts and ignores (hidden there too).
      memory: { type: "string", short: "m" },
      "memory-swap": { type: "string" },
      "cpu-shares": { type: "string", short: "c" },
      "cpu-period": { type: "string" },
      "cpu-quota": { type: "string" },
      "cpuset-cpus": { type: "string" },
      "cpuset-mems": { type: "string" },
      compress: { type: "boolean" },
      isolation: { type: "string" },
      "security-opt": { type: "string", multiple: true },
      squash: { type: "boolean" },
      rm: { type: "boolean" },
      "force-rm": { type: "boolean" },
      "retry-on-node-failure": { type: "boolean" },
    },
    flags: [
      "  -f, --file PATH           Dockerfile (default PATH/Dockerfile, else PATH/dockerfile; may be outside the context; - reads stdin)",
      "  --target STAGE            stage to build",
      "  --build-arg K=V | K       build argument; a bare K takes $K from the environment",
      "  --secret SPEC             id=ID[,src=PATH|env=VAR][,type=file|env]; id only: $ID, else file ID",
      "  --ssh SPEC                default | ID[=SOCKET|KEY[,KEY...]][,raw=true][,passphrase-env=VAR]",
      "  --registry-auth HOST=USER:VAR  log in to HOST as USER with the password in env var VAR",
      "                            (else ~/.docker/config.json and its credential helpers)",
      "  -t, --tag NAME            image name (repeatable)",
      "  --push                    push the tagged image",
      "  --load                    load the image into the Docker Engine (DOCKER_HOST, docker context, /var/run/docker.sock)",
      "  -o, --output SPEC         DIR | - | type=local,dest=DIR | type=tar|oci|docker,dest=FILE|- [,tar=false] | type=docker (= --load)",
      "                            | type=image,name=NAME[,push=true] | type=registry,name=NAME | type=cacheonly",
      "  --progress MODE           auto (tty on a terminal, else plain), tty, plain, rawjson, quiet, none (default $BUILDKIT_PROGRESS or auto)",
      "  -q, --quiet               print only the image ID",
      "  --iidfile FILE            write the image ID (config digest) to FILE",
      "  --metadata-file FILE      write the build result (image digest, ...) as JSON",
      "  --audit-secrets           scan what the build produced for the secrets it was given; exit 3 on a leak",
      "  --no-cache                do not use the build cache",
      "  --cache-from SPEC         cache source: REF[,REF...] | type=registry,ref=REF | type=local,src=DIR | type=gha|s3,...",
      "  --cache-to SPEC           cache export: type=registry,ref=REF[,mode=max] | type=local,dest=DIR | type=inline | ...",
      "  --no-cache-filter STAGE   do not use the cache for these stages (repeatable)",
      "  --platform P              target platform(s), e.g. linux/amd64 (repeatable or comma list)",
      "  --label K=V               image label (repeatable)",
      "  --build-context NAME=SRC  extra context: a directory, docker-image://REF or oci-layout://DIR[:TAG|@DIGEST]",
      "  --add-host HOST:IP        extra /etc/hosts entry (repeatable)",
      "  --shm-size SIZE           size of /dev/shm, e.g. 128MB",
      "  --ulimit NAME=SOFT:HARD   ulimit for RUN (repeatable)",
      "  --network MODE            default, none or host",
      "  --call NAME[,format=json][,ignorestatus=true]  build (default), check (lint the Dockerfile; exit 1 on warnings),",
      "                            outline (args, secrets, SSH the target takes) or targets (the stages); nothing is built",
      "  --check                   same as --call check",
      "  --pull                    always look up base images in their registry",
      "  --allow ENT               entitlement: network.host, security.insecure, device[=NAME] (repeatable or comma list)",
      "  --cgroup-parent PATH      parent cgroup for RUN steps",
      "  --attest SPEC             attestation: type=provenance[,mode=min|max] | type=sbom[,generator=IMAGE] | type=T,disabled=true",
      "                            (buildx's default provenance mode=min,inline-only=true is added unless",
      "                            BUILDX_NO_DEFAULT_ATTESTATIONS=1)",
      "  --provenance VAL          true | false | mode=min|max[,...]: shorthand for --attest type=provenance",
      "  --sbom VAL                true | false | generator=IMAGE[,...]: shorthand for --attest type=sbom",
      "  --annotation SPEC         [TYPE[OS/ARCH][,TYPE...]:]KEY=VALUE; TYPE index, index-descriptor, manifest (default),",
      "                            manifest-descriptor (repeatable)",
      "  (docker build's -m/--memory, --memory-swap, -c/--cpu-shares, --cpu-period, --cpu-quota, --cpuset-cpus,",
      "   --cpuset-mems, --compress, --isolation, --security-opt, --squash, --rm, --force-rm are accepted",
      "   and ignored, as buildx does, with a warning where buildx gives one)",
      builderFlag("build on the builder's node its platform and cache point to"),
      "  --retry-on-node-failure   with --builder: a build whose node goes away mid-build runs once more on another node",
    ],
  },
  {
    name: "info",
    summary: "Show the daemon's address and versions (buildkitd, or a Docker Engine and its BuildKit)",
    usage: "bk-build info [--builder NAME] [--format table|json]",
    options: { format: { type: "string" } },
    flags: [formatFlag, builderFlag("one line per node: name, address, state, BuildKit version")],
  },
  {
    name: "compose",
    summary: "Build a compose project's services (docker compose build; through a Docker Engine the images land in its store)",
    usage:
      "bk-build compose [-f FILE]... [--env-file FILE]... [--project-directory DIR] [-p NAME] [--profile P]... build [--push] [--no-cache] [--pull] [--progress MODE] [--parallel N] [--check] [--print] [--build-arg K=V]... [--with-dependencies] [SERVICE...]",
    options: {
      file: { type: "string", short: "f", multiple: true },
      "env-file": { type: "string", multiple: true },
      "project-directory": { type: "string" },
      "project-name": { type: "string", short: "p" },
      profile: { type: "string", multiple: true },
      push: { type: "boolean" },
      "no-cache": { type: "boolean" },
      pull: { type: "boolean" },
      progress: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      parallel: { type: "string" },
      check: { type: "boolean" },
      "build-arg": { type: "string", multiple: true },
      ssh: { type: "string" },
      "with-dependencies": { type: "boolean" },
      print: { type: "boolean" },
      provenance: { type: "string" },
      sbom: { type: "string" },
      // docker compose build's deprecated flags, accepted and ignored as there.
      compress: { type: "boolean" },
      "force-rm": { type: "boolean" },
      "no-rm": { type: "boolean" },
      memory: { type: "string", short: "m" },
      "retry-on-node-failure": { type: "boolean" },
    },
    flags: [
      "  -f, --file FILE           compose file (repeatable, merged in order; default: compose.yaml, ... found upwards)",
      "  --env-file FILE           variables for interpolation (repeatable; default: .env in the project directory)",
      "  --project-directory DIR   base for relative paths (default: the first file's directory)",
      "  -p, --project-name NAME   project name",
      "  --profile P               activate a profile (repeatable; default $COMPOSE_PROFILES)",
      "  --push                    push every built image that has a name",
      "  --no-cache                build without cache",
      "  --pull                    always pull base images",
      "  --progress MODE           auto, tty, plain, rawjson, quiet, none (plain lines are prefixed with the service; tty draws one display)",
      "  -q, --quiet               print nothing but errors",
      "  --parallel N              builds at once (default $COMPOSE_PARALLEL_LIMIT or 4; -1 = no limit); a bare --parallel",
      "                            (docker compose build's deprecated flag) is accepted and changes nothing",
      "  --check                   lint each service's Dockerfile instead of building (output prefixed with the service)",
      "  --build-arg K=V | K       build argument for every service (a bare K takes $K from the project's environment)",
      "  --ssh default | ID=PATH   SSH agent for every service",
      "  --with-dependencies       also build the services they depend on (depends_on, transitively)",
      "  --print                   print the build definitions as docker compose's bake file (JSON) and build nothing",
      "  --provenance VAL          true | false | mode=min|max: over each service's provenance:",
      "  --sbom VAL                true | false | generator=IMAGE: over each service's sbom:",
      "  (--compress, --force-rm, --no-rm and -m/--memory are accepted and ignored, as docker compose build does)",
      builderFlag("each service placed on a node of the builder"),
      "  --retry-on-node-failure   with --builder: a build whose node goes away mid-build runs once more on another node",
    ],
  },
  {
    name: "workers",
    summary: "List workers: ids, platforms, labels, GC policies",
    usage: "bk-build workers [--builder NAME] [--filter F]... [--format table|json]",
    options: { filter: { type: "string", multiple: true }, format: { type: "string" }, verbose: { type: "boolean", short: "v" } },
    flags: [
      "  --filter F                containerd-style worker filter (repeatable)",
      "  -v, --verbose             accepted for buildctl compatibility (details are always shown)",
      formatFlag,
      builderFlag("each node's, under a header when there are several"),
    ],
  },
  {
    name: "du",
    summary: "Show build cache disk usage",
    usage: "bk-build du [--builder NAME] [--verbose] [--filter F]... [--format table|json]",
    options: { filter: { type: "string", multiple: true }, format: { type: "string" }, verbose: { type: "boolean", short: "v" } },
    flags: [
      "  --filter F                filter records, e.g. type==regular, until=24h (repeatable)",
      "  -v, --verbose             one block of details per record",
      formatFlag,
      builderFlag("each node's, under a header when there are several"),
    ],
  },
  {
    name: "prune",
    summary: "Remove build cache",
    usage: "bk-build prune [--builder NAME] [--all] [--keep-duration D] [--keep-storage N] [--filter F]... [--verbose] [--format table|json]",
    options: {
      all: { type: "boolean", short: "a" },
      filter: { type: "string", multiple: true },
      "keep-duration": { type: "string" },
      "keep-storage": { type: "string" },
      "reserved-space": { type: "string" },
      "max-used-space": { type: "string" },
      "min-free-space": { type: "string" },
      verbose: { type: "boolean", short: "v" },
      force: { type: "boolean", short: "f" },
      format: { type: "string" },
    },
    flags: [
      "  -a, --all                 remove all unused cache, not just dangling records",
      "  --keep-duration D         keep cache used within D (Go duration: 30m, 24h)",
      "  --keep-storage N          keep N bytes of cache (512MB, 10GB); same as --reserved-space",
      "  --reserved-space N        keep N bytes of cache",
      "  --max-used-space N        remove cache above N bytes",
      "  --min-free-space N        keep N bytes of disk free",
      "  --filter F                only records matching F (repeatable)",
      "  -v, --verbose             one block of details per removed record",
      "  -f, --force               accepted for buildx compatibility (bk-build never prompts)",
      formatFlag,
      builderFlag("on each node of the builder"),
    ],
  },
  {
    name: "history",
    summary: "List, inspect, replay the logs of and remove the daemon's build records",
    usage: [
      "bk-build history ls [--filter F]... [--format table|json]",
      "       bk-build history inspect [REF] [--format table|json]",
      "       bk-build history logs [REF] [--progress plain|rawjson]",
      "       bk-build history rm REF...",
    ].join("\n"),
    options: { filter: { type: "string", multiple: true }, format: { type: "string" }, progress: { type: "string" } },
    flags: [
      "  REF                       a build ref from 'history ls' or a unique prefix of it; ^N = the Nth newest",
      "                            finished build (inspect and logs default to ^0, the newest)",
      "  --filter F                ls: ref=SUBSTRING, status=running|completed|error|canceled, repository=URL,",
      "                            startedAt>24h, completedAt<=TIME, duration>30s (repeatable, AND-ed)",
      "  --progress plain|rawjson  logs: how the stored progress is printed (default plain)",
      formatFlag,
      builderFlag("ls: each node's records; a REF is looked up on every node"),
    ],
  },
  {
    name: "builder",
    summary: "Manage named builders: buildkitd nodes that builds are placed on (bk-build's store; buildx's remote builders read too)",
    usage: [
      "bk-build builder create NAME ADDR [--node NODE] [--platform P[,P...]]... [--label K=V]... [--tlscacert F --tlscert F --tlskey F --tlsservername N | --tlsdir D] [--append]",
      "       bk-build builder ls [--format table|json]",
      "       bk-build builder inspect NAME [--format table|json]",
      "       bk-build builder rm NAME",
      "       bk-build builder use NAME|default",
    ].join("\n"),
    options: {
      node: { type: "string" },
      platform: { type: "string", multiple: true },
      label: { type: "string", multiple: true },
      append: { type: "boolean" },
      format: { type: "string" },
    },
    flags: [
      "  One node per 'create', as docker buildx create: the first call makes the builder with one node,",
      "  each 'create NAME ADDR --append' adds one; the flags below describe that one node.",
      "  create NAME ADDR          ADDR is any --addr form (tcp://, unix://, ssh://, docker-container://, docker://)",
      "  --node NODE               the node's name (default NAME0, NAME1, ...); without --append, replaces node NODE",
      "  --append                  add the node to the existing builder NAME",
      "  --platform P              platforms the node runs natively (repeatable or comma list; default: from its workers)",
      "  --label K=V               a label on the node (repeatable)",
      "  --tlscacert, --tlscert, --tlskey, --tlsservername, --tlsdir: the node's TLS files (stored as absolute paths)",
      "  ls                        every builder (bk-build's, then buildx's) and its nodes: status, BuildKit version,",
      "                            running builds, platforms (* = declared); the default builder is marked *",
      "  inspect NAME              a builder's nodes, declared platforms and labels, then what each node answers",
      "  rm NAME                   remove a bk-build builder (buildx's are removed with docker buildx rm)",
      "  use NAME                  make NAME the default builder (BK_BUILDER overrides it); 'use default' clears it",
      formatFlag,
    ],
  },
];

export const globalHelp = [
  "Global options:",
  "  --addr ADDR               buildkitd address: unix:///path, tcp://host:port or ssh://[user@]host[:port][/socket];",
  "                            a Docker Engine: docker://[CONTEXT], docker+unix:///path, docker+tcp://host[:port], docker+ssh://...",
  "                            in a container: docker-container://NAME[?context=CTX], podman-container://NAME",
  "                            (default $BUILDKIT_HOST, else unix:///run/buildkit/buildkitd.sock if it exists,",
  "                            else the Docker Engine of $DOCKER_HOST / the docker context / /var/run/docker.sock;",
  "                            a default builder ($BK_BUILDER, 'bk-build builder use') is used unless --addr or --tls* is given)",
  "  --builder NAME            run on a named builder's nodes ('bk-build builder'; not with --addr); default $BK_BUILDER,",
  "                            else the one 'bk-build builder use' chose, unless --addr or --tls* is given;",
  "                            --builder default: none, the one daemon",
  "  --tlscacert FILE          CA certificate to verify buildkitd with",
  "  --tlscert FILE            client certificate",
  "  --tlskey FILE             client key",
  "  --tlsservername NAME      server name to verify (default: the address's host)",
  "  --tlsdir DIR              directory with ca.pem, cert.pem, key.pem (or ca.crt, tls.crt, tls.key)",
  "  --timeout T               how long to wait for buildkitd: seconds or a duration (default 5)",
  "  --ssh-key FILE            ssh:// login key (default: $SSH_AUTH_SOCK's agent and ~/.ssh/id_*)",
  "  --ssh-known-hosts FILE    ssh:// host keys (default ~/.ssh/known_hosts)",
  "  --ssh-insecure-ignore-host-key  accept any ssh:// host key (insecure)",
  "  --debug                   show stack traces on errors",
  "  -h, --help                show help",
];

export function mainHelp(): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 3;
  return [
    "Usage: bk-build [OPTIONS] COMMAND [ARGS]",
    "",
    "A native BuildKit client.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    "",
    ...globalHelp,
    "  --version                 show bk-build's version",
    "",
    "Run 'bk-build COMMAND --help' for a command's options.",
    "",
  ].join("\n");
}

export function commandHelp(spec: CommandSpec): string {
  return [`Usage: ${spec.usage}`, "", spec.summary + ".", "", "Options:", ...spec.flags, "", ...globalHelp, ""].join("\n");
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/** A string flag's value, if given. */
export function str(v: Values[string]): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A repeatable flag's values. */
export function list(v: Values[string]): string[] {
  return Array.isArray(v) ? v : [];
}

export type Parsed = { kind: "help"; text: string } | { kind: "version" } | { kind: "command"; spec: CommandSpec; values: Values; positionals: string[] };

const globalValueFlags = new Set(
  Object.entries(globalOptions)
    .filter(([, o]) => o.type === "string")
    .map(([k]) => k),
);

/** Finds the command word, skipping global flags and their values. */
function findCommand(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return i + 1 < argv.length ? i + 1 : -1;
    if (a.startsWith("--")) {
      const name = a.slice(2).split("=")[0]!;
      if (globalValueFlags.has(name) && !a.includes("=")) {
        if (i + 1 >= argv.length) throw new UsageError(`flag --${name} needs a value; run 'bk-build --help'`);
        i++;
      }
      continue;
    }
    if (a.startsWith("-") && a.length > 1) continue;
    return i;
  }
  return -1;
}

/**
 * pflag's `--flag value`: a string flag takes the next argument as its
 * value even when it starts with '-' (Node's parseArgs refuses that, as if
 * the flag took no value). Such pairs are joined as `--flag=value`, so
 * `--timeout -5` reaches the check that says what is wrong with -5.
 */
function joinDashValues(args: string[], options: OptionSpec): string[] {
  const long = new Map(Object.entries(options).map(([name, o]) => [name, o]));
  const short = new Map(Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name] as const] : [])));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : /^-[^-]$/.test(a) ? short.get(a[1]!) : undefined;
    const next = args[i + 1];
    if (name !== undefined && long.get(name)?.type === "string" && next !== undefined && next.startsWith("-")) {
      out.push(`--${name}=${next}`);
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * compose's two --parallel flags: `--parallel N` is the limit (docker
 * compose's global flag), a bare `--parallel` not followed by a number is
 * docker compose build's deprecated boolean, kept as `--parallel=true`.
 */
function composeParallelForm(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    out.push(a === "--parallel" && !/^-?\d+$/.test(args[i + 1] ?? "") ? "--parallel=true" : a);
  }
  return out;
}

/**
 * pflag's other forms, which Node's parseArgs does not take: a boolean flag
 * with a value (`--push=true`, `--no-cache=false`: Go's ParseBool; the last
 * occurrence wins) and a short flag with `=` (`-t=NAME` is NAME, where
 * parseArgs would give "=NAME").
 */
function pflagForms(args: string[], options: OptionSpec, command: string): string[] {
  const bools = new Set(Object.entries(options).flatMap(([name, o]) => (o.type === "boolean" ? [name] : [])));
  const shortString = new Map(Object.entries(options).flatMap(([name, o]) => (o.short && o.type === "string" ? [[o.short, name] as const] : [])));
  const out: string[] = [];
  const final = new Map<string, boolean>();
  let tail: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      tail = args.slice(i);
      break;
    }
    const long = /^--([^=]+)(?:=([\s\S]*))?$/.exec(a);
    if (long && bools.has(long[1]!)) {
      const name = long[1]!;
      if (long[2] === undefined) final.set(name, true);
      else {
        const v = parseBool(long[2]);
        if (v === undefined) throw new UsageError(`invalid argument "${long[2]}" for "--${name}" flag: use true or false; run 'bk-build ${command} --help'`);
        final.set(name, v);
      }
      continue;
    }
    const short = /^-([^-])=([\s\S]*)$/.exec(a);
    if (short && shortString.has(short[1]!)) {
      out.push(`--${shortString.get(short[1]!)!}=${short[2]!}`);
      continue;
    }
    out.push(a);
  }
  for (const [name, v] of final) if (v) out.push(`--${name}`);
  return [...out, ...tail];
}

/** Parses argv (without node and script). Throws UsageError with one clear line. */
export function parseCommandLine(argv: string[]): Parsed {
  const at = findCommand(argv);
  if (at < 0) {
    if (argv.includes("--version")) return { kind: "version" };
    if (argv.includes("--help") || argv.includes("-h")) return { kind: "help", text: mainHelp() };
    const unknown = argv.find((a) => a.startsWith("-") && !globalOptions[a.slice(2).split("=")[0]!]);
    if (unknown) throw new UsageError(`unknown flag ${unknown}; run 'bk-build --help'`);
    throw new UsageError("no command given; run 'bk-build --help' for the list of commands");
  }
  const name = argv[at]!;
  const spec = commands.find((c) => c.name === name);
  if (!spec) {
    throw new UsageError(`unknown command "${name}"; commands are: ${commands.map((c) => c.name).join(", ")}`);
  }
  const options = { ...globalOptions, ...spec.options };
  let args = [...argv.slice(0, at), ...argv.slice(at + 1)];
  if (spec.name === "compose") args = composeParallelForm(args);
  const rest = pflagForms(joinDashValues(args, options), options, spec.name);
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options,
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (e) {
    throw new UsageError(`${describeParseError(e)}; run 'bk-build ${spec.name} --help'`, { cause: e });
  }
  if (parsed.values["help"]) return { kind: "help", text: commandHelp(spec) };
  const timeout = str(parsed.values["timeout"]);
  if (timeout !== undefined) parseTimeout(timeout);
  if (!["build", "compose", "history", "builder"].includes(spec.name) && parsed.positionals.length) {
    throw new UsageError(`'bk-build ${spec.name}' takes no arguments, got "${parsed.positionals[0]}"`);
  }
  return { kind: "command", spec, values: parsed.values, positionals: parsed.positionals };
}

function describeParseError(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  // Node names the flag as '--name', '-n, --name' or '--name <value>': give the long name.
  const flag = /'(?:-[^-' ], )?(--?[^' ,]+)/.exec(msg)?.[1];
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${flag ?? msg}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(msg) ? `flag ${flag ?? ""} needs a value` : `flag ${flag ?? ""} takes no value`;
    default:
      return msg;
  }
}

/** --format validation. */
export function outputFormat(values: Values): "table" | "json" {
  const f = values["format"];
  if (f === undefined || f === "table") return "table";
  if (f === "json") return "json";
  throw new UsageError(`invalid --format "${String(f)}": use table or json`);
}
