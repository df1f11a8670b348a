/**
 * A stand-in for a private package index on 127.0.0.1 (the seed scenario's
 * PyPI behind CI_JOB_TOKEN): `/simple/internal-pkg` answers only the
 * current `token`, as a Bearer token; every request's token is kept in
 * `seen`.
 */
import { createServer, type Server } from "node:http";

export interface PackageIndex {
  readonly server: Server;
  readonly port: number;
  /** Tokens the index saw, in order (clear with `seen.length = 0`). */
  readonly seen: string[];
  /** The one token it accepts now. */
  token: string;
  close(): Promise<void>;
}

export async function startPackageIndex(): Promise<PackageIndex> {
  const seen: string[] = [];
  const index: { token: string } = { token: "" };
  const server = createServer((req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
    seen.push(token);
    if (req.url === "/simple/internal-pkg" && token === index.token) {
      res.end("internal-pkg 1.0\n");
    } else {
      res.statusCode = 401;
      res.end("unauthorized\n");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return Object.assign(index, {
    server,
    port,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

/** Step numbers of plain progress output: step name → "N" of its "#N" lines. */
export function stepNumbers(plain: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of plain.matchAll(/^#(\d+) (\[.*)$/gm)) out.set(m[2]!, m[1]!);
  return out;
}
