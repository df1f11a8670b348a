/**
 * NODE_EXTRA_CA_CERTS, read on the first TLS connection that uses Node's
 * default CAs instead of when the process starts.
 *
 * Node reads that variable before any JavaScript runs and builds its whole
 * root store for it, TLS used or not: 24 ms of every start here for one
 * certificate, 53 ms for Debian's CA bundle (issue 15), where a cached
 * build costs about 100 ms in all. The `bk-build` executable's sh line
 * moves the variable aside (to BK_BUILD_DEFERRED_CA_CERTS) before Node
 * starts, and bin.ts puts it back in process.env (for child processes)
 * and hands the path here. The TLS dialers then trust those certificates
 * as Node would have: a secure context made with no `ca` starts from
 * Node's default store (bundled or OpenSSL's, as Node is configured), and
 * adding a CA to it copies that store before adding, so no other
 * connection's store changes.
 *
 * As Node, a file that cannot be read or holds no certificate is ignored
 * (Node warns on stderr; library code does not write there: NODE_DEBUG=
 * bk-build says it). A library user's process is untouched: only the CLI
 * defers.
 */
import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { debuglog } from "node:util";

const debug = debuglog("bk-build");

/** The environment variable the sh line moves NODE_EXTRA_CA_CERTS to. */
export const DEFERRED_CA_ENV = "BK_BUILD_DEFERRED_CA_CERTS";

let deferredPath: string | undefined;
/** The certificates read from it, once; "" when it could not be read. */
let pem: string | undefined;
/** Node's default store plus them, for options that shape no context of their own (registries): made once. */
/** Trust the certificates in `path` on TLS connections with Node's default CAs (undefined: none). */
export function deferExtraCaCerts(path: string | undefined): void {
  deferredPath = path || undefined;
  pem = undefined;
  plainContext = undefined;
}

function extraPem(): string {
  if (pem !== undefined || deferredPath === undefined) return pem ?? "";
  try {
    pem = readFileSync(deferredPath, "latin1");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
    debug("NODE_EXTRA_CA_CERTS: certificates from %s added on first TLS use", deferredPath);
  } catch (e) {
    debug("NODE_EXTRA_CA_CERTS: ignoring %s: %s", deferredPath, e instanceof Error ? e.message : String(e));
    pem = "";
  }
  return pem;
}

/**
 * `options` for tls.connect, with the deferred certificates added to
 * Node's default CAs when the options name no `ca` of their own; the same
 * options otherwise.
 */
export function withDeferredCa<T extends object>(options: T): T & { secureContext?: tls.SecureContext } {
  const o: tls.ConnectionOptions = options;
  if (deferredPath === undefined || o.ca !== undefined || o.secureContext !== undefined) return options;
  const extra = extraPem();
  if (extra === "") return options;
  const { cert, key, passphrase, pfx, minVersion, maxVersion, ciphers } = o;
  const plain = cert === undefined && key === undefined && pfx === undefined && minVersion === undefined && maxVersion === undefined && ciphers === undefined;
  // Copying the root store costs about a millisecond.
  const context = plain ? (plainContext ??= contextWith(extra, {})) : contextWith(extra, { cert, key, passphrase, pfx, minVersion, maxVersion, ciphers });
  return { ...options, secureContext: context };
}

let plainContext: tls.SecureContext | undefined;

function contextWith(extra: string, options: tls.SecureContextOptions): tls.SecureContext {
  const context = tls.createSecureContext(options);
  // `context.context` is the native SecureContext: addCACert is what tls.createSecureContext runs for each `ca`.
  (context.context as { addCACert(pem: string): void }).addCACert(extra);
  return context;
}
