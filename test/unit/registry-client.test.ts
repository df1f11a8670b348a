/**
 * The registry client against a registry faked here with node:http on
 * 127.0.0.1 (plain HTTP, as for every loopback registry): the
 * WWW-Authenticate parser, the token flow (401, token, 200), Basic, identity
 * tokens, refusals and their one-line errors (never a secret in them),
 * digest checks, timeouts and cancellation.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseWwwAuthenticate } from "../../src/registry/challenge.js";
import { RegistryClient, RegistryError, isLoopbackHost, parseImageName, registryEndpoint, registryErrorMessage } from "../../src/registry/client.js";
import { OCI_INDEX, OCI_MANIFEST } from "../../src/registry/media-types.js";
import { BuildKitError, UsageError } from "../../src/errors.js";
import { cleanup, leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

const sha256 = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

// --- WWW-Authenticate -------------------------------------------------------

test("WWW-Authenticate: Docker Hub's Bearer challenge, with a comma inside the quoted scope", () => {
  assert.deepEqual(
    parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"'),
    [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull,push" } }],
  );
});

test("WWW-Authenticate: several challenges, spaces after commas, unquoted values, case-blind names, escapes", () => {
  assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm", Bearer realm=https://r.example/token, service=reg , SCOPE="a b"'), [
    { scheme: "basic", params: { realm: "Registry Realm" } },
    { scheme: "bearer", params: { realm: "https://r.example/token", service: "reg", scope: "a b" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('BEARER Realm="a\\"b,c",error="insufficient_scope"'), [
    { scheme: "bearer", params: { realm: 'a"b,c', error: "insufficient_scope" } },
  ]);
  // Node joins repeated headers with ", ": the same as one header with both.
  assert.deepEqual(
    parseWwwAuthenticate('Bearer realm="x", Basic realm="y"').map((c) => c.scheme),
    ["bearer", "basic"],
  );
  assert.deepEqual(parseWwwAuthenticate('Negotiate abc/d==, Basic realm=""'), [
    { scheme: "negotiate", params: {}, token68: "abc/d==" },
    { scheme: "basic", params: { realm: "" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate("Basic"), [{ scheme: "basic", params: {} }]);
  assert.deepEqual(parseWwwAuthenticate(""), []);
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="unterminated'), [{ scheme: "bearer", params: { realm: "unterminated" } }]);
});

// --- hosts, names ------------------------------------------------------------

test("endpoints: Docker Hub's host and library/, plain HTTP for loopback hosts and the insecure list, HTTPS otherwise", () => {
  assert.deepEqual(registryEndpoint({ host: "docker.io", repository: "alpine" }), { origin: "https://registry-1.docker.io", repository: "library/alpine" });
  assert.deepEqual(registryEndpoint({ host: "docker.io", repository: "team/app" }), { origin: "https://registry-1.docker.io", repository: "team/app" });
  assert.deepEqual(registryEndpoint({ host: "index.docker.io", repository: "alpine" }).repository, "library/alpine");
  assert.deepEqual(registryEndpoint({ host: "ghcr.io", repository: "alpine" }), { origin: "https://ghcr.io", repository: "alpine" });
  assert.equal(registryEndpoint({ host: "localhost:5000", repository: "a" }).origin, "http://localhost:5000");
  assert.equal(registryEndpoint({ host: "127.9.8.7", repository: "a" }).origin, "http://127.9.8.7");
  assert.equal(registryEndpoint({ host: "[::1]:5000", repository: "a" }).origin, "http://[::1]:5000");
  assert.equal(registryEndpoint({ host: "128.0.0.1:5000", repository: "a" }).origin, "https://128.0.0.1:5000");
  assert.equal(registryEndpoint({ host: "reg.example:5000", repository: "a" }, ["reg.example:5000"]).origin, "http://reg.example:5000");
  assert.equal(registryEndpoint({ host: "reg.example:5000", repository: "a" }, ["reg.example"]).origin, "http://reg.example:5000");
  assert.equal(registryEndpoint({ host: "reg.example:5000", repository: "a" }, ["http://reg.example:5000/"]).origin, "http://reg.example:5000");
  assert.equal(registryEndpoint({ host: "reg.example:5000", repository: "a" }, ["reg.example:5001"]).origin, "https://reg.example:5000");
  assert.equal(isLoopbackHost("LOCALHOST"), true);
  assert.equal(isLoopbackHost("localhost.example"), false);
  assert.equal(isLoopbackHost("[0:0::1]"), true);
  assert.throws(() => registryEndpoint({ host: "a b", repository: "x" }), UsageError);
  assert.throws(() => registryEndpoint({ host: "127.0.0.1:5000", repository: "Team/App" }), /invalid repository "Team\/App" in 127.0.0.1:5000/);
  assert.throws(() => registryEndpoint({ host: "127.0.0.1:5000", repository: "" }), UsageError);
  assert.throws(() => registryEndpoint({ host: "127.0.0.1:5000", repository: "app:v1" }), UsageError);
});

test("parseImageName: as buildkitd reads names (docker.io, library/, latest; a digest wins over a tag)", () => {
  assert.deepEqual(parseImageName("alpine"), { ref: { host: "docker.io", repository: "library/alpine" }, tag: "latest", digest: undefined });
  assert.deepEqual(parseImageName("127.0.0.1:5000/team/app:v1"), { ref: { host: "127.0.0.1:5000", repository: "team/app" }, tag: "v1", digest: undefined });
  const d = `sha256:${"a".repeat(64)}`;
  assert.deepEqual(parseImageName(`localhost:5000/app:v1@${d}`), { ref: { host: "localhost:5000", repository: "app" }, tag: undefined, digest: d });
  assert.throws(() => parseImageName("team//app"), UsageError);
  assert.throws(() => parseImageName("app:-v1"), UsageError);
});

test("registry error bodies: errors[0].message, else its code; token servers' details and OAuth2 error_description", () => {
  const b = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  assert.equal(
    registryErrorMessage(b({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "x" } }, { message: "2nd" }] })),
    "manifest unknown",
  );
  assert.equal(registryErrorMessage(b({ errors: [{ code: "DENIED" }] })), "DENIED");
  assert.equal(registryErrorMessage(b({ details: "incorrect username or password" })), "incorrect username or password");
  assert.equal(registryErrorMessage(b({ error: "invalid_grant", error_description: "bad token" })), "bad token");
  assert.equal(registryErrorMessage(b({ errors: [{ message: "two\nlines" }] })), "two lines");
  assert.equal(registryErrorMessage(Buffer.from("<html>Bad Gateway</html>")), undefined);
  assert.equal(registryErrorMessage(b([1])), undefined);
});

// --- a fake registry ----------------------------------------------------------

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

type Handler = (req: Seen, res: ServerResponse, host: string) => void;

/** A node:http server on 127.0.0.1:0 that records each request and answers with `handler`; closed when the test ends. */
async function fakeRegistry(t: TestContext, handler: Handler): Promise<{ host: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  let host = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      handler(s, res, host);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanup(t, async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { host, seen };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(b.length), ...headers });
  res.end(b);
}

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }));
const USER = "pool-user";
const PASSWORD = "s3cret-Pa55word";
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

/**
 * A registry with distribution's token auth: manifests of team/app need a
 * token for a scope that covers the request; /token hands them out for
 * USER:PASSWORD (or anonymously for pull when `anonymousPull`).
 */
function tokenRegistry(opts: { anonymousPull?: boolean; stored?: Map<string, { type: string; bytes: Buffer }> } = {}): Handler {
  const stored = opts.stored ?? new Map([["v1", { type: OCI_MANIFEST, bytes: MANIFEST }]]);
  return (req, res, host) => {
    const url = new URL(req.url, `http://${host}`);
    if (url.pathname === "/token") {
      const scopes = url.searchParams.getAll("scope");
      const auth = req.headers.authorization;
      if (auth !== undefined && auth !== basic(USER, PASSWORD)) return json(res, 401, { details: "incorrect username or password" });
      if (auth === undefined && !(opts.anonymousPull && scopes.every((s) => s.endsWith(":pull")))) {
        return json(res, 401, { details: "anonymous access refused" });
      }
      return json(res, 200, { token: `tok:${scopes.join(" ")}`, expires_in: 300 });
    }
    const m = /^\/v2\/team\/app\/manifests\/(.+)$/.exec(url.pathname);
    if (!m) return json(res, 404, { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] });
    const need = `repository:team/app:${req.method === "GET" ? "pull" : "pull,push"}`;
    const token = /^Bearer tok:(.*)$/.exec(req.headers.authorization ?? "")?.[1]?.split(" ") ?? [];
    if (!token.some((s) => s === need || (req.method === "GET" && s === "repository:team/app:pull,push"))) {
      return json(
        res,
        401,
        { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
        {
          "WWW-Authenticate": `Bearer realm="http://${host}/token",service="fake-registry",scope="${need}"`,
        },
      );
    }
    if (req.method === "PUT") {
      stored.set(m[1]!, { type: String(req.headers["content-type"]), bytes: req.body });
      res.writeHead(201, { "Docker-Content-Digest": sha256(req.body), "Content-Length": "0" });
      return res.end();
    }
    const found = stored.get(m[1]!) ?? [...stored.values()].find((s) => sha256(s.bytes) === m[1]);
    if (!found) return json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: m[1] } }] });
    res.writeHead(200, { "Content-Type": found.type, "Docker-Content-Digest": sha256(found.bytes), "Content-Length": String(found.bytes.length) });
    res.end(found.bytes);
  };
}

const creds = (username: string, secret: string) => async () => ({ username, secret });

test("token flow: anonymous try, 401, token from the realm with Basic auth, service and scope, then 200; the token is kept per scope", async (t) => {
  const reg = await fakeRegistry(t, tokenRegistry());
  let lookups = 0;
  const client = new RegistryClient({
    credentials: async (h) => {
      lookups++;
      assert.equal(h, reg.host);
      return { username: USER, secret: PASSWORD };
    },
  });
  const ref = { host: reg.host, repository: "team/app" };
  const got = await client.getManifest(ref, "v1");
  assert.deepEqual(got, { mediaType: OCI_MANIFEST, digest: sha256(MANIFEST), size: MANIFEST.length, bytes: MANIFEST });
  const [first, tokenReq, second] = reg.seen;
  assert.equal(first!.headers.authorization, undefined, "anonymous first");
  assert.equal(
    first!.headers.accept,
    `${OCI_INDEX}, ${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json`,
  );
  const tu = new URL(tokenReq!.url, "http://x");
  assert.equal(tu.pathname, "/token");
  assert.equal(tu.searchParams.get("service"), "fake-registry");
  assert.deepEqual(tu.searchParams.getAll("scope"), ["repository:team/app:pull"]);
  assert.equal(tokenReq!.headers.authorization, basic(USER, PASSWORD));
  assert.equal(second!.headers.authorization, "Bearer tok:repository:team/app:pull");
  assert.equal(second!.headers["user-agent"], "bk-build");

  // By digest, with the kept token: one request.
  const n = reg.seen.length;
  assert.equal((await client.getManifest(ref, sha256(MANIFEST))).digest, sha256(MANIFEST));
  assert.equal(reg.seen.length, n + 1);

  // Push: the host's challenge is known, so the push token is fetched first (no anonymous 401).
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
  assert.equal(await client.putManifest(ref, "multi", index, OCI_INDEX), sha256(index));
  const [pushToken, put] = reg.seen.slice(n + 1);
  assert.deepEqual(new URL(pushToken!.url, "http://x").searchParams.getAll("scope"), ["repository:team/app:pull,push"]);
  assert.equal(put!.method, "PUT");
  assert.equal(put!.url, "/v2/team/app/manifests/multi");
  assert.equal(put!.headers["content-type"], OCI_INDEX);
  assert.deepEqual(put!.body, index);
  assert.equal(reg.seen.length, n + 3);
  assert.equal(lookups, 1, "credentials are asked once per host");
});

test("token flow without credentials: an anonymous token (no Authorization on the token request)", async (t) => {
  const reg = await fakeRegistry(t, tokenRegistry({ anonymousPull: true }));
  const client = new RegistryClient();
  assert.equal((await client.getManifest({ host: reg.host, repository: "team/app" }, "v1")).size, MANIFEST.length);
  assert.equal(reg.seen[1]!.headers.authorization, undefined);
  // A push needs credentials: refused by the token server, said in one line.
  await assert.rejects(client.putManifest({ host: reg.host, repository: "team/app" }, "v2", MANIFEST, OCI_MANIFEST), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(
      e.message,
      `registry ${reg.host}, repository team/app: PUT manifest v2: getting a token from http://${reg.host}/token: HTTP 401 Unauthorized: anonymous access refused (no credentials for ${reg.host})`,
    );
    return true;
  });
});

test("wrong credentials: one line naming registry, repository, status and the token server's message, without the secret", async (t) => {
  const reg = await fakeRegistry(t, tokenRegistry());
  const wrong = "wr0ng-Pa55word-xyz";
  const client = new RegistryClient({ credentials: creds(USER, wrong) });
  await assert.rejects(client.getManifest({ host: reg.host, repository: "team/app" }, "v1"), (e: unknown) => {
    assert.ok(e instanceof RegistryError && e instanceof BuildKitError);
    assert.equal(e.code, "UNAUTHENTICATED");
    assert.equal(e.status, 401);
    assert.equal(e.host, reg.host);
    assert.equal(e.repository, "team/app");
    assert.equal(
      e.message,
      `registry ${reg.host}, repository team/app: GET manifest v1: getting a token from http://${reg.host}/token: HTTP 401 Unauthorized: incorrect username or password (with the credentials for ${reg.host})`,
    );
    assert.equal(e.message.includes("\n"), false);
    assert.equal(e.message.includes(wrong), false);
    assert.equal(e.message.includes(Buffer.from(`${USER}:${wrong}`).toString("base64")), false);
    return true;
  });
});

test("the registry's JSON error form: errors[0].message in the error, the status as its code", async (t) => {
  const reg = await fakeRegistry(t, tokenRegistry());
  const client = new RegistryClient({ credentials: creds(USER, PASSWORD) });
  await assert.rejects(client.getManifest({ host: reg.host, repository: "team/app" }, "v9"), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, "NOT_FOUND");
    assert.equal(e.status, 404);
    assert.equal(e.message, `registry ${reg.host}, repository team/app: GET manifest v9: HTTP 404 Not Found: manifest unknown`);
    return true;
  });
  // The token that got the 404 is kept: the next request needs no other.
  await client.getManifest({ host: reg.host, repository: "team/app" }, "v1");
  assert.equal(reg.seen.filter((s) => s.url.startsWith("/token")).length, 1);
  // A body that is not the JSON form: the status alone.
  const html = await fakeRegistry(t, (_req, res) => {
    res.writeHead(502, { "Content-Type": "text/html" });
    res.end("<html><body>Bad Gateway</body></html>");
  });
  await assert.rejects(new RegistryClient().getManifest({ host: html.host, repository: "app" }, "v1"), {
    name: "RegistryError",
    code: "UNAVAILABLE",
    message: `registry ${html.host}, repository app: GET manifest v1: HTTP 502 Bad Gateway`,
  });
});

test("no secret in a message: a registry that echoes the Authorization header back has it cut out", async (t) => {
  const token = "tok-abcdefghijklmnop";
  const reg = await fakeRegistry(t, (req, res, host) => {
    if (req.url.startsWith("/token")) return json(res, 200, { access_token: token });
    if (!req.headers.authorization) {
      return json(res, 401, {}, { "WWW-Authenticate": `Bearer realm="http://${host}/token",service="s"` });
    }
    json(res, 403, { errors: [{ code: "DENIED", message: `denied for ${req.headers.authorization} (${PASSWORD})` }] });
  });
  const client = new RegistryClient({ credentials: creds(USER, PASSWORD) });
  await assert.rejects(client.getManifest({ host: reg.host, repository: "app" }, "v1"), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, "PERMISSION_DENIED");
    assert.equal(
      e.message,
      `registry ${reg.host}, repository app: GET manifest v1: HTTP 403 Forbidden: denied for Bearer <redacted> (<redacted>) (with the credentials for ${reg.host})`,
    );
    return true;
  });
});

test("a refused token is fetched again once: a registry that stops taking the kept token (expired) still serves", async (t) => {
  let issued = 0;
  const reg = await fakeRegistry(t, (req, res, host) => {
    if (req.url.startsWith("/token")) return json(res, 200, { token: `t${++issued}` });
    if (req.headers.authorization !== `Bearer t${issued}`) {
      return json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "token expired" }] }, { "WWW-Authenticate": `Bearer realm="http://${host}/token"` });
    }
    res.writeHead(200, { "Content-Type": OCI_MANIFEST });
    res.end(MANIFEST);
  });
  const client = new RegistryClient();
  const ref = { host: reg.host, repository: "app" };
  await client.getManifest(ref, "v1");
  issued++; // the server now wants t3; the client holds t1
  await client.getManifest(ref, "v1");
  assert.equal(issued, 3);
  assert.deepEqual(
    reg.seen.map((s) => `${s.url} ${s.headers.authorization ?? "-"}`),
    [
      "/v2/app/manifests/v1 -",
      "/token?scope=repository%3Aapp%3Apull -",
      "/v2/app/manifests/v1 Bearer t1",
      "/v2/app/manifests/v1 Bearer t1",
      "/token?scope=repository%3Aapp%3Apull -",
      "/v2/app/manifests/v1 Bearer t3",
    ],
  );
});

test("Basic challenge: the credentials as Basic auth; without any, the 401 says there are none", async (t) => {
  const reg = await fakeRegistry(t, (req, res) => {
    if (req.headers.authorization !== basic(USER, PASSWORD)) {
      return json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }, { "WWW-Authenticate": 'Basic realm="Registry Realm"' });
    }
    res.writeHead(200, { "Content-Type": OCI_MANIFEST });
    res.end(MANIFEST);
  });
  const ref = { host: reg.host, repository: "app" };
  const client = new RegistryClient({ credentials: creds(USER, PASSWORD) });
  assert.equal((await client.getManifest(ref, "v1")).digest, sha256(MANIFEST));
  assert.equal(reg.seen.length, 2);
  await client.getManifest(ref, "v1");
  assert.equal(reg.seen.length, 3, "the Basic header is kept for the scope");
  await assert.rejects(new RegistryClient({ credentials: async () => undefined }).getManifest(ref, "v1"), {
    code: "UNAUTHENTICATED",
    message: `registry ${reg.host}, repository app: GET manifest v1: HTTP 401 Unauthorized: authentication required (no credentials for ${reg.host})`,
  });
});

test("a 401 without a challenge we can follow says so", async (t) => {
  const reg = await fakeRegistry(t, (_req, res) =>
    json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "nope" }] }, { "WWW-Authenticate": "Negotiate abc==" }),
  );
  await assert.rejects(new RegistryClient({ credentials: creds(USER, PASSWORD) }).getManifest({ host: reg.host, repository: "app" }, "v1"), {
    code: "UNAUTHENTICATED",
    message: `registry ${reg.host}, repository app: GET manifest v1: HTTP 401 Unauthorized: nope (the registry named no way to log in: no Bearer or Basic challenge in WWW-Authenticate)`,
  });
});

test("identity token (username empty): POSTed to the realm as an OAuth2 refresh token; access_token is read", async (t) => {
  const identity = "identity-token-0123456789";
  const reg = await fakeRegistry(t, (req, res, host) => {
    if (req.url === "/oauth") {
      assert.equal(req.method, "POST");
      assert.equal(req.headers["content-type"], "application/x-www-form-urlencoded");
      const form = new URLSearchParams(req.body.toString());
      assert.deepEqual(Object.fromEntries(form), {
        grant_type: "refresh_token",
        refresh_token: identity,
        service: "svc",
        scope: "repository:team/app:pull,push repository:other:pull",
        client_id: "bk-build",
      });
      return json(res, 200, { access_token: "oauth-token" });
    }
    if (req.headers.authorization !== "Bearer oauth-token") {
      return json(res, 401, {}, { "WWW-Authenticate": `Bearer realm="http://${host}/oauth",service="svc",scope="repository:other:pull"` });
    }
    res.writeHead(201, { "Content-Length": "0" });
    res.end();
  });
  const client = new RegistryClient({ credentials: creds("", identity) });
  assert.equal(await client.putManifest({ host: reg.host, repository: "team/app" }, "v1", MANIFEST, OCI_MANIFEST), sha256(MANIFEST));
});

test("digests: bytes that are not the digest asked for, a Docker-Content-Digest that does not match, a PUT stored under another digest", async (t) => {
  const other = Buffer.from('{"schemaVersion":2,"other":true}');
  const reg = await fakeRegistry(t, (req, res) => {
    if (req.method === "PUT") {
      res.writeHead(201, { "Docker-Content-Digest": sha256(other) });
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Type": OCI_MANIFEST, ...(req.url.endsWith("/tagged") ? { "Docker-Content-Digest": sha256(other) } : {}) });
    res.end(MANIFEST);
  });
  const client = new RegistryClient();
  const ref = { host: reg.host, repository: "app" };
  await assert.rejects(client.getManifest(ref, sha256(other)), {
    code: "DATA_LOSS",
    message: `registry ${reg.host}, repository app: GET manifest ${sha256(other)}: the manifest's bytes have the digest ${sha256(MANIFEST)}, not ${sha256(other)}`,
  });
  await assert.rejects(client.getManifest(ref, "tagged"), {
    code: "DATA_LOSS",
    message: `registry ${reg.host}, repository app: GET manifest tagged: the manifest's bytes have the digest ${sha256(MANIFEST)}, not ${sha256(other)} (the registry's Docker-Content-Digest)`,
  });
  // By tag without a Docker-Content-Digest: the digest of the bytes.
  assert.equal((await client.getManifest(ref, "plain")).digest, sha256(MANIFEST));
  await assert.rejects(client.putManifest(ref, "v1", MANIFEST, OCI_MANIFEST), {
    code: "DATA_LOSS",
    message: `registry ${reg.host}, repository app: PUT manifest v1: the registry stored the manifest as ${sha256(other)}, not as ${sha256(MANIFEST)} (the digest of the bytes sent)`,
  });
  // Checked before anything is sent.
  const n = reg.seen.length;
  await assert.rejects(client.putManifest(ref, sha256(other), MANIFEST, OCI_MANIFEST), UsageError);
  await assert.rejects(client.putManifest(ref, "-bad", MANIFEST, OCI_MANIFEST), /invalid tag "-bad"/);
  await assert.rejects(client.getManifest(ref, "sha256:abc"), /invalid manifest reference "sha256:abc"/);
  assert.equal(reg.seen.length, n);
});

test("the media type: the document's own mediaType, else the Content-Type without parameters", async (t) => {
  const bare = Buffer.from('{"schemaVersion":2,"manifests":[]}');
  const reg = await fakeRegistry(t, (_req, res) => {
    res.writeHead(200, { "Content-Type": `${OCI_INDEX}; charset=utf-8` });
    res.end(bare);
  });
  assert.equal((await new RegistryClient().getManifest({ host: reg.host, repository: "app" }, "v1")).mediaType, OCI_INDEX);
});

test("timeouts and cancellation: a registry that never answers fails within timeoutMs; an aborted signal ends the request; no socket is left", async (t) => {
  const reg = await fakeRegistry(t, () => undefined);
  const ref = { host: reg.host, repository: "app" };
  const started = Date.now();
  await assert.rejects(new RegistryClient({ timeoutMs: 150 }).getManifest(ref, "v1"), {
    code: "DEADLINE_EXCEEDED",
    message: `registry ${reg.host}, repository app: GET manifest v1: no answer within 150 ms`,
  });
  assert.ok(Date.now() - started < 2000);
  const ac = new AbortController();
  const p = new RegistryClient().putManifest(ref, "v1", MANIFEST, OCI_MANIFEST, { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, { code: "CANCELLED", message: `registry ${reg.host}, repository app: PUT manifest v1: cancelled` });
  // Aborted before it starts: nothing is sent.
  const n = reg.seen.length;
  await assert.rejects(new RegistryClient().getManifest(ref, "v1", { signal: AbortSignal.abort() }), { code: "CANCELLED" });
  assert.equal(reg.seen.length, n);
});

test("an unreachable registry: UNAVAILABLE, naming it", async () => {
  // A port nothing listens on: bind one, note it, close it.
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  await assert.rejects(new RegistryClient().getManifest({ host: `127.0.0.1:${port}`, repository: "app" }, "v1"), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, "UNAVAILABLE");
    assert.equal(e.status, undefined);
    assert.match(e.message, new RegExp(`^registry 127\\.0\\.0\\.1:${port}, repository app: GET manifest v1: .*ECONNREFUSED`));
    return true;
  });
});

test("credentials are not sent to a token server over plain HTTP on a host that is not loopback or insecure", async (t) => {
  const reg = await fakeRegistry(t, (_req, res) => {
    json(res, 401, {}, { "WWW-Authenticate": 'Bearer realm="http://auth.example/token",service="s"' });
  });
  await assert.rejects(new RegistryClient({ credentials: creds(USER, PASSWORD) }).getManifest({ host: reg.host, repository: "app" }, "v1"), {
    code: "UNAUTHENTICATED",
    message: `registry ${reg.host}, repository app: GET manifest v1: getting a token from http://auth.example/token: refusing to send the credentials for ${reg.host} over plain HTTP (name auth.example in insecure to allow it)`,
  });
  assert.equal(reg.seen.length, 1);
});

test("redirects of a GET are followed; the Authorization header does not go to another host", async (t) => {
  const target = await fakeRegistry(t, (_req, res) => {
    res.writeHead(200, { "Content-Type": OCI_MANIFEST });
    res.end(MANIFEST);
  });
  const reg = await fakeRegistry(t, (req, res) => {
    if (req.headers.authorization !== basic(USER, PASSWORD)) return json(res, 401, {}, { "WWW-Authenticate": 'Basic realm="r"' });
    res.writeHead(307, { Location: `http://localhost:${target.host.split(":")[1]}/blob` });
    res.end();
  });
  const got = await new RegistryClient({ credentials: creds(USER, PASSWORD) }).getManifest({ host: reg.host, repository: "app" }, "v1");
  assert.deepEqual(got.bytes, MANIFEST);
  assert.equal(target.seen[0]!.url, "/blob");
  assert.equal(target.seen[0]!.headers.authorization, undefined);
});

test("an oversized manifest is refused, not read whole", async (t) => {
  const reg = await fakeRegistry(t, (_req, res) => {
    res.writeHead(200, { "Content-Type": OCI_MANIFEST });
    res.end(Buffer.alloc(5 << 20, 0x20));
  });
  await assert.rejects(new RegistryClient().getManifest({ host: reg.host, repository: "app" }, "v1"), {
    code: "RESOURCE_EXHAUSTED",
    message: `registry ${reg.host}, repository app: GET manifest v1: the answer is larger than ${4 << 20} bytes`,
  });
});
