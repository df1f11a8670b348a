/**
 * The .env dialect, with the cases of compose-spec/compose-go's own tests:
 * dotenv/godotenv_test.go, dotenv/parser_test.go,
 * dotenv/godotenv_var_expansion_test.go and the dotenv/fixtures/ files, at
 * commit e70e961c3a3acebf0800b882f1afb3dbf1fb74a2. Their inputs and
 * expected values, our words.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDotenv } from "../../src/compose/dotenv.js";

const parse = (text: string, shell: Record<string, string> = {}): Record<string, string> => parseDotenv(text, (k) => shell[k]);
const one = (line: string, key: string, value: string): void => {
  const env = parse(line);
  assert.ok(Object.hasOwn(env, key), `${JSON.stringify(line)}: no key ${key} in ${JSON.stringify(env)}`);
  assert.equal(env[key], value, JSON.stringify(line));
};

const fixtures = {
  plain: "OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n456 = ABC\nOPTION_F = \nOPTION_G=\nOPTION_H = my string # Inline comment\n",
  quoted:
    "OPTION_A='1'\nOPTION_B='2'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_E=\"1\"\nOPTION_F=\"2\"\nOPTION_G=\"\"\nOPTION_H=\"\\n\"\n" +
    "OPTION_I = \"echo 'asd'\" # Inline comment\nOPTION_J = 'first line\nsecond line\nthird line\nand so on'\nOPTION_K='Let\\'s go!'\nOPTION_Z = \"last value\"\n",
  exported: "export OPTION_A=2\nexport OPTION_B='\\n'\n",
  equals: "export OPTION_A='postgres://localhost:5432/database?sslmode=disable'\n\n",
  special: "VAR.WITH.DOTS=dots\nVAR_WITH_UNDERSCORES=underscores\nVAR-WITH-DASHES=dashes\n",
  substitutions: "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n",
  substitutionsDefault: "OPTION_A=${OPTION_A:-1}\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n",
  unquoted:
    'OPTION_A = "some quoted phrase"\nOPTION_B=first one with an unquoted phrase\nOPTION_C = then another one with an unquoted phrase\n' +
    'OPTION_D = then another one with an unquoted phrase special è char\nOPTION_E = "then another one quoted phrase"\n',
  inheritedMulti: "foo=bar\nVAR_TO_BE_LOADED_FROM_OS_ENV\nbar=baz\n",
  invalid1: '# some comments\nfoo="\n  a\n  multine\n  value\n"\nINVALID LINE\nzot=qix',
};

test("compose-go fixtures: plain, quoted, exported, equals, special, unquoted, the UTF-8 BOM", () => {
  const plain = parse(fixtures.plain);
  assert.deepEqual(
    { ...plain, "456": undefined },
    { OPTION_A: "1", OPTION_B: "2", OPTION_C: "3", OPTION_D: "4", OPTION_E: "5", OPTION_F: "", OPTION_G: "", OPTION_H: "my string", "456": undefined },
  );
  assert.equal(plain["456"], "ABC", "a key starting with a digit is read (GetEnvFromFile keeps it)");
  assert.deepEqual(parse("\ufeff" + fixtures.plain), plain);
  assert.deepEqual(parse(fixtures.quoted), {
    OPTION_A: "1",
    OPTION_B: "2",
    OPTION_C: "",
    OPTION_D: "\\n",
    OPTION_E: "1",
    OPTION_F: "2",
    OPTION_G: "",
    OPTION_H: "\n",
    OPTION_I: "echo 'asd'",
    OPTION_J: "first line\nsecond line\nthird line\nand so on",
    OPTION_K: "Let's go!",
    OPTION_Z: "last value",
  });
  assert.deepEqual(parse(fixtures.exported), { OPTION_A: "2", OPTION_B: "\\n" });
  assert.deepEqual(parse(fixtures.equals), { OPTION_A: "postgres://localhost:5432/database?sslmode=disable" });
  assert.deepEqual(parse(fixtures.special), { "VAR.WITH.DOTS": "dots", VAR_WITH_UNDERSCORES: "underscores", "VAR-WITH-DASHES": "dashes" });
  assert.deepEqual(parse(fixtures.unquoted), {
    OPTION_A: "some quoted phrase",
    OPTION_B: "first one with an unquoted phrase",
    OPTION_C: "then another one with an unquoted phrase",
    OPTION_D: "then another one with an unquoted phrase special è char",
    OPTION_E: "then another one quoted phrase",
  });
  assert.deepEqual(parse("ONE=1\nTWO='2'\nTHREE = \"3\""), { ONE: "1", TWO: "2", THREE: "3" });
  assert.deepEqual(parse(fixtures.plain.replace(/\n/g, "\r\n")), plain, "CRLF line ends");
});

test("compose-go substitutions: earlier keys, the shell first, defaults", () => {
  assert.deepEqual(parse(fixtures.substitutions), { OPTION_A: "1", OPTION_B: "1", OPTION_C: "1", OPTION_D: "1_1", OPTION_E: "" });
  // The shell wins over earlier lines when values expand.
  assert.deepEqual(parse(fixtures.substitutions, { OPTION_A: "5" }), { OPTION_A: "1", OPTION_B: "5", OPTION_C: "5", OPTION_D: "5_5", OPTION_E: "" });
  assert.deepEqual(parse(fixtures.substitutionsDefault, { OPTION_A: "5" }), { OPTION_A: "5", OPTION_B: "5", OPTION_C: "5", OPTION_D: "5_5", OPTION_E: "" });
  assert.deepEqual(parse(fixtures.substitutionsDefault), { OPTION_A: "1", OPTION_B: "1", OPTION_C: "1", OPTION_D: "1_1", OPTION_E: "" });
  assert.deepEqual(parse("TEST=$ME", { ME: "YES" }), { TEST: "YES" });
  const cases: Array<[string, Record<string, string>]> = [
    ["FOO=test\nBAR=$FOO", { FOO: "test", BAR: "test" }],
    ["FOO=test\nBAR=${FOO}bar", { FOO: "test", BAR: "testbar" }],
    ["BAR=$FOO", { BAR: "" }],
    ['FOO=test\nBAR="quote $FOO"', { FOO: "test", BAR: "quote test" }],
    ["BAR='quote $FOO'", { BAR: "quote $FOO" }],
    ['FOO="foo\\$BAR"', { FOO: "foo$BAR" }],
    ['FOO="foo\\${BAR}"', { FOO: "foo${BAR}" }],
    ['FOO=test\nBAR="foo\\${FOO} ${FOO}"', { FOO: "test", BAR: "foo${FOO} test" }],
  ];
  for (const [text, want] of cases) assert.deepEqual(parse(text), want, text);
});

test("compose-go var expansion: :- - :? ? against set, empty and unset variables", () => {
  const shell = { EMPTY_VAR: "", TEST_VAR: "Test Value" };
  assert.equal(parse("RESULT=${UNSET_VAR:-Default Value}", shell)["RESULT"], "Default Value");
  assert.equal(parse("RESULT=${EMPTY_VAR:-Default Value}", shell)["RESULT"], "Default Value");
  assert.equal(parse("RESULT=${TEST_VAR:-Default Value}", shell)["RESULT"], "Test Value");
  assert.equal(parse("RESULT=${UNSET_VAR-Default Value}", shell)["RESULT"], "Default Value");
  assert.equal(parse("RESULT=${EMPTY_VAR-Default Value}", shell)["RESULT"], "");
  assert.equal(parse("RESULT=${TEST_VAR-Default Value}", shell)["RESULT"], "Test Value");
  assert.throws(() => parse("RESULT=${UNSET_VAR:?Test error}", shell), /line 1: required variable UNSET_VAR is missing a value: Test error/);
  assert.throws(() => parse("RESULT=${EMPTY_VAR:?Test error}", shell), /required variable EMPTY_VAR is missing a value: Test error/);
  assert.equal(parse("RESULT=${TEST_VAR:?Default Value}", shell)["RESULT"], "Test Value");
  assert.throws(() => parse("A=1\n\nRESULT=${UNSET_VAR?Test error}", shell), /line 3: required variable UNSET_VAR/);
  assert.equal(parse("RESULT=${EMPTY_VAR?Test error}", shell)["RESULT"], "");
});

test("compose-go parsing table", () => {
  one("FOO=bar", "FOO", "bar");
  one("FOO =bar", "FOO", "bar");
  one("FOO= bar", "FOO", "bar");
  one('FOO="bar"', "FOO", "bar");
  one("FOO='bar'", "FOO", "bar");
  one('FOO="escaped\\"bar"', "FOO", 'escaped"bar');
  one('FOO="\\"quoted\\""', "FOO", '"quoted"');
  one("FOO=\"'d'\"", "FOO", "'d'");
  one("OPTION_A: 1", "OPTION_A", "1");
  one("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar");
  one("OPTION_A=1:B", "OPTION_A", "1:B");
  one("export OPTION_A=2", "OPTION_A", "2");
  one("export OPTION_B='\\n'", "OPTION_B", "\\n");
  one("export exportFoo=2", "exportFoo", "2");
  one("exportFOO=2", "exportFOO", "2");
  one("export_FOO =2", "export_FOO", "2");
  one("export.FOO= 2", "export.FOO", "2");
  one("export\tOPTION_A=2", "OPTION_A", "2");
  one("  export OPTION_A=2", "OPTION_A", "2");
  one("\texport OPTION_A=2", "OPTION_A", "2");
  one('export OPTION_A="export A"', "OPTION_A", "export A");
  one('FOO="bar\\nbaz"', "FOO", "bar\nbaz");
  one("FOO=a\\tb", "FOO", "a\\tb");
  one('FOO="a\\tb"', "FOO", "a\tb");
  one('KEY="Z\\aZ\\bZ\\fZ\\nZ\\rZ\\tZ\\vZ\\\\Z\\0123Z"', "KEY", "Z\x07Z\bZ\fZ\nZ\rZ\tZ\vZ\\ZSZ");
  one("FOO.BAR=foobar", "FOO.BAR", "foobar");
  one("FOO=foobar=", "FOO", "foobar=");
  one("FOO=bar ", "FOO", "bar");
  one("FOO=bar # this is foo", "FOO", "bar");
  one("FOO=bar #this is foo", "FOO", "bar");
  one("FOO=bar #", "FOO", "bar");
  one("FOO=123#not-an-inline-comment", "FOO", "123#not-an-inline-comment");
  one('FOO="bar#baz"', "FOO", "bar#baz");
  one('FOO="bar#baz"#', "FOO", "bar#baz");
  one('FOO="bar#baz" # comment', "FOO", "bar#baz");
  one("FOO='bar#baz' # comment", "FOO", "bar#baz");
  one('FOO="bar#baz#bang" # comment', "FOO", "bar#baz#bang");
  one('FOO="ba#r"', "FOO", "ba#r");
  one("FOO='ba#r'", "FOO", "ba#r");
  one('FOO="bar\\n\\ b\\az"', "FOO", "bar\n\\ b\x07z");
  one('FOO="bar\\\\\\n\\ b\\az"', "FOO", "bar\\\n\\ b\x07z");
  one('FOO="bar\\\\r\\ b\\az"', "FOO", "bar\\r\\ b\x07z");
  one('FOO="bar\\nbaz\\\\"', "FOO", "bar\nbaz\\");
  one('="value"', "", "value");
  one(" KEY =value", "KEY", "value");
  one("   KEY=value", "KEY", "value");
  one("\tKEY=value", "KEY", "value");
  one('KEY="\\0123"', "KEY", "S");
  one('KEY="\\x07"', "KEY", "\\x07");
  one('KEY="\\u12e4"', "KEY", "\\u12e4");
  one('KEY="\\U00101234"', "KEY", "\\U00101234");
  one(
    'TEST_URLS="stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"',
    "TEST_URLS",
    "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443",
  );
  assert.throws(() => parse("lol$wut"), /line 1: unexpected character "\$" in variable name "lol\$wut"/);
  assert.throws(() => parse("%!(EXTRA string)=foo"), /^DotenvError: line 1: unexpected character "%" in variable name "%!\(EXTRA string\)=foo"$/);
});

test("compose-go parser: keys with [ ] . and non-ASCII letters; 1000 lines", () => {
  assert.deepEqual(parse("\na=b\na[1]=c\na.propertyKey=d\nárvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ-tükörfúrógép\n"), {
    a: "b",
    "a[1]": "c",
    "a.propertyKey": "d",
    "árvíztűrő-TÜKÖRFÚRÓGÉP": "ÁRVÍZTŰRŐ-tükörfúrógép",
  });
  const lines = Array.from({ length: 1000 }, (_, i) => `KEY${i}=VALUE${i}`).join("\n");
  assert.equal(Object.keys(parse(lines)).length, 1000);
});

test("compose-go: unterminated quotes, a key with a space (invalid1.env), lines to ignore, inherited keys", () => {
  for (const tc of ['KEY="', 'KEY="value', 'KEY="value\\"', "KEY=\"value'", "KEY='", "KEY='value", "KEY='value\\'", "KEY='value\""]) {
    assert.throws(() => parse(tc), /unterminated quoted value/, tc);
  }
  assert.throws(() => parse(fixtures.invalid1), /^DotenvError: line 7: key cannot contain a space$/);
  for (const blank of ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment"]) assert.deepEqual(parse(blank), {}, JSON.stringify(blank));
  assert.deepEqual(parse(fixtures.inheritedMulti, { VAR_TO_BE_LOADED_FROM_OS_ENV: "SOME_RANDOM_VALUE" }), {
    foo: "bar",
    VAR_TO_BE_LOADED_FROM_OS_ENV: "SOME_RANDOM_VALUE",
    bar: "baz",
  });
  assert.deepEqual(parse("VAR_TO_BE_LOADED_FROM_OS_ENV\n", { VAR_TO_BE_LOADED_FROM_OS_ENV: "v" }), { VAR_TO_BE_LOADED_FROM_OS_ENV: "v" });
  assert.deepEqual(parse("VARIABLE_NOT_FOUND\n"), {}, "a bare key the shell lacks is left out");
});

test("several files: the second expands from the first (compose-go TestMultipleFiles)", () => {
  const out: Record<string, string> = {};
  parseDotenv('\nENV_HOSTNAME=localhost\nENV_MY_URL="http://${ENV_HOSTNAME}"\n', () => undefined, out);
  parseDotenv('\nENV_HOSTNAME=dev.my-company.com\nENV_MY_URL="http://${ENV_HOSTNAME}"\n', () => undefined, out);
  assert.deepEqual(out, { ENV_HOSTNAME: "dev.my-company.com", ENV_MY_URL: "http://dev.my-company.com" });
});

test("a PEM key and JSON as multi-line double-quoted values", () => {
  const pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
  assert.equal(parse(`KEY="${pem}"\nNEXT=1`)["KEY"], pem);
  assert.equal(parse("JSON='{\n  \"a\": 1\n}'")["JSON"], '{\n  "a": 1\n}');
});
