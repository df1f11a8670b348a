/**
 * Path patterns with the semantics of moby/patternmatcher, which buildkitd's
 * include/exclude lists are written for:
 * - `*` matches within one path segment, `?` one character, `[...]` a class;
 * - `**` matches any number of segments (also none); a trailing `**` matches
 *   everything below;
 * - `\` escapes the next character;
 * - `!pattern` re-includes what earlier patterns excluded; the last pattern
 *   that matches decides;
 * - a pattern also matches every path below a directory it matches.
 */

interface Pattern {
  text: string;
  exclusion: boolean;
  re: RegExp;
  /** One matcher per path segment; "**" where a segment holds a double star. */
  segments: Array<RegExp | "**">;
}

/** Go's path.Clean for slash paths. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

function toRegExp(pattern: string): RegExp {
  let re = "^";
  // Code points, as Go ranges over a string's runes.
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === "*") {
      if (chars[i + 1] === "*") {
        i++;
        if (chars[i + 1] === "/") i++;
        re += i + 1 >= chars.length ? ".*" : "(.*/)?";
      } else {
        re += "[^/]*";
      }
    } else if (ch === "?") {
      re += "[^/]";
    } else if (ch === "\\") {
      if (i + 1 < chars.length) re += "\\" + chars[++i]!;
      else re += "\\\\";
    } else if (".+()|{}$".includes(ch)) {
      // Regexp syntax that means nothing in a path pattern is literal.
      re += "\\" + ch;
    } else {
      // Everything else, including "[", "]", "^" and "-" of character
      // classes, goes through as it is.
      re += ch;
    }
  }
  re += "$";
  // A class range out of order ([z-a], [Local-Only]) passes filepath.Match's
  // check but not Go's regexp compiler, so patternmatcher fails on it too:
  // the SyntaxError is turned into that error by the caller.
  return new RegExp(re, "s");
}

/**
 * Why `pattern` is malformed for Go's filepath.Match (which
 * patternmatcher.New calls to check each pattern), or undefined: a
 * trailing `\`, or a `[` class that is empty, unclosed, or has a bare `-`
 * or `]` where a character belongs (`[]a]`, `[-x]`, `[x-]`, `[a-b-c]`).
 */
export function patternSyntaxError(pattern: string): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  const c = [...pattern];
  let i = 0;
  // Go's getEsc: one class character, `\` escaping the next; `-` or `]` bare, or nothing after it, is an error.
  const esc = (): boolean => {
    if (i >= c.length || c[i] === "-" || c[i] === "]") return false;
    if (c[i] === "\\") {
      i++;
      if (i >= c.length) return false;
    }
    i++;
    return i < c.length;
  };
  while (i < c.length) {
    const ch = c[i]!;
    if (ch === "\\") {
      i += 2;
      if (i > c.length) return "a trailing \\ escapes nothing";
      continue;
    }
    if (ch !== "[") {
      i++;
      continue;
    }
    i++;
    if (c[i] === "^") i++;
    for (let ranges = 0; ; ranges++) {
      if (c[i] === "]" && ranges > 0) {
        i++;
        break;
      }
      if (!esc()) return "a [ class that is unclosed, empty, or has a bare - or ]";
      if (c[i] === "-") {
        i++;
        if (!esc()) return "a [ class that is unclosed, empty, or has a bare - or ]";
      }
    }
  }
  return undefined;
}

export class PatternMatcher {
  readonly #patterns: Pattern[];
  readonly hasExclusions: boolean;

  constructor(patterns: readonly string[]) {
    this.#patterns = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === "") continue;
      let exclusion = false;
      if (p.startsWith("!")) {
        exclusion = true;
        p = p.slice(1);
        if (p === "") throw new Error(`illegal exclusion pattern: "!"`);
      }
      p = cleanPath(p);
      // As patternmatcher.New: a malformed pattern is an error (Go's filepath.ErrBadPattern), not a pattern that never matches.
      const bad = patternSyntaxError(p);
      if (bad !== undefined) throw new Error(`syntax error in pattern ${JSON.stringify(raw.trim())}: ${bad}`);
      try {
        const segments = p.split("/").map((seg) => (seg.includes("**") ? ("**" as const) : toRegExp(seg)));
        this.#patterns.push({ text: p, exclusion, re: toRegExp(p), segments });
      } catch {
        throw new Error(`syntax error in pattern ${JSON.stringify(raw.trim())}: a [ class range out of order`);
      }
    }
    this.hasExclusions = this.#patterns.some((p) => p.exclusion);
  }

  get patterns(): readonly string[] {
    return this.#patterns.map((p) => (p.exclusion ? "!" : "") + p.text);
  }

  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /** Whether `path` (clean, slash-separated, relative) or one of its parents matches; the last matching pattern wins. */
  matchesOrParentMatches(path: string): boolean {
    let matched = false;
    const parts = path.split("/");
    for (const p of this.#patterns) {
      if (p.exclusion !== matched) continue;
      let hit = p.re.test(path);
      for (let i = 1; !hit && i < parts.length; i++) {
        hit = p.re.test(parts.slice(0, i).join("/"));
      }
      if (hit) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * Whether some pattern could match a path below directory `dir`, so a walk
   * must descend into it even though `dir` itself does not match.
   */
  couldMatchBelow(dir: string, exclusionsOnly = false): boolean {
    const dirParts = dir.split("/");
    for (const p of this.#patterns) {
      if (exclusionsOnly && !p.exclusion) continue;
      let ok = true;
      for (let i = 0; i < dirParts.length; i++) {
        const seg = p.segments[i];
        if (seg === undefined) {
          ok = false;
          break;
        }
        if (seg === "**") break;
        if (!seg.test(dirParts[i]!)) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }
}
