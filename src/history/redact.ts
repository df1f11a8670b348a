/**
 * Masking secret-looking values in history records before anyone prints
 * them. buildkitd stores frontend attributes verbatim, build-arg values
 * included, so a token passed as a build argument is in every record.
 *
 * The rules follow what upstream does elsewhere: buildx's export bundles
 * mask `token=...`-style pairs and GitHub tokens; BuildKit's
 * SecretsUsedInArgOrEnv lint calls an argument name secret when one of its
 * words is a secret word; BuildKit's provenance masks the
 * credentials of URLs.
 */

import type { SolveStatus } from "../progress/status.js";

/** What a masked value (or part of one) becomes, as buildx and BuildKit write it. */
export const MASK = "xxxxx";

/**
 * BuildKit's SecretsUsedInArgOrEnv words (v0.24 dockerfile2llb), matched as
 * whole words; BuildKit splits names at `_`, we also at `.` and `-` (for
 * attribute keys such as `registry.token`).
 */
const SECRET_NAME = /(?:[_.-]|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:[_.-]|$)/i;
/** BuildKit's allow-list for the same rule: a `public` word makes the name not secret. */
const PUBLIC_NAME = /(?:[_.-]|^)public(?:[_.-]|$)/i;
/** buildx's sanitizeCommand: `key=value` pairs whose key is a token name. */
const SECRET_PAIR = /(ghtoken|token|access_key_id|secret_access_key|session_token)=[^ ,]+/gi;
/** GitHub tokens by shape (classic, OAuth, user, server, refresh, fine-grained). */
const GITHUB_TOKEN = /\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{82})\b/g;
/** user:password@ in a URL. */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*)(?::([^/@\s]*))?@/gi;

/** True when an attribute or build-arg name says its value is a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !PUBLIC_NAME.test(name);
}

/** Masks the secret-looking parts of one value: token pairs, GitHub tokens, URL credentials. */
export function redactValue(value: string): string {
  return value
    .replace(SECRET_PAIR, `$1=${MASK}`)
    .replace(GITHUB_TOKEN, MASK)
    .replace(URL_USERINFO, (_m, scheme: string, user: string, password: string | undefined) => {
      if (password !== undefined) return `${scheme}${user ? MASK : ""}:${MASK}@`;
      return user ? `${scheme}${MASK}@` : _m;
    });
}

/**
 * Masks one attribute: the whole value when its name (for `build-arg:NAME`
 * and `secret`-like keys the part after the last `:`) is a secret name,
 * else its secret-looking parts.
 */
export function redactAttr(key: string, value: string): string {
  const name = key.slice(key.lastIndexOf(":") + 1);
  if (value !== "" && isSecretName(name)) return MASK;
  return redactValue(value);
}

/** redactAttr over a whole map. */
export function redactAttrs(attrs: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = redactAttr(k, v);
  return out;
}

/** Values shorter than this are not masked inside free text (a one-letter value would mask every such letter). */
export const MIN_MASKED_TEXT = 4;

/**
 * The exact strings redactAttr hides in these attributes: whole values of
 * secret names, `token=` values, GitHub tokens, URL credentials. BuildKit
 * copies attribute values into other text (the Dockerfile frontend expands
 * build args in step names, so in progress logs and error messages); those
 * are masked with maskText.
 */
export function secretValues(attrs: Readonly<Record<string, string>>): string[] {
  const out = new Set<string>();
  const add = (v: string | undefined): void => {
    if (v && v.length >= MIN_MASKED_TEXT && v !== MASK) out.add(v);
  };
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== "" && isSecretName(k.slice(k.lastIndexOf(":") + 1))) add(v);
    for (const m of v.matchAll(SECRET_PAIR)) add(m[0].slice(m[1]!.length + 1));
    for (const m of v.matchAll(GITHUB_TOKEN)) add(m[0]);
    for (const m of v.matchAll(URL_USERINFO)) {
      add(m[3]);
      if (m[3] !== undefined || m[2]) add(m[2]);
    }
  }
  // Longest first, so a value that contains another is masked whole.
  return [...out].sort((a, b) => b.length - a.length);
}

/** Masks every occurrence of `values` in `text`. */
export function maskText(text: string, values: readonly string[]): string {
  let out = text;
  for (const v of values) if (out.includes(v)) out = out.split(v).join(MASK);
  return out;
}

/** maskText for bytes (log output), leaving bytes that hold no value untouched. */
export function maskBytes(data: Buffer, values: readonly string[]): Buffer {
  let out = data;
  for (const v of values) {
    const needle = Buffer.from(v);
    let at = out.indexOf(needle);
    if (at < 0) continue;
    const parts: Buffer[] = [];
    let from = 0;
    while (at >= 0) {
      parts.push(out.subarray(from, at), Buffer.from(MASK));
      from = at + needle.length;
      at = out.indexOf(needle, from);
    }
    parts.push(out.subarray(from));
    out = Buffer.concat(parts);
  }
  return out;
}

/** A progress update with `values` masked in step names, errors, status lines, logs and warnings. */
export function maskStatus(s: SolveStatus, values: readonly string[]): SolveStatus {
  if (values.length === 0) return s;
  const t = (x: string): string => maskText(x, values);
  return {
    vertexes: s.vertexes.map((v) => ({ ...v, name: t(v.name), ...(v.error !== undefined ? { error: t(v.error) } : {}) })),
    statuses: s.statuses.map((st) => ({ ...st, id: t(st.id), name: t(st.name) })),
    logs: s.logs.map((l) => ({ ...l, data: maskBytes(l.data, values) })),
    warnings: s.warnings.map((w) => ({ ...w, short: t(w.short), detail: w.detail.map(t), url: t(w.url) })),
  };
}
