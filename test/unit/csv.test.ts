/**
 * csvFields against go-csvvalue's own test table: csvvalue_test.go of
 * github.com/tonistiigi/go-csvvalue at 030d3b2 (the version buildx vendors),
 * translated case by case. go-csvvalue's Comma option is our second
 * argument. The cases with LazyQuotes or TrimLeadingSpace set ("Trimmed
 * spaces only", "Leading spaces", "LazyQuotes", "BareQuotes", "Single quote",
 * "BareDoubleQuotes", "TrimQuote", "TrimAll") are left out: buildx and
 * buildkit never turn those options on, and csvFields does not have them.
 * Where go-csvvalue returns a csv.ParseError we expect a UsageError with the
 * same column; where it returns io.EOF (an empty record) a UsageError too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { csvFields } from "../../src/csv.js";
import { UsageError } from "../../src/errors.js";
import { parseBuildkitColors, DEFAULT_COLORS } from "../../src/progress/tty-options.js";
import { dockerfileMountIds, parseOutput, parseSecret } from "../../src/cli/parse-build.js";
import { parseCall } from "../../src/cli/parse-call.js";
import { parseCacheEntries } from "../../src/solve/cache.js";
import { buildOptionsFromFlags } from "../../src/cli/commands/build.js";

interface Case {
  name: string;
  input: string;
  comma?: string;
  output?: string[];
  /** A csv.ParseError at this column (ErrBareQuote or ErrQuote). */
  error?: { column: number; err: "bare" | "quote" };
  /** io.EOF. */
  eof?: true;
}

const cases: Case[] = [
  { name: "Simple", input: "foo,bar,baz", output: ["foo", "bar", "baz"] },
  { name: "Simple with NL", input: "foo,bar,baz\n", output: ["foo", "bar", "baz"] },
  { name: "Simple with CRNL", input: "foo,bar,baz\r\n", output: ["foo", "bar", "baz"] },
  { name: "Comma", input: "a;b;c\n", output: ["a", "b", "c"], comma: ";" },
  { name: "Empty spaces", input: " ", output: [" "] },
  { name: "Empty", input: "", eof: true },
  { name: "Unhandled leading spaces", input: "   foo,bar,baz", output: ["   foo", "bar", "baz"] },
  { name: "Newline only", input: "\n", eof: true },
  { name: "Quotes", input: 'a,"b,cc ,ddd",e', output: ["a", "b,cc ,ddd", "e"] },
  { name: "Quotes only", input: '""', output: [""] },
  { name: "Single quote strict", input: '"', error: { column: 2, err: "quote" } },
  { name: "Too many quotes only", input: '"""', error: { column: 4, err: "quote" } },
  { name: "One quote", input: 'foo,aa"bb,cc', error: { column: 7, err: "bare" } },
  { name: "BadDoubleQuotes", input: 'a""b,c', error: { column: 2, err: "bare" } },
  { name: "BadBareQuote", input: 'a "word","b"', error: { column: 3, err: "bare" } },
  { name: "BadTrailingQuote", input: '"a word",b"', error: { column: 11, err: "bare" } },
  { name: "ExtraneousQuote", input: '"a "word","b"', error: { column: 4, err: "quote" } },
  { name: "Unicode comma", input: "a€b€c\n", output: ["a", "b", "c"], comma: "€" },
  {
    name: "OCI config",
    input:
      'type=docker,name=test.docker,"containerimage.config={""Config"":{""Entrypoint"":[""/sbin/init"", ""--log-level=err""], ""StopSignal"":""37""},""os"":""linux"", ""architecture"":""amd64""}"',
    output: [
      "type=docker",
      "name=test.docker",
      'containerimage.config={"Config":{"Entrypoint":["/sbin/init", "--log-level=err"], "StopSignal":"37"},"os":"linux", "architecture":"amd64"}',
    ],
  },
  { name: "End double quote", input: 'a,"foo""",c', output: ["a", 'foo"', "c"] },
];

for (const c of cases) {
  test(`go-csvvalue TestFields: ${c.name}`, () => {
    const run = (): string[] => csvFields(c.input, c.comma ?? ",", "--test-flag");
    if (c.output) {
      assert.deepEqual(run(), c.output);
      return;
    }
    let thrown: unknown;
    try {
      run();
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof UsageError, `expected a UsageError, got ${String(thrown)}`);
    if (c.eof) {
      assert.match(thrown.message, /^--test-flag is empty/);
      return;
    }
    const what = c.error!.err === "bare" ? 'bare " in non-quoted field' : 'extraneous or missing " in quoted field';
    assert.ok(thrown.message.startsWith(`invalid --test-flag ${JSON.stringify(c.input)}: column ${c.error!.column}: ${what}`), `message: ${thrown.message}`);
  });
}

test("go-csvvalue TestInvalidDelimeter: a newline (or a quote, CR, nothing, two characters) cannot be the separator", () => {
  for (const comma of ["\n", "\r", '"', "", ";;", "\ud800"]) assert.throws(() => csvFields("foo\nbar\nbaz", comma), TypeError, JSON.stringify(comma));
  assert.deepEqual(csvFields("a😀b", "😀"), ["a", "b"], "one code point outside the BMP is one separator");
});

test("go-csvvalue TestDefaultParser: comma is the default separator", () => {
  assert.deepEqual(csvFields("foo,bar,baz"), ["foo", "bar", "baz"]);
  assert.deepEqual(csvFields("aaa,bbb"), ["aaa", "bbb"]);
});

// Our own cases beyond the upstream table.

test("columns count UTF-8 bytes, as Go's csv.ParseError does", () => {
  // "é" is 2 bytes: the bare quote is the 3rd character but at byte column 4.
  assert.throws(() => csvFields('éa"b'), /column 4: bare "/);
  // "€" is 3 bytes, as a separator too.
  assert.throws(() => csvFields('a€b"', "€"), /column 6: bare "/);
  assert.throws(() => csvFields('€😀"'), /column 8: bare "/);
});

test("empty fields, and only one trailing newline is dropped", () => {
  assert.deepEqual(csvFields("a,"), ["a", ""]);
  assert.deepEqual(csvFields(",a"), ["", "a"]);
  assert.deepEqual(csvFields('"a",'), ["a", ""]);
  assert.deepEqual(csvFields('"a","b"'), ["a", "b"]);
  assert.deepEqual(csvFields("a\n\n"), ["a\n"]);
  assert.deepEqual(csvFields("a\r"), ["a\r"]);
  assert.deepEqual(csvFields('"a\nb"'), ["a\nb"]);
});

test("the flag parsers name their flag in CSV errors", () => {
  assert.throws(() => parseOutput('type=image,name=a"b'), /^UsageError: invalid --output "type=image,name=a\\"b": column 18: bare "/);
  assert.throws(() => parseSecret('id=a,src="b"c', {}), /^UsageError: invalid --secret "id=a,src=\\"b\\"c": column 10: bare "/);
  assert.throws(() => parseSecret('id=a,"src=b"c', {}), /^UsageError: invalid --secret .*: column 12: extraneous or missing "/);
  assert.throws(() => parseCall('check,"format=json'), /^UsageError: invalid --call .*: column 8: extraneous or missing "/);
  assert.throws(() => parseCacheEntries('type=registry,"ref=a', "--cache-to"), /^UsageError: invalid --cache-to .*: column 16: extraneous/);
  assert.throws(() => parseCacheEntries('a"b', "--cache-from"), /^UsageError: invalid --cache-from "a\\"b": column 2: bare "/);
});

test("a trailing newline in a flag value is dropped, as buildx", () => {
  assert.deepEqual(parseOutput("type=image,name=a/b\n"), { type: "image", attrs: { name: "a/b" } });
  assert.deepEqual(parseSecret("id=a,src=b\r\n", {}).source, { file: "b" });
  assert.deepEqual(parseCacheEntries("a/b:cache\n", "--cache-from"), [{ type: "registry", attrs: { ref: "a/b:cache" } }]);
});

test("callers that tolerate bad CSV still do", () => {
  const warnings: string[] = [];
  assert.deepEqual(
    parseBuildkitColors('run=red:"error=blue', DEFAULT_COLORS, (w) => warnings.push(w)),
    DEFAULT_COLORS,
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /could not parse BUILDKIT_COLORS/);
  assert.deepEqual(
    parseBuildkitColors("", DEFAULT_COLORS, (w) => warnings.push(w)),
    DEFAULT_COLORS,
  );
  assert.equal(warnings.length, 1, "an empty BUILDKIT_COLORS is not a warning");
  assert.equal(parseBuildkitColors("run=red", DEFAULT_COLORS).run, "\x1b[31m");
  // A --mount that is not valid CSV is skipped (buildkit would reject it); the others are still found.
  assert.deepEqual(dockerfileMountIds('RUN --mount=type=secret,id=a"b true\nRUN --mount=type=secret,id=ok true\n'), [
    { type: "secret", id: "ok", required: false },
  ]);
});

test("empty values are skipped as buildx skips them: --secret, --output, --cache-*, --call", () => {
  assert.equal(parseCall(""), undefined);
  assert.deepEqual(parseCacheEntries("", "--cache-from"), []);
  const { options } = buildOptionsFromFlags({ secret: [""], output: [""], "cache-to": [""] }, ["."], {});
  assert.deepEqual(options.secrets, {});
  assert.deepEqual(options.outputs, []);
  assert.deepEqual(options.cacheTo, []);
  assert.throws(() => buildOptionsFromFlags({ secret: ["\n"] }, ["."], {}), /^UsageError: --secret is empty/, "a newline alone is go-csvvalue's io.EOF");
});
