/**
 * bk-build: a native TypeScript client for BuildKit.
 *
 * ```ts
 * import { BuildKitClient } from "bk-build";
 * await using client = await BuildKitClient.connect();   // BUILDKIT_HOST or the default socket
 * const { buildkit } = await client.info();
 * ```
 */
export { BuildKitClient, DEFAULT_TIMEOUT_MS, type ConnectOptions } from "./client.js";
export { BuildKitPool, type NodeStatus, type PlacementOptions, type PoolConnectOptions, type PoolInfo, type PoolNode } from "./pool/pool.js";
export { loadBuilder } from "./pool/store.js";
export { BuildKitError, ConnectionError, SolveError, UsageError, isBuildKitError, type BuildKitErrorOptions, type SourceSnippet } from "./errors.js";
export { renderSnippet } from "./progress/snippet.js";
export { DEFAULT_ADDRESS, parseAddress, type ParsedAddress, type TlsOptions } from "./transport/address.js";
export { formatPlatform } from "./types.js";
export type {
  BuildKitVersion,
  CacheRecord,
  DaemonInfo,
  DiskUsage,
  DiskUsageOptions,
  GCPolicy,
  InfoOptions,
  Platform,
  PruneOptions,
  PruneResult,
  WorkerInfo,
  WorkersOptions,
} from "./types.js";
export type { BuildOptions, ContextArchive, DockerfileContents, ExportSpec } from "./solve/options.js";
export type { AnnotationSpec, AnnotationType, AttestationSpec, AttestationType } from "./solve/attest.js";
export type { ExportDescriptor, ExportResult } from "./solve/outputs.js";
export { AuditError, SecretLeakError, type AuditFinding, type AuditReport } from "./audit/report.js";
export type { Build, BuildResult } from "./solve/solve.js";
export type { SecretSource } from "./solve/secrets.js";
export type { ProgressGroup, SolveStatus, SourcePosition, Vertex, VertexLog, VertexStatus, VertexWarning, WarningSource } from "./progress/status.js";
export { PlainPrinter } from "./progress/plain.js";
export { TtyPrinter, type TtyPrinterOptions } from "./progress/tty.js";
export { DEFAULT_COLORS, NO_COLORS, parseBuildkitColors, ttyOptionsFromEnv, type TtyColors, type TtyEnvOptions } from "./progress/tty-options.js";
export { formatWarnings } from "./progress/warnings.js";
export { rawJsonLine, rawJsonWarning } from "./progress/rawjson.js";
export type { BuildLogsOptions, BuildProvenance, HistoryOptions, ProvenanceOptions, RemoveHistoryOptions } from "./history/api.js";
export type { BlobDescriptor, BuildRecord, BuildStatus } from "./history/record.js";
export type { SshAgentSource } from "./solve/ssh.js";
export type { RegistryAuthOptions, RegistryCredential } from "./solve/registry-auth.js";
export type { CacheEntry } from "./solve/cache.js";
export type { SshOptions } from "./transport/ssh-dial.js";
export type { ComposeLoadOptions, ComposeProject, ComposeService, ComposeBuild, ComposeSecret, ComposeBuildSecret } from "./compose/load.js";
export type { ComposeBuildOptions, ComposeCheckResult, ComposeServiceResult } from "./compose/build.js";
export type {
  BuildTarget,
  CheckResult,
  CheckWarning,
  OutlineArg,
  OutlineMount,
  OutlineResult,
  SourceFile,
  SourceLocation,
  SourceRange,
  TargetsResult,
} from "./gateway/results.js";
export { UnsupportedSubrequestError } from "./gateway/subrequest.js";
export { formatCheck, formatOutline, formatTargets, type CheckOutput, type PrintOptions } from "./gateway/print.js";
export { loadCompose } from "./compose/load.js";
export { InterpolationError } from "./compose/interpolate.js";
