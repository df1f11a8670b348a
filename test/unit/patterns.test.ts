/**
 * Pattern semantics against moby/patternmatcher's behaviour: the expected
 * results are those of moby's own match table (paths given clean, since
 * buildkitd sends clean relative paths and patterns).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PatternMatcher, cleanPath, patternSyntaxError } from "../../src/session/fsutil/patterns.js";

const table: Array<[string, string, boolean]> = [
  ["**", "file", true],
  ["**/", "file", true],
  ["**", "dir/file", true],
  ["**/", "dir/file", true],
  ["**/**", "dir/file", true],
  ["dir/**", "dir/file", true],
  ["dir/**", "dir/dir2/file", true],
  ["**/dir", "dir", true],
  ["**/dir", "dir/file", true],
  ["**/dir2/*", "dir/dir2/file", true],
  ["**/dir2/**", "dir/dir2/dir3/file", true],
  ["**file", "file", true],
  ["**file", "dir/file", true],
  ["**/file", "dir/file", true],
  ["**file", "dir/dir/file", true],
  ["**/file", "dir/dir/file", true],
  ["**/file*", "dir/dir/file", true],
  ["**/file*", "dir/dir/file.txt", true],
  ["**/file*txt", "dir/dir/file.txt", true],
  ["**/file*.txt", "dir/dir/file.txt", true],
  ["**/file*.txt*", "dir/dir/file.txt", true],
  ["**/**/*.txt", "dir/dir/file.txt", true],
  ["**/**/*.txt2", "dir/dir/file.txt", false],
  ["**/*.txt", "file.txt", true],
  ["**/**/*.txt", "file.txt", true],
  ["a**/*.txt", "a/file.txt", true],
  ["a**/*.txt", "a/dir/file.txt", true],
  ["a**/*.txt", "a/dir/dir/file.txt", true],
  ["a/*.txt", "a/dir/file.txt", false],
  ["a/*.txt", "a/file.txt", true],
  ["a/*.txt**", "a/file.txt", true],
  ["a[b-d]e", "ae", false],
  ["a[b-d]e", "ace", true],
  ["a[b-d]e", "aae", false],
  ["a[^b-d]e", "aze", true],
  [".*", ".foo", true],
  [".*", "foo", false],
  ["abc.def", "abcdef", false],
  ["abc.def", "abc.def", true],
  ["abc.def", "abcZdef", false],
  ["abc?def", "abcZdef", true],
  ["abc?def", "abcdef", false],
  ["a\\\\", "a\\", true],
  ["**/foo/bar", "foo/bar", true],
  ["**/foo/bar", "dir/foo/bar", true],
  ["**/foo/bar", "dir/dir2/foo/bar", true],
  ["abc/**", "abc", false],
  ["abc/**", "abc/def", true],
  ["abc/**", "abc/def/ghi", true],
  ["**/.foo", ".foo", true],
  ["**/.foo", "bar.foo", false],
  ["a(b)c/def", "a(b)c/def", true],
  ["a(b)c/def", "a(b)c/xyz", false],
  ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
  ["dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  // A pattern also matches everything below a directory it matches.
  ["node_modules", "node_modules/x/index.js", true],
  ["*/b", "a/b/c", true],
  ["./a/../b", "b/c", true],
  ["名前/*.txt", "名前/ファイル.txt", true],
];

test("single patterns match as moby's table says", () => {
  for (const [pattern, path, want] of table) {
    assert.equal(new PatternMatcher([pattern]).matchesOrParentMatches(path), want, `${pattern} ~ ${path}`);
  }
});

test("exclusions: the last matching pattern wins", () => {
  const pm = new PatternMatcher(["**/*.log", "!logs/keep/important.log", "logs/keep/*"]);
  assert.equal(pm.matchesOrParentMatches("a.log"), true);
  assert.equal(pm.matchesOrParentMatches("logs/keep/important.log"), true, "re-excluded by the later pattern");
  const pm2 = new PatternMatcher(["**/*.log", "!logs/keep/important.log"]);
  assert.equal(pm2.matchesOrParentMatches("logs/keep/important.log"), false);
  assert.equal(pm2.matchesOrParentMatches("logs/other.log"), true);
  assert.equal(pm2.hasExclusions, true);
  assert.equal(pm2.couldMatchBelow("logs", true), true);
  assert.equal(pm2.couldMatchBelow("src", true), false);
  assert.throws(() => new PatternMatcher(["!"]), /illegal exclusion pattern/);
  assert.equal(new PatternMatcher(["", "  "]).empty, true);
});

test("cleanPath is Go's path.Clean", () => {
  const cases: Array<[string, string]> = [
    ["", "."],
    ["a/b/../c", "a/c"],
    ["./a//b/", "a/b"],
    ["/../a", "/a"],
    ["../../a", "../../a"],
    ["a/..", "."],
  ];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});

/**
 * moby/patternmatcher at 5a6d842, patternmatcher_test.go matchTests (Go's
 * filepath Match table): [pattern, path, match, bad pattern]. A bad pattern
 * is an error when the matcher is made, as patternmatcher.New.
 */
const goMatchTests: Array<[string, string, boolean, boolean]> = [
  ["abc", "abc", true, false],
  ["*", "abc", true, false],
  ["*c", "abc", true, false],
  ["a*", "a", true, false],
  ["a*", "abc", true, false],
  ["a*", "ab/c", true, false],
  ["a*/b", "abc/b", true, false],
  ["a*/b", "a/c/b", false, false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true, false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true, false],
  ["a*b?c*x", "abxbbxdbxebxczzy", false, false],
  ["ab[c]", "abc", true, false],
  ["ab[b-d]", "abc", true, false],
  ["ab[e-g]", "abc", false, false],
  ["ab[^c]", "abc", false, false],
  ["ab[^b-d]", "abc", false, false],
  ["ab[^e-g]", "abc", true, false],
  ["a\\*b", "a*b", true, false],
  ["a\\*b", "ab", false, false],
  ["a?b", "a☺b", true, false],
  ["a[^a]b", "a☺b", true, false],
  ["a???b", "a☺b", false, false],
  ["a[^a][^a][^a]b", "a☺b", false, false],
  ["[a-ζ]*", "α", true, false],
  ["*[a-ζ]", "A", false, false],
  ["a?b", "a/b", false, false],
  ["a*b", "a/b", false, false],
  ["[\\]a]", "]", true, false],
  ["[\\-]", "-", true, false],
  ["[x\\-]", "x", true, false],
  ["[x\\-]", "-", true, false],
  ["[x\\-]", "z", false, false],
  ["[\\-x]", "x", true, false],
  ["[\\-x]", "-", true, false],
  ["[\\-x]", "a", false, false],
  ["[]a]", "]", false, true],
  ["[-]", "-", false, true],
  ["[x-]", "x", false, true],
  ["[x-]", "-", false, true],
  ["[x-]", "z", false, true],
  ["[-x]", "x", false, true],
  ["[-x]", "-", false, true],
  ["[-x]", "a", false, true],
  ["\\", "a", false, true],
  ["[a-b-c]", "a", false, true],
  ["[", "a", false, true],
  ["[^", "a", false, true],
  ["[^bc", "a", false, true],
  ["a[", "a", false, true],
  ["a[", "ab", false, true],
  ["*x", "xxx", true, false],
];

test("patternmatcher's matchTests: matches, and malformed patterns are an error when the matcher is made", () => {
  for (const [pattern, path, match, bad] of goMatchTests) {
    if (bad) {
      assert.throws(() => new PatternMatcher([pattern]), /^Error: syntax error in pattern /, pattern);
      assert.notEqual(patternSyntaxError(pattern), undefined, pattern);
      continue;
    }
    assert.equal(patternSyntaxError(pattern), undefined, pattern);
    assert.equal(new PatternMatcher([pattern]).matchesOrParentMatches(path), match, `${pattern} ~ ${path}`);
  }
  assert.throws(() => new PatternMatcher(["ok", "[Local-Only]/", "!"]), /syntax error in pattern "\[Local-Only\]\/"/);
  assert.throws(() => new PatternMatcher(["[z-a]"]), /syntax error in pattern "\[z-a\]": a \[ class range out of order/, "Go's regexp refuses it");
});
