/** `--call` and `--check`, parsed as buildx parses them (util/buildflags/callfunc.go). */
import { UsageError, csvFields, parseBool } from "../internal.js";

/** What to ask the frontend for instead of a build. */
export interface CallSpec {
  name: "check" | "outline" | "targets";
  /** format=json: print the frontend's JSON answer. */
  json: boolean;
  /** ignorestatus=true: exit 0 even when the result's status code says otherwise (check's warnings). */
  ignoreStatus: boolean;
}

const NAMES = new Set(["check", "outline", "targets"]);

/**
 * `--call NAME[,format=json][,ignorestatus=BOOL]` (CSV); `lint` is
 * buildx's older name for check. `build` (the default) gives undefined.
 */
export function parseCall(value: string): CallSpec | undefined {
  if (value === "") return undefined; // as buildx's ParseCallFunc: a build
  const fields = csvFields(value, ",", "--call");
  let name = "";
  let json = false;
  let ignoreStatus = false;
  for (const f of fields) {
    const eq = f.indexOf("=");
    if (eq < 0) {
      if (name) throw new UsageError(`invalid --call "${value}": it names two calls ("${name}", "${f}"); give one of build, check, outline, targets`);
      name = f;
      continue;
    }
    const k = f.slice(0, eq);
    const v = f.slice(eq + 1);
    if (k === "format") {
      if (v !== "json" && v !== "text") throw new UsageError(`invalid --call "${value}": format=${v} is not known; use format=json (or leave it out for text)`);
      json = v === "json";
    } else if (k === "ignorestatus") {
      const b = parseBool(v);
      if (b === undefined) throw new UsageError(`invalid --call "${value}": ignorestatus=${v} is not a boolean; use ignorestatus=true or false`);
      ignoreStatus = b;
    } else {
      throw new UsageError(`invalid --call "${value}": unknown field "${f}"; use NAME[,format=json][,ignorestatus=true]`);
    }
  }
  if (name === "lint") name = "check";
  if (name === "" || name === "build") {
    if (json || ignoreStatus) throw new UsageError(`invalid --call "${value}": format and ignorestatus apply to check, outline and targets, not to a build`);
    return undefined;
  }
  if (!NAMES.has(name)) throw new UsageError(`invalid --call "${value}": unknown call "${name}"; use build, check, outline or targets`);
  return { name: name as CallSpec["name"], json, ignoreStatus };
}

/** --call and --check together: --check is `--call check`, and may only repeat a --call check. */
export function callFromFlags(call: string | undefined, check: boolean): CallSpec | undefined {
  const spec = call === undefined ? undefined : parseCall(call);
  if (!check) return spec;
  if (call !== undefined && spec?.name !== "check") throw new UsageError(`--check means --call check, but --call "${call}" asks for something else; give one`);
  return spec ?? { name: "check", json: false, ignoreStatus: false };
}
