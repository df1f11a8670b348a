/**
 * Bad input, as a user types it: every case runs the built CLI in a fresh,
 * empty working directory and must end with the right exit code (2 for
 * usage, 1 otherwise), exactly one stderr line, `error: ` and a fragment
 * naming the input, no stack trace, and nothing written anywhere.
 *
 * Cases point at unix:///nonexistent.sock unless they need the daemon, so
 * input that is checked only after dialling shows up as a connection error.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCliAsync, testEnv, type RunResult } from "../helpers/env.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

const NO_DAEMON = "unix:///nonexistent.sock";

interface Case {
  name: string;
  /** Arguments; `fx` is the fixtures directory. */
  args: (fx: string) => string[];
  code: 1 | 2;
  /** Must appear in the error line: the flag, value or path at fault. */
  fragment: string | ((fx: string) => string);
  env?: Record<string, string>;
  /** Run against the test daemon (else NO_DAEMON). */
  daemon?: boolean;
  /** Per-case limit; a case that hangs fails instead. */
  timeoutMs?: number;
  /** Run the bin file through its #! line, as an npm-installed bk-build is run. */
  asInstalled?: boolean;
}

const a =
  (...args: string[]) =>
  (): string[] =>
    args;
const build =
  (...flags: string[]) =>
  (fx: string): string[] => ["build", ...flags, join(fx, "ctx")];
const compose =
  (project: string, ...rest: string[]) =>
  (fx: string): string[] => ["compose", "-f", join(fx, project, "compose.yaml"), ...rest];

const cases: Case[] = [
  // Global.
  { name: "no command", args: a(), code: 2, fragment: "no command given" },
  { name: "unknown command", args: a("frob"), code: 2, fragment: '"frob"' },
  { name: "positional to info", args: a("info", "extra"), code: 2, fragment: '"extra"' },
  { name: "positional to du", args: a("du", "x"), code: 2, fragment: '"x"' },
  { name: "unknown global flag", args: a("--nope", "info"), code: 2, fragment: "--nope" },
  { name: "unknown flag only", args: a("--nope"), code: 2, fragment: "--nope" },
  { name: "unknown command flag", args: a("du", "--bogus"), code: 2, fragment: "--bogus" },
  { name: "build flag given to info", args: a("info", "--push"), code: 2, fragment: "--push" },
  { name: "missing value at the end", args: a("prune", "--keep-duration"), code: 2, fragment: "--keep-duration" },
  { name: "missing global value", args: a("--addr"), code: 2, fragment: "--addr" },
  { name: "boolean flag given a value", args: a("du", "--verbose=yes"), code: 2, fragment: "--verbose" },
  { name: "--format yaml", args: a("info", "--format", "yaml"), code: 2, fragment: '"yaml"' },
  { name: "--format xml for workers", args: a("workers", "--format=xml"), code: 2, fragment: '"xml"' },
  { name: "compose without subcommand", args: a("compose"), code: 2, fragment: "subcommand" },
  { name: "compose unknown subcommand", args: a("compose", "up"), code: 2, fragment: '"up"' },

  // --timeout (global, checked by the parser).
  { name: "--timeout -5", args: a("info", "--timeout", "-5"), code: 2, fragment: '--timeout "-5"' },
  { name: "--timeout 0", args: a("info", "--timeout", "0"), code: 2, fragment: '--timeout "0"' },
  { name: "--timeout above 2^31-1 ms", args: a("--timeout", "600h", "info"), code: 2, fragment: '--timeout "600h"' },
  { name: "--timeout in days", args: a("info", "--timeout=30d"), code: 2, fragment: '"30d"' },
  { name: "--timeout soon", args: a("du", "--timeout", "soon"), code: 2, fragment: '"soon"' },

  // Build flags.
  { name: "build without PATH", args: a("build"), code: 2, fragment: "PATH" },
  { name: "build with two PATHs", args: a("build", ".", "other"), code: 2, fragment: "one PATH" },
  { name: "--shm-size -1", args: build("--shm-size", "-1"), code: 2, fragment: '"-1" for --shm-size' },
  { name: "--shm-size lots", args: build("--shm-size", "lots"), code: 2, fragment: '"lots" for --shm-size' },
  { name: "--ulimit without value", args: build("--ulimit", "nofile"), code: 2, fragment: '--ulimit "nofile"' },
  { name: "--ulimit not numbers", args: build("--ulimit", "nofile=a:b"), code: 2, fragment: '"nofile=a:b"' },
  { name: "--add-host without IP", args: build("--add-host", "nohost"), code: 2, fragment: '--add-host "nohost"' },
  { name: "--add-host empty IP", args: build("--add-host", "db:"), code: 2, fragment: '"db:"' },
  { name: "--network bridge", args: build("--network", "bridge"), code: 2, fragment: '--network "bridge"' },
  { name: "--progress fancy", args: build("--progress", "fancy"), code: 2, fragment: '"fancy"' },
  { name: "BUILDKIT_PROGRESS fancy", args: build(), env: { BUILDKIT_PROGRESS: "fancy" }, code: 2, fragment: "BUILDKIT_PROGRESS" },
  { name: "--output type=local without dest", args: build("--output", "type=local"), code: 2, fragment: "dest is required for local exporter" },
  { name: "--output without type", args: build("--output", "name=x,push=true"), code: 2, fragment: '--output "name=x,push=true"' },
  { name: "--output field without =", args: build("-o", "type=image,oops"), code: 2, fragment: "'oops'" },
  { name: "--output type=registry without name", args: build("--output", "type=registry"), code: 2, fragment: "--tag" },
  { name: "--output uppercase name", args: build("--output", "type=image,name=Bad"), code: 2, fragment: '"Bad"' },
  { name: "--cache-to registry without ref", args: build("--cache-to", "type=registry"), code: 2, fragment: '--cache-to "type=registry"' },
  { name: "--cache-to bad ref tag", args: build("--cache-to", "type=registry,ref=reg/app:-x"), code: 2, fragment: '"reg/app:-x"' },
  { name: "--cache-from without type", args: build("--cache-from", "mode=max"), code: 2, fragment: '--cache-from "mode=max"' },
  { name: "--cache-from uppercase ref", args: build("--cache-from", "reg/App"), code: 2, fragment: '"reg/App"' },
  { name: "--secret without id", args: build("--secret", "src=x"), code: 2, fragment: '--secret "src=x"' },
  { name: "--secret type=ssh", args: build("--secret", "id=a,type=ssh"), code: 2, fragment: '"ssh"' },
  { name: "--secret unknown key", args: build("--secret", "id=a,foo=b"), code: 2, fragment: "'foo'" },
  {
    name: "--secret missing file",
    args: (fx) => build("--secret", `id=s,src=${join(fx, "nope.txt")}`)(fx),
    daemon: true,
    code: 2,
    fragment: (fx) => join(fx, "nope.txt"),
  },
  {
    name: "--ssh missing socket",
    args: (fx) => build("--ssh", `default=${join(fx, "nope.sock")}`)(fx),
    daemon: true,
    code: 2,
    fragment: (fx) => join(fx, "nope.sock"),
  },
  { name: "--ssh default without agent", args: build("--ssh", "default"), env: { SSH_AUTH_SOCK: "" }, daemon: true, code: 2, fragment: "SSH_AUTH_SOCK" },
  { name: "--build-arg without name", args: build("--build-arg", "=x"), code: 2, fragment: '--build-arg "=x"' },
  { name: "--label without name", args: build("--label", "=x"), code: 2, fragment: '--label "=x"' },
  { name: "--build-context without =", args: build("--build-context", "foo"), code: 2, fragment: '--build-context "foo"' },
  { name: "--build-context missing dir", args: build("--build-context", "x=/nonexistent/dir"), code: 2, fragment: "x=/nonexistent/dir" },
  { name: "--registry-auth without =", args: build("--registry-auth", "foo"), code: 2, fragment: '--registry-auth "foo"' },
  { name: "--registry-auth unset variable", args: build("--registry-auth", "reg.example=u:BK_BAD_INPUT_UNSET"), code: 2, fragment: "BK_BAD_INPUT_UNSET" },
  { name: "--registry-auth password inline", args: build("--registry-auth", "reg.example=u:hunter-2"), code: 2, fragment: '"hunter-2"' },
  { name: "--platform with four parts", args: build("--platform", "linux/amd64/v8/extra"), code: 2, fragment: '--platform "linux/amd64/v8/extra"' },
  { name: "--platform with a bad character", args: build("--platform", "linux/amd64,linux/arm 64"), code: 2, fragment: '"linux/arm 64"' },
  { name: "-t uppercase repository", args: build("-t", "Foo:bar"), code: 2, fragment: 'invalid tag "Foo:bar": repository name must be lowercase' },
  { name: "-t with a space", args: build("-t", "my image"), code: 2, fragment: '"my image"' },
  { name: "-t empty", args: build("-t", ""), code: 2, fragment: 'invalid tag ""' },
  { name: "-t bad tag", args: build("-t", "app:-bad"), code: 2, fragment: '"app:-bad"' },
  { name: "-t tag too long", args: build("--tag", `app:${"x".repeat(129)}`), code: 2, fragment: "1 to 128" },
  { name: "-t bad digest", args: build("-t", "app@sha256:abc"), code: 2, fragment: '"app@sha256:abc"' },
  { name: "-t short sha256", args: build("-t", `app@sha256:${"a".repeat(63)}`), code: 2, fragment: "64 hex digits" },
  { name: "-t value starting with -", args: build("-t", "-x"), code: 2, fragment: '"-x"' },
  { name: "--push without tag", args: build("--push"), code: 2, fragment: "--tag" },
  { name: "--metadata-file . (a directory)", args: build("--metadata-file", "."), daemon: true, code: 2, fragment: '--metadata-file "."' },
  { name: "--metadata-file in a missing directory", args: build("--metadata-file", "nodir/m.json"), code: 2, fragment: '"nodir/m.json"' },
  { name: "--metadata-file a FIFO", args: (fx) => build("--metadata-file", join(fx, "fifo"))(fx), code: 2, fragment: (fx) => join(fx, "fifo") },
  { name: "--metadata-file empty", args: build("--metadata-file="), code: 2, fragment: "--metadata-file" },

  // Files.
  { name: "missing context", args: a("build", "/nonexistent/ctx"), code: 2, fragment: "/nonexistent/ctx" },
  { name: "context is a file", args: (fx) => ["build", join(fx, "file")], code: 2, fragment: (fx) => join(fx, "file") },
  { name: "missing Dockerfile", args: build("-f", "/nonexistent/Dockerfile"), code: 2, fragment: "/nonexistent/Dockerfile" },
  { name: "Dockerfile is a directory", args: (fx) => build("-f", join(fx, "adir"))(fx), code: 2, fragment: (fx) => join(fx, "adir") },
  { name: "Dockerfile is a FIFO", args: (fx) => build("-f", join(fx, "fifo"))(fx), code: 2, fragment: (fx) => join(fx, "fifo"), timeoutMs: 5000 },
  {
    name: "--secret src is a FIFO",
    args: (fx) => build("--secret", `id=s,src=${join(fx, "fifo")}`)(fx),
    daemon: true,
    code: 2,
    fragment: (fx) => join(fx, "fifo"),
    timeoutMs: 5000,
  },
  {
    name: "missing --tlscacert",
    args: a("info", "--addr", "tcp://127.0.0.1:1", "--tlscacert", "/nonexistent/ca.pem"),
    code: 2,
    fragment: "/nonexistent/ca.pem",
  },
  {
    name: "--tlscacert is a FIFO",
    args: (fx) => ["info", "--addr", "tcp://127.0.0.1:1", "--tlscacert", join(fx, "fifo")],
    code: 2,
    fragment: (fx) => join(fx, "fifo"),
    timeoutMs: 5000,
  },
  {
    name: "--tlsdir without ca",
    args: (fx) => ["info", "--addr", "tcp://127.0.0.1:1", "--tlsdir", join(fx, "tls-noca")],
    code: 2,
    fragment: (fx) => join(fx, "tls-noca"),
  },
  {
    name: "--tlscert without --tlskey",
    args: (fx) => ["info", "--addr", "tcp://127.0.0.1:1", "--tlscert", join(fx, "tls-noca", "cert.pem")],
    code: 2,
    fragment: "--tlskey",
  },

  // Addresses.
  { name: "--addr with an unknown scheme", args: a("info", "--addr", "foo://x"), code: 2, fragment: "foo://x" },
  { name: "--addr relative unix path", args: a("info", "--addr", "unix://relative.sock"), code: 2, fragment: "unix://relative.sock" },
  { name: "--addr port out of range", args: a("info", "--addr", "tcp://127.0.0.1:99999"), code: 2, fragment: "99999" },
  { name: "--addr tcp without port", args: a("info", "--addr", "tcp://127.0.0.1"), code: 2, fragment: "tcp://127.0.0.1" },
  { name: "--addr ssh with a query", args: a("info", "--addr", "ssh://user@127.0.0.1?x=1"), code: 2, fragment: "ssh://user@127.0.0.1?x=1" },
  { name: "BUILDKIT_HOST without scheme", args: a("info"), env: { BUILDKIT_HOST: "buildkitd.sock" }, code: 2, fragment: "BUILDKIT_HOST" },
  { name: "nothing listening on the socket", args: a("info"), code: 1, fragment: "/nonexistent.sock" },
  { name: "nothing listening on the socket, du", args: a("du", "--addr", NO_DAEMON), code: 1, fragment: "/nonexistent.sock" },

  // Compose.
  { name: "compose: no compose file", args: a("compose", "build"), code: 2, fragment: "no compose file" },
  { name: "compose: missing -f file", args: a("compose", "-f", "/nonexistent/compose.yaml", "build"), code: 2, fragment: "/nonexistent/compose.yaml" },
  { name: "compose: bad YAML", args: compose("c-badyaml", "build"), code: 2, fragment: (fx) => join(fx, "c-badyaml", "compose.yaml") },
  { name: "compose: unknown build key", args: compose("c-unknownkey", "build"), code: 2, fragment: '"bogus"' },
  { name: "compose: undefined secret", args: compose("c-secret", "build"), code: 2, fragment: "nope" },
  { name: "compose: unset variable with :?", args: compose("c-required", "build"), env: { BK_BAD_TAG: "" }, code: 2, fragment: "BK_BAD_TAG" },
  { name: "compose: --parallel 0", args: compose("c-ok", "build", "--parallel", "0"), code: 2, fragment: '--parallel "0"' },
  // A bare --parallel is compose build's deprecated boolean: "many" is then a service name.
  { name: "compose: --parallel many", args: compose("c-ok", "build", "--parallel", "many"), code: 2, fragment: "no such service: many" },
  { name: "compose: --parallel -2", args: compose("c-ok", "build", "--parallel", "-2"), code: 2, fragment: '"-2"' },
  { name: "compose: unknown service", args: compose("c-ok", "build", "nosuch"), code: 2, fragment: "nosuch" },
  { name: "compose: uppercase image", args: compose("c-badimage", "build"), code: 2, fragment: '"Web:1"' },
  {
    name: "compose: missing --env-file",
    args: (fx) => ["compose", "-f", join(fx, "c-ok", "compose.yaml"), "--env-file", "/nonexistent/.env", "build"],
    code: 2,
    fragment: "/nonexistent/.env",
    // Node 20 reads --env-file anywhere in argv (nodejs/node#54232); the
    // installed bk-build runs `node -- bin.js`, which this case exercises.
    asInstalled: true,
  },
  { name: "compose: -f is a FIFO", args: (fx) => ["compose", "-f", join(fx, "fifo"), "build"], code: 2, fragment: (fx) => join(fx, "fifo"), timeoutMs: 5000 },

  // prune.
  { name: "prune: --keep-storage lots", args: a("prune", "--keep-storage", "lots"), code: 2, fragment: '"lots" for --keep-storage' },
  { name: "prune: --keep-duration 1d", args: a("prune", "--keep-duration", "1d"), code: 2, fragment: '"1d" for --keep-duration' },
  {
    name: "prune: both --keep-storage and --reserved-space",
    args: a("prune", "--keep-storage", "1GB", "--reserved-space", "1GB"),
    code: 2,
    fragment: "--reserved-space",
  },
];

interface Outcome {
  r: RunResult;
  /** What the working directory held afterwards. */
  left: string[];
}

let fx = "";
let cwdRoot = "";
let fixturesBefore: string[] = [];
const outcomes = new Map<string, Outcome>();

/** Everything under `dir`, as relative paths (for "nothing was written" checks). */
function tree(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = prefix + e.name;
    return e.isDirectory() ? [rel + "/", ...tree(join(dir, e.name), rel + "/")] : [rel];
  });
}

before(async () => {
  const daemon = testEnv().buildkitHost;
  fx = mkdtempSync(join(tmpdir(), "bk-bad-fixtures-"));
  cwdRoot = mkdtempSync(join(tmpdir(), "bk-bad-cwd-"));
  const files: Record<string, string> = {
    "ctx/Dockerfile": "FROM scratch\n",
    file: "not a directory\n",
    "tls-noca/cert.pem": "not really a certificate\n",
    "tls-noca/key.pem": "not really a key\n",
    "c-badyaml/compose.yaml": "services: [\n  web\n",
    "c-unknownkey/compose.yaml": "services:\n  web:\n    build:\n      context: .\n      bogus: 1\n",
    "c-secret/compose.yaml": "services:\n  web:\n    build:\n      context: .\n      secrets: [nope]\n",
    "c-required/compose.yaml": "services:\n  web:\n    image: app:${BK_BAD_TAG:?set BK_BAD_TAG to the tag}\n    build: .\n",
    "c-ok/compose.yaml": "services:\n  web:\n    build: .\n",
    "c-ok/Dockerfile": "FROM scratch\n",
    "c-badimage/compose.yaml": "services:\n  web:\n    image: Web:1\n    build: .\n",
    "c-badimage/Dockerfile": "FROM scratch\n",
  };
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(fx, name, ".."), { recursive: true });
    writeFileSync(join(fx, name), text);
  }
  mkdirSync(join(fx, "adir"));
  execFileSync("mkfifo", [join(fx, "fifo")]);
  mkdirSync(join(fx, "home"));
  fixturesBefore = tree(fx);

  // A small pool: the cases are independent, most exit in well under a second.
  const queue = [...cases];
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const cwd = mkdtempSync(join(cwdRoot, "case-"));
      const r = await runCliAsync(c.args(fx), {
        cwd,
        env: { BUILDKIT_HOST: c.daemon ? daemon : NO_DAEMON, HOME: join(fx, "home"), ...(c.env ?? {}) },
        timeoutMs: c.timeoutMs ?? 20_000,
        asInstalled: c.asInstalled ?? false,
      });
      outcomes.set(c.name, { r, left: tree(cwd) });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
});

after(() => {
  if (fx) rmSync(fx, { recursive: true, force: true });
  if (cwdRoot) rmSync(cwdRoot, { recursive: true, force: true });
});

test("the table has at least 60 cases, each named once", () => {
  assert.ok(cases.length >= 60, `${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
});

for (const c of cases) {
  test(`bad input: ${c.name}`, () => {
    const o = outcomes.get(c.name);
    assert.ok(o, "the case ran");
    const { r, left } = o;
    const shown = `exit ${r.code} after ${r.ms} ms; stderr:\n${r.stderr}`;
    assert.notEqual(r.code, null, `killed after ${r.ms} ms (it hung)`);
    assert.equal(r.code, c.code, shown);
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1, `exactly one stderr line\n${shown}`);
    assert.ok(lines[0]!.startsWith("error: "), shown);
    const fragment = typeof c.fragment === "function" ? c.fragment(fx) : c.fragment;
    assert.ok(lines[0]!.includes(fragment), `the line names ${JSON.stringify(fragment)}\n${shown}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "", "nothing on stdout");
    assert.deepEqual(left, [], "nothing was left in the working directory");
  });
}

test("no case wrote into the fixtures", () => {
  assert.deepEqual(tree(fx), fixturesBefore);
});
