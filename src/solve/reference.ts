/**
 * Image references ("registry.example.com:5000/team/app:1.2@sha256:..."), as
 * github.com/distribution/reference parses them: the grammar of its
 * reference.go/regexp.go, and normalize.go's Docker conventions (docker.io,
 * library/, latest). Tags and image names are checked with these rules
 * before a build starts, so a name the daemon would refuse (or refuse only
 * at push) is a usage error up front.
 *
 *   reference      := name [ ":" tag ] [ "@" digest ]
 *   name           := [domain "/"] path-component ["/" path-component]*
 *   domain         := host [":" port]   (a DNS-like name, IPv4, or [IPv6])
 *   path-component := [a-z0-9]+ ([._] | "__" | "-"+ [a-z0-9]+)*
 *   tag            := [\w][\w.-]{0,127}
 *   digest         := algorithm ":" hex   (sha256: 64 lowercase hex digits)
 */
import { UsageError } from "../errors.js";

/** The longest repository path (the name without its domain). */
export const MAX_NAME_LENGTH = 255;

// The grammar's pieces, as distribution/reference spells them.
const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const optionalPort = "(?::[0-9]+)?";
const tagPattern = "[\\w][\\w.-]{0,127}";
const digestPattern = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const identifierPattern = "([a-f0-9]{64})";
const ipv6address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = host + optionalPort;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;

/**
 * The anchored regular expressions (exported for the tests that check them
 * against distribution/reference's own tables).
 */
export const referencePatterns = {
  /** host[:port]. */
  domain: new RegExp(`^${domainAndPort}$`),
  /** A name: groups 1 (domain) and 2 (path). */
  name: new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`),
  /** A whole reference: groups 1 (name), 2 (tag), 3 (digest). */
  reference: new RegExp(`^(${namePattern})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`),
  tag: new RegExp(`^${tagPattern}$`),
  digest: new RegExp(`^${digestPattern}$`),
  /** A sha256 hex digest without its algorithm (an image ID). */
  identifier: new RegExp(`^${identifierPattern}$`),
};

/** A parsed reference. `domain` is "" when the name has none (only before normalizing). */
export interface ImageReference {
  domain: string;
  path: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

/** Why a reference is invalid (distribution/reference's and go-digest's error values). */
export type InvalidReferenceReason =
  "format" | "empty" | "uppercase" | "too-long" | "not-canonical" | "tag-format" | "digest-format" | "digest-length" | "digest-unsupported" | "identifier";

/** A reference that does not follow the grammar; `reason` says which rule. */
export class InvalidReferenceError extends UsageError {
  readonly reason: InvalidReferenceReason;
  constructor(reason: InvalidReferenceReason, message: string) {
    super(message);
    this.reason = reason;
  }
  override get name(): string {
    return "InvalidReferenceError";
  }
}

/** Digest algorithms and their sizes in bytes (go-digest's sha256, sha384, sha512). */
const digestAlgorithms: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };

function describeFormat(input: string): string {
  if (/\s/.test(input)) return "invalid reference format: it contains white space";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) return 'invalid reference format: an image name has no URL scheme (drop the "scheme://")';
  const at = input.indexOf("@");
  const beforeDigest = at < 0 ? input : input.slice(0, at);
  if (at >= 0 && !referencePatterns.digest.test(input.slice(at + 1))) {
    return `invalid reference format: digest ${JSON.stringify(input.slice(at + 1))} must be ALGORITHM:HEX, e.g. sha256: and 64 hex digits`;
  }
  const colon = beforeDigest.lastIndexOf(":");
  const hasTag = colon > beforeDigest.lastIndexOf("/");
  const name = hasTag ? beforeDigest.slice(0, colon) : beforeDigest;
  if (hasTag && !referencePatterns.tag.test(beforeDigest.slice(colon + 1))) {
    return `invalid reference format: tag ${JSON.stringify(beforeDigest.slice(colon + 1))} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`;
  }
  if (name === "") return "invalid reference format: the repository name is missing";
  return (
    `invalid reference format: repository name ${JSON.stringify(name)} is not valid ` +
    "(lowercase letters and digits, separated by '.', '_', '__' or '-', in components joined by '/', after an optional HOST[:PORT]/)"
  );
}

/** go-digest's Digest.Validate. */
function validateDigest(digest: string): void {
  const i = digest.indexOf(":");
  if (i <= 0 || i + 1 === digest.length) {
    throw new InvalidReferenceError("digest-format", `invalid digest ${JSON.stringify(digest)}: use ALGORITHM:HEX, e.g. sha256: and 64 hex digits`);
  }
  const algorithm = digest.slice(0, i);
  const encoded = digest.slice(i + 1);
  const size = digestAlgorithms[algorithm];
  if (size === undefined) {
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest)) {
      throw new InvalidReferenceError("digest-format", `invalid digest ${JSON.stringify(digest)}: use ALGORITHM:HEX, e.g. sha256: and 64 hex digits`);
    }
    throw new InvalidReferenceError("digest-unsupported", `unsupported digest algorithm "${algorithm}": use sha256, sha384 or sha512`);
  }
  if (encoded.length !== size * 2) {
    throw new InvalidReferenceError("digest-length", `a ${algorithm} digest has ${size * 2} hex digits, not ${encoded.length}`);
  }
  if (!/^[a-f0-9]+$/.test(encoded)) {
    throw new InvalidReferenceError("digest-format", `invalid ${algorithm} digest: use lowercase hex digits (0-9, a-f)`);
  }
}

function parseAs(s: string, input: string): ImageReference {
  if (s === "") throw new InvalidReferenceError("empty", "the image name is empty");
  const m = referencePatterns.reference.exec(s);
  if (!m) {
    const lower = s.toLowerCase();
    if (lower !== s && referencePatterns.reference.test(lower)) {
      throw new InvalidReferenceError("uppercase", "repository name must be lowercase");
    }
    throw new InvalidReferenceError("format", describeFormat(input));
  }
  const name = m[1]!;
  const n = referencePatterns.name.exec(name);
  const domain = n ? (n[1] ?? "") : "";
  const path = n ? n[2]! : name;
  if (path.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError("too-long", `repository name must not be more than ${MAX_NAME_LENGTH} characters (it has ${path.length})`);
  }
  if (m[3] !== undefined) validateDigest(m[3]);
  const ref: ImageReference = { domain, path };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) ref.digest = m[3];
  return ref;
}

/** distribution/reference's Parse: the grammar only, no defaults ("ubuntu" has no domain). */
export function parseReference(s: string): ImageReference {
  return parseAs(s, s);
}

/** The name: domain/path, or path. */
export function referenceName(ref: ImageReference): string {
  return ref.domain ? `${ref.domain}/${ref.path}` : ref.path;
}

/** The reference as text: name[:tag][@digest] (a digest alone for a digest-only reference). */
export function formatReference(ref: ImageReference): string {
  return referenceName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : "") + (ref.digest !== undefined ? (ref.path ? "@" : "") + ref.digest : "");
}

/**
 * Splits a name into its registry and remote name as docker does: the
 * first component is a registry when it is "localhost", holds "." or ":",
 * or has uppercase letters; otherwise the registry is docker.io. Single
 * names on docker.io get the "library/" namespace.
 */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf("/");
  if (slash < 0) return ["docker.io", `library/${name}`];
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remote: string;
  if (first === "localhost" || /[.:]/.test(first) || first.toLowerCase() !== first) {
    [domain, remote] = [first === "index.docker.io" ? "docker.io" : first, rest];
  } else {
    [domain, remote] = ["docker.io", name];
  }
  if (domain === "docker.io" && !remote.includes("/")) remote = `library/${remote}`;
  return [domain, remote];
}

/**
 * distribution/reference's ParseNormalizedNamed: a familiar name as docker
 * takes it ("ubuntu", "team/app:1", "localhost:5000/app") to its full form
 * ("docker.io/library/ubuntu"). This is how buildkitd reads image names.
 */
export function parseNormalizedNamed(s: string): ImageReference {
  if (referencePatterns.identifier.test(s)) {
    throw new InvalidReferenceError("identifier", "a 64-character hexadecimal string is an image ID, not a repository name");
  }
  if (s === "") throw new InvalidReferenceError("empty", "the image name is empty");
  const [domain, remainder] = splitDockerDomain(s);
  const colon = remainder.indexOf(":");
  const remote = colon < 0 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) throw new InvalidReferenceError("uppercase", "repository name must be lowercase");
  return parseAs(`${domain}/${remainder}`, s);
}

/** distribution/reference's ParseNamed: a name that must already be in its full, normalized form. */
export function parseNamed(s: string): ImageReference {
  const ref = parseNormalizedNamed(s);
  if (formatReference(ref) !== s) {
    throw new InvalidReferenceError("not-canonical", `repository name must be canonical (${formatReference(ref)})`);
  }
  return ref;
}

/**
 * distribution/reference's ParseDockerRef: normalized, with the tag
 * "latest" when there is neither tag nor digest, and only the digest when
 * there are both.
 */
export function parseDockerRef(s: string): ImageReference {
  const ref = parseNormalizedNamed(s);
  if (ref.digest !== undefined) return { domain: ref.domain, path: ref.path, digest: ref.digest };
  if (ref.tag === undefined) return { ...ref, tag: "latest" };
  return ref;
}

/**
 * distribution/reference's ParseAnyReference: an image ID (64 hex digits),
 * a digest, or a familiar name.
 */
export function parseAnyReference(s: string): ImageReference {
  if (referencePatterns.identifier.test(s)) return { domain: "", path: "", digest: `sha256:${s}` };
  try {
    validateDigest(s);
    return { domain: "", path: "", digest: s };
  } catch {
    return parseNormalizedNamed(s);
  }
}

/** distribution/reference's WithName: a name without tag or digest. */
export function withName(name: string): ImageReference {
  const m = referencePatterns.name.exec(name);
  if (!m) throw new InvalidReferenceError("format", describeFormat(name));
  if (m[2]!.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError("too-long", `repository name must not be more than ${MAX_NAME_LENGTH} characters (it has ${m[2]!.length})`);
  }
  return { domain: m[1] ?? "", path: m[2]! };
}

/** distribution/reference's WithTag. */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!referencePatterns.tag.test(tag)) {
    throw new InvalidReferenceError(
      "tag-format",
      `invalid tag ${JSON.stringify(tag)}: use 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
    );
  }
  return { ...ref, tag };
}

/** distribution/reference's WithDigest (the digest's form only, as upstream). */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  if (!referencePatterns.digest.test(digest)) {
    throw new InvalidReferenceError("digest-format", `invalid digest ${JSON.stringify(digest)}: use ALGORITHM:HEX, e.g. sha256: and 64 hex digits`);
  }
  return { ...ref, digest };
}

/** The name as docker shows it: without "docker.io/" and, for official images, "library/". */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== "docker.io") return referenceName(ref);
  const rest = ref.path.startsWith("library/") ? ref.path.slice("library/".length) : undefined;
  return rest !== undefined && !rest.includes("/") ? rest : ref.path;
}

/** The reference as docker shows it (familiar name, tag, digest). */
export function familiarString(ref: ImageReference): string {
  return formatReference({ ...ref, domain: "", path: familiarName(ref) });
}

/**
 * Checks an image name as buildkitd will read it (ParseNormalizedNamed).
 * Throws InvalidReferenceError (a UsageError) `invalid WHAT "NAME"[ WHERE]: RULE`.
 */
export function checkImageName(name: string, what: string, where?: string): ImageReference {
  try {
    return parseNormalizedNamed(name);
  } catch (e) {
    if (e instanceof InvalidReferenceError) {
      throw new InvalidReferenceError(e.reason, `invalid ${what} ${JSON.stringify(name)}${where ? ` ${where}` : ""}: ${e.message}`);
    }
    throw e;
  }
}
