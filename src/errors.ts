/**
 * The error hierarchy of bk-build. Every error the library throws is a
 * BuildKitError; `code` is a gRPC status name (e.g. "UNAVAILABLE") or one of
 * our own ("USAGE").
 */

const brand = Symbol.for("bk-build.BuildKitError");

export interface BuildKitErrorOptions {
  code?: string | undefined;
  cause?: unknown;
}

export class BuildKitError extends Error {
  readonly code: string;
  readonly [brand] = true;

  constructor(message: string, options: BuildKitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? "UNKNOWN";
  }

  override get name(): string {
    return "BuildKitError";
  }

  /** instanceof that also works across duplicate installs of bk-build. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === BuildKitError) {
      return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[brand] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** The caller passed something invalid (a flag, an option, a file that is not there). */
export class UsageError extends BuildKitError {
  constructor(message: string, options: BuildKitErrorOptions = {}) {
    super(message, { code: "USAGE", ...options });
  }
  override get name(): string {
    return "UsageError";
  }
}

/**
 * The connection to buildkitd failed: it could not be reached, what
 * answered is not buildkitd, or an established connection was lost.
 * `code` is the gRPC status name (usually UNAVAILABLE, DEADLINE_EXCEEDED
 * for a daemon that did not answer in time).
 */
export class ConnectionError extends BuildKitError {
  readonly address: string;
  constructor(message: string, address: string, options: BuildKitErrorOptions = {}) {
    super(message, { code: "UNAVAILABLE", ...options });
    this.address = address;
  }
  override get name(): string {
    return "ConnectionError";
  }
}

export function isBuildKitError(value: unknown): value is BuildKitError {
  return value instanceof BuildKitError;
}

/** `e` as a BuildKitError: itself when it is one, else one with its message and `e` as the cause. */
export function toBuildKitError(e: unknown): BuildKitError {
  return e instanceof BuildKitError ? e : new BuildKitError(e instanceof Error ? e.message : String(e), { cause: e });
}

/** The error work ends with once `signal` has aborted: the reason when it is a BuildKitError, else CANCELLED with `message`. */
export function abortedError(signal: AbortSignal, message: string): BuildKitError {
  const reason: unknown = signal.reason;
  return reason instanceof BuildKitError ? reason : new BuildKitError(message, { code: "CANCELLED", cause: reason });
}

/** A place in a source file (Dockerfile) that an error points at; lines are 1-based. */
export interface SourceSnippet {
  filename: string;
  /** The whole file as the daemon saw it. */
  data: string;
  ranges: Array<{ start: number; end: number }>;
}

/** A build failed on the daemon. */
export class SolveError extends BuildKitError {
  /** Source locations from the error details, innermost first. */
  readonly sources: SourceSnippet[];
  /** Digest of the failing step, when the daemon names it. */
  readonly vertex: string | undefined;
  /** Exit code of the failing process, when it is one. */
  readonly exitCode: number | undefined;

  constructor(
    message: string,
    details: { code: string; sources: SourceSnippet[]; vertex?: string | undefined; exitCode?: number | undefined; cause?: unknown },
  ) {
    super(message, { code: details.code, cause: details.cause });
    this.sources = details.sources;
    this.vertex = details.vertex;
    this.exitCode = details.exitCode;
  }

  override get name(): string {
    return "SolveError";
  }
}
