/**
 * The leak audit: after a build, every layer and file it produced is
 * scanned for every value the session served (secrets, SSH private keys),
 * raw and encoded; a finding names the secret and where, never the value.
 */
export { SecretAuditor, type AuditSink } from "./auditor.js";
export type { AuditSecret, AuditEncoding } from "./patterns.js";
export { AuditError, SecretLeakError, formatAuditSummary, formatFinding, type AuditFinding, type AuditReport } from "./report.js";
