/** Pure parsers for `bk-build build` flags, following buildx. */
import {
  ANNOTATION_TYPES,
  DEFAULT_SSH_ID,
  UsageError,
  checkImageName,
  checkPlatform,
  csvFields,
  familiarString,
  keyValue,
  parseAttestation,
  shorthandAttestation,
  typedFields,
} from "../internal.js";
import type { AnnotationSpec, AnnotationType, AttestationSpec, ExportSpec, RegistryCredential, SecretSource } from "../index.js";

export interface ParsedSecret {
  id: string;
  source: SecretSource;
  /** How the value will be found, for messages (never the value). */
  describe: string;
}

/**
 * --secret [type=file|env,]id=ID[,src|source=PATH][,env=VAR] as buildx parses
 * it. Only an id: the environment variable ID if set, else the file ID.
 */
export function parseSecret(spec: string, env: Record<string, string | undefined>): ParsedSecret {
  let id = "";
  let type = "";
  let src = "";
  let envName = "";
  for (const f of csvFields(spec, ",", "--secret")) {
    const [k, v] = keyValue(f, "--secret", spec);
    switch (k) {
      case "type":
        if (v !== "file" && v !== "env") throw new UsageError(`unsupported secret type "${v}" in --secret "${spec}": use file or env`);
        type = v;
        break;
      case "id":
        id = v;
        break;
      case "src":
      case "source":
        src = v;
        break;
      case "env":
        envName = v;
        break;
      default:
        throw new UsageError(`unexpected key '${k}' in --secret "${spec}": use id, src, env or type`);
    }
  }
  if (!id) throw new UsageError(`--secret "${spec}" has no id: use --secret id=NAME[,src=PATH|env=VAR]`);
  if (type === "env" && !envName) {
    envName = src;
    src = "";
  }
  if (!envName && !src) {
    if (env[id] !== undefined) envName = id;
    else src = id;
  }
  if (envName) return { id, source: { env: envName }, describe: `environment variable ${envName}` };
  return { id, source: { file: src }, describe: `file ${src}` };
}

/**
 * --registry-auth HOST=USER:VAR: a login whose password (or token) is read
 * from environment variable VAR, never from the command line. An empty
 * USER makes it an identity token.
 */
export function parseRegistryAuth(spec: string, env: Record<string, string | undefined>): [string, RegistryCredential] {
  const eq = spec.indexOf("=");
  const colon = spec.lastIndexOf(":");
  const host = eq < 0 ? "" : spec.slice(0, eq);
  if (!host || colon < eq) {
    throw new UsageError(`invalid --registry-auth "${spec}": use HOST=USER:ENV_VAR (the password is read from environment variable ENV_VAR)`);
  }
  const user = spec.slice(eq + 1, colon);
  const name = spec.slice(colon + 1);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new UsageError(
      `invalid --registry-auth "${spec}": "${name}" is not an environment variable name; pass the password through a variable, not on the command line`,
    );
  }
  const value = env[name];
  if (value === undefined) throw new UsageError(`--registry-auth "${spec}": environment variable ${name} is not set`);
  return [host, user ? { username: user, password: value } : { token: value }];
}

/** --build-arg K=V, or bare K: the value of environment variable K (skipped when unset), as buildx. */
export function parseBuildArgs(specs: string[], env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of specs) {
    const eq = s.indexOf("=");
    if (eq === 0) throw new UsageError(`invalid --build-arg "${s}": use NAME=VALUE or NAME`);
    if (eq < 0) {
      const v = env[s];
      if (v !== undefined) out[s] = v;
      continue;
    }
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** Repeated NAME=VALUE flags; a name is required, a value when `valueRequired`. */
function parsePairs(specs: string[], flag: string, usage: string, valueRequired: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of specs) {
    const eq = s.indexOf("=");
    if (eq <= 0 || (valueRequired && eq === s.length - 1)) throw new UsageError(`invalid ${flag} "${s}": use ${usage}`);
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** --label K=V, or a bare K: an empty value, as buildx. */
export function parseLabels(specs: string[]): Record<string, string> {
  return parsePairs(
    specs.map((s) => (s.includes("=") ? s : `${s}=`)),
    "--label",
    "KEY=VALUE",
    false,
  );
}

/**
 * --build-context NAME=DIR|docker-image://REF|..., as buildx's
 * ParseContextNames: empty values are skipped, and NAME is read as an image
 * name (ParseNormalizedNamed) and kept in its familiar form without
 * ":latest", so `docker.io/library/alpine:latest` is the context `alpine`
 * that `FROM alpine` uses, and a name that is no image name is refused.
 * `target:` links bake targets, which one build cannot resolve (buildx
 * fails later with "failed to find target"); it is refused here.
 */
export function parseBuildContexts(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs.filter((s) => s !== "")) {
    const eq = spec.indexOf("=");
    if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`invalid --build-context "${spec}": use NAME=DIR or NAME=docker-image://REF`);
    const key = spec.slice(0, eq);
    const value = spec.slice(eq + 1);
    const name = familiarString(checkImageName(key, "--build-context name", `in "${key}=${value}"`)).replace(/:latest$/, "");
    if (value.startsWith("target:")) {
      throw new UsageError(
        `--build-context "${key}=${value}": target: contexts link bake targets and 'bk-build build' builds one; build that target first and use docker-image://REF, or a directory`,
      );
    }
    out[name] = value;
  }
  return out;
}

/**
 * One --output value, as buildx parses it: CSV `type=T,dest=D,k=v`; a bare
 * value is `type=local,dest=VALUE`, and a bare `-` is `type=tar,dest=-`
 * (stdout). `dest` stays out of the attributes. What each type needs is
 * checked when the build is resolved.
 */
export function parseOutput(spec: string): ExportSpec {
  if (spec === "") throw new UsageError("--output needs a value: a directory, -, or type=TYPE,...");
  const fields = csvFields(spec, ",", "--output");
  if (fields.length === 1 && fields[0] === spec && !spec.startsWith("type=")) {
    return spec === "-" ? { type: "tar", dest: "-" } : { type: "local", dest: spec };
  }
  const { type, attrs } = typedFields(spec, "--output");
  if (!type) throw new UsageError(`--output "${spec}" has no type: use type=local,dest=DIR, type=tar,dest=FILE, type=image,name=NAME, ...`);
  const dest = attrs["dest"];
  delete attrs["dest"];
  if (attrs["name"]) for (const n of attrs["name"].split(",")) checkImageName(n, "image name", `in --output ${JSON.stringify(spec)}`);
  return dest === undefined ? { type, attrs } : { type, attrs, dest };
}

/**
 * --attest values, then --provenance and --sbom as buildx folds them in
 * (after the --attest list: the first of each type wins).
 */
export function parseAttests(attests: string[], provenance?: string, sbom?: string): AttestationSpec[] {
  const out = attests.map((a) => parseAttestation(a, "--attest"));
  if (provenance) out.push(shorthandAttestation("provenance", provenance, "--provenance"));
  if (sbom) out.push(shorthandAttestation("sbom", sbom, "--sbom"));
  return out;
}

const ANNOTATION_TYPE = /^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$/;

/**
 * --annotation `[TYPE[PLATFORM][,TYPE...]:]KEY=VALUE` as buildx parses it:
 * one annotation per type listed (none: the daemon's default, the
 * manifest); empty values are skipped.
 */
export function parseAnnotations(specs: string[]): AnnotationSpec[] {
  const out: AnnotationSpec[] = [];
  for (const spec of specs) {
    if (spec === "") continue;
    const eq = spec.indexOf("=");
    if (eq < 0) throw new UsageError(`invalid --annotation "${spec}": use [TYPE:]KEY=VALUE`);
    const k = spec.slice(0, eq);
    const value = spec.slice(eq + 1);
    const colon = k.indexOf(":");
    if (colon < 0) {
      out.push({ key: k, value });
      continue;
    }
    const key = k.slice(colon + 1);
    for (const tp of k.slice(0, colon).split(",")) {
      const m = ANNOTATION_TYPE.exec(tp);
      if (!m)
        throw new UsageError(
          `invalid annotation type "${tp}" in --annotation "${spec}": use TYPE or TYPE[OS/ARCH], TYPE one of ${ANNOTATION_TYPES.join(", ")}`,
        );
      if (!ANNOTATION_TYPES.includes(m[1]!))
        throw new UsageError(`unknown annotation type "${m[1]}" in --annotation "${spec}": use ${ANNOTATION_TYPES.join(", ")}`);
      const a: AnnotationSpec = { key, value, type: m[1] as AnnotationType };
      if (m[2] !== undefined) {
        checkPlatform(m[2], `platform in --annotation "${spec}"`);
        a.platform = m[2];
      }
      out.push(a);
    }
  }
  return out;
}

/** --progress as asked for; "auto" is settled against the terminal by resolveProgress. */
export type ProgressMode = "auto" | "tty" | "plain" | "rawjson" | "quiet" | "none";

const PROGRESS_MODES: readonly string[] = ["auto", "tty", "plain", "rawjson", "quiet", "none"];

/**
 * --progress; when it is missing or auto, BUILDKIT_PROGRESS if set (as
 * buildx's printer, which reads the variable whenever the mode is auto);
 * else auto.
 */
export function parseProgress(value: string | undefined, env: Record<string, string | undefined>): ProgressMode {
  const fromEnv = progressFromEnv(value, env);
  const v = fromEnv ? env["BUILDKIT_PROGRESS"]! : (value ?? "auto");
  if (PROGRESS_MODES.includes(v)) return v as ProgressMode;
  throw new UsageError(`invalid progress mode "${v}"${fromEnv ? " (from BUILDKIT_PROGRESS)" : ""}: use auto, tty, plain, rawjson, quiet or none`);
}

/** Whether the mode comes from BUILDKIT_PROGRESS: --progress missing or auto, and the variable set. */
export function progressFromEnv(value: string | undefined, env: Record<string, string | undefined>): boolean {
  return (value === undefined || value === "auto") && Boolean(env["BUILDKIT_PROGRESS"]);
}

/**
 * The display to use: auto is tty when stderr is a terminal, else plain (so
 * also in CI, where stderr is a pipe); tty on something that is not a
 * terminal is refused, as progressui does.
 */
export function resolveProgress(mode: ProgressMode, stderrIsTTY: boolean, fromEnv = false): Exclude<ProgressMode, "auto"> {
  if (mode === "auto") return stderrIsTTY ? "tty" : "plain";
  if (mode === "tty" && !stderrIsTTY) {
    throw new UsageError(`progress mode tty${fromEnv ? " (from BUILDKIT_PROGRESS)" : ""} needs stderr to be a terminal: use --progress plain or auto`);
  }
  return mode;
}

/**
 * Secret and SSH ids a Dockerfile mounts with RUN --mount=type=secret|ssh,
 * for warnings about what no flag provides. A secret's id defaults to its
 * target's base name, an SSH agent's to "default".
 */
export function dockerfileMountIds(dockerfile: string): Array<{ type: "secret" | "ssh"; id: string; required: boolean }> {
  const out = new Map<string, { type: "secret" | "ssh"; id: string; required: boolean }>();
  const text = dockerfile.replace(/\\\r?\n/g, " ");
  for (const m of text.matchAll(/--mount=([^\s]+)/g)) {
    let fields: string[];
    try {
      fields = csvFields(m[1]!);
    } catch {
      continue;
    }
    const kv = new Map(
      fields.map((f) => {
        const eq = f.indexOf("=");
        return eq < 0 ? ([f.toLowerCase(), "true"] as const) : ([f.slice(0, eq).toLowerCase(), f.slice(eq + 1)] as const);
      }),
    );
    const type = kv.get("type");
    if (type !== "secret" && type !== "ssh") continue;
    const target = kv.get("target") ?? kv.get("dst") ?? kv.get("destination");
    const id = kv.get("id") || (type === "ssh" ? DEFAULT_SSH_ID : target ? target.split("/").pop()! : "");
    if (!id) continue;
    const required = kv.get("required") === "true" || kv.get("required") === "";
    const key = `${type}\0${id}`;
    out.set(key, { type, id, required: (out.get(key)?.required ?? false) || required });
  }
  return [...out.values()];
}

/**
 * The exporter response as buildx/buildctl --metadata-file write it: values
 * that are base64 of a JSON object are inlined.
 */
export function metadataJson(resp: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resp)) {
    out[k] = v;
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(v) && v.length % 4 === 0) {
      try {
        const parsed: unknown = JSON.parse(Buffer.from(v, "base64").toString("utf8"));
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) out[k] = parsed;
      } catch {
        // not JSON: keep the string
      }
    }
  }
  return out;
}
