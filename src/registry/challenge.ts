/**
 * The WWW-Authenticate header of a registry's 401 (RFC 7235 §4.1): one or
 * more challenges, each a scheme and its parameters, e.g.
 *
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"
 *
 * Values may be tokens or quoted strings (which can hold commas, and
 * backslash escapes); a header can hold several challenges separated by
 * commas ("Basic realm=x, Bearer realm=y"), and Node joins repeated
 * headers with ", ", which reads the same.
 */

export interface AuthChallenge {
  /** Lower case: "bearer", "basic". */
  scheme: string;
  /** By lower-case name: realm, service, scope, error. */
  params: Record<string, string>;
  /** A token68 instead of parameters (rare in challenges; "Negotiate abc=="). */
  token68?: string;
}

/** RFC 7230's tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
/** RFC 7235's token68. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/** The challenges in a WWW-Authenticate value, in order; unreadable bits are skipped. */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const token = (): string => {
    const m = TOKEN.exec(header.slice(i));
    if (!m) return "";
    i += m[0].length;
    return m[0];
  };
  const bare = (): string => {
    const m = /^[^,\s]*/.exec(header.slice(i))!;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string => {
    i++; // the opening quote
    let s = "";
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++;
      s += header.charAt(i);
      i++;
    }
    i++; // the closing quote (or the end)
    return s;
  };
  let current: AuthChallenge | undefined;
  // Right after a scheme, before any comma: where a token68 may stand.
  let afterScheme = false;
  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      afterScheme = false;
      continue;
    }
    if (current && afterScheme) {
      // A token68 stands alone: up to the end or the next comma.
      const m = TOKEN68.exec(header.slice(i));
      const rest = m ? header.slice(i + m[0].length).trimStart() : "";
      if (m && (rest === "" || rest.startsWith(","))) {
        current.token68 = m[0];
        i += m[0].length;
        afterScheme = false;
        continue;
      }
    }
    const name = token();
    if (!name) {
      i++; // not a token: skip it
      continue;
    }
    skipSpace();
    if (header[i] === "=") {
      i++;
      skipSpace();
      // Unquoted values should be tokens; registries also send URLs bare (realm=https://...): up to a comma or space.
      const value = header[i] === '"' ? quoted() : bare();
      if (current) current.params[name.toLowerCase()] = value;
      afterScheme = false;
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    afterScheme = true;
  }
  return out;
}
