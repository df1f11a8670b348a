/**
 * bk-build's internal entry point, for its own CLI.
 *
 * @private Internal code: it does not follow semantic versioning and may
 * change in any release. Use the public API in index.ts.
 *
 * It holds what only the CLI needs (buildx's flag grammars, the mapping of
 * RUN-environment flags, compose planning, rawjson lines) and re-exports the
 * error classes, so that `--help` and usage errors are answered without
 * loading the client (start-up time: the CLI loads index.js only when a
 * command needs the daemon).
 */
export { BuildKitError, ConnectionError, SolveError, UsageError } from "./errors.js";
export { isEntitlement, isRemoteContext, lowercaseDockerfile, resolveBuild, runEnvironmentAttrs } from "./solve/options.js";
export { checkPlatform, hostPlatform, normalizePlatform } from "./solve/platform.js";
export { ANNOTATION_TYPES, DEFAULT_PROVENANCE, parseAttestation, shorthandAttestation } from "./solve/attest.js";
export { checkImageName, familiarString } from "./solve/reference.js";
export { SNIFF_BYTES, peekStream, readAll, sniffStream } from "./solve/context-stream.js";
export { MAX_TEXT_FILE_BYTES, fileKind, readInputFile } from "./files.js";
export { DEFAULT_SSH_ID } from "./session/ssh-id.js";
export { parseCacheEntries } from "./solve/cache.js";
export { composeProxyArgs, withDockerProxyArgs } from "./solve/proxy.js";
export { parseSsh, isSocket } from "./solve/ssh.js";
export { csvFields, keyValue, typedFields } from "./csv.js";
export { parseBool, parseBytes, parseGoDuration, parseTimeout, scaleDecimal } from "./units.js";
export { checkCompose, planCompose, runCompose, withEngineImageNames } from "./compose/build.js";
export { composeBakeDefinition } from "./compose/print.js";
export { targetsEngine } from "./transport/address.js";
export { matchRef } from "./history/ref.js";
export { parseHistoryFilter } from "./history/filter.js";
export { formatAuditSummary, formatFinding } from "./audit/report.js";
export {
  RegistryClient,
  RegistryError,
  isLoopbackHost,
  parseImageName,
  registryEndpoint,
  type CredentialLookup,
  type ManifestBytes,
  type RegistryCallOptions,
  type RegistryClientOptions,
  type RegistryRef,
} from "./registry/client.js";
export { mergeIndex, type IndexPart, type MergedIndex } from "./registry/merge.js";
export {
  BUILDX_CONTAINER_PREFIX,
  builderStorePath,
  buildxConfigDir,
  checkBuilderName,
  checkNodeInput,
  defaultBuilder,
  findBuilder,
  readBuilderStore,
  readBuildxBuilders,
  setBuilderNode,
  updateBuilderStore,
  type BuilderStore,
  type BuildxBuilder,
  type FoundBuilder,
  type NodeInput,
  type StoredNode,
} from "./pool/store.js";

export { DEFERRED_CA_ENV, deferExtraCaCerts } from "./transport/extra-ca.js";
