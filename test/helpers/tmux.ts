/**
 * A real terminal for the tty progress tests: a tmux server of its own (its
 * own socket, so nothing touches a user's tmux), one pane running a command.
 * After the command ends the pane prints "__EXIT=<code>" and stays, so its
 * last screen can be read.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { TestContext } from "node:test";

export interface Tmux {
  /** The visible screen (wrapped lines joined unless `join` is false; with `escapes`, tmux's rendering of colours and attributes as SGR sequences; with `history`, the scrollback too). */
  capture(options?: { escapes?: boolean; history?: boolean; join?: boolean }): string;
  keys(...keys: string[]): void;
  resize(width: number, height: number): void;
  /** A tmux format of the pane, e.g. "#{cursor_flag}". */
  format(f: string): string;
  /** Waits until the screen (with scrollback) matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits for the command to end; its exit code. */
  exitCode(timeoutMs?: number): Promise<number>;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function startTmux(t: TestContext, command: string[], options: { width: number; height: number; env?: Record<string, string | undefined> }): Tmux {
  const socket = `bk-test-${randomUUID().slice(0, 8)}`;
  const tmux = (...args: string[]): string => {
    const r = spawnSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8", timeout: 10_000 });
    if (r.error) throw new Error(`tmux ${args[0]} could not run (${r.error.message}); scripts/test-env.sh installs tmux`);
    if (r.status !== 0) throw new Error(`tmux ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  };
  // env(1) takes its -u options before the assignments.
  const entries = Object.entries(options.env ?? {});
  const envPart = [
    ...entries.filter(([, v]) => v === undefined).map(([k]) => `-u ${q(k)}`),
    ...entries.filter(([, v]) => v !== undefined).map(([k, v]) => q(`${k}=${v}`)),
  ].join(" ");
  const shell = `env ${envPart} ${command.map(q).join(" ")}; printf '\\n__EXIT=%s\\n' "$?"; sleep 600`;
  tmux("new-session", "-d", "-s", "t", "-x", String(options.width), "-y", String(options.height), shell);
  tmux("set-option", "-g", "window-size", "manual");
  tmux("set-option", "-g", "history-limit", "10000");
  t.after(() => {
    spawnSync("tmux", ["-L", socket, "kill-server"], { timeout: 10_000 });
  });
  const capture = (o: { escapes?: boolean; history?: boolean; join?: boolean } = {}): string =>
    tmux("capture-pane", "-p", ...(o.join === false ? [] : ["-J"]), "-t", "t", ...(o.escapes ? ["-e"] : []), ...(o.history ? ["-S", "-"] : []));
  const waitFor = async (re: RegExp, timeoutMs = 60_000): Promise<string> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = capture({ history: true });
      if (re.test(s)) return s;
      if (Date.now() > end) throw new Error(`the terminal never showed ${re} in ${timeoutMs} ms; it shows:\n${s}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return {
    capture,
    keys: (...keys) => void tmux("send-keys", "-t", "t", ...keys),
    resize: (w, h) => void tmux("resize-window", "-t", "t", "-x", String(w), "-y", String(h)),
    format: (f) => tmux("display-message", "-p", "-t", "t", f).trim(),
    waitFor,
    exitCode: async (timeoutMs) => Number(/__EXIT=(\d+)/.exec(await waitFor(/__EXIT=\d+/, timeoutMs))![1]),
  };
}
