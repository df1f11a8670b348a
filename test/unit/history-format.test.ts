import { test } from "node:test";
import assert from "node:assert/strict";
import { buildName, formatBuildDuration, historyJson, inspectJson, renderHistoryTable, renderInspect, sortRecords } from "../../src/cli/history-format.js";
import { buildRecordFromWire, type BuildRecord } from "../../src/history/record.js";
import { MASK, isSecretName, redactAttr, redactValue } from "../../src/history/redact.js";
import { buildRecord } from "../helpers/history.js";

const now = Date.UTC(2026, 0, 2, 12, 0, 0);
function rec(p: Partial<BuildRecord>): BuildRecord {
  return buildRecord({ createdAt: new Date(now - 120_000), steps: { total: 4, completed: 4, cached: 1 }, ...p });
}

test("durations as buildx prints them", () => {
  assert.equal(formatBuildDuration(150), "0.1s");
  assert.equal(formatBuildDuration(59_940), "59.9s");
  assert.equal(formatBuildDuration(60_000), "1m  0s");
  assert.equal(formatBuildDuration(125_000), "2m  5s");
  assert.equal(formatBuildDuration(3_725_000), "62m  5s");
});

test("the ls table: buildx's columns, running first then newest first, running durations with +", () => {
  const records = sortRecords([
    rec({ ref: "old", createdAt: new Date(now - 7_200_000), completedAt: new Date(now - 7_199_000), durationMs: 1000 }),
    rec({ ref: "failed", status: "error", createdAt: new Date(now - 60_000), completedAt: new Date(now - 57_500), durationMs: 2500 }),
    rec({ ref: "busy", status: "running", createdAt: new Date(now - 5_000) }),
  ]);
  assert.deepEqual(
    records.map((r) => r.ref),
    ["busy", "failed", "old"],
  );
  assert.equal(
    renderHistoryTable(records, now),
    [
      "BUILD ID   NAME   STATUS      CREATED AT           DURATION",
      "busy              Running     5 seconds ago        5.0s+",
      "failed            Error       About a minute ago   2.5s",
      "old               Completed   2 hours ago          1.0s",
      "",
    ].join("\n"),
  );
  const json = historyJson(records);
  assert.equal(json[1]!["status"], "Error");
  assert.equal(json[0]!["completed_at"], undefined);
  assert.equal(json[2]!["total_steps"], 4);
});

test("build names as buildx derives them from the attributes", () => {
  assert.equal(buildName({ "build-arg:BUILDKIT_BUILD_NAME": "mine", target: "t" }), "mine");
  assert.equal(buildName({ filename: "Dockerfile" }), "");
  assert.equal(buildName({ filename: "Dockerfile", target: "test" }), "test");
  assert.equal(buildName({ filename: "docker/app.Dockerfile" }), "docker/app.Dockerfile");
  assert.equal(buildName({ context: "https://github.com/o/r.git", target: "bin" }), "https://github.com/o/r.git (bin)");
});

test("inspect shows frontend, status, duration, steps, error, build args as buildx's table", () => {
  const r = rec({
    ref: "abc",
    status: "error",
    error: { code: "UNKNOWN", message: "exit code: 3" },
    completedAt: new Date(now - 118_500),
    durationMs: 1500,
    warnings: 2,
    frontendAttrs: { filename: "Dockerfile", "build-arg:B": "2", "build-arg:A": "1", "label:x": "y", "no-cache": "" },
    exporters: [{ type: "image", attrs: { name: "r/app", push: "true" } }],
  });
  const text = renderInspect(r, now);
  assert.match(text, /^Ref: +abc$/m);
  assert.match(text, /^Frontend: +dockerfile\.v0$/m);
  assert.match(text, /^Duration: +1\.5s$/m);
  assert.match(text, /^Status: +Error$/m);
  assert.match(text, /^Error: +UNKNOWN exit code: 3$/m);
  assert.match(text, /^Build Steps: +4\/4 \(25% cached\)$/m);
  assert.match(text, /^Warnings: +2$/m);
  assert.match(text, /^BUILD ARG +VALUE\nA +1\nB +2\n/m);
  assert.match(text, /^LABEL +VALUE\nx +y\n/m);
  assert.match(text, /^image +name=r\/app,push=true$/m);
  const json = inspectJson(r);
  assert.deepEqual(json["BuildArgs"], [
    { name: "A", value: "1" },
    { name: "B", value: "2" },
  ]);
  assert.equal(json["Status"], "Error");
  assert.equal(json["NumCachedSteps"], 1);
});

test("secret names: BuildKit's SecretsUsedInArgOrEnv words, whole words only, 'public' allowed", () => {
  for (const n of ["GH_TOKEN", "token", "API_KEY", "apikey", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "NPM_AUTH", "my_credentials"])
    assert.equal(isSecretName(n), true, n);
  for (const n of ["TOKENIZER", "MONKEY", "PUBLIC_KEY", "VERSION", "AUTHOR"]) assert.equal(isSecretName(n), false, n);
});

test("secret-looking values are masked; plain values are not", () => {
  assert.equal(redactAttr("build-arg:GH_TOKEN", "abc"), MASK);
  assert.equal(redactAttr("build-arg:VERSION", "1.2"), "1.2");
  assert.equal(redactAttr("build-arg:EMPTY_TOKEN", ""), "", "nothing to hide");
  assert.equal(redactValue("type=gha,token=s3cr3t,scope=x"), "type=gha,token=xxxxx,scope=x");
  assert.equal(redactValue("ghp_" + "a".repeat(36)), MASK);
  assert.equal(redactValue("see github_pat_" + "b".repeat(82) + " here"), `see ${MASK} here`);
  assert.equal(redactValue("https://bob:hunter2@example.com/x.git"), "https://xxxxx:xxxxx@example.com/x.git");
  assert.equal(redactValue("https://tok@example.com/"), "https://xxxxx@example.com/");
  assert.equal(redactValue("https://example.com/a@b"), "https://example.com/a@b");
});

test("records from the wire: status words, error, duration, masked attrs and exporter attrs, digests kept", () => {
  const r = buildRecordFromWire({
    Ref: "ref1",
    Frontend: "dockerfile.v0",
    FrontendAttrs: { "build-arg:NPM_TOKEN": "npm_abcdef", "build-arg:NOTE": "token=abc123", filename: "Dockerfile" },
    Exporters: [{ Type: "image", Attrs: { name: "x", "registry.token": "t0k" } }],
    error: { code: 2, message: "boom", details: [] },
    CreatedAt: { seconds: "1767225600", nanos: 0 },
    CompletedAt: { seconds: "1767225602", nanos: 500_000_000 },
    logs: { media_type: "application/vnd.buildkit.status.v0", digest: "sha256:ab", size: "10", annotations: {} },
    ExporterResponse: { "containerimage.digest": "sha256:cd", "containerimage.config": "e30=", "image.name": "x" },
    Result: null,
    Results: {},
    Generation: 1,
    trace: null,
    pinned: false,
    numCachedSteps: 1,
    numTotalSteps: 3,
    numCompletedSteps: 3,
    externalError: null,
    numWarnings: 0,
  });
  assert.equal(r.status, "error");
  assert.deepEqual(r.error, { code: "UNKNOWN", message: "boom" });
  assert.equal(r.durationMs, 2500);
  assert.deepEqual(r.frontendAttrs, { "build-arg:NPM_TOKEN": MASK, "build-arg:NOTE": "token=xxxxx", filename: "Dockerfile" });
  assert.deepEqual(r.exporters[0]!.attrs, { name: "x", "registry.token": MASK });
  assert.deepEqual(r.exporterResponse, { "containerimage.digest": "sha256:cd", "image.name": "x" });
  assert.deepEqual(r.logs, { mediaType: "application/vnd.buildkit.status.v0", digest: "sha256:ab", size: 10 });
  assert.deepEqual(r.steps, { total: 3, completed: 3, cached: 1 });
});

test("values masked in attributes are masked in free text too: step names, errors, log bytes", async () => {
  const { maskStatus, secretValues } = await import("../../src/history/redact.js");
  const gh = "ghp_" + "c".repeat(36);
  const values = secretValues({
    "build-arg:GH_TOKEN": "hunter22",
    "build-arg:NOTE": "token=abcd1234",
    "build-arg:URL": "https://u:pw5678@h/x",
    "build-arg:V": "1",
    "build-arg:X": gh,
  });
  assert.deepEqual(new Set(values), new Set(["hunter22", "abcd1234", "pw5678", gh]), "short or plain values are not in the list");
  const s = maskStatus(
    {
      vertexes: [{ digest: "d", inputs: [], name: 'RUN test -n "hunter22" && echo abcd1234', cached: false, error: "exit: hunter22" }],
      statuses: [],
      logs: [{ vertex: "d", stream: 1, data: Buffer.from(`x ${gh} y pw5678\n`) }],
      warnings: [{ vertex: "d", level: 1, short: "hunter22", detail: [], url: "" }],
    },
    values,
  );
  assert.equal(s.vertexes[0]!.name, 'RUN test -n "xxxxx" && echo xxxxx');
  assert.equal(s.vertexes[0]!.error, "exit: xxxxx");
  assert.equal(s.logs[0]!.data.toString(), "x xxxxx y xxxxx\n");
  assert.equal(s.warnings[0]!.short, "xxxxx");
  const r = buildRecordFromWire({
    Ref: "r",
    Frontend: "dockerfile.v0",
    FrontendAttrs: { "build-arg:API_KEY": "k3y-value" },
    Exporters: [],
    error: { code: 2, message: 'process "/bin/sh -c curl -H k3y-value" did not complete', details: [] },
    CreatedAt: { seconds: "1", nanos: 0 },
    CompletedAt: { seconds: "2", nanos: 0 },
    logs: null,
    ExporterResponse: {},
    Result: null,
    Results: {},
    Generation: 0,
    trace: null,
    pinned: false,
    numCachedSteps: 0,
    numTotalSteps: 0,
    numCompletedSteps: 0,
    externalError: null,
    numWarnings: 0,
  });
  assert.equal(r.error?.message, 'process "/bin/sh -c curl -H xxxxx" did not complete');
});
