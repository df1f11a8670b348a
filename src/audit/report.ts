/** What the leak audit reports, and how a finding reads: never a value, only where it was. */
import { BuildKitError } from "../errors.js";
import type { AuditEncoding, AuditSecret } from "./patterns.js";

export interface AuditFinding {
  secretId: string;
  kind: AuditSecret["kind"];
  /** Blob digest of the layer or blob, or "" for a plain tar, a local tree, or an image tarball's own files (index.json, …). */
  layer: string;
  /**
   * Path inside the layer of the file where the match starts; for an image
   * blob that is not a layer: "<config>", "<manifest>", "<index>",
   * "<attestation>", "<json>" or "<blob>". A secret value inside the path
   * itself is shown as "<secret:id>".
   */
  path: string;
  /** Set when the match runs on into later files: the file where it ends. */
  endPath?: string;
  encoding: AuditEncoding;
  /**
   * Where in the entry: its contents, its name (path is then cut after the
   * path component holding the match), its link target (symlink or hard
   * link), or a PAX header record (e.g. an xattr).
   */
  where: "content" | "name" | "link" | "header";
}

export interface AuditReport {
  findings: AuditFinding[];
  /** Filesystem tarballs walked: image layers, a `tar` export, a local tree (1 each). */
  layers: number;
  /** Files whose contents were scanned (regular files in layers and trees, and image blobs that are not layers). */
  files: number;
  /** Uncompressed bytes scanned (file contents; headers and names not counted). */
  bytes: number;
  /** Forms or parts not scanned, with the reason (e.g. secrets too short to scan encoded). */
  skipped: string[];
  /** Parts that could not be read (a sink's end() or scanDirectory() rejected with these). */
  errors: string[];
}

/** A part of an output could not be scanned: the audit cannot vouch for it. */
export class AuditError extends BuildKitError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    const first = problems[0] ?? "the secret audit failed";
    super(problems.length > 1 ? `${first} (and ${problems.length - 1} more)` : first, { code: "AUDIT" });
    this.problems = problems;
  }
  override get name(): string {
    return "AuditError";
  }
}

/** The build's output holds a value the session served (the CLI exits 3). */
export class SecretLeakError extends BuildKitError {
  readonly findings: readonly AuditFinding[];
  readonly report: AuditReport;
  constructor(report: AuditReport) {
    const n = report.findings.length;
    const first = report.findings[0];
    const what = first ? formatFinding(first) : "";
    super(`the build's output holds ${n === 1 ? "a secret value" : `${n} secret values`} it was given: ${what}${n > 1 ? ` (and ${n - 1} more)` : ""}`, {
      code: "SECRET_LEAK",
    });
    this.findings = report.findings;
    this.report = report;
  }
  override get name(): string {
    return "SecretLeakError";
  }
}

const WHERE: Record<AuditFinding["where"], string> = {
  content: "file",
  name: "name",
  link: "link target of",
  header: "PAX header of",
};

/** One line: `secret "npm" (base64) in layer sha256:…, file app/.npmrc`. */
export function formatFinding(f: AuditFinding): string {
  const who = `${f.kind === "ssh-key" ? "ssh key" : "secret"} ${JSON.stringify(f.secretId)}`;
  const layer = f.layer === "" ? "the output" : `layer ${f.layer}`;
  const blob = f.path.startsWith("<") && f.where === "content";
  const where = blob ? f.path : `${WHERE[f.where]} ${f.path}`;
  const end = f.endPath === undefined ? "" : ` (runs on into ${f.endPath})`;
  return `${who} (${f.encoding}) in ${layer}, ${where}${end}`;
}

/** `secret audit: 4 layers, 1234 files, 512.0 MB scanned; no secret found`. */
export function formatAuditSummary(r: AuditReport): string {
  const outcome = r.findings.length === 0 ? "no secret found" : `${r.findings.length} found`;
  return `secret audit: ${r.layers} ${r.layers === 1 ? "layer" : "layers"}, ${r.files} files, ${(r.bytes / 1e6).toFixed(1)} MB scanned; ${outcome}`;
}
