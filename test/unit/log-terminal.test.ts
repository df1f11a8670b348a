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

test("log terminal: skipping plain lines that scrolled away gives the same screen as emulating every one (random corpus)", () => {
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let round = 0; round < 300; round++) {
    const height = 1 + rand(8);
    const width = 1 + rand(30);
    let text = "";
    const lines = rand(40);
    for (let i = 0; i < lines; i++) text += "x".repeat(rand(2 * width + 2)) + String(i) + (rand(5) ? "\n" : "");
    const whole = new LogTerminal(height, width);
    whole.write("prefix line\n");
    whole.write(text);
    const slow = new LogTerminal(height, width);
    slow.write("prefix line\n");
    for (const ch of text) slow.write(ch);
    assert.deepEqual(whole.content(), slow.content(), `height ${height} width ${width}: ${JSON.stringify(text)}`);
    // And writing goes on the same from there.
    whole.write("\rnext\x1b[K");
    slow.write("\rnext\x1b[K");
    assert.deepEqual(whole.content(), slow.content());
  }
});
