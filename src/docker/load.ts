/**
 * `--load` with a standalone buildkitd (buildx's docker.LoadImage): the
 * export tarball is streamed from the session straight into the Engine's
 * `POST /images/load`, with no temporary file. An Engine with the
 * containerd image store gets an `oci` tarball (it takes multi-platform
 * images), any other a `docker` one.
 */
import { Transform, type TransformCallback } from "node:stream";
import { BuildKitError } from "../errors.js";
import type { ResolvedExport } from "../solve/options.js";
import type { SshOptions } from "../transport/ssh-dial.js";
import { resolveEngine } from "./host.js";
import { engineLink } from "./engine.js";

/** What one write to the Engine carries at most, and the pipe's buffer. */
const BATCH_BYTES = 1 << 20;

/**
 * Joins the export's 32 KiB messages into writes of up to 1 MiB (one per
 * event loop turn, or sooner when full): each write to the Engine is a
 * chunk of its own in the chunked request body and a syscall, and at 32 KiB
 * a 200 MB image took thousands of both.
 */
class Batcher extends Transform {
  #parts: Buffer[] = [];
  #size = 0;
  #scheduled = false;

  constructor() {
    super({ highWaterMark: BATCH_BYTES });
  }

  #flush(): void {
    this.#scheduled = false;
    if (!this.#size) return;
    const out = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    this.push(out);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#parts.push(chunk);
    this.#size += chunk.length;
    if (this.#size >= BATCH_BYTES) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.#flush();
    cb();
  }
}

export interface LoadTarget {
  /** The Engine's display address. */
  address: string;
  /** Settles with the images the Engine loaded, once the tarball has been read to its end. */
  loaded: Promise<string[]>;
}

/**
 * Points `exp` (a `load` output) at the Engine the docker CLI would use,
 * checking first that it answers: without one the build fails here, before
 * it starts, with one line. `signal` aborts the load.
 */
export async function prepareLoad(
  exp: ResolvedExport,
  o: { env: Record<string, string | undefined>; ssh?: SshOptions | undefined; timeoutMs: number; signal: AbortSignal; platforms: number },
): Promise<LoadTarget> {
  const resolved = resolveEngine("docker://", { env: o.env });
  const link = engineLink(resolved, { env: o.env, ssh: o.ssh, timeoutMs: o.timeoutMs });
  try {
    const deadline = AbortSignal.timeout(o.timeoutMs);
    const info = await link.api.info(AbortSignal.any([o.signal, deadline])).catch((e: unknown) => {
      const why = e instanceof Error ? e.message : String(e);
      throw new BuildKitError(`--load needs a Docker Engine, and none answered (${why}); set DOCKER_HOST, or give --output type=docker,dest=FILE.tar`, {
        code: "UNAVAILABLE",
        cause: e,
      });
    });
    if (info.containerdStore) exp.type = "oci";
    else if (o.platforms > 1) {
      throw new BuildKitError(
        `--load of a multi-platform image needs the containerd image store, and the Docker Engine at ${resolved.address} uses the classic store: build one platform, or push instead`,
        { code: "INVALID_ARGUMENT" },
      );
    }
    const pipe = new Batcher();
    exp.target = "stream";
    exp.stream = pipe;
    const loaded = link.api.loadImage(pipe, { signal: o.signal }).then(
      (r) => r.images,
      (e: unknown) => {
        throw e instanceof BuildKitError
          ? e
          : new BuildKitError(`loading the image into the Docker Engine at ${resolved.address} failed: ${String(e)}`, { cause: e });
      },
    );
    // Read by the build once the export is done; a failed build destroys the pipe and this with it.
    loaded.catch(() => undefined);
    void loaded.finally(() => link.close()).catch(() => undefined);
    return { address: resolved.address, loaded };
  } catch (e) {
    link.close();
    throw e;
  }
}
