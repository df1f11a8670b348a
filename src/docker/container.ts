/**
 * buildkitd in a container: `docker-container://NAME[?context=CTX]` and
 * `podman-container://NAME`, buildctl's connection helpers, without the
 * docker or podman CLI. buildctl runs `docker [--context=CTX] exec -i NAME
 * buildctl dial-stdio` (`podman exec -i NAME buildctl dial-stdio`) and
 * speaks gRPC over the process's stdio; here the same exec is made through
 * the Engine API (podman serves a Docker-compatible one), one exec per
 * HTTP/2 connection the Connection dials.
 *
 * When the exec cannot run buildctl, the Engine writes its error into the
 * output instead of HTTP/2, and dial-stdio's own failures (no buildkitd at
 * its socket) end the output early: so the first bytes must be an HTTP/2
 * SETTINGS frame (buildkitd's first words), and anything else becomes one
 * line from what the exec wrote, naming the container.
 */
import { Duplex } from "node:stream";
import { BuildKitError, ConnectionError } from "../errors.js";
import { PendingStream } from "../transport/pending-stream.js";
import type { ParsedAddress } from "../transport/address.js";
import type { SshOptions } from "../transport/ssh-dial.js";
import { EngineApiError, type EngineApi, type ExecSession } from "./api.js";
import { resolveEngine, resolvePodman, type ResolvedEngine } from "./host.js";
import { engineLink } from "./engine.js";

export type ContainerAddress = Extract<ParsedAddress, { kind: "container" }>;

/** What buildctl runs in the container. */
export const DIAL_STDIO = ["buildctl", "dial-stdio"];

/** How much of a failed exec's output is kept for the message. */
const MAX_FAILURE_BYTES = 8 << 10;
/** How long output that is not HTTP/2 may go on before the dial gives up on it. */
const FAILURE_GRACE_MS = 1000;
/** Made once: an argument-less abort() builds a DOMException each time. */
const DIAL_CLOSED = new Error("the dial-stdio stream closed");

export interface ContainerLink {
  /** Opens one byte stream to buildkitd: a new `buildctl dial-stdio` exec. */
  dial: () => Duplex;
  close: () => void;
  /** The Engine (or podman service) the container runs on. */
  engine: ResolvedEngine;
}

/** The Engine of a container address: the docker context given, the one the docker CLI would use, or podman's service. */
export function containerEngine(addr: ContainerAddress, env: Record<string, string | undefined>, euid: number): ResolvedEngine {
  if (addr.runtime === "podman") return resolvePodman(env, euid);
  return resolveEngine(addr.context === undefined ? "docker://" : `docker://${addr.context}`, { env });
}

export function containerLink(
  addr: ContainerAddress,
  o: { env: Record<string, string | undefined>; ssh?: SshOptions | undefined; timeoutMs: number; euid?: number | undefined },
): ContainerLink {
  const engine = containerEngine(addr, o.env, o.euid ?? process.geteuid?.() ?? 0);
  const podman = addr.runtime === "podman";
  const link = engineLink(engine, {
    ssh: o.ssh,
    env: o.env,
    timeoutMs: o.timeoutMs,
    name: podman ? "the podman service" : undefined,
    process: podman ? "the podman API service (podman.socket)" : undefined,
  });
  return {
    engine,
    close: link.close,
    dial: () => {
      const p = new PendingStream();
      const ac = new AbortController();
      p.once("close", () => ac.abort(DIAL_CLOSED));
      openDialStdio(link.api, addr, ac.signal).then(
        (s) => {
          if (p.destroyed) s.destroy();
          else p.attach(s);
        },
        (e: unknown) => p.destroy(e instanceof Error ? e : new Error(String(e))),
      );
      return p;
    },
  };
}

/** Starts `buildctl dial-stdio` in the container; Engine failures become one line naming it. */
export async function openDialStdio(api: EngineApi, addr: ContainerAddress, signal?: AbortSignal): Promise<Duplex> {
  let session: ExecSession;
  try {
    session = await api.exec(addr.container, DIAL_STDIO, { signal, cli: addr.runtime });
  } catch (e) {
    if (!(e instanceof BuildKitError) || e.code === "CANCELLED") throw e;
    // No such container, or not running: the Engine's answer names it already.
    const named = (e instanceof EngineApiError && e.status === 404) || e.code === "FAILED_PRECONDITION";
    const message = named ? e.message : `cannot run buildctl dial-stdio in container ${addr.container}: ${e.message}`;
    throw new ConnectionError(message, addr.address, { code: e.code, cause: e });
  }
  return new DialStdio(session, addr);
}

/** An HTTP/2 frame header that is a SETTINGS frame on stream 0 (type 4, no flags but ACK, a length in sixes). */
function isSettingsHeader(h: Buffer): boolean {
  return h[3] === 0x04 && (h[4]! & 0xfe) === 0 && (h.readUInt32BE(5) & 0x7fffffff) === 0 && h.readUIntBE(0, 3) % 6 === 0;
}

/** The last non-empty line of a text. */
function lastLine(text: string): string | undefined {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1);
}

/** The one line for an exec that did not reach buildkitd. */
export function dialStdioFailure(addr: ContainerAddress, output: string, stderr: string, exitCode: number | undefined): ConnectionError {
  const name = addr.container;
  const text = `${output}\n${stderr}`;
  const last = lastLine(stderr) ?? lastLine(output);
  const noBuildctl = exitCode === 126 || exitCode === 127 || /executable file not found|"buildctl":[^\n]*(no such file|not found)/i.test(text);
  if (noBuildctl) {
    return new ConnectionError(
      `container ${name} has no buildctl to run${last ? ` (${last})` : ""}; ${addr.runtime}-container:// runs "buildctl dial-stdio" in it, as buildctl does, so its image needs buildkitd with buildctl on the PATH (e.g. moby/buildkit)`,
      addr.address,
      { code: "FAILED_PRECONDITION" },
    );
  }
  const hint = /buildkitd\.sock|connect:/.test(text) ? "; is buildkitd running in the container?" : "";
  return new ConnectionError(
    `buildctl dial-stdio in container ${name} ended before buildkitd answered${exitCode === undefined ? "" : ` (exit code ${exitCode})`}: ${last ?? "it wrote nothing"}${hint}`,
    addr.address,
  );
}

/**
 * The exec's stdio as the connection's byte stream, once its first bytes
 * are HTTP/2; until then they are held, and anything else fails the
 * stream with dialStdioFailure's line.
 */
class DialStdio extends Duplex {
  readonly #session: ExecSession;
  readonly #addr: ContainerAddress;
  readonly #inner: Duplex;
  #state: "checking" | "open" | "failing" = "checking";
  #held: Buffer[] = [];
  #heldBytes = 0;
  #failing = false;
  #grace: ReturnType<typeof setTimeout> | undefined;

  constructor(session: ExecSession, addr: ContainerAddress) {
    super();
    this.#session = session;
    this.#addr = addr;
    const inner = session.stream;
    this.#inner = inner;
    inner.on("data", (d: Buffer) => this.#onData(d));
    inner.on("end", () => {
      if (this.#state === "open") this.push(null);
      else this.#fail();
    });
    inner.on("error", (e: Error) => {
      if (this.#state === "open") this.destroy(e);
      else this.#fail();
    });
    inner.on("close", () => {
      if (this.#state === "open") this.destroy();
      else this.#fail();
    });
  }

  #onData(d: Buffer): void {
    if (this.#state === "open") {
      if (!this.push(d)) this.#inner.pause();
      return;
    }
    if (this.#heldBytes < MAX_FAILURE_BYTES) {
      this.#held.push(d);
      this.#heldBytes += d.length;
    }
    if (this.#state === "failing") {
      if (this.#heldBytes >= MAX_FAILURE_BYTES) this.#fail();
      return;
    }
    if (this.#heldBytes < 9) return;
    const head = Buffer.concat(this.#held);
    this.#held = [];
    if (isSettingsHeader(head)) {
      this.#state = "open";
      if (!this.push(head)) this.#inner.pause();
      return;
    }
    // Not HTTP/2: the Engine's or dial-stdio's words; read on until the exec ends (or briefly).
    this.#held = [head];
    this.#state = "failing";
    this.#grace = setTimeout(() => this.#fail(), FAILURE_GRACE_MS);
  }

  /** Fails the stream with what the exec wrote and its exit code (once it has one). */
  #fail(): void {
    if (this.#failing || this.destroyed) return;
    this.#failing = true;
    const output = Buffer.concat(this.#held).toString("utf8");
    void exitCodeSoon(this.#session).then((code) => {
      this.destroy(dialStdioFailure(this.#addr, output, this.#session.stderr(), code));
    });
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#inner.destroyed || this.#inner.writableEnded) cb();
    else this.#inner.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.#inner.destroyed) this.#inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    clearTimeout(this.#grace);
    this.#inner.destroy();
    cb(err);
  }
}

/** The exec's exit code, asked a few times while the Engine still has it running; undefined if it never says. */
async function exitCodeSoon(session: ExecSession): Promise<number | undefined> {
  const signal = AbortSignal.timeout(2000);
  for (let i = 0; i < 10; i++) {
    try {
      const code = await session.exitCode(signal);
      if (code !== undefined) return code;
    } catch {
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}
