/**
 * The X-Registry-Auth header: base64url (RFC 4648 §5, with padding) of the
 * JSON of moby's registry.AuthConfig, byte for byte as Go writes it
 * (api/pkg/authconfig.Encode: json.Marshal, then base64.URLEncoding).
 */

export type RegistryAuth = { username: string; password: string; serverAddress?: string } | { identityToken: string; serverAddress?: string };

/** The header name. Its value holds credentials: never log it or put it in a message. */
export const REGISTRY_AUTH_HEADER = "X-Registry-Auth";

/**
 * A JSON string as Go's encoding/json writes it: like JSON.stringify, but
 * with <, >, & and U+2028/U+2029 escaped (Go's HTML-safe default).
 */
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Go's json.Marshal of registry.AuthConfig: fields in declaration order
 * (username, password, auth, serveraddress, identitytoken, registrytoken),
 * each omitted when empty (`omitempty`).
 */
export function registryAuthJson(a: RegistryAuth | undefined): string {
  const fields: Array<[string, string | undefined]> = a
    ? "identityToken" in a
      ? [
          ["serveraddress", a.serverAddress],
          ["identitytoken", a.identityToken],
        ]
      : [
          ["username", a.username],
          ["password", a.password],
          ["serveraddress", a.serverAddress],
        ]
    : [];
  const parts = fields.filter((f): f is [string, string] => f[1] !== undefined && f[1] !== "").map(([k, v]) => `"${k}":${goJsonString(v)}`);
  return `{${parts.join(",")}}`;
}

/** The X-Registry-Auth value for `a`; no credentials gives the empty document "{}" (e30=), as the docker CLI sends. */
export function encodeRegistryAuth(a: RegistryAuth | undefined): string {
  return Buffer.from(registryAuthJson(a), "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/** The secrets in `a` and in its encoded header, to be blanked out of anything shown. */
export function registryAuthSecrets(a: RegistryAuth | undefined): string[] {
  if (!a) return [];
  const secrets = "identityToken" in a ? [a.identityToken] : [a.password];
  secrets.push(encodeRegistryAuth(a));
  return secrets.filter((s) => s !== "");
}
