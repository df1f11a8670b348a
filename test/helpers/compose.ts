/**
 * Small helpers for the compose tests that carry compose-go's tables:
 * a project directory from a map of files, loading it with an empty
 * environment (nothing from the test's own shell), and reading back what a
 * build would get.
 */
import assert from "node:assert/strict";
import { loadCompose, type ComposeBuild, type ComposeLoadOptions, type ComposeProject, type ComposeService } from "../../src/compose/load.js";
import { serviceBuildOptions } from "../../src/compose/build.js";
import type { BuildOptions } from "../../src/solve/options.js";
import { UsageError } from "../../src/errors.js";
import { fileTree } from "./files.js";

/** Files of a project: a string is compose.yaml alone. */
export type ProjectFiles = string | Record<string, string>;

export interface LoadOptions {
  /** -f files (relative to the project directory). Default: compose.yaml. */
  files?: string[] | undefined;
  env?: Record<string, string> | undefined;
  projectName?: string | undefined;
  profiles?: string[] | undefined;
}

/** A new project directory holding `files`. */
export function composeDir(files: ProjectFiles): string {
  return fileTree("bk-compose-go-", typeof files === "string" ? { "compose.yaml": files } : files);
}

function loadOptions(dir: string, o: LoadOptions): ComposeLoadOptions {
  return { workingDir: dir, files: o.files ?? ["compose.yaml"], env: o.env ?? {}, projectName: o.projectName, profiles: o.profiles };
}

/** Loads the project in `dir` (a directory from composeDir). */
export function loadIn(dir: string, o: LoadOptions = {}): ComposeProject {
  return loadCompose(loadOptions(dir, o));
}

/** Writes `files` to a new directory and loads them. */
export function load(files: ProjectFiles, o: LoadOptions = {}): ComposeProject {
  return loadIn(composeDir(files), o);
}

/** The UsageError message loading `files` fails with (the test fails if it loads). */
export function loadError(files: ProjectFiles, o: LoadOptions = {}): string {
  return errorOf(() => load(files, o));
}

/** The UsageError message `fn` throws. */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    return e.message;
  }
  assert.fail("expected an error, but it loaded");
}

/** Asserts `message` contains `words` (compose-go's assert.ErrorContains). */
export function assertContains(message: string, words: string): void {
  assert.ok(message.includes(words), `expected ${JSON.stringify(words)} in ${JSON.stringify(message)}`);
}

export function service(p: ComposeProject, name: string): ComposeService {
  const s = p.services.find((x) => x.name === name);
  assert.ok(s, `no service ${name} (services: ${p.services.map((x) => x.name).join(", ")})`);
  return s;
}

export function buildOf(p: ComposeProject, name: string): ComposeBuild {
  const b = service(p, name).build;
  assert.ok(b, `service ${name} has no build section`);
  return b;
}

/** What `bk-build compose build` would hand the build for `name` (service: contexts taken as built). */
export function optionsOf(p: ComposeProject, name: string): BuildOptions {
  const built = new Map(p.services.map((s) => [s.name, { service: s.name, outcome: "built" as const, images: s.image ? [s.image] : [] }]));
  const { options, cleanup } = serviceBuildOptions(p, service(p, name), {}, built, false);
  cleanup();
  return options;
}

/** The build's add-hosts entries (host=ip), sorted. */
export function hostsOf(p: ComposeProject, name: string): string[] {
  const v = optionsOf(p, name).frontendAttrs?.["add-hosts"];
  return v === undefined ? [] : v.split(",").sort();
}
