/**
 * The dockerfile frontend's subrequest answers as bk-build's own types.
 * The frontend writes them with Go's encoding/json (moby/buildkit
 * frontend/subrequests/{lint,outline,targets}), so zero values are left
 * out: a missing sourceIndex is 0, a missing list is empty.
 */
import { BuildKitError } from "../errors.js";
import type { SubrequestMetadata } from "./subrequest.js";
import type { SourcePosition } from "../progress/status.js";

export interface SourceRange {
  start: SourcePosition;
  end: SourcePosition;
}

/** Where something is: a file of the result's `sources` (by index; -1 for none) and ranges in it. */
export interface SourceLocation {
  sourceIndex: number;
  ranges: SourceRange[];
}

/** A source file the frontend read (the Dockerfile), as text. */
export interface SourceFile {
  filename: string;
  language?: string | undefined;
  data: string;
}

/** One lint finding. */
export interface CheckWarning {
  /** The rule, e.g. "FromAsCasing". */
  ruleName: string;
  /** What the rule is about. */
  description?: string | undefined;
  /** The rule's documentation. */
  url?: string | undefined;
  /** This finding, in words. */
  detail?: string | undefined;
  location?: SourceLocation | undefined;
}

/** The result of `check` (buildx --call check; the frontend's frontend.lint). */
export interface CheckResult {
  warnings: CheckWarning[];
  sources: SourceFile[];
  /** The Dockerfile could not be parsed or converted: what and where. */
  buildError?: { message: string; location: SourceLocation } | undefined;
  /** The frontend's status: 1 when there are warnings or a build error, else 0 (buildx exits with it). */
  statusCode: number;
  /** The frontend's JSON answer as sent (what `--call check,format=json` prints). */
  json: string;
  /** The frontend's own text rendering (result.txt). */
  text: string;
  /** The answer's format version (e.g. "1.0.0"). */
  version: string;
}

export interface OutlineArg {
  name: string;
  description?: string | undefined;
  /** The default value, when the ARG has one. */
  value?: string | undefined;
  location?: SourceLocation | undefined;
}

export interface OutlineMount {
  /** The secret's or SSH agent's id. */
  name: string;
  required: boolean;
  location?: SourceLocation | undefined;
}

/** The result of `outline` (buildx --call outline): what the target takes. */
export interface OutlineResult {
  /** The target stage, when one was named or the stage has a name. */
  name?: string | undefined;
  description?: string | undefined;
  args: OutlineArg[];
  secrets: OutlineMount[];
  ssh: OutlineMount[];
  /** Cache mount ids. */
  cache: Array<{ id: string; location?: SourceLocation | undefined }>;
  /** The source files (text), indexed by locations' sourceIndex. */
  sources: string[];
  /** The frontend's JSON answer as sent (what format=json prints). */
  json: string;
  /** The frontend's own text rendering (result.txt). */
  text: string;
  version: string;
}

export interface BuildTarget {
  name?: string | undefined;
  /** The stage built when no target is given. */
  default: boolean;
  description?: string | undefined;
  /** The stage's FROM. */
  base?: string | undefined;
  platform?: string | undefined;
  location?: SourceLocation | undefined;
}

/** The result of `targets` (buildx --call targets): the Dockerfile's stages. */
export interface TargetsResult {
  targets: BuildTarget[];
  sources: string[];
  /** The frontend's JSON answer as sent (what format=json prints). */
  json: string;
  /** The frontend's own text rendering (result.txt). */
  text: string;
  version: string;
}

type Json = Record<string, unknown>;

function parseJson(md: SubrequestMetadata, what: string): { body: Json; json: string } {
  const json = md["result.json"];
  if (json === undefined) throw new BuildKitError(`the frontend's ${what} answer has no result.json (metadata keys: ${Object.keys(md).join(", ") || "none"})`);
  try {
    const body: unknown = JSON.parse(json);
    if (!body || typeof body !== "object" || Array.isArray(body)) throw new Error("not an object");
    return { body: body as Json, json };
  } catch (e) {
    throw new BuildKitError(`the frontend's ${what} answer is not a JSON object: ${(e as Error).message}`, { cause: e });
  }
}

const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const num = (v: unknown): number => (typeof v === "number" ? v : 0);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === "object") as Json[]) : []);
const b64 = (v: unknown): string => (typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : "");

function position(v: unknown): SourcePosition {
  const p = (v ?? {}) as Json;
  return { line: num(p["line"]), character: num(p["character"]) };
}

function location(v: unknown): SourceLocation | undefined {
  if (!v || typeof v !== "object") return undefined;
  const l = v as Json;
  return { sourceIndex: num(l["sourceIndex"]), ranges: arr(l["ranges"]).map((r) => ({ start: position(r["start"]), end: position(r["end"]) })) };
}

function sourceFile(v: Json): SourceFile {
  const f: SourceFile = { filename: typeof v["filename"] === "string" ? v["filename"] : "", data: b64(v["data"]) };
  const language = text(v["language"]);
  if (language) f.language = language;
  return f;
}

/** frontend.lint's metadata as a CheckResult. */
export function checkResult(md: SubrequestMetadata): CheckResult {
  const { body, json } = parseJson(md, "check");
  const result: CheckResult = {
    warnings: arr(body["warnings"]).map((w) => ({
      ruleName: typeof w["ruleName"] === "string" ? w["ruleName"] : "",
      description: text(w["description"]),
      url: text(w["url"]),
      detail: text(w["detail"]),
      location: location(w["location"]),
    })),
    sources: arr(body["sources"]).map(sourceFile),
    statusCode: Number.parseInt(md["result.statuscode"] ?? "0", 10) || 0,
    json,
    text: md["result.txt"] ?? "",
    version: md["version"] ?? "",
  };
  const err = body["buildError"];
  if (err && typeof err === "object") {
    const e = err as Json;
    result.buildError = { message: typeof e["message"] === "string" ? e["message"] : "", location: location(e["location"]) ?? { sourceIndex: 0, ranges: [] } };
  }
  return result;
}

function mounts(v: unknown): OutlineMount[] {
  return arr(v).map((m) => ({ name: typeof m["name"] === "string" ? m["name"] : "", required: m["required"] === true, location: location(m["location"]) }));
}

/** frontend.outline's metadata as an OutlineResult. */
export function outlineResult(md: SubrequestMetadata): OutlineResult {
  const { body, json } = parseJson(md, "outline");
  return {
    name: text(body["name"]),
    description: text(body["description"]),
    args: arr(body["args"]).map((a) => ({
      name: typeof a["name"] === "string" ? a["name"] : "",
      description: text(a["description"]),
      value: text(a["value"]),
      location: location(a["location"]),
    })),
    secrets: mounts(body["secrets"]),
    ssh: mounts(body["ssh"]),
    cache: arr(body["cache"]).map((c) => ({ id: typeof c["ID"] === "string" ? c["ID"] : "", location: location(c["location"]) })),
    sources: (Array.isArray(body["sources"]) ? body["sources"] : []).map(b64),
    json,
    text: md["result.txt"] ?? "",
    version: md["version"] ?? "",
  };
}

/** frontend.targets' metadata as a TargetsResult. */
export function targetsResult(md: SubrequestMetadata): TargetsResult {
  const { body, json } = parseJson(md, "targets");
  return {
    targets: arr(body["targets"]).map((t) => ({
      name: text(t["name"]),
      default: t["default"] === true,
      description: text(t["description"]),
      base: text(t["base"]),
      platform: text(t["platform"]),
      location: location(t["location"]),
    })),
    sources: (Array.isArray(body["sources"]) ? body["sources"] : []).map(b64),
    json,
    text: md["result.txt"] ?? "",
    version: md["version"] ?? "",
  };
}
