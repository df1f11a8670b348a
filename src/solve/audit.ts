/**
 * The leak audit in a build: every secret value and SSH key file the build
 * was given is scanned for in what it produced. Tarball outputs are scanned
 * as they stream, directories before they are moved into place; a build
 * that only pushes (or exports nothing) gets one more exporter, an OCI
 * tarball streamed straight into the scanner. A finding fails the build
 * before any file or directory output is moved into place.
 */
import { AuditError, SecretAuditor, SecretLeakError, type AuditReport, type AuditSecret } from "../audit/index.js";
import type { ByteSink } from "../session/filesend.js";
import type { SecretProvider } from "../session/secrets.js";
import type { ForwardedAgent } from "../session/ssh.js";
import type { OutputObserver } from "./outputs.js";
import type { ResolvedExport } from "./options.js";

export class BuildAudit {
  readonly #auditor: SecretAuditor;
  /** What went wrong in a streamed scan: reported after the build, never into the export. */
  #failure: unknown;
  readonly #pending: Array<Promise<void>> = [];

  private constructor(auditor: SecretAuditor) {
    this.#auditor = auditor;
  }

  /**
   * Reads every secret now (a function source is called for it too), so the
   * patterns are known before the first byte of output arrives; a cached
   * step never asks for its secret, but its layer may still hold it.
   */
  static async prepare(providers: ReadonlyMap<string, SecretProvider>, agents: ReadonlyMap<string, ForwardedAgent>, signal: AbortSignal): Promise<BuildAudit> {
    const secrets: AuditSecret[] = [];
    for (const [id, provider] of providers) secrets.push({ id, value: await provider(signal), kind: "secret" });
    for (const [id, agent] of agents) {
      if (agent.kind !== "keys") continue;
      for (const k of agent.keys) if (k.file) secrets.push({ id, value: k.file, kind: "ssh-key" });
    }
    return new BuildAudit(new SecretAuditor(secrets));
  }

  /** Taps for the build's outputs. */
  get observer(): OutputObserver {
    return {
      bytes: (type) => (type === "tar" || type === "oci" || type === "docker" ? this.#tap(type) : undefined),
      directory: (path) => this.#auditor.scanDirectory(path),
    };
  }

  /**
   * The extra exporter that lets the audit see an image nobody downloads:
   * added when an output is an image (pushed or stored) or there is none.
   */
  extraExporter(exps: readonly ResolvedExport[]): ResolvedExport | undefined {
    if (exps.length && !exps.some((e) => e.type === "image")) return undefined;
    return { type: "oci", attrs: {}, target: "stream", sink: this.#tap("oci") };
  }

  /** A sink that never fails the export: a scan error is kept for verdict(). */
  #tap(type: "tar" | "oci" | "docker"): ByteSink {
    const sink = this.#auditor.tarSink(type);
    let broken = false;
    const guard = async (p: Promise<void>): Promise<void> => {
      if (broken) return;
      try {
        await p;
      } catch (e) {
        broken = true;
        this.#failure ??= e;
        sink.destroy();
      }
    };
    return {
      write: (c) => guard(sink.write(c)),
      finish: () => {
        const done = guard(sink.end());
        this.#pending.push(done);
        return done;
      },
      abort: () => {
        broken = true;
        sink.destroy();
        return Promise.resolve();
      },
    };
  }

  /** After the outputs were scanned: the report, or the error that fails the build. */
  async verdict(): Promise<AuditReport> {
    await Promise.all(this.#pending);
    if (this.#failure !== undefined) {
      if (this.#failure instanceof AuditError) throw this.#failure;
      throw new AuditError(["the audit could not read an output: " + (this.#failure instanceof Error ? this.#failure.message : "unknown error")]);
    }
    const report = this.#auditor.report();
    if (report.findings.length) throw new SecretLeakError(report);
    return report;
  }
}
