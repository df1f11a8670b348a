/**
 * What the audit looks for: the byte patterns each served secret can leave
 * in an image (raw, hex, base64 at every alignment, the lines of a PEM
 * private key). Patterns are secret material: they stay inside src/audit and
 * are never printed.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";

export interface AuditSecret {
  id: string;
  value: Buffer;
  kind: "secret" | "ssh-key";
}

export type AuditEncoding = "raw" | "base64" | "base64url" | "hex";

export interface Pattern {
  bytes: Buffer;
  /** Index into the auditor's secret list. */
  secret: number;
  encoding: AuditEncoding;
}

/** Below this many bytes a secret is scanned raw only (its encodings would be too short to mean anything). */
export const MIN_ENCODED_SECRET = 8;

/** A PEM body line shorter than this (the short last line) is not a pattern of its own. */
const MIN_PEM_LINE = 16;

/**
 * The base64 text of `value` as it appears inside a longer base64 text, for
 * each of the three byte alignments: encode it behind 0, 1 or 2 other bytes
 * and keep only the characters all of whose 6 bits come from `value` (the
 * edge characters also carry bits of the neighbours, which are unknown).
 */
export function base64Cores(value: Buffer): string[] {
  const cores: string[] = [];
  for (const lead of [0, 1, 2]) {
    // Trailing zero bytes keep "=" padding out of the characters we keep.
    const text = Buffer.concat([Buffer.alloc(lead), value, Buffer.alloc(3)]).toString("base64");
    cores.push(text.slice(Math.ceil((8 * lead) / 6), Math.floor((8 * (lead + value.length)) / 6)));
  }
  return cores;
}

function toUrl(b64: string): string {
  return b64.replaceAll("+", "-").replaceAll("/", "_");
}

export interface CompiledSecrets {
  patterns: Pattern[];
  /** Why some forms were not scanned, by secret id (never a value). */
  skipped: string[];
}

/**
 * Every pattern of every secret. Within one secret, identical byte strings
 * are kept once, under the first encoding that produced them (raw, hex,
 * base64, base64url), so a finding carries the simplest name for what was
 * found.
 */
export function compileSecrets(secrets: readonly AuditSecret[]): CompiledSecrets {
  const patterns: Pattern[] = [];
  const skipped: string[] = [];
  secrets.forEach((secret, index) => {
    const value = secret.value;
    const name = `${secret.kind === "ssh-key" ? "ssh key" : "secret"} ${secret.id}`;
    if (value.length === 0) {
      skipped.push(`${name} is empty: not scanned`);
      return;
    }
    const seen = new Set<string>();
    const add = (bytes: Buffer, encoding: AuditEncoding): void => {
      const key = bytes.toString("latin1");
      if (bytes.length === 0 || seen.has(key)) return;
      seen.add(key);
      patterns.push({ bytes, secret: index, encoding });
    };
    add(value, "raw");
    if (value.length < MIN_ENCODED_SECRET) {
      skipped.push(`${name} is ${value.length} bytes: base64/hex forms not scanned`);
      return;
    }
    for (const line of pemPrivateLines(value)) add(Buffer.from(line, "latin1"), "raw");
    const hex = value.toString("hex");
    add(Buffer.from(hex, "latin1"), "hex");
    add(Buffer.from(hex.toUpperCase(), "latin1"), "hex");
    const cores = base64Cores(value);
    for (const core of cores) add(Buffer.from(core, "latin1"), "base64");
    for (const core of cores) add(Buffer.from(toUrl(core), "latin1"), "base64url");
  });
  return { patterns, skipped };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----([\s\S]*?)-----END \1PRIVATE KEY-----/g;
const BASE64_LINE = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The body lines of each PEM private key block in `value` that carry
 * private material, as they appear in the file.
 *
 * A key copied into an image is most often the file itself (the whole-value
 * raw pattern finds that); the lines also find a key whose line ends were
 * changed: CRLF, joined into one line, `\n`-escaped inside JSON or YAML. A
 * line that encodes only public or fixed bytes is left out, as it could be
 * found in files that are not this key: the constant header of an OpenSSH
 * key (the same for every key of a type) and its public key blob, and for
 * other PEM keys any line that is a substring of the base64 of the public key
 * (SPKI, PKCS#1, or its bare components) at any alignment, which is what a
 * `.pub`, `authorized_keys` or JWK file holds.
 */
export function pemPrivateLines(value: Buffer): string[] {
  const text = value.toString("latin1");
  if (!text.includes("PRIVATE KEY-----")) return [];
  const out: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const lines = m[2]!
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => BASE64_LINE.test(l));
    const body = lines.join("");
    const publicText = publicBase64(m[0], m[1]!, Buffer.from(body, "base64"));
    let at = 0; // character offset of the line in the joined body
    for (const line of lines) {
      const start = at;
      at += line.length;
      if (line.length < MIN_PEM_LINE) continue;
      // Bytes [lo, hi) of the decoded body that this line's characters touch.
      const hi = Math.ceil((6 * (start + line.length)) / 8);
      if (hi <= publicText.fixedBytes) continue;
      if (publicText.texts.some((t) => t.includes(line))) continue;
      out.push(line);
    }
  }
  return out;
}

interface PublicText {
  /** Leading bytes of the decoded body that are fixed or public (an OpenSSH header and public blob). */
  fixedBytes: number;
  /** Base64 texts of public material, at all alignments. */
  texts: string[];
}

function publicBase64(block: string, label: string, der: Buffer): PublicText {
  if (label === "OPENSSH ") return openSshPublic(der);
  const texts: string[] = [];
  try {
    const key = createPrivateKey({ key: block, format: "pem" });
    const pub = createPublicKey(key);
    const forms: Buffer[] = [pub.export({ type: "spki", format: "der" })];
    if (key.asymmetricKeyType === "rsa") forms.push(pub.export({ type: "pkcs1", format: "der" }));
    const jwk = pub.export({ format: "jwk" });
    for (const k of ["n", "e", "x", "y"] as const) {
      const v = jwk[k];
      if (typeof v === "string") forms.push(Buffer.from(v, "base64url"));
    }
    for (const f of forms) texts.push(...base64Cores(f));
  } catch {
    // Encrypted, or a type Node cannot read: every body line is kept.
  }
  return { fixedBytes: 0, texts };
}

/** openssh-key-v1: magic, cipher, kdf, kdf options, key count, then the public key blobs. */
function openSshPublic(bin: Buffer): PublicText {
  const none: PublicText = { fixedBytes: 0, texts: [] };
  const magic = "openssh-key-v1\0";
  if (bin.toString("latin1", 0, magic.length) !== magic) return none;
  let at = magic.length;
  const str = (): Buffer | undefined => {
    if (at + 4 > bin.length) return undefined;
    const n = bin.readUInt32BE(at);
    if (at + 4 + n > bin.length) return undefined;
    const s = bin.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return s;
  };
  if (!str() || !str() || !str() || at + 4 > bin.length) return none;
  const keys = bin.readUInt32BE(at);
  at += 4;
  const texts: string[] = [];
  for (let i = 0; i < keys && i < 16; i++) {
    const blob = str();
    if (!blob) return none;
    texts.push(...base64Cores(blob));
  }
  return { fixedBytes: at, texts };
}
