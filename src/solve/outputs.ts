/**
 * The client's side of a build's outputs: where each exporter's stream
 * lands while the build runs (FileSend targets, the `export` content
 * store), and what happens when it ends: committed into place after a
 * successful Solve, discarded after anything else, so a destination holds
 * the old content or the new, never half of it.
 */
import type { Writable } from "node:stream";
import { BuildKitError } from "../errors.js";
import type { FileSendTarget, ByteSink } from "../session/filesend.js";
import { receiveDiffCopy } from "../session/fsutil/receive.js";
import { prepareDirectoryOutput, prepareFileOutput, type DirectoryOutput, type FileOutput } from "../outputs/directory.js";
import type { ResolvedExport } from "./options.js";
import { parseDescriptor } from "../oci/layout.js";
import { decodeGoBase64 } from "../oci/cache.js";

/** What one output produced, in the order of the build's outputs. */
export interface ExportResult {
  /** The exporter: image, local, tar, oci, docker. */
  type: string;
  /** Where the files went (absolute), for outputs written to disk. */
  dest?: string | undefined;
  /** True when the output went to the caller's stream. */
  stream?: boolean | undefined;
  /** The Docker Engine the image was loaded into (its address), for a `docker` output without dest (--load). */
  engine?: string | undefined;
  /** Manifest (or index) digest, for image, oci and docker outputs. */
  digest?: string | undefined;
  /** Config digest: the image ID, where the exporter reports one. */
  configDigest?: string | undefined;
  /** Image names the exporter gave the result. */
  names?: string[] | undefined;
  /** The image's root descriptor (index or manifest), where the exporter reports one (image, oci, docker). */
  descriptor?: ExportDescriptor | undefined;
  /** Bytes written (tarballs) or received (directories). */
  bytes?: number | undefined;
}

/** An OCI descriptor, as an oci or docker exporter reports the image it wrote. */
export interface ExportDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string> | undefined;
}

/**
 * The exporter's `containerimage.descriptor` (base64 of a JSON OCI
 * descriptor); undefined when absent or not one (the digest is reported on its own too).
 */
export function exportDescriptor(b64: string | undefined): ExportDescriptor | undefined {
  const json = b64 ? decodeGoBase64(b64) : undefined;
  if (json === undefined) return undefined;
  try {
    const d = parseDescriptor(JSON.parse(json));
    if (!d.mediaType || !d.digest) return undefined;
    const out: ExportDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
    if (d.annotations) out.annotations = { ...d.annotations };
    return out;
  } catch {
    return undefined;
  }
}

/** A tap on every byte stream and directory an output writes (the leak audit). */
export interface OutputObserver {
  /** A sink fed the same bytes as an export's file or stream. */
  bytes?(type: string): ByteSink | undefined;
  /** A directory output, complete, before it is moved into place. */
  directory?(path: string): Promise<void>;
}

interface Slot {
  spec: ResolvedExport;
  result: ExportResult;
  dir?: DirectoryOutput;
  file?: FileOutput;
  /** The exporter-md-* values the daemon sent with the stream. */
  md?: Record<string, string>;
  opened: boolean;
}

/** Writes to a caller's Writable with backpressure; finish() ends it and waits for 'finish'. */
function streamSink(stream: Writable): ByteSink {
  let failed: Error | undefined;
  const onError = (e: Error): void => {
    failed ??= e;
  };
  // A function, so the checks after an await are not narrowed away: the listener sets it meanwhile.
  const failure = (): Error | undefined => failed;
  const check = (): void => {
    const f = failure();
    if (f) throw f;
  };
  stream.on("error", onError);
  return {
    async write(chunk) {
      check();
      // write() may call back after an error instead of emitting drain.
      const ok = stream.write(chunk);
      if (!ok) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off("drain", done);
            stream.off("close", done);
            stream.off("error", done);
            resolve();
          };
          stream.on("drain", done);
          stream.on("close", done);
          stream.on("error", done);
        });
      }
      check();
    },
    async finish() {
      check();
      await new Promise<void>((resolve, reject) => {
        stream.end(() => resolve());
        stream.once("error", reject);
      });
      stream.off("error", onError);
    },
    abort(reason) {
      stream.off("error", onError);
      if (!stream.destroyed) stream.destroy(reason);
      return Promise.resolve();
    },
  };
}

/** Feeds one stream to several sinks in turn (the file, then the observer). */
function teeSink(main: ByteSink, tap: ByteSink | undefined, count: (n: number) => void): ByteSink {
  if (!tap) {
    return {
      write: async (c) => {
        count(c.length);
        await main.write(c);
      },
      finish: () => main.finish(),
      abort: (r) => main.abort(r),
    };
  }
  return {
    async write(c) {
      count(c.length);
      await Promise.all([main.write(c), tap.write(c)]);
    },
    async finish() {
      await Promise.all([main.finish(), tap.finish()]);
    },
    async abort(r) {
      await Promise.all([main.abort(r), tap.abort(r)]);
    },
  };
}

function fileSink(f: FileOutput): ByteSink {
  return { write: (c) => f.write(c), finish: () => f.finish(), abort: () => f.discard() };
}

export class BuildOutputs {
  readonly #slots: Slot[];
  readonly #observer: OutputObserver | undefined;
  /** The build's warnings (result.warnings and onWarning). */
  readonly #warn: ((message: string) => void) | undefined;
  #failure: BuildKitError | undefined;
  /** Receivers and sink operations still running: discard() waits for them before removing what they write into. */
  readonly #active = new Set<Promise<unknown>>();

  #track<T>(p: Promise<T>): Promise<T> {
    this.#active.add(p);
    void p.then(
      () => this.#active.delete(p),
      () => this.#active.delete(p),
    );
    return p;
  }

  private constructor(slots: Slot[], observer: OutputObserver | undefined, warn: ((message: string) => void) | undefined) {
    this.#slots = slots;
    this.#observer = observer;
    this.#warn = warn;
  }

  /**
   * Makes the temporary files and directories beside each destination. On
   * failure nothing is left behind.
   */
  static async prepare(exps: readonly ResolvedExport[], observer?: OutputObserver, warn?: (message: string) => void): Promise<BuildOutputs> {
    const slots: Slot[] = exps.map((spec) => ({
      spec,
      opened: false,
      result: { type: spec.type, ...(spec.dest !== undefined ? { dest: spec.dest } : {}), ...(spec.stream ? { stream: true } : {}) },
    }));
    const outputs = new BuildOutputs(slots, observer, warn);
    try {
      for (const s of slots) {
        if (s.spec.target === "directory") s.dir = await prepareDirectoryOutput(s.spec.dest!);
        else if (s.spec.target === "file") s.file = await prepareFileOutput(s.spec.dest!);
      }
    } catch (e) {
      await outputs.discard();
      throw e;
    }
    return outputs;
  }

  /** Remembers the first local failure (a full disk, a broken stream): it says more than the daemon's "error from receiver". */
  #fail(spec: ResolvedExport, e: unknown, temp: string | undefined): void {
    if (this.#failure) return;
    let message = e instanceof Error ? e.message : String(e);
    if (temp !== undefined && spec.dest !== undefined) message = message.split(temp).join(spec.dest);
    const where = spec.dest !== undefined ? ` ${JSON.stringify(spec.dest)}` : spec.stream ? " (the stream)" : "";
    this.#failure = new BuildKitError(`output type=${spec.type}${where} failed: ${message}`, { cause: e });
  }

  /** The first local failure of an output, if one failed. */
  get failure(): BuildKitError | undefined {
    return this.#failure;
  }

  /** True when some exporter sends its output over FileSend. */
  get usesFileSend(): boolean {
    return this.#slots.some((s) => s.spec.target === "directory" || s.spec.target === "file" || s.spec.target === "stream");
  }

  /** The FileSend target for the exporter at index `id`. */
  targetOf(id: number): FileSendTarget | undefined {
    const slot = this.#slots[id];
    if (!slot) return undefined;
    const { spec } = slot;
    if (spec.target === "directory") {
      const root = slot.dir!.temp;
      return {
        kind: "fsutil",
        receive: async (messages, send, signal) => {
          try {
            const stats = await this.#track(receiveDiffCopy(messages, send, { root, signal }));
            slot.result.bytes = (slot.result.bytes ?? 0) + stats.bytes;
            if (stats.xattrEntries > 0) {
              this.#warn?.(
                `type=local,dest=${spec.dest!}: the extended attributes of ${stats.xattrEntries} ${stats.xattrEntries === 1 ? "entry" : "entries"} were not set, as Node.js cannot set them (first: ${stats.xattrExample!}); use type=tar or type=oci to keep them`,
              );
            }
          } catch (e) {
            if (!signal.aborted) this.#fail(spec, e, root);
            throw e;
          }
        },
      };
    }
    if (spec.target === "file" || spec.target === "stream") {
      return {
        kind: "bytes",
        open: (md) => {
          if (slot.opened) return Promise.reject(new BuildKitError(`output ${id} (type=${spec.type}) was sent twice`));
          slot.opened = true;
          slot.md = md;
          const count = (n: number): void => void (slot.result.bytes = (slot.result.bytes ?? 0) + n);
          if (spec.sink) return Promise.resolve(teeSink(spec.sink, undefined, count));
          const main = spec.target === "file" ? fileSink(slot.file!) : streamSink(spec.stream!);
          const sink = teeSink(main, this.#observer?.bytes?.(spec.type), count);
          const fail = (e: unknown): never => {
            this.#fail(spec, e, slot.file?.temp);
            throw e;
          };
          return Promise.resolve({
            write: (c) => this.#track(sink.write(c)).catch(fail),
            finish: () => this.#track(sink.finish()).catch(fail),
            abort: (r) => this.#track(sink.abort(r)),
          });
        },
      };
    }
    return undefined;
  }

  /**
   * After a successful Solve: each output's metadata from the exporter
   * response and its stream's headers; directories handed to the observer,
   * then files and directories moved into place.
   */
  /** After a successful Solve, before commit: the complete directories, shown to the observer. */
  async inspect(): Promise<void> {
    for (const s of this.#slots) {
      if (s.spec.target === "directory" && this.#observer?.directory) await this.#observer.directory(s.dir!.temp);
    }
  }

  async commit(response: Readonly<Record<string, string>>): Promise<ExportResult[]> {
    for (const s of this.#slots) {
      const md = s.md ?? (s.spec.type === "image" || s.spec.target === "layout" ? response : {});
      const digest = md["containerimage.digest"];
      const config = md["containerimage.config.digest"];
      const names = md["image.name"];
      if (digest) s.result.digest = digest;
      if (config) s.result.configDigest = config;
      if (names) s.result.names = names.split(",");
      const descriptor = exportDescriptor(md["containerimage.descriptor"]);
      if (descriptor) s.result.descriptor = descriptor;
      if (s.spec.target === "file" || s.spec.target === "stream") {
        if (!s.opened) throw new BuildKitError(`buildkitd reported success but sent nothing for output type=${s.spec.type}`);
      }
    }
    for (const s of this.#slots) {
      if (s.file) await s.file.commit();
      if (s.dir) await s.dir.commit();
    }
    return this.#slots.filter((s) => !s.spec.sink).map((s) => s.result);
  }

  /** After a failed or cancelled build: temporary files removed, destinations untouched; streams destroyed. */
  async discard(reason?: Error): Promise<void> {
    // The session is closed: what still runs ends soon (its calls are
    // cancelled). Bounded, so a stuck write cannot hold the build's end.
    const deadline = Date.now() + 5000;
    while (this.#active.size && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.allSettled([...this.#active]), new Promise((r) => (timer = setTimeout(r, deadline - Date.now())))]);
      clearTimeout(timer);
    }
    for (const s of this.#slots) {
      await s.file?.discard().catch(() => undefined);
      await s.dir?.discard().catch(() => undefined);
      if (s.spec.stream && !s.spec.stream.destroyed && !s.spec.stream.writableFinished) s.spec.stream.destroy(reason);
      if (s.spec.sink && !s.opened) await s.spec.sink.abort(reason ?? new Error("the build failed"));
    }
  }
}
