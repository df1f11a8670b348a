/** Build cache import/export entries, as buildx's --cache-from/--cache-to. */
import { UsageError } from "../errors.js";
import { typedFields } from "../csv.js";
import { checkImageName } from "./reference.js";

export interface CacheEntry {
  /** registry, inline, local, gha, s3, ... (the daemon decides what it supports). */
  type: string;
  attrs: Record<string, string>;
}

/**
 * `type=registry,ref=R[,mode=max]`, `type=inline`, or a bare `R` (a registry
 * ref), as buildx. A registry ref is checked as buildkitd reads it.
 */
export function parseCacheEntry(spec: string, flag: string): CacheEntry {
  if (!spec.includes("=")) {
    checkImageName(spec, "image reference", `in ${flag}`);
    return { type: "registry", attrs: { ref: spec } };
  }
  const { type, attrs } = typedFields(spec, flag);
  if (!type) throw new UsageError(`${flag} "${spec}" has no type: use type=registry,ref=REF or type=inline`);
  if (type === "registry") {
    const ref = attrs["ref"];
    if (ref === undefined) throw new UsageError(`${flag} "${spec}" has no ref=: use type=registry,ref=REF`);
    checkImageName(ref, "ref", `in ${flag} ${JSON.stringify(spec)}`);
  }
  return { type, attrs };
}
