/** Pure parsers for `bk-build build` flags, following buildx. */
import { UsageError } from "../errors.js";
import type { ExportSpec } from "../solve/build.js";
import type { SecretSource } from "../solve/secrets.js";
import type { SshAgentSource } from "../solve/ssh.js";
import type { RegistryCredential } from "../solve/registry-auth.js";

/** Splits one CSV record the way Go's encoding/csv does (quotes, "" escapes). */
export function csvFields(text: string): string[] {
  const out: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  let atStart = true;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && atStart) {
      quoted = true;
      atStart = false;
      i++;
      continue;
    }
    if (ch === ",") {
      out.push(field);
      field = "";
      atStart = true;
      i++;
      continue;
    }
    field += ch;
    atStart = false;
    i++;
  }
  if (quoted) throw new UsageError(`unterminated quote in "${text}"`);
  out.push(field);
  return out;
}

function keyValue(field: string, flag: string, whole: string): [string, string] {
  const eq = field.indexOf("=");
  if (eq < 0) throw new UsageError(`invalid field '${field}' in ${flag} "${whole}": must be a key=value pair`);
  return [field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1)];
}

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
  for (const f of csvFields(spec)) {
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
 * --ssh default|ID[=PATH[,PATH...]] as buildx: split at the first "=", the
 * rest at ","; an empty id is "default"; no path is $SSH_AUTH_SOCK. One
 * socket, or any number of private key files. Also buildctl's raw=true
 * (pass a socket's bytes unchanged) and our passphrase-env=VAR (the
 * passphrase of encrypted keys, read from that variable).
 */
export function parseSsh(
  spec: string,
  env: Record<string, string | undefined>,
  isSocket: (path: string) => boolean,
): [string, SshAgentSource] {
  const eq = spec.indexOf("=");
  const id = (eq < 0 ? spec : spec.slice(0, eq)).trim() || "default";
  const paths: string[] = [];
  let raw = false;
  let passphraseEnv: string | undefined;
  for (const part of eq < 0 ? [] : spec.slice(eq + 1).split(",")) {
    if (/^raw=/i.test(part)) {
      const v = part.slice(4).toLowerCase();
      if (v !== "true" && v !== "false") throw new UsageError(`invalid raw value "${part.slice(4)}" in --ssh "${spec}": use raw=true or raw=false`);
      raw = v === "true";
    } else if (/^passphrase-env=/i.test(part)) {
      passphraseEnv = part.slice("passphrase-env=".length);
      if (!passphraseEnv) throw new UsageError(`--ssh "${spec}": passphrase-env needs a variable name`);
    } else if (part !== "") {
      paths.push(part);
    }
  }
  if (paths.length === 0) {
    const sock = env["SSH_AUTH_SOCK"];
    if (!sock) throw new UsageError(`--ssh "${spec}": SSH_AUTH_SOCK is not set; start an ssh-agent, or pass a socket or key file (--ssh ${id}=PATH)`);
    paths.push(sock);
  }
  const sockets = paths.filter(isSocket);
  if (sockets.length) {
    if (paths.length > 1) throw new UsageError(`--ssh "${spec}": give one agent socket, or key files, not both or several sockets`);
    if (passphraseEnv) throw new UsageError(`--ssh "${spec}": passphrase-env is for key files, not an agent socket`);
    return [id, { socket: sockets[0]!, raw }];
  }
  if (raw) throw new UsageError(`--ssh "${spec}": raw=true needs an agent socket, not key files`);
  let passphrase: string | undefined;
  if (passphraseEnv) {
    passphrase = env[passphraseEnv];
    if (passphrase === undefined) throw new UsageError(`--ssh "${spec}": environment variable ${passphraseEnv} (passphrase-env) is not set`);
  }
  return [id, { keys: paths, passphrase }];
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
    throw new UsageError(`invalid --registry-auth "${spec}": "${name}" is not an environment variable name; pass the password through a variable, not on the command line`);
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

/** --label K=V. */
export function parseLabels(specs: string[]): Record<string, string> {
  return parsePairs(specs, "--label", "KEY=VALUE", false);
}

/** --build-context NAME=DIR|docker-image://REF|... */
export function parseBuildContexts(specs: string[]): Record<string, string> {
  return parsePairs(specs, "--build-context", "NAME=DIR or NAME=docker-image://REF", true);
}

/** --output type=image,name=...,push=true (type=registry means image with push=true). */
export function parseOutput(spec: string): ExportSpec {
  const attrs: Record<string, string> = {};
  let type = "";
  for (const f of csvFields(spec)) {
    const [k, v] = keyValue(f, "--output", spec);
    if (k === "type") type = v;
    else attrs[k] = v;
  }
  if (!type) {
    throw new UsageError(`--output "${spec}" has no type: use type=image,name=NAME[,push=true] or type=registry,name=NAME`);
  }
  if (type === "registry") {
    type = "image";
    attrs["push"] = "true";
  }
  if (type !== "image") {
    throw new UsageError(`--output type=${type} is not supported yet: use type=image or type=registry`);
  }
  return { type, attrs };
}

export type ProgressMode = "plain" | "rawjson" | "quiet";

/** --progress (default from BUILDKIT_PROGRESS): auto and tty print plain for now. */
export function parseProgress(value: string | undefined, env: Record<string, string | undefined>): ProgressMode {
  const v = value ?? env["BUILDKIT_PROGRESS"] ?? "auto";
  switch (v) {
    case "auto":
    case "tty":
    case "plain":
      return "plain";
    case "rawjson":
      return "rawjson";
    case "quiet":
      return "quiet";
    default:
      throw new UsageError(`invalid progress mode "${v}"${value === undefined ? " (from BUILDKIT_PROGRESS)" : ""}: use auto, plain, rawjson or quiet`);
  }
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
    const kv = new Map(fields.map((f) => {
      const eq = f.indexOf("=");
      return eq < 0 ? [f.toLowerCase(), "true"] as const : [f.slice(0, eq).toLowerCase(), f.slice(eq + 1)] as const;
    }));
    const type = kv.get("type");
    if (type !== "secret" && type !== "ssh") continue;
    const target = kv.get("target") ?? kv.get("dst") ?? kv.get("destination");
    const id = kv.get("id") || (type === "ssh" ? "default" : target ? target.split("/").pop()! : "");
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
