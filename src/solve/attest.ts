/**
 * Attestations and annotations as buildx sends them (docs:
 * buildx-compat-audit.md §4.11): each attestation becomes one frontend
 * attribute `attest:TYPE` holding its CSV fields, and each annotation one
 * exporter attribute `annotation[-TYPE][[PLATFORM]].KEY` on every output.
 */
import { UsageError } from "../errors.js";
import { csvFields } from "../csv.js";
import { parseBool } from "../units.js";
import { checkPlatform, normalizePlatform } from "./platform.js";

/** The attestation types the Dockerfile frontend makes (it refuses any other). */
export type AttestationType = "provenance" | "sbom";

/**
 * One attestation (buildx --attest). Provenance takes `mode` (min|max) and
 * more; sbom takes `generator` (the scanner image; the daemon's default is
 * docker/buildkit-syft-scanner from Docker Hub). `disabled` turns one off,
 * including the default provenance.
 */
export interface AttestationSpec {
  type: AttestationType;
  disabled?: boolean | undefined;
  attrs?: Record<string, string> | undefined;
}

/** Where an annotation goes in the exported image: the manifest unless said otherwise. */
export type AnnotationType = "index" | "index-descriptor" | "manifest" | "manifest-descriptor";

/** One annotation (buildx --annotation `[TYPE[PLATFORM]]:KEY=VALUE`). */
export interface AnnotationSpec {
  key: string;
  value: string;
  /** Default: buildkitd's, the image manifest. */
  type?: AnnotationType | undefined;
  /** With type manifest or manifest-descriptor: only that platform's, e.g. linux/amd64 (ignored for the index, as buildx). */
  platform?: string | undefined;
}

/** What buildx asks for when no provenance is given and the daemon can attach it. */
export const DEFAULT_PROVENANCE = "mode=min,inline-only=true";

const ATTESTATION_TYPES: readonly string[] = ["provenance", "sbom"];
/** The annotation types buildkit's exporters take. */
export const ANNOTATION_TYPES: readonly string[] = ["index", "index-descriptor", "manifest", "manifest-descriptor"];

/**
 * One `type=TYPE[,disabled=BOOL][,KEY=VALUE...]` value as buildx's
 * Attest.UnmarshalText reads it (keys matched trimmed and case-blind,
 * other keys kept as written). `what` names the input in errors.
 */
export function parseAttestation(spec: string, what: string): AttestationSpec {
  let type = "";
  let disabled = false;
  const attrs: Record<string, string> = {};
  for (const f of csvFields(spec, ",", what)) {
    const eq = f.indexOf("=");
    if (eq < 0) throw new UsageError(`invalid field '${f}' in ${what} "${spec}": must be a key=value pair`);
    const key = f.slice(0, eq);
    const v = f.slice(eq + 1);
    switch (key.trim().toLowerCase()) {
      case "type":
        type = v;
        break;
      case "disabled": {
        const b = parseBool(v);
        if (b === undefined) throw new UsageError(`invalid disabled=${v} in ${what} "${spec}": use true or false`);
        disabled = b;
        break;
      }
      default:
        attrs[key] = v;
    }
  }
  if (!type) throw new UsageError(`${what} "${spec}" has no type: use type=provenance or type=sbom`);
  if (!ATTESTATION_TYPES.includes(type)) throw new UsageError(`unknown attestation type "${type}" in ${what} "${spec}": use type=provenance or type=sbom`);
  const out: AttestationSpec = { type: type as AttestationType };
  if (disabled) out.disabled = true;
  if (Object.keys(attrs).length) out.attrs = attrs;
  return out;
}

/**
 * A --provenance/--sbom value as buildx's CanonicalizeAttest: a boolean
 * turns the type on or off, anything else is its attributes.
 */
export function shorthandAttestation(type: AttestationType, value: string, what: string): AttestationSpec {
  const b = parseBool(value);
  return parseAttestation(b === undefined ? `type=${type},${value}` : `type=${type},disabled=${!b}`, what);
}

/** A `key=value` CSV field, quoted (with "" escapes) as Go's csv writer does when it holds a comma or a quote. */
function csvPair(key: string, value: string): string {
  const pair = `${key}=${value}`;
  return /[,"]/.test(pair) ? `"${pair.replace(/"/g, '""')}"` : pair;
}

/**
 * The frontend attributes for `specs`, as buildx's Attests.ToMap: the first
 * entry of each type wins; a disabled one sends nothing. With
 * `defaultProvenance`, buildx's default provenance is added unless a
 * provenance entry (even a disabled one) is there. Throws UsageError for an
 * unknown type.
 */
export function attestationAttrs(specs: readonly AttestationSpec[], defaultProvenance: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const a of specs) {
    if (!ATTESTATION_TYPES.includes(a.type)) {
      throw new UsageError(`unknown attestation type ${JSON.stringify(a.type)}: use type=provenance or type=sbom`);
    }
    if (seen.has(a.type)) continue;
    seen.add(a.type);
    if (a.disabled) continue;
    const fields = [csvPair("type", a.type)];
    const attrs = a.attrs ?? {};
    for (const k of Object.keys(attrs).sort()) fields.push(csvPair(k, attrs[k]!));
    out[`attest:${a.type}`] = fields.join(",");
  }
  if (defaultProvenance && !seen.has("provenance")) out["attest:provenance"] = DEFAULT_PROVENANCE;
  return out;
}

/** Checks a platform in an annotation's brackets as buildkitd's key grammar takes it. */
const PLATFORM_IN_KEY = /^[A-Za-z0-9_/-]+$/;

/** The exporter attribute for one annotation, as buildkit's AnnotationKey.String. Throws UsageError for a bad one. */
export function annotationAttr(a: AnnotationSpec): [string, string] {
  if (!a.key || /\s/.test(a.key)) throw new UsageError(`invalid annotation key ${JSON.stringify(a.key)}: give a non-empty key without spaces`);
  let prefix = "annotation";
  if (a.type !== undefined) {
    if (!ANNOTATION_TYPES.includes(a.type)) {
      throw new UsageError(`unknown annotation type ${JSON.stringify(a.type)}: use index, index-descriptor, manifest or manifest-descriptor`);
    }
    prefix += `-${a.type}`;
  }
  // As buildkit's AnnotationKey: a platform only narrows a manifest (or its descriptor); the index has none, so it is dropped there.
  if (a.platform !== undefined && (a.type === "manifest" || a.type === "manifest-descriptor")) {
    if (!PLATFORM_IN_KEY.test(a.platform)) {
      throw new UsageError(`invalid platform ${JSON.stringify(a.platform)} in annotation "${a.key}": use OS/ARCH[/VARIANT]`);
    }
    checkPlatform(a.platform, `platform in annotation "${a.key}"`);
    prefix += `[${normalizePlatform(a.platform)}]`;
  }
  return [`${prefix}.${a.key}`, a.value];
}
