/**
 * Cooperative time slices for work done with synchronous file system calls
 * (about half the CPU of their async forms, which matters when a transfer
 * shares two cores with the daemon): run up to `ms` milliseconds, then give
 * the event loop a turn so health checks, window updates and other sessions
 * keep flowing.
 */
export function timeSlicer(ms = 4): () => Promise<void> | undefined {
  let start = performance.now();
  return () => {
    if (performance.now() - start < ms) return undefined;
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      start = performance.now();
    });
  };
}
