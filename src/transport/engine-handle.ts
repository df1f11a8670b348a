/** The Docker Engine a connection reaches, as builds see it (implemented in docker/engine.ts). */

/** What a build needs to know about the Engine it runs on. */
export interface EngineFacts {
  /** Display address, e.g. docker+unix:///var/run/docker.sock. */
  address: string;
  /** The containerd image store (worker label org.mobyproject.buildkit.worker.snapshotter). */
  containerdStore: boolean;
  /** The Engine's version, e.g. "20.10.24". */
  version: string;
}

/** The Engine a connection reaches, as builds use it. */
export interface EngineHandle extends EngineFacts {
  /**
   * Pushes an image from the Engine's store (POST /images/{name}/push) with
   * the registry login found for its host; resolves with the pushed digest.
   */
  pushImage(
    name: string,
    credentials: (host: string) => Promise<{ username: string; secret: string } | undefined>,
    signal: AbortSignal,
  ): Promise<{ digest?: string | undefined }>;
}
