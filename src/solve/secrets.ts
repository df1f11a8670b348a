/** Secret sources for builds: resolved only when buildkitd asks for a value. */
import { readFile, stat } from "node:fs/promises";
import { UsageError } from "../errors.js";
import { MAX_SECRET_BYTES, type SecretProvider } from "../session/secrets.js";

/**
 * A secret's value: a string or Buffer, a file, an environment variable, or
 * a function called when a build step mounts the secret.
 */
export type SecretSource =
  | string
  | Buffer
  | { file: string }
  | { env: string }
  | (() => string | Buffer | Promise<string | Buffer>);

/**
 * Checks sources up front (missing file, unset variable, too big) and turns
 * them into on-demand providers. Errors name the secret id and the source,
 * never a value.
 */
export async function prepareSecrets(
  secrets: Record<string, SecretSource> | undefined,
  env: Record<string, string | undefined>,
): Promise<Map<string, SecretProvider>> {
  const out = new Map<string, SecretProvider>();
  for (const [id, src] of Object.entries(secrets ?? {})) {
    if (id === "") throw new UsageError("a secret needs an id");
    if (typeof src === "string" || Buffer.isBuffer(src)) {
      const value = Buffer.from(src);
      if (value.length > MAX_SECRET_BYTES) throw new UsageError(`secret "${id}" is larger than 500 KiB`);
      out.set(id, async () => value);
    } else if (typeof src === "function") {
      out.set(id, async () => Buffer.from(await src()));
    } else if ("file" in src) {
      let size: number;
      try {
        size = (await stat(src.file)).size;
      } catch (e) {
        throw new UsageError(`secret "${id}": cannot read file "${src.file}": ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`, { cause: e });
      }
      if (size > MAX_SECRET_BYTES) throw new UsageError(`secret "${id}": file "${src.file}" is larger than 500 KiB`);
      out.set(id, () => readFile(src.file));
    } else if ("env" in src) {
      if (env[src.env] === undefined) {
        throw new UsageError(`secret "${id}": environment variable ${src.env} is not set; set it, or remove the secret`);
      }
      const name = src.env;
      out.set(id, async () => Buffer.from(env[name] ?? ""));
    } else {
      throw new UsageError(`secret "${id}": unknown source`);
    }
  }
  return out;
}
