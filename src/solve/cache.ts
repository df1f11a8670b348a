/**
 * Build cache import/export entries, as buildx's --cache-from/--cache-to,
 * and what buildx fills in from the client's environment before they go to
 * the daemon.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { homedir } from "node:os";
import { UsageError } from "../errors.js";
import { parseBool } from "../units.js";
import { csvFields, typedFields } from "../csv.js";
import { checkImageName } from "./reference.js";

export interface CacheEntry {
  /** registry, inline, local, gha, s3, azblob (the daemon decides what it supports). */
  type: string;
  attrs: Record<string, string>;
}

/**
 * One --cache-from/--cache-to value: `type=T,k=v,...`, or bare registry refs
 * (`user/app:cache`, or several: `a:cache,b:cache`, one entry each, as
 * buildx). A registry ref is checked as buildkitd reads it.
 */
export function parseCacheEntries(spec: string, flag: string): CacheEntry[] {
  if (spec === "") return [];
  if (!spec.includes("=")) {
    return csvFields(spec, ",", flag).map((ref) => {
      checkImageName(ref, "image reference", `in ${flag}`);
      return { type: "registry", attrs: { ref } };
    });
  }
  const { type, attrs } = typedFields(spec, flag);
  if (!type) throw new UsageError(`${flag} "${spec}" has no type: use type=registry,ref=REF, type=local,src=DIR or type=inline`);
  if (type === "registry") {
    const ref = attrs["ref"];
    if (ref === undefined) throw new UsageError(`${flag} "${spec}" has no ref=: use type=registry,ref=REF`);
    checkImageName(ref, "ref", `in ${flag} ${JSON.stringify(spec)}`);
  }
  return [{ type, attrs }];
}

type Env = Record<string, string | undefined>;

/** Go's strconv.ParseBool for "true" values. */

/**
 * GitHub Actions cache: token and URLs from the runner's environment, as
 * buildx's addGithubToken. Returns false when the entry is still missing
 * them (buildx drops it, so a CI script also runs outside Actions).
 */
function fillGha(attrs: Record<string, string>, env: Env): boolean {
  let version = attrs["version"];
  if (version === undefined && parseBool(env["ACTIONS_CACHE_SERVICE_V2"]) === true) version = "2";
  const token = env["ACTIONS_RUNTIME_TOKEN"];
  if (attrs["token"] === undefined && token !== undefined) attrs["token"] = token;
  if (attrs["url_v2"] === undefined && version === "2" && env["ACTIONS_RESULTS_URL"] !== undefined) attrs["url_v2"] = env["ACTIONS_RESULTS_URL"];
  if (attrs["url"] === undefined) {
    const url = env["ACTIONS_CACHE_URL"] ?? env["ACTIONS_RESULTS_URL"];
    if (url !== undefined) attrs["url"] = url;
  }
  return !!attrs["token"] && (!!attrs["url"] || !!attrs["url_v2"]);
}

/** [profile] sections of an AWS shared credentials file. */
function awsProfile(text: string, profile: string): Record<string, string> {
  const out: Record<string, string> = {};
  let current = "";
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (section) current = section[1]!;
    else if (current === profile) {
      const i = line.indexOf("=");
      if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
  }
  return out;
}

/**
 * S3 cache: credentials from the client's environment, as buildx fills them
 * from the AWS default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, else the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or
 * "default"). SSO and instance-metadata credentials are not looked up. Keys
 * given in the entry win.
 */
function fillS3(attrs: Record<string, string>, env: Env): void {
  if (attrs["access_key_id"] !== undefined && attrs["secret_access_key"] !== undefined) return;
  let creds: { id?: string | undefined; secret?: string | undefined; token?: string | undefined } = {};
  if (env["AWS_ACCESS_KEY_ID"] && env["AWS_SECRET_ACCESS_KEY"]) {
    creds = { id: env["AWS_ACCESS_KEY_ID"], secret: env["AWS_SECRET_ACCESS_KEY"], token: env["AWS_SESSION_TOKEN"] };
  } else {
    const home = env["HOME"] ?? homedir();
    const file = env["AWS_SHARED_CREDENTIALS_FILE"] ?? join(home, ".aws", "credentials");
    try {
      const p = awsProfile(readFileSync(file, "utf8"), env["AWS_PROFILE"] ?? "default");
      creds = { id: p["aws_access_key_id"], secret: p["aws_secret_access_key"], token: p["aws_session_token"] };
    } catch {
      return; // no credentials file: the daemon's own credentials apply
    }
  }
  if (attrs["access_key_id"] === undefined && creds.id) attrs["access_key_id"] = creds.id;
  if (attrs["secret_access_key"] === undefined && creds.secret) attrs["secret_access_key"] = creds.secret;
  if (attrs["session_token"] === undefined && creds.token) attrs["session_token"] = creds.token;
}

export interface ResolvedCaches {
  imports: CacheEntry[];
  exports: CacheEntry[];
  warnings: string[];
}

/**
 * The entries as the request sends them: copies with credentials filled in
 * from `env` (gha, s3), gha entries without them dropped with a warning,
 * `local` directories made absolute (the store the daemon asks for is named
 * by that same string). Throws UsageError for a local entry without its
 * directory.
 */
/**
 * `to` plus an inline cache export when the build arg BUILDKIT_INLINE_CACHE
 * is true (Go's ParseBool: 1, t, true in any case), as buildx's toSolveOpt
 * does for every build: the old docker build way of asking for one.
 */
export function withInlineCacheArg(to: readonly CacheEntry[], buildArgs: Record<string, string> | undefined): readonly CacheEntry[] {
  const v = buildArgs && Object.hasOwn(buildArgs, "BUILDKIT_INLINE_CACHE") ? buildArgs["BUILDKIT_INLINE_CACHE"] : undefined;
  return parseBool(v) === true ? [...to, { type: "inline", attrs: {} }] : to;
}

export function resolveCaches(from: readonly CacheEntry[], to: readonly CacheEntry[], env: Env): ResolvedCaches {
  const warnings: string[] = [];
  const map = (entries: readonly CacheEntry[], dir: "import" | "export"): CacheEntry[] => {
    const out: CacheEntry[] = [];
    const flag = dir === "import" ? "--cache-from" : "--cache-to";
    for (const e of entries) {
      const attrs = { ...e.attrs };
      if (e.type === "local") {
        const key = dir === "import" ? "src" : "dest";
        const path = attrs[key];
        if (!path)
          throw new UsageError(`${flag} type=local needs ${key}=DIR (the OCI layout directory the cache is ${dir === "import" ? "read from" : "written to"})`);
        attrs[key] = resolve(path);
        // The daemon names the store in a gRPC header, which must be printable ASCII.
        if (!/^[\x20-\x7e]*$/.test(attrs[key])) {
          throw new UsageError(
            `${flag} type=local,${key}=${path}: the directory's path must be printable ASCII (buildkitd sends it in a header); use another directory`,
          );
        }
      } else if (e.type === "gha") {
        if (!fillGha(attrs, env)) {
          warnings.push(
            `${flag} type=gha skipped: no GitHub Actions cache token and URL (set outside Actions: ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL, or token= and url=)`,
          );
          continue;
        }
      } else if (e.type === "s3") {
        fillS3(attrs, env);
      }
      out.push({ type: e.type, attrs });
    }
    return out;
  };
  return { imports: map(from, "import"), exports: map(to, "export"), warnings };
}
