/**
 * The error hierarchy of bk-build. Every error the library throws is a
 * BuildKitError; `code` is a gRPC status name (e.g. "UNAVAILABLE") or one of
 * our own ("USAGE", "CONNECTION").
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

/** buildkitd could not be reached, or what answered is not buildkitd. */
export class ConnectionError extends BuildKitError {
  readonly address: string;
  constructor(message: string, address: string, options: BuildKitErrorOptions = {}) {
    super(message, { code: "CONNECTION", ...options });
    this.address = address;
  }
  override get name(): string {
    return "ConnectionError";
  }
}

export function isBuildKitError(value: unknown): value is BuildKitError {
  return value instanceof BuildKitError;
}
