/** Open-handle accounting: what a piece of work left open, by resource type. */

function counts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (r !== "Timeout") m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/** Snapshot now; the returned function lists what is still open beyond it (waiting up to `ms`). */
export function trackHandles(): (ms?: number) => Promise<string[]> {
  const baseline = counts();
  return async (ms = 2000) => {
    let open: string[] = [];
    for (const end = Date.now() + ms; ; ) {
      open = [...counts()].filter(([k, n]) => n > (baseline.get(k) ?? 0)).map(([k, n]) => `${k} x${n - (baseline.get(k) ?? 0)}`);
      if (open.length === 0 || Date.now() > end) return open;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
}
