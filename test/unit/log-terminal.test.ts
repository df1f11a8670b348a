import { test } from "node:test";
import assert from "node:assert/strict";
import { LogTerminal } from "../../src/progress/log-terminal.js";

test("log terminal: lines, \\r overwrites, ESC[K erases, wrapping at the width, scrolling at the bottom", () => {
  const t = new LogTerminal(3, 10);
  t.write("one\ntwo\n");
  assert.deepEqual(t.content(), ["one", "two"]);
  t.write("50%\r100%\x1b[K");
  assert.deepEqual(t.content(), ["one", "two", "100%"]);
  t.write("\nfour\n");
  assert.deepEqual(t.content(), ["100%", "four"], "the screen scrolled by two");
  const w = new LogTerminal(4, 5);
  w.write("abcdefghij\n");
  assert.deepEqual(w.content(), ["abcde", "fghij"]);
});

test("log terminal: escape sequences and UTF-8 characters split across chunks; colours dropped", () => {
  const t = new LogTerminal(3, 20);
  t.write("\x1b[3");
  t.write("1mred\x1b[0m ");
  const euro = Buffer.from("€");
  t.write(euro.subarray(0, 1));
  t.write(Buffer.concat([euro.subarray(1), Buffer.from("\n")]));
  assert.deepEqual(t.content(), ["red €"]);
});

test("log terminal: cursor moves (A B C D G H), erase in display, tabs, backspace", () => {
  const t = new LogTerminal(4, 20);
  t.write("aaaa\nbbbb\ncccc");
  t.write("\x1b[2A\x1b[2GX"); // up two rows, column 2
  assert.deepEqual(t.content(), ["aXaa", "bbbb", "cccc"]);
  t.write("\x1b[3;1HZ\x1b[J");
  assert.deepEqual(t.content(), ["aXaa", "bbbb", "Z"]);
  t.write("\x1b[2J\x1b[1;1Ha\tb\bc");
  assert.deepEqual(t.content(), ["a       c"], "the tab went to column 8; the backspace moved back onto b");
  t.write("\x1b]0;title\x07ok");
  assert.deepEqual(t.content(), ["a       cok"]);
});

test("log terminal: resize keeps the bottom rows and cuts long rows", () => {
  const t = new LogTerminal(4, 20);
  t.write("1\n2\n3\n4 long line here");
  t.resize(2, 6);
  assert.deepEqual(t.content(), ["3", "4 long"]);
  t.write("\nnext");
  assert.deepEqual(t.content(), ["4 long", "next"]);
});
