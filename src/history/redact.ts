/**
 * Masking secret-looking values in history records before anyone prints
 * them. buildkitd stores frontend attributes verbatim, build-arg values
 * included, so a token passed as a build argument is in every record.
 *
 * The rules follow what upstream does elsewhere: buildx's export bundles
 * mask `token=...`-style pairs and GitHub tokens; BuildKit's
 * SecretsUsedInArgOrEnv lint calls an argument name secret when one of its
 * `_`-separated words is a secret word; BuildKit's provenance masks the
 * credentials of URLs.
 */

/** What a masked value (or part of one) becomes, as buildx and BuildKit write it. */
export const MASK = "xxxxx";

/** BuildKit's SecretsUsedInArgOrEnv words (v0.24 dockerfile2llb), matched as whole `_`-separated words. */
const SECRET_NAME = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
/** BuildKit's allow-list for the same rule: a `public` word makes the name not secret. */
const PUBLIC_NAME = /(?:_|^)public(?:_|$)/i;
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
