/**
 * Runs one receive in its own process, so a test running as root can check
 * what an unprivileged user gets (read-only files and directories, modes):
 * `node receive-child.js <source dir> <destination root>`. Prints one JSON
 * line: {ok: true, stats} or {ok: false, message}.
 */
import { receiveDiffCopy } from "../../src/session/fsutil/receive.js";
import { FakeDaemon, scriptOf } from "./fsutil-daemon.js";

const [src, dest] = process.argv.slice(2) as [string, string];
const { script, content } = await scriptOf(src);
const d = new FakeDaemon({ script, content });
try {
  const stats = await receiveDiffCopy(d.messages, d.send, { root: dest });
  process.stdout.write(`${JSON.stringify({ ok: true, stats, uid: process.getuid?.() })}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ ok: false, message: (e as Error).message })}\n`);
}
