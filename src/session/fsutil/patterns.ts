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
  try {
    return new RegExp(re, "s");
  } catch {
    // An invalid class such as "[" never matches, as in Go where it errors.
    return /(?!)/;
  }
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
      const segments = p.split("/").map((seg) => (seg.includes("**") ? ("**" as const) : toRegExp(seg)));
      this.#patterns.push({ text: p, exclusion, re: toRegExp(p), segments });
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
