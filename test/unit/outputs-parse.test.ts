/**
 * Outputs and caches as the user writes them: --output / --cache-* parsing
 * as buildx does it, the checks buildx makes before a build, what is
 * filled in from the environment, and the FileSend message decoding.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { parseOutput } from "../../src/cli/parse-build.js";
import { buildOptionsFromFlags } from "../../src/cli/commands/build.js";
import { exporters, type BuildOptions } from "../../src/solve/options.js";
import { parseCacheEntries, resolveCaches } from "../../src/solve/cache.js";
import { resolveOciContext } from "../../src/solve/stores.js";
import { bytesMessageData, exporterId } from "../../src/session/filesend.js";
import { codec } from "../../src/grpc/codec.js";
import { exportDescriptor } from "../../src/solve/outputs.js";
import { UsageError } from "../../src/errors.js";
import { tempDir } from "../helpers/files.js";
import type { CliStdout } from "../../src/cli/io.js";

const usage = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message));
};

test("--output is parsed as buildx: bare DIR is local, bare - is tar to stdout, CSV keys lower-cased, dest kept out of attrs", () => {
  assert.deepEqual(parseOutput("./out"), { type: "local", dest: "./out" });
  assert.deepEqual(parseOutput("-"), { type: "tar", dest: "-" });
  assert.deepEqual(parseOutput("type=local,dest=dist"), { type: "local", attrs: {}, dest: "dist" });
  assert.deepEqual(parseOutput("type=oci,DEST=x.tar,Tar=false,name=a/b:c"), { type: "oci", attrs: { tar: "false", name: "a/b:c" }, dest: "x.tar" });
  assert.deepEqual(parseOutput('type=tar,"dest=a,b.tar"'), { type: "tar", attrs: {}, dest: "a,b.tar" });
  assert.deepEqual(parseOutput("type=cacheonly"), { type: "cacheonly", attrs: {} });
  // One field that does not start with type= is a directory, even with "=" in it (buildx); two fields are CSV.
  assert.deepEqual(parseOutput("dest=x"), { type: "local", dest: "dest=x" });
  usage(() => parseOutput("dest=x,push=true"), /^--output "dest=x,push=true" has no type/);
  usage(() => parseOutput("type=image,name=UPPER"), /repository name must be lowercase/);
  usage(() => parseOutput(""), /^--output needs a value/);
});

const build = (outputs: BuildOptions["outputs"], extra: Partial<BuildOptions> = {}) => exporters({ context: ".", outputs, ...extra });

test("exporters: what each type needs, as buildx's CreateExports checks it", () => {
  const dir = tempDir("bk-exp-");
  writeFileSync(join(dir, "file"), "x");
  mkdirSync(join(dir, "sub"));
  usage(() => build([{ type: "local" }]), /^dest is required for local exporter/);
  usage(() => build([{ type: "local", dest: "-" }]), /^dest cannot be stdout for local exporter/);
  usage(() => build([{ type: "local", dest: join(dir, "file") }]), /^destination directory ".*file" is a file/);
  usage(() => build([{ type: "tar", dest: join(dir, "sub") }]), /^destination file ".*sub" is a directory/);
  usage(() => build([{ type: "oci", attrs: { tar: "false" } }]), /^dest is required for oci exporter/);
  usage(() => build([{ type: "tar" }]), /needs dest=FILE/);
  usage(() => build([{ type: "tar", dest: "x", stream: new PassThrough() }]), /both dest and stream/);
  usage(() => build([{ type: "local", dest: "x", stream: new PassThrough() }]), /cannot go to a stream/);
  usage(() => build([{ type: "image", dest: "x" }]), /takes neither dest nor stream/);
  usage(
    () => build([{ type: "docker", dest: "x.tar" }], { platforms: ["linux/amd64", "linux/386"] }),
    /docker exporter does not support exporting manifest lists/,
  );
  usage(
    () =>
      build([
        { type: "tar", dest: "same" },
        { type: "oci", dest: "same" },
      ]),
    /two outputs write to/,
  );
  usage(
    () =>
      build([
        { type: "oci", dest: "a", attrs: { tar: "false" } },
        { type: "docker", dest: "b", attrs: { tar: "false" } },
      ]),
    /only one oci or docker output with tar=false/,
  );
  usage(() => build([{ type: "" }]), /needs a type/);
  // Mapped: registry is image+push (unpack off unless set), cacheonly disappears, dest leaves attrs.
  assert.deepEqual(
    build([{ type: "registry", attrs: { name: "r/x" } }, { type: "cacheonly" }, { type: "tar", attrs: { dest: "t.tar" } }]).map((e) => ({
      type: e.type,
      attrs: e.attrs,
      target: e.target,
    })),
    [
      { type: "image", attrs: { name: "r/x", push: "true", unpack: "false" }, target: "none" },
      { type: "tar", attrs: {}, target: "file" },
    ],
  );
  const spec = { type: "oci", dest: "layout", attrs: { tar: "False" } };
  const [layout] = build([spec]);
  assert.equal(layout!.target, "layout");
  assert.deepEqual(spec, { type: "oci", dest: "layout", attrs: { tar: "False" } }, "the caller's spec is not changed");
  assert.equal(build([{ type: "docker", dest: "d.tar", attrs: { tar: "maybe" } }])[0]!.target, "file", "tar= that is not a boolean counts as true, as buildx");
});

test("CLI stdout rules: one output on stdout, never a terminal, not with -q; docker without dest is --load", () => {
  const pipe: CliStdout = { isTTY: false, writable: () => new PassThrough() };
  const tty: CliStdout = { isTTY: true, writable: () => new PassThrough() };
  const ctx = tempDir("bk-exp-ctx-");
  const flags = (output: string[], stdout?: CliStdout, quiet = false) =>
    buildOptionsFromFlags({ output, ...(quiet ? { quiet: true } : {}) }, [ctx], {}, stdout).options.outputs ?? [];
  const [tar] = flags(["-"], pipe);
  assert.equal(tar!.type, "tar");
  assert.ok(tar!.stream && tar!.dest === undefined);
  assert.ok(flags(["type=oci"], pipe)[0]!.stream, "oci without dest goes to stdout");
  usage(() => flags(["-"], tty), /^dest file is required for tar exporter. refusing to write to console/);
  usage(() => flags(["-"], undefined), /refusing to write to console/);
  usage(() => flags(["-", "type=oci,dest=-"], pipe), /^multiple outputs configured to write to stdout/);
  usage(() => flags(["-"], pipe, true), /^-q prints the image ID on stdout/);
  assert.deepEqual(flags(["type=docker"], pipe), [{ type: "docker", attrs: {} }], "docker without dest is --load, not stdout");
  assert.equal(flags(["type=oci,tar=false,dest=x"], pipe)[0]!.stream, undefined);
});

test("--cache-from/--cache-to: bare refs split into one registry entry each, as buildx", () => {
  assert.deepEqual(parseCacheEntries("user/app:cache", "--cache-from"), [{ type: "registry", attrs: { ref: "user/app:cache" } }]);
  assert.deepEqual(parseCacheEntries("a/b:c,d/e:f", "--cache-from"), [
    { type: "registry", attrs: { ref: "a/b:c" } },
    { type: "registry", attrs: { ref: "d/e:f" } },
  ]);
  assert.deepEqual(parseCacheEntries("type=local,SRC=path/to/cache", "--cache-from"), [{ type: "local", attrs: { src: "path/to/cache" } }]);
  assert.deepEqual(parseCacheEntries("", "--cache-from"), []);
  usage(() => parseCacheEntries("mode=max", "--cache-to"), /has no type/);
  usage(() => parseCacheEntries("a/b:c,x/UP", "--cache-from"), /must be lowercase/);
});

test("caches from the environment: gha token/url as buildx fills them (else dropped with a warning), s3 credentials, local dirs absolute", () => {
  const gha = (attrs: Record<string, string>, env: Record<string, string>) => resolveCaches([], [{ type: "gha", attrs }], env);
  const full = gha({}, { ACTIONS_RUNTIME_TOKEN: "tok", ACTIONS_CACHE_URL: "https://cache/" });
  assert.deepEqual(full.exports, [{ type: "gha", attrs: { token: "tok", url: "https://cache/" } }]);
  assert.deepEqual(full.warnings, []);
  const v2 = gha({}, { ACTIONS_RUNTIME_TOKEN: "tok", ACTIONS_RESULTS_URL: "https://results/", ACTIONS_CACHE_SERVICE_V2: "true" });
  assert.deepEqual(v2.exports[0]!.attrs, { token: "tok", url_v2: "https://results/", url: "https://results/" });
  assert.deepEqual(gha({ token: "mine", url: "u" }, { ACTIONS_RUNTIME_TOKEN: "tok", ACTIONS_CACHE_URL: "x" }).exports[0]!.attrs, { token: "mine", url: "u" });
  const none = gha({}, {});
  assert.deepEqual(none.exports, []);
  assert.match(none.warnings[0]!, /^--cache-to type=gha skipped: no GitHub Actions cache token and URL/);
  assert.ok(!JSON.stringify(full.warnings).includes("tok"));

  const s3 = (attrs: Record<string, string>, env: Record<string, string>) => resolveCaches([{ type: "s3", attrs }], [], env).imports[0]!.attrs;
  assert.deepEqual(s3({ bucket: "b" }, { AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK", AWS_SESSION_TOKEN: "ST", HOME: "/nonexistent" }), {
    bucket: "b",
    access_key_id: "AK",
    secret_access_key: "SK",
    session_token: "ST",
  });
  const home = tempDir("bk-aws-");
  mkdirSync(join(home, ".aws"));
  writeFileSync(
    join(home, ".aws", "credentials"),
    "[default]\naws_access_key_id = D1\naws_secret_access_key=D2\n[ci]\naws_access_key_id=C1\naws_secret_access_key = C2\n",
  );
  assert.deepEqual(s3({}, { HOME: home }), { access_key_id: "D1", secret_access_key: "D2" });
  assert.deepEqual(s3({}, { HOME: home, AWS_PROFILE: "ci" }), { access_key_id: "C1", secret_access_key: "C2" });
  assert.deepEqual(s3({ access_key_id: "X", secret_access_key: "Y" }, { AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK" }), {
    access_key_id: "X",
    secret_access_key: "Y",
  });
  assert.deepEqual(s3({}, { HOME: "/nonexistent" }), {});

  const local = resolveCaches([{ type: "local", attrs: { src: "rel/cache" } }], [{ type: "local", attrs: { dest: "rel/out", mode: "max" } }], {});
  assert.equal(local.imports[0]!.attrs["src"], join(process.cwd(), "rel/cache"));
  assert.deepEqual(local.exports[0]!.attrs, { dest: join(process.cwd(), "rel/out"), mode: "max" });
  usage(() => resolveCaches([{ type: "local", attrs: {} }], [], {}), /^--cache-from type=local needs src=DIR/);
  usage(() => resolveCaches([], [{ type: "local", attrs: { src: "x" } }], {}), /^--cache-to type=local needs dest=DIR/);

  // azblob goes to the daemon as written (it reads its own credentials); compression= stays on a local export.
  const az = { account_url: "https://acct.blob.core.windows.net", name: "cache", secret_access_key: "K" };
  const azure = resolveCaches([{ type: "azblob", attrs: { ...az } }], [{ type: "azblob", attrs: { ...az, mode: "max" } }], { HOME: "/nonexistent" });
  assert.deepEqual(azure.imports, [{ type: "azblob", attrs: az }]);
  assert.deepEqual(azure.exports, [{ type: "azblob", attrs: { ...az, mode: "max" } }]);
  assert.deepEqual(azure.warnings, []);
  const compressed = resolveCaches([], parseCacheEntries("type=local,dest=out,compression=zstd,compression-level=3,force-compression=true", "--cache-to"), {});
  assert.deepEqual(compressed.exports[0]!.attrs, {
    dest: join(process.cwd(), "out"),
    compression: "zstd",
    "compression-level": "3",
    "force-compression": "true",
  });
});

test("exportDescriptor: the exporter's base64 JSON descriptor, annotations kept; anything else is no descriptor", () => {
  const desc = {
    mediaType: "application/vnd.oci.image.index.v1+json",
    digest: `sha256:${"a".repeat(64)}`,
    size: 856,
    annotations: { "org.opencontainers.image.created": "2026-12-03T00:00:00Z" },
  };
  const b64 = Buffer.from(JSON.stringify(desc)).toString("base64");
  assert.deepEqual(exportDescriptor(b64), desc);
  assert.deepEqual(exportDescriptor(`${b64.slice(0, 20)}\n${b64.slice(20)}`), desc, "line breaks skipped as Go's StdEncoding does");
  const { annotations: _dropped, ...bare } = desc;
  assert.deepEqual(exportDescriptor(Buffer.from(JSON.stringify(bare)).toString("base64")), bare);
  for (const bad of [
    undefined,
    "",
    "not base64 at all!",
    Buffer.from("[1,2]").toString("base64"),
    Buffer.from('{"digest":"sha256:x"}').toString("base64"),
    Buffer.from('{"mediaType":"m","digest":"d","size":"9"}').toString("base64"),
  ]) {
    assert.equal(exportDescriptor(bad), undefined, String(bad));
  }
});

test("oci-layout:// build contexts: tag and digest as buildx parses them, the tag resolved from index.json", () => {
  const dir = tempDir("bk-ocictx-");
  const d1 = `sha256:${"1".repeat(64)}`;
  const d2 = `sha256:${"2".repeat(64)}`;
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { digest: d1, annotations: { "org.opencontainers.image.ref.name": "latest" } },
        { digest: d2, annotations: { "io.containerd.image.name": "v2", "org.opencontainers.image.ref.name": "latest" } },
      ],
    }),
  );
  const latest = resolveOciContext("base", `oci-layout://${dir}`)!;
  assert.match(latest.attr, new RegExp(`^oci-layout://bk-[0-9a-f]{20}:latest@${d1}$`));
  assert.equal(latest.dir, dir);
  assert.equal(latest.name, "base");
  assert.equal(resolveOciContext("base", `oci-layout://${dir}:v2`)!.attr, `oci-layout://${latest.store}:v2@${d2}`);
  assert.equal(resolveOciContext("base", `oci-layout://${dir}@${d2}`)!.attr, `oci-layout://${latest.store}@${d2}`, "a digest needs no index");
  assert.equal(resolveOciContext("base", "docker-image://x"), undefined);
  usage(() => resolveOciContext("base", `oci-layout://${dir}:nope`), /could not be resolved: no manifest tagged "nope"/);
  usage(() => resolveOciContext("base", `oci-layout://${dir}/missing`), /cannot read .*index.json/);
  usage(() => resolveOciContext("base", "oci-layout://"), /names no directory/);
});

test("FileSend: BytesMessage data is read without a copy and as protobuf would; the exporter id as Go reads it", () => {
  const bm = codec("moby.filesync.v1.BytesMessage");
  for (const data of [Buffer.alloc(0), Buffer.from("x"), Buffer.alloc(70000, 7)]) {
    const body = bm.encode({ data });
    const got = bytesMessageData(body);
    assert.ok(got.equals(data));
    if (data.length) assert.equal(got.buffer, body.buffer, "a view, not a copy");
  }
  // Unknown fields are skipped; a repeated field 1 keeps the last.
  const extra = Buffer.concat([
    Buffer.from([0x0a, 1, 0x41]),
    Buffer.from([0x10, 0x96, 0x01]),
    Buffer.from([0x0a, 2, 0x42, 0x43]),
    Buffer.from([0x1d, 1, 2, 3, 4]),
  ]);
  assert.equal(bytesMessageData(extra).toString(), "BC");
  assert.throws(() => bytesMessageData(Buffer.from([0x0a, 5, 1])), /truncated/);
  assert.throws(() => bytesMessageData(Buffer.from([0x0b])), /bad wire type/);
  assert.equal(exporterId([]), 0);
  assert.equal(exporterId(["3"]), 3);
  assert.equal(exporterId(["x"]), 0);
});
