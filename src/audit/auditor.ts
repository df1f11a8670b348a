/**
 * The leak audit: scans what a build produced (a local tree, a tar export,
 * an oci/docker image tarball) for every value the session served.
 *
 * Nothing is buffered whole: layers are inflated and walked as they stream
 * by (gzip through zlib, tar through tar-stream); only image JSON of up to
 * 1 MiB is kept, to learn which blob is a config, a manifest or a layer.
 */
import { constants as fsConstants } from "node:fs";
import { lstat, open, readdir, readlink, stat } from "node:fs/promises";
import { Writable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { Matcher, StreamScan } from "./matcher.js";
import { compileSecrets, type AuditSecret, type Pattern } from "./patterns.js";
import { AuditError, type AuditFinding, type AuditReport } from "./report.js";
import { TarInput, type EntryStream, type TarHeader } from "./tar-input.js";

/** Takes the bytes of one export stream. Call write() again only after its promise resolved. */
export interface AuditSink {
  /** Scans the next bytes of the stream; resolves when the sink is ready for more. Do not change the chunk afterwards. */
  write(chunk: Uint8Array): Promise<void>;
  /** The stream is complete: resolves once all of it was scanned; rejects with an AuditError if part of it could not be read. */
  end(): Promise<void>;
  /** Stops scanning (the export failed or was cancelled); end() is not needed then. */
  destroy(): void;
  /** This sink as a Node Writable (for stream.pipeline()). */
  writable(): Writable;
}

type Where = AuditFinding["where"];

interface Found {
  pattern: Pattern;
  layer: string;
  where: Where;
  path: string;
  endPath: string;
  /** For image blobs that are not layers: the digest whose label becomes the path. */
  blob?: string | undefined;
}

/** What sniffing the first bytes of an image blob says it is. */
type BlobType = "gzip" | "zstd" | "xz" | "bzip2" | "tar" | "json" | "bytes";

const SNIFF_BYTES = 512;
const SLASH = Buffer.from("/");
/** Image JSON up to this size is parsed (manifests, index, configs are far smaller). */
const MAX_JSON = 1024 * 1024;
/** Bytes a layer's tar reader may hold before a write waits. */
const LAYER_BUFFER = 1024 * 1024;
/** Inflated chunk size: zlib runs on the thread pool, so fewer, larger chunks mean fewer round trips (16 KiB: 230 MB/s, 1 MiB: 1 GB/s here). */
const INFLATE_CHUNK = 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** PAX records that are already scanned as the entry's name or link, or carry only numbers. */
const PAX_SKIP = new Set(["path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid"]);

export class SecretAuditor {
  readonly #secrets: readonly { id: string; kind: AuditSecret["kind"] }[];
  readonly #patterns: readonly Pattern[];
  readonly #matcher: Matcher;
  readonly #skipped: string[];
  readonly #found = new Map<string, Found>();
  readonly #errors: string[] = [];
  /** Blob digest -> label: from a manifest or index naming it, else from sniffing its JSON. */
  readonly #declared = new Map<string, string>();
  readonly #sniffed = new Map<string, string>();
  #layers = 0;
  #files = 0;
  #bytes = 0;

  constructor(secrets: readonly AuditSecret[]) {
    this.#secrets = secrets.map((s) => ({ id: s.id, kind: s.kind }));
    const compiled = compileSecrets(secrets);
    this.#patterns = compiled.patterns;
    this.#skipped = compiled.skipped;
    this.#matcher = new Matcher(compiled.patterns.map((p) => p.bytes));
  }

  /**
   * A sink for a whole export byte stream: "tar" is a filesystem tarball
   * (one layer, layer ""); "oci" and "docker" are image tarballs, whose
   * entries are sniffed: gzip, zstd or plain tar blobs are walked as layers,
   * JSON (configs, manifests, index) and other blobs are scanned as they are.
   */
  tarSink(kind: "tar" | "oci" | "docker"): AuditSink {
    return kind === "tar" ? this.#layerSink() : this.#imageSink(kind);
  }

  /** Walks a local output directory. Symlinks are never followed (their targets are scanned as text); only regular files are opened. */
  async scanDirectory(dir: string): Promise<void> {
    let info;
    try {
      info = await stat(dir);
    } catch (e) {
      throw this.#fail([`cannot read the output directory ${dir} for the secret audit: ${errorText(e)}`]);
    }
    if (!info.isDirectory()) throw this.#fail([`the output ${dir} is not a directory; the secret audit walks a local export's directory`]);
    this.#layers++;
    const problems: string[] = [];
    const scan = new StreamScan(this.#matcher, (p, from, to) => this.#record(p, "", "content", from, to));
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    // Names as bytes: a name that is not UTF-8 is still opened (and scanned) as it is.
    const walk = async (abs: Buffer, rel: string, relBytes: Buffer): Promise<void> => {
      let names: Buffer[];
      try {
        names = (await readdir(abs, { encoding: "buffer" })).sort((x, y) => Buffer.compare(x, y));
      } catch (e) {
        problems.push(`cannot read ${rel || "."} for the secret audit: ${errorText(e)}`);
        return;
      }
      for (const name of names) {
        const pathBytes = relBytes.length === 0 ? name : Buffer.concat([relBytes, SLASH, name]);
        const path = pathBytes.toString("utf8");
        const full = Buffer.concat([abs, SLASH, name]);
        this.#scanName(pathBytes, "", "name", path);
        let st;
        try {
          st = await lstat(full);
        } catch (e) {
          problems.push(`cannot read ${path} for the secret audit: ${errorText(e)}`);
          continue;
        }
        try {
          if (st.isDirectory()) await walk(full, path, pathBytes);
          else if (st.isSymbolicLink()) this.#scanText(await readlink(full, { encoding: "buffer" }), "", "link", path);
          else if (st.isFile()) await this.#readFile(full, path, scan, buffer);
        } catch (e) {
          problems.push(`cannot read ${path} for the secret audit: ${errorText(e)}`);
        }
      }
    };
    await walk(Buffer.from(dir), "", Buffer.alloc(0));
    scan.end();
    if (problems.length > 0) throw this.#fail(problems);
  }

  report(): AuditReport {
    const findings: AuditFinding[] = [];
    for (const f of this.#found.values()) {
      const secret = this.#secrets[f.pattern.secret]!;
      const path = f.blob === undefined ? this.#redact(f.path) : this.#label(f.blob);
      const endPath = f.blob === undefined && f.endPath !== f.path ? this.#redact(f.endPath) : undefined;
      findings.push({
        secretId: secret.id,
        kind: secret.kind,
        layer: f.layer,
        path,
        ...(endPath === undefined ? {} : { endPath }),
        encoding: f.pattern.encoding,
        where: f.where,
      });
    }
    return { findings, layers: this.#layers, files: this.#files, bytes: this.#bytes, skipped: [...this.#skipped], errors: [...this.#errors] };
  }

  // --- findings -----------------------------------------------------------

  #record(pattern: number, layer: string, where: Where, path: string, endPath: string, blob?: string): void {
    const p = this.#patterns[pattern]!;
    const key = [p.secret, p.encoding, layer, where, path, endPath, blob ?? ""].join("\0");
    if (!this.#found.has(key)) this.#found.set(key, { pattern: p, layer, where, path, endPath, blob });
  }

  /** Scans an entry name; a finding names the path up to the end of the component holding the match. */
  #scanName(bytes: Buffer, layer: string, where: Where, path: string): void {
    this.#matcher.scan(bytes, (i, start) => {
      const end = start + this.#patterns[i]!.bytes.length;
      const slash = bytes.indexOf(0x2f, end);
      const cut = slash === -1 ? path : bytes.subarray(0, slash).toString("utf8");
      this.#record(i, layer, where, cut, cut);
    });
  }

  #scanText(bytes: Buffer, layer: string, where: Where, path: string): void {
    this.#matcher.scan(bytes, (i) => this.#record(i, layer, where, path, path));
  }

  /** `text` with every pattern occurrence replaced by <secret:id>: paths and messages may carry values. */
  #redact(text: string): string {
    const bytes = Buffer.from(text, "utf8");
    const cuts: Array<[number, number, number]> = [];
    this.#matcher.scan(bytes, (i, start) => cuts.push([start, start + this.#patterns[i]!.bytes.length, this.#patterns[i]!.secret]));
    if (cuts.length === 0) return text;
    cuts.sort((a, b) => a[0] - b[0]);
    const parts: Buffer[] = [];
    let at = 0;
    for (const [start, end, secret] of cuts) {
      if (end <= at) continue;
      if (start >= at) {
        parts.push(bytes.subarray(at, start), Buffer.from(`<secret:${this.#secrets[secret]!.id}>`));
      }
      at = end;
    }
    parts.push(bytes.subarray(at));
    return Buffer.concat(parts).toString("utf8");
  }

  #label(digest: string): string {
    return this.#declared.get(digest) ?? this.#sniffed.get(digest) ?? "<blob>";
  }

  // --- walking ------------------------------------------------------------

  async #readFile(full: Buffer, path: string, scan: StreamScan, buffer: Buffer): Promise<void> {
    // O_NOFOLLOW: a file swapped for a symlink since lstat is not followed;
    // O_NONBLOCK: nor does a FIFO swapped in block the walk.
    const fh = await open(full, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    try {
      if (!(await fh.stat()).isFile()) return;
      this.#files++;
      scan.file(path);
      for (;;) {
        const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        this.#bytes += bytesRead;
        scan.write(buffer.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }

  /** A reader for one filesystem tarball (a layer, or a tar export). */
  #layerWalk(layer: string): { input: TarInput; finish(): Promise<void> } {
    this.#layers++;
    const scan = new StreamScan(this.#matcher, (p, from, to) => this.#record(p, layer, "content", from, to));
    const input = new TarInput((h, stream, next) => {
      this.#scanHeader(h, layer);
      if (h.type === "file" || h.type === "contiguous-file") {
        this.#files++;
        scan.file(h.name);
        stream.on("data", (data) => {
          const c = data as Buffer;
          this.#bytes += c.length;
          scan.write(c);
        });
      } else {
        stream.resume();
      }
      stream.on("end", () => next());
    }, LAYER_BUFFER);
    return {
      input,
      finish: async () => {
        await input.end();
        scan.end();
      },
    };
  }

  #scanHeader(h: TarHeader, layer: string): void {
    const name = h.name.endsWith("/") ? h.name.slice(0, -1) : h.name;
    this.#scanName(Buffer.from(h.name, "utf8"), layer, "name", name);
    if (h.linkname) this.#scanText(Buffer.from(h.linkname, "utf8"), layer, "link", name);
    if (h.pax) {
      for (const [k, v] of Object.entries(h.pax)) if (!PAX_SKIP.has(k)) this.#scanText(Buffer.from(`${k}=${v}`, "utf8"), layer, "header", name);
    }
  }

  #layerSink(): AuditSink {
    const walk = this.#layerWalk("");
    return this.#sink("tar", walk.input, () => walk.finish());
  }

  #imageSink(kind: "oci" | "docker"): AuditSink {
    const image = new ImageBook();
    const outer = new TarInput((h, stream, next) => {
      this.#imageEntry(image, h, stream).then(
        () => next(),
        (e: unknown) => next(e instanceof Error ? e : new Error(String(e))),
      );
    }, 64 * 1024);
    return this.#sink(
      kind,
      outer,
      () => outer.end(),
      () => {
        for (const [digest, mediaType] of image.layers) {
          const seen = image.seen.get(digest);
          if (seen === undefined) this.#skipped.push(`blob ${digest} is named by a manifest but is not in the ${kind} stream: not scanned`);
          else if (seen === "bytes" && !/json/.test(mediaType))
            image.problems.push(`layer ${digest} (${mediaType || "no media type"}) is not gzip, zstd or tar; the audit cannot read it`);
        }
        for (const digest of image.referenced)
          if (!image.seen.has(digest) && !image.layers.has(digest))
            this.#skipped.push(`blob ${digest} is named by a manifest but is not in the ${kind} stream: not scanned`);
        if (image.problems.length > 0) throw this.#fail(image.problems);
      },
    );
  }

  #fail(problems: string[]): AuditError {
    const clean = problems.map((p) => this.#redact(p));
    this.#errors.push(...clean);
    return new AuditError(clean);
  }

  /**
   * The sink around a stream's tar reader. A stream that is not a readable
   * tarball fails write() or end() with one AuditError (the same one for
   * every later call); `check` runs after the stream ended properly.
   */
  #sink(kind: string, input: TarInput, finish: () => Promise<void>, check?: () => void): AuditSink {
    let broken: AuditError | undefined;
    let ended: Promise<void> | undefined;
    const fail = (e: unknown): AuditError => (broken ??= this.#fail([`the ${kind} export stream cannot be read as a tarball: ${errorText(e)}`]));
    const sink: AuditSink = {
      write: async (chunk) => {
        if (broken) throw broken;
        if (ended) throw new AuditError(["the secret audit's sink was written to after end()"]);
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
        if (buf.length === 0) return;
        try {
          await input.write(buf);
        } catch (e) {
          throw fail(e);
        }
      },
      end: () =>
        (ended ??= (async () => {
          if (broken) throw broken;
          try {
            await finish();
          } catch (e) {
            throw fail(e);
          }
          check?.();
        })()),
      destroy: () => {
        ended ??= Promise.reject(new AuditError(["the secret audit's sink was destroyed"]));
        ended.catch(() => undefined);
        input.destroy();
      },
      writable: () =>
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            sink.write(chunk).then(() => callback(), callback);
          },
          final(callback) {
            sink.end().then(() => callback(), callback);
          },
          destroy(error, callback) {
            if (error) sink.destroy();
            callback(error);
          },
        }),
    };
    return sink;
  }

  /** One entry of an image tarball: a blob (blobs/<alg>/<hex>) or the layout's own files. */
  async #imageEntry(image: ImageBook, h: TarHeader, stream: EntryStream): Promise<void> {
    const it = stream[Symbol.asyncIterator]();
    // One read at a time, shared: a reader that gave up may still have one
    // pending when the rest is drained.
    let pending: Promise<Buffer | null> | undefined;
    const pull = (): Promise<Buffer | null> =>
      (pending ??= it.next().then((r) => {
        pending = undefined;
        return r.done === true ? null : (r.value as Buffer);
      }));
    const drain = async (): Promise<void> => {
      while ((await pull()) !== null);
    };
    if (h.type !== "file" && h.type !== "contiguous-file") return drain();

    const m = /^(?:\.\/)?blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(h.name);
    const digest = m ? `${m[1]}:${m[2]}` : undefined;
    const name = digest ?? h.name;
    const head: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < SNIFF_BYTES) {
      const c = await pull();
      if (c === null) break;
      head.push(c);
      headBytes += c.length;
    }
    const type = sniff(head.length === 1 ? head[0]! : Buffer.concat(head));
    if (digest !== undefined) image.seen.set(digest, type);
    async function* source(): AsyncGenerator<Buffer> {
      yield* head;
      for (;;) {
        const c = await pull();
        if (c === null) return;
        yield c;
      }
    }
    try {
      switch (type) {
        case "gzip":
          await this.#inflated(name, source(), zlib.createGunzip({ chunkSize: INFLATE_CHUNK }));
          break;
        case "zstd": {
          const z = zstdDecompressor();
          if (z) await this.#inflated(name, source(), z);
          else image.problems.push(`layer ${name} is zstd-compressed; the audit cannot read it yet (export with compression=gzip to audit it)`);
          break;
        }
        case "xz":
        case "bzip2":
          image.problems.push(`layer ${name} is ${type}-compressed; the audit cannot read it (export with compression=gzip to audit it)`);
          break;
        case "tar":
          await this.#plainLayer(name, source());
          break;
        default:
          await this.#blob(image, name, digest, type === "json", source());
      }
    } catch (e) {
      const layer = type === "gzip" || type === "zstd" || type === "tar";
      image.problems.push(`${layer ? "layer" : "blob"} ${name} cannot be read: ${errorText(e)}`);
    }
    await drain();
  }

  async #inflated(layer: string, source: AsyncIterable<Buffer>, inflate: Transform): Promise<void> {
    const walk = this.#layerWalk(layer);
    try {
      await pipeline(source, inflate, async (inflated: AsyncIterable<Buffer>) => {
        for await (const c of inflated) {
          const wait = walk.input.write(c);
          if (wait) await wait;
        }
        await walk.finish();
      });
    } catch (e) {
      walk.input.destroy();
      throw e;
    }
  }

  async #plainLayer(layer: string, source: AsyncIterable<Buffer>): Promise<void> {
    const walk = this.#layerWalk(layer);
    try {
      for await (const c of source) {
        const wait = walk.input.write(c);
        if (wait) await wait;
      }
      await walk.finish();
    } catch (e) {
      walk.input.destroy();
      throw e;
    }
  }

  /** A blob that is not a layer (or an image tarball's own file), scanned as one file. */
  async #blob(image: ImageBook, name: string, digest: string | undefined, json: boolean, source: AsyncIterable<Buffer>): Promise<void> {
    this.#files++;
    const layer = digest ?? "";
    const scan = new StreamScan(this.#matcher, (p, from, to) => this.#record(p, layer, "content", from, to, digest));
    scan.file(name);
    let kept: Buffer[] | undefined = json ? [] : undefined;
    let keptBytes = 0;
    for await (const c of source) {
      this.#bytes += c.length;
      scan.write(c);
      if (kept) {
        keptBytes += c.length;
        if (keptBytes <= MAX_JSON) kept.push(Buffer.from(c));
        else kept = undefined;
      }
    }
    scan.end();
    if (!json) return;
    let doc: unknown;
    try {
      doc = kept ? JSON.parse(Buffer.concat(kept).toString("utf8")) : undefined;
    } catch {
      doc = undefined;
    }
    if (digest !== undefined) this.#sniffed.set(digest, jsonLabel(doc));
    this.#learn(image, doc);
  }

  /** Records what an index, manifest or docker manifest.json says about other blobs. */
  #learn(image: ImageBook, doc: unknown): void {
    const ref = (d: unknown): { digest: string; mediaType: string } | undefined => {
      if (!isObject(d) || typeof d["digest"] !== "string") return undefined;
      return { digest: d["digest"], mediaType: typeof d["mediaType"] === "string" ? d["mediaType"] : "" };
    };
    const declare = (digest: string, label: string): void => {
      image.referenced.add(digest);
      this.#declared.set(digest, label);
    };
    if (Array.isArray(doc)) {
      // docker manifest.json: [{ Config: "blobs/sha256/…", Layers: [...] }]
      for (const entry of doc) {
        if (!isObject(entry)) continue;
        const toDigest = (p: unknown): string | undefined => {
          const m = typeof p === "string" ? /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(p) : null;
          return m ? `${m[1]}:${m[2]}` : undefined;
        };
        const config = toDigest(entry["Config"]);
        if (config) declare(config, "<config>");
        if (Array.isArray(entry["Layers"]))
          for (const l of entry["Layers"]) {
            const d = toDigest(l);
            if (d && !image.layers.has(d)) image.layers.set(d, "application/vnd.docker.image.rootfs.diff.tar");
          }
      }
      return;
    }
    if (!isObject(doc)) return;
    if (Array.isArray(doc["manifests"])) {
      for (const m of doc["manifests"]) {
        const r = ref(m);
        if (r) declare(r.digest, /index|manifest\.list/.test(r.mediaType) ? "<index>" : "<manifest>");
      }
    }
    const config = ref(doc["config"]);
    if (config) declare(config.digest, "<config>");
    if (Array.isArray(doc["layers"])) {
      for (const l of doc["layers"]) {
        const r = ref(l);
        if (!r) continue;
        image.layers.set(r.digest, r.mediaType);
        if (/in-toto/.test(r.mediaType)) this.#declared.set(r.digest, "<attestation>");
      }
    }
  }
}

/** What one image tarball told us about its blobs. */
class ImageBook {
  /** Blob digest -> what sniffing said. */
  readonly seen = new Map<string, BlobType>();
  /** Layer digests the manifests name, with their media types. */
  readonly layers = new Map<string, string>();
  /** Other blobs the manifests and index name. */
  readonly referenced = new Set<string>();
  readonly problems: string[] = [];
}

function sniff(head: Buffer): BlobType {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4) {
    const magic = head.readUInt32LE(0);
    // A zstd frame, or a skippable frame (zstd:chunked starts with one).
    if (magic === 0xfd2fb528 || (magic & 0xfffffff0) === 0x184d2a50) return "zstd";
  }
  if (head.length >= 6 && head.subarray(0, 6).equals(XZ_MAGIC)) return "xz";
  if (head.length >= 4 && head.toString("latin1", 0, 3) === "BZh" && head[3]! >= 0x31 && head[3]! <= 0x39) return "bzip2";
  if (head.length >= 262 && head.toString("latin1", 257, 262) === "ustar") return "tar";
  // An empty layer: nothing but the end-of-archive blocks.
  if (head.length >= 1024 && head.subarray(0, 1024).every((b) => b === 0)) return "tar";
  for (const b of head) {
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
    return b === 0x7b || b === 0x5b ? "json" : "bytes";
  }
  return "bytes";
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

function jsonLabel(doc: unknown): string {
  if (!isObject(doc)) return "<json>";
  if (Array.isArray(doc["manifests"])) return "<index>";
  if (Array.isArray(doc["layers"]) || isObject(doc["config"])) return "<manifest>";
  if (isObject(doc["rootfs"]) || typeof doc["architecture"] === "string") return "<config>";
  if (typeof doc["predicateType"] === "string" || typeof doc["_type"] === "string") return "<attestation>";
  return "<json>";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** zlib's zstd decompressor where this Node has one (v22.15+, v23.8+), else undefined. */
function zstdDecompressor(): Transform | undefined {
  const create: unknown = Reflect.get(zlib, "createZstdDecompress");
  return typeof create === "function" ? (Reflect.apply(create, zlib, []) as Transform) : undefined;
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
