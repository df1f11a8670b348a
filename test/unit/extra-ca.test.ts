/**
 * NODE_EXTRA_CA_CERTS deferred by the CLI (src/transport/extra-ca.ts): which
 * TLS options get the certificates, and what is left alone. The integration
 * test (control.test.ts) connects through it to a TLS buildkitd.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tls from "node:tls";
import { deferExtraCaCerts, withDeferredCa } from "../../src/transport/extra-ca.js";
import { tempDir } from "../helpers/files.js";

test("withDeferredCa: options untouched unless the CLI deferred certificates and the options name no CA of their own", (t) => {
  t.after(() => deferExtraCaCerts(undefined));
  const dir = tempDir("bk-extra-ca-", t);
  const pem = join(dir, "extra.pem");
  // Any certificate: one of Node's bundled roots.
  writeFileSync(pem, tls.rootCertificates[0]!);

  const plain = { host: "127.0.0.1" };
  assert.equal(withDeferredCa(plain), plain, "nothing deferred: the same options");

  deferExtraCaCerts(pem);
  const withCa = { host: "127.0.0.1", ca: "x" };
  assert.equal(withDeferredCa(withCa), withCa, "an explicit CA is the whole trust set, as with Node's own variable");
  const own = tls.createSecureContext();
  const withContext = { secureContext: own };
  assert.equal(withDeferredCa(withContext), withContext);

  const a = withDeferredCa({ host: "127.0.0.1", servername: "b" });
  assert.ok(a.secureContext instanceof Object && a.secureContext !== own, "a context with the certificates");
  assert.equal(a.host, "127.0.0.1");
  assert.equal(a.servername, "b");
  assert.equal(withDeferredCa({ host: "other" }).secureContext, a.secureContext, "the plain context is made once");
  const minTls = withDeferredCa({ minVersion: "TLSv1.2" as const });
  assert.ok(minTls.secureContext && minTls.secureContext !== a.secureContext, "options that shape the context get their own");

  deferExtraCaCerts(join(dir, "missing.pem"));
  assert.equal(withDeferredCa(plain), plain, "an unreadable file is ignored, as Node ignores it");
  writeFileSync(join(dir, "empty.pem"), "not a certificate\n");
  deferExtraCaCerts(join(dir, "empty.pem"));
  assert.equal(withDeferredCa(plain), plain, "a file with no certificate is ignored");
  deferExtraCaCerts("");
  assert.equal(withDeferredCa(plain), plain, "an empty value is no value");
});
