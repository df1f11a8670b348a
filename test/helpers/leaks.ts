/**
 * Open-handle accounting: what a piece of work left open.
 *
 * Two views, because each misses something the other sees:
 *  - the resources that keep the event loop alive (process.getActiveResourcesInfo(),
 *    timers excluded: a pending timer is not a leak of an I/O handle), which
 *    include child processes and ref'd sockets;
 *  - the process's socket file descriptors (/proc/self/fd), which also show
 *    sockets that were unref'd and so no longer keep the process alive but
 *    are still open (an idle BuildKitClient that was never closed).
 *
 * `leakCheckEachTest()` wires both as beforeEach/afterEach for a test file:
 * every test must end with nothing open beyond what was open when it began.
 */
import { afterEach, beforeEach, type TestContext } from "node:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { spawnSync } from "node:child_process";

/** Resource types that are not handles a test could leak. */
const IGNORED = new Set(["Timeout", "Immediate", "TickObject"]);

function resourceCounts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (!IGNORED.has(r)) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/** Socket inodes of this process's open descriptors: inode -> fd. */
function socketFds(): Map<string, number> {
  const m = new Map<string, number>();
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return m; // not Linux: the resource view alone
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (e.g. the directory listing's own fd)
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) m.set(inode, Number(fd));
  }
  return m;
}

function hexAddress(hex: string): string {
  const [ip, port] = hex.split(":") as [string, string];
  const p = parseInt(port, 16);
  if (ip.length === 8) {
    const b = Buffer.from(ip, "hex");
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}:${p}`;
  }
  return `[${ip}]:${p}`;
}

/** "tcp 127.0.0.1:5 -> 127.0.0.1:6" / "unix socket to /path" for each socket inode we can name. */
function describeSockets(inodes: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.includes(f[9]!)) out.set(f[9]!, `tcp ${hexAddress(f[1]!)} -> ${hexAddress(f[2]!)}`);
    }
  }
  // Unix sockets: ss knows each one's peer, and the peer's bound path.
  const ss = spawnSync("ss", ["-xanH"], { encoding: "utf8" });
  if (ss.status === 0) {
    const byInode = new Map<string, { path: string; peer: string }>();
    for (const line of ss.stdout.split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 8) byInode.set(f[5]!, { path: f[4]!, peer: f[7]! });
    }
    for (const inode of inodes) {
      const me = byInode.get(inode);
      if (!me || out.has(inode)) continue;
      const peerPath = byInode.get(me.peer)?.path;
      if (me.path !== "*") out.set(inode, `unix socket bound to ${me.path}`);
      else if (peerPath && peerPath !== "*") out.set(inode, `unix socket connected to ${peerPath}`);
      else out.set(inode, "unix socket (socketpair or unnamed peer: a child's stdio or a pipe)");
    }
  }
  return out;
}

/** Child processes still referenced, named by pid and command line. */
function childProcesses(): string[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles
    .filter(
      (h): h is { pid: number; spawnargs: string[] } =>
        typeof (h as { spawnargs?: unknown }).spawnargs === "object" && typeof (h as { pid?: unknown }).pid === "number",
    )
    .map((h) => `child process ${h.pid}: ${h.spawnargs.join(" ").slice(0, 200)}`);
}

export type LeakTracker = (graceMs?: number) => Promise<string[]>;

/**
 * Snapshot now; the returned function lists what is open beyond the snapshot
 * (waiting up to `graceMs` for it to close), one description per handle.
 */
export function trackHandles(): LeakTracker {
  const baseResources = resourceCounts();
  const baseSockets = new Set(socketFds().keys());
  const baseChildren = new Set(childProcesses());
  return async (graceMs = 3000) => {
    const end = Date.now() + graceMs;
    for (;;) {
      const resources = [...resourceCounts()].filter(([k, n]) => n > (baseResources.get(k) ?? 0));
      const sockets = [...socketFds()].filter(([inode]) => !baseSockets.has(inode));
      if ((resources.length === 0 && sockets.length === 0) || Date.now() > end) {
        if (resources.length === 0 && sockets.length === 0) return [];
        const names = describeSockets(sockets.map(([inode]) => inode));
        return [
          ...resources.map(([k, n]) => `${k} x${n - (baseResources.get(k) ?? 0)}`),
          ...childProcesses().filter((c) => !baseChildren.has(c)),
          ...sockets.map(
            ([inode, fd]) =>
              `fd ${fd}: ${names.get(inode) ?? "socket no longer in /proc/net/tcp or ss (typically: the peer closed the connection, this process never did)"} (inode ${inode})`,
          ),
        ];
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
}

type Cleanup = () => unknown;
const pending = new WeakMap<object, Cleanup[]>();

/**
 * Runs `fn` when test `t` ends: before the leak check when the file uses
 * leakCheckEachTest() (node:test runs afterEach before a test's own
 * t.after hooks, so what t.after closes would count as leaked), otherwise
 * as t.after. Cleanups run last registered first.
 */
export function cleanup(t: TestContext, fn: Cleanup): void {
  const list = pending.get(t);
  if (list) list.push(fn);
  else t.after(fn);
}

async function runCleanups(list: Cleanup[]): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const fn of list.reverse()) {
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  }
  return errors;
}

/**
 * For a test file: after each test (and the cleanups registered with
 * cleanup()), fail it if a socket, child process or other handle it opened
 * is still open after `graceMs`, listing each one.
 */
export function leakCheckEachTest(graceMs = 3000): void {
  const trackers = new WeakMap<object, LeakTracker>();
  beforeEach((t) => {
    pending.set(t, []);
    trackers.set(t, trackHandles());
  });
  afterEach(async (t) => {
    const list = pending.get(t) ?? [];
    pending.delete(t);
    const errors = await runCleanups(list);
    if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors, "cleanups failed");
    const track = trackers.get(t);
    if (!track) throw new Error(`internal: no handle snapshot for "${t.name}"`);
    const open = await track(graceMs);
    if (open.length) {
      throw new Error(`test "${t.name}" left ${open.length} handle(s) open ${graceMs} ms after it ended:\n  ${open.join("\n  ")}`);
    }
  });
}
