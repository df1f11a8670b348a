/** Linking abort signals (AbortSignal.any needs Node 20.3; we support 20.0). */

/**
 * Aborts `target` with the reason of the first of `sources` that aborts.
 * Returns a function that removes the listeners.
 */
export function linkSignals(target: AbortController, sources: ReadonlyArray<AbortSignal | undefined>): () => void {
  const removers: Array<() => void> = [];
  for (const s of sources) {
    if (!s) continue;
    if (s.aborted) {
      target.abort(s.reason);
      break;
    }
    const onAbort = (): void => target.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    removers.push(() => s.removeEventListener("abort", onAbort));
  }
  return () => {
    for (const r of removers) r();
  };
}
