/**
 * A small terminal screen for a step's log tail in the tty display. Log
 * chunks are not lines: programs draw progress bars with "\r", clear lines
 * with ESC[K and move the cursor, so the tail shows what a terminal of this
 * size would show, as progressui does with its vt100 emulator.
 *
 * Handled: printable text (wrapping at the right edge), \n (next row,
 * column 0), \r, \b, \t (to the next multiple of 8), and CSI sequences for
 * cursor moves (A B C D E F G H f d), erasing (J K) and everything else
 * parsed and dropped (colours: the tail is drawn faint). Other ESC
 * sequences and control characters are dropped. Writing below the last row
 * scrolls.
 */
import { StringDecoder } from "node:string_decoder";

export class LogTerminal {
  #rows: string[][];
  #height: number;
  #width: number;
  #row = 0;
  #col = 0;
  readonly #decoder = new StringDecoder("utf8");
  /** A partial escape sequence carried to the next write. */
  #pending = "";

  constructor(height: number, width: number) {
    this.#height = Math.max(1, height);
    this.#width = Math.max(1, width);
    this.#rows = Array.from({ length: this.#height }, () => []);
  }

  get height(): number {
    return this.#height;
  }

  get width(): number {
    return this.#width;
  }

  /** Changes the size, keeping the bottom rows (where the cursor writes) and cutting long rows. */
  resize(height: number, width: number): void {
    height = Math.max(1, height);
    width = Math.max(1, width);
    if (height === this.#height && width === this.#width) return;
    const used = this.#row + 1;
    let rows = this.#rows.slice(0, used);
    if (rows.length > height) {
      rows = rows.slice(rows.length - height);
      this.#row = height - 1;
    }
    while (rows.length < height) rows.push([]);
    this.#rows = rows.map((r) => r.slice(0, width));
    this.#height = height;
    this.#width = width;
    this.#col = Math.min(this.#col, width - 1);
  }

  /** The rows that hold any visible text, top to bottom, trailing spaces cut. */
  content(): string[] {
    const out: string[] = [];
    for (const r of this.#rows) {
      const line = r.join("").trimEnd();
      if (line) out.push(line);
    }
    return out;
  }

  /** How many rows the tail takes when shown. */
  usedHeight(): number {
    return this.content().length;
  }

  write(data: Buffer | string): void {
    let text = this.#pending + (typeof data === "string" ? data : this.#decoder.write(data));
    this.#pending = "";
    // Plain lines (no control character but \n): only the last `height` of
    // them can still be on the screen, each taking a row or more, so the
    // ones before are skipped, as if written and scrolled away. A step that
    // logs 100,000 lines costs a split, not 100,000 lines of emulation.
    if (!/[\x00-\x09\x0b-\x1f\x7f]/.test(text)) {
      let cut = text.length;
      for (let n = 0; n < this.#height && cut > 0; n++) cut = text.lastIndexOf("\n", cut - 1);
      if (cut > 0) {
        // Everything up to and including that newline scrolls out: a
        // blank screen with the cursor on its last row is what remains.
        this.#rows = Array.from({ length: this.#height }, () => []);
        this.#row = this.#height - 1;
        this.#col = 0;
        text = text.slice(cut + 1);
      }
    }
    let i = 0;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x1b) {
        const end = this.#escape(text, i);
        if (end < 0) {
          // The sequence goes on in the next chunk.
          this.#pending = text.slice(i);
          return;
        }
        i = end;
        continue;
      }
      if (c === 0x0a) this.#newline();
      else if (c === 0x0d) this.#col = 0;
      else if (c === 0x08) this.#col = Math.max(0, this.#col - 1);
      else if (c === 0x09) this.#col = Math.min(this.#width - 1, (Math.floor(this.#col / 8) + 1) * 8);
      else if (c >= 0x20 && c !== 0x7f) {
        // One code point (a surrogate pair stays together).
        const cp = text.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        this.#put(ch);
        i += ch.length;
        continue;
      }
      i++;
    }
  }

  #put(ch: string): void {
    if (this.#col >= this.#width) {
      this.#newline();
    }
    const row = this.#rows[this.#row]!;
    while (row.length < this.#col) row.push(" ");
    row[this.#col] = ch;
    this.#col++;
  }

  #newline(): void {
    this.#col = 0;
    if (this.#row < this.#height - 1) {
      this.#row++;
      return;
    }
    this.#rows.shift();
    this.#rows.push([]);
  }

  /** Applies the escape sequence at text[i]; returns the index after it, or -1 when it is cut off. */
  #escape(text: string, i: number): number {
    if (i + 1 >= text.length) return -1;
    const kind = text[i + 1]!;
    if (kind !== "[") {
      // OSC (ESC ]) runs to BEL or ESC \; everything else is two characters.
      if (kind === "]") {
        for (let j = i + 2; j < text.length; j++) {
          if (text.charCodeAt(j) === 0x07) return j + 1;
          if (text.charCodeAt(j) === 0x1b && text[j + 1] === "\\") return j + 2;
        }
        return text.length - i > 4096 ? text.length : -1;
      }
      return i + 2;
    }
    let j = i + 2;
    while (j < text.length && /[0-9;?<=>!]/.test(text[j]!)) j++;
    if (j >= text.length) return j - i > 64 ? text.length : -1;
    const final = text[j]!;
    const params = text.slice(i + 2, j).replace(/^[?<=>!]/, "");
    const nums = params.split(";").map((p) => (p === "" ? NaN : Number(p)));
    const n = (k: number, dflt: number): number => (Number.isFinite(nums[k]) ? nums[k]! : dflt);
    const clampRow = (r: number): number => Math.max(0, Math.min(this.#height - 1, r));
    const clampCol = (c: number): number => Math.max(0, Math.min(this.#width - 1, c));
    switch (final) {
      case "A":
        this.#row = clampRow(this.#row - Math.max(1, n(0, 1)));
        break;
      case "B":
        this.#row = clampRow(this.#row + Math.max(1, n(0, 1)));
        break;
      case "C":
        this.#col = clampCol(this.#col + Math.max(1, n(0, 1)));
        break;
      case "D":
        this.#col = clampCol(this.#col - Math.max(1, n(0, 1)));
        break;
      case "E":
        this.#row = clampRow(this.#row + Math.max(1, n(0, 1)));
        this.#col = 0;
        break;
      case "F":
        this.#row = clampRow(this.#row - Math.max(1, n(0, 1)));
        this.#col = 0;
        break;
      case "G":
        this.#col = clampCol(n(0, 1) - 1);
        break;
      case "d":
        this.#row = clampRow(n(0, 1) - 1);
        break;
      case "H":
      case "f":
        this.#row = clampRow(n(0, 1) - 1);
        this.#col = clampCol(n(1, 1) - 1);
        break;
      case "K": {
        const row = this.#rows[this.#row]!;
        const mode = n(0, 0);
        if (mode === 0) row.length = Math.min(row.length, this.#col);
        else if (mode === 1) for (let k = 0; k <= this.#col && k < row.length; k++) row[k] = " ";
        else row.length = 0;
        break;
      }
      case "J": {
        const mode = n(0, 0);
        if (mode === 0) {
          this.#rows[this.#row]!.length = Math.min(this.#rows[this.#row]!.length, this.#col);
          for (let r = this.#row + 1; r < this.#height; r++) this.#rows[r] = [];
        } else if (mode === 1) {
          for (let r = 0; r < this.#row; r++) this.#rows[r] = [];
          const row = this.#rows[this.#row]!;
          for (let k = 0; k <= this.#col && k < row.length; k++) row[k] = " ";
        } else {
          this.#rows = Array.from({ length: this.#height }, () => []);
        }
        break;
      }
      default:
        // SGR (m) and the rest: parsed, not drawn.
        break;
    }
    return j + 1;
  }
}
