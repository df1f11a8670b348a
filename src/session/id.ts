/** Session, build and upload ids (kept apart from session.ts so option checks load no gRPC code). */
import { createHash, randomBytes } from "node:crypto";

/** A random id in the style of buildkit's identity.NewID (25 base36 chars). */
export function newId(): string {
  const bytes = randomBytes(17);
  let n = BigInt("0x" + bytes.toString("hex"));
  let s = "";
  while (s.length < 25) {
    s += (n % 36n).toString(36);
    n /= 36n;
  }
  return s;
}

/** The session's shared key for a context directory: stable per directory, so buildkitd reuses what it already synced. */
export function sessionSharedKey(context: string): string {
  return createHash("sha256").update(context).digest("hex").slice(0, 32);
}
