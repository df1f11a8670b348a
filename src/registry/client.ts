/**
 * A small client for the registry HTTP API (the OCI distribution spec,
 * Docker's Registry API v2): manifests fetched by tag or digest and put
 * under a tag, with the registries' auth (anonymous first; on a 401 the
 * Bearer token flow or Basic, as WWW-Authenticate asks). It is what a
 * builder pool needs after each node has pushed its platform by digest:
 * read those manifests back, merge them (merge.ts), put the index under
 * every tag, as buildx's imagetools do for multi-node builders.
 *
 * Docker's conventions: docker.io is served by registry-1.docker.io, with
 * "library/" for one-element names; loopback registries (localhost,
 * 127.0.0.0/8, ::1) are spoken to in plain HTTP, as docker and containerd
 * treat them as insecure by default, every other host over HTTPS unless
 * named in `insecure`.
 *
 * Each request has a connection of its own, closed after the answer (no
 * idle sockets outlive a call, so there is nothing to close); tokens are
 * kept for the client's life, by host and scope, and fetched again when the
 * registry refuses one. No credential or token ever appears in an error.
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { RequestOptions } from "node:https";
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { BuildKitError, UsageError, abortedError } from "../errors.js";
import { parseDockerRef, referencePatterns, withName } from "../solve/reference.js";
import type { Credentials } from "../solve/registry-auth.js";
import { parseWwwAuthenticate, type AuthChallenge } from "./challenge.js";
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from "./media-types.js";
import { withDeferredCa } from "../transport/extra-ca.js";

/** A repository in a registry: `host` as in image references (docker.io, 127.0.0.1:5000), `repository` its path (team/app). */
export interface RegistryRef {
  host: string;
  repository: string;
}

/** A manifest or index as the registry serves it. */
export interface ManifestBytes {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** Credentials by registry host: credentialLookup() in solve/registry-auth.ts. A username "" means an identity token. */
export type CredentialLookup = (host: string) => Promise<Credentials | undefined>;

export interface RegistryClientOptions {
  /** Where credentials come from, asked once per host when a registry wants them. Default: none (anonymous). */
  credentials?: CredentialLookup | undefined;
  /**
   * Hosts to speak plain HTTP to besides the loopback ones (docker's
   * insecure registries): `host:port`, or a host name for all its ports.
   */
  insecure?: readonly string[] | undefined;
  /** How long one HTTP exchange (a redirect is another) may take, in ms. Default 30,000. */
  timeoutMs?: number | undefined;
  /** Default "bk-build". */
  userAgent?: string | undefined;
}

export interface RegistryCallOptions {
  signal?: AbortSignal | undefined;
}

/**
 * A registry (or its token server) refused a request, or could not be
 * reached. `status` is the HTTP status when one answered; `code` the gRPC
 * status name it maps to (NOT_FOUND, UNAUTHENTICATED, UNAVAILABLE, ...).
 */
export class RegistryError extends BuildKitError {
  readonly host: string;
  readonly repository: string;
  readonly status: number | undefined;
  constructor(message: string, at: { host: string; repository: string; status?: number | undefined }, options: { code: string; cause?: unknown }) {
    super(message, options);
    this.host = at.host;
    this.repository = at.repository;
    this.status = at.status;
  }
  override get name(): string {
    return "RegistryError";
  }
}

/** What the client asks for: every manifest kind a build pushes. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(", ");

/** The largest manifest read (distribution's own limit for a manifest PUT). */
export const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_TOKEN_BYTES = 1 << 20;
/** What is read of a refusal's body, for its message. */
const MAX_ERROR_BYTES = 64 << 10;
const MAX_REDIRECTS = 5;

/**
 * node:http and node:https, loaded on the first request: internal.ts is
 * loaded by every CLI start, and node:https (with tls) costs it some 10 ms.
 */
let httpModules: Promise<{ http: typeof import("node:http"); https: typeof import("node:https") }> | undefined;
function loadHttp(): Promise<{ http: typeof import("node:http"); https: typeof import("node:https") }> {
  httpModules ??= Promise.all([import("node:http"), import("node:https")]).then(([http, https]) => ({ http, https }));
  return httpModules;
}

const DOCKER_HUB = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
const DIGEST_BYTES: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** The host name of `host` (`host[:port]`, `[v6]:port`), lower case, IPv6 without brackets. */
function hostName(host: string): string {
  try {
    return new URL(`http://${host}`).hostname.replace(/^\[(.*)\]$/, "$1");
  } catch {
    return host.toLowerCase();
  }
}

/** localhost, 127.0.0.0/8 or ::1, with or without a port: registries docker speaks plain HTTP to by default. */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host);
  if (name === "localhost") return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  return name === "::1";
}

/** An image name as buildkitd reads it (ParseDockerRef: docker.io, library/, the tag "latest" when there is no tag or digest). */
export function parseImageName(name: string): { ref: RegistryRef; tag: string | undefined; digest: string | undefined } {
  const r = parseDockerRef(name);
  return { ref: { host: r.domain, repository: r.path }, tag: r.tag, digest: r.digest };
}

/**
 * Where a repository is served: the origin (scheme and host) and the
 * repository path, with Docker Hub's conventions. `insecure` as the
 * client option. Throws UsageError for a host or path that no image
 * reference can have.
 */
export function registryEndpoint(ref: RegistryRef, insecure: readonly string[] = []): { origin: string; repository: string } {
  if (!referencePatterns.domain.test(ref.host)) {
    throw new UsageError(`invalid registry host ${JSON.stringify(ref.host)}: use HOST[:PORT] as in image names (docker.io, 127.0.0.1:5000)`);
  }
  const hub = DOCKER_HUB.has(ref.host.toLowerCase());
  const repository = hub && !ref.repository.includes("/") ? `library/${ref.repository}` : ref.repository;
  let named;
  try {
    named = withName(`${ref.host}/${repository}`);
  } catch (e) {
    throw new UsageError(`invalid repository ${JSON.stringify(ref.repository)} in ${ref.host}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (named.domain !== ref.host || named.path !== repository) {
    throw new UsageError(`invalid repository ${JSON.stringify(ref.repository)} in ${ref.host}: give the path alone (team/app), without a host`);
  }
  const host = hub ? "registry-1.docker.io" : ref.host;
  return { origin: `${plainHttp(host, insecure) ? "http" : "https"}://${host}`, repository };
}

function plainHttp(host: string, insecure: readonly string[]): boolean {
  if (isLoopbackHost(host)) return true;
  const name = hostName(host);
  return insecure.some((h) => {
    const entry = h.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "");
    return entry.toLowerCase() === host.toLowerCase() || (!/:\d+$/.test(entry) && hostName(entry) === name);
  });
}

/** `algorithm:hex` of `bytes`; undefined for an algorithm we do not have. */
function digestOf(bytes: Buffer, algorithm: string): string | undefined {
  if (DIGEST_BYTES[algorithm] === undefined) return undefined;
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** A digest `algorithm:hex` we can verify (sha256, sha384, sha512 with the right length). */
function isKnownDigest(s: string): boolean {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(s);
  return m !== null && DIGEST_BYTES[m[1]!] !== undefined && m[2]!.length === DIGEST_BYTES[m[1]!]! * 2;
}

/** Text on one line: control characters (newlines included) become spaces; cut at `max` characters. */
function oneLine(s: string, max = 300): string {
  const t = s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max)}...` : t;
}

/**
 * The message in a refusal's body: the registry's JSON error form
 * (`{"errors":[{"code","message"}]}`), or a token server's (`details`,
 * OAuth2's `error_description`/`error`). Undefined for anything else.
 */
export function registryErrorMessage(body: Buffer): string | undefined {
  let j: unknown;
  try {
    j = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof j !== "object" || j === null) return undefined;
  const o = j as Record<string, unknown>;
  const first: unknown = Array.isArray(o["errors"]) ? o["errors"][0] : undefined;
  if (typeof first === "object" && first !== null) {
    const e = first as Record<string, unknown>;
    const text = typeof e["message"] === "string" && e["message"] ? e["message"] : e["code"];
    if (typeof text === "string" && text) return oneLine(text);
  }
  for (const k of ["details", "error_description", "error", "message"]) {
    const v = o[k];
    if (typeof v === "string" && v) return oneLine(v);
  }
  return undefined;
}

/** The gRPC status name for an HTTP refusal. */
function codeForStatus(status: number): string {
  if (status === 401) return "UNAUTHENTICATED";
  if (status === 403) return "PERMISSION_DENIED";
  if (status === 404) return "NOT_FOUND";
  if (status === 409) return "ALREADY_EXISTS";
  if (status === 429) return "RESOURCE_EXHAUSTED";
  if (status === 400 || status === 405 || status === 413 || status === 415 || status === 422) return "INVALID_ARGUMENT";
  if (status >= 500) return "UNAVAILABLE";
  return "UNKNOWN";
}

/** What a failed request was about: named in its error. */
interface Context {
  host: string;
  repository: string;
  /** "GET manifest v1", "PUT manifest v1". */
  what: string;
}

interface HttpSpec {
  method: "GET" | "PUT" | "POST";
  url: URL;
  headers: Record<string, string>;
  body?: Buffer | undefined;
  /** The most an OK answer may carry. */
  maxBytes: number;
  signal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  /** The status's standard reason phrase ("Not Found"), not the server's. */
  reason: string | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** How a request was authorized, for the hint in a 401/403. */
type AuthUsed = "none" | "anonymous token" | "credentials" | "no challenge";

export class RegistryClient {
  readonly #lookup: CredentialLookup | undefined;
  readonly #insecure: readonly string[];
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  /** Credentials by host, asked once. */
  readonly #credentials = new Map<string, Promise<Credentials | undefined>>();
  /** Authorization header values (and how they were had) by "host scope". */
  readonly #auth = new Map<string, { header: string; used: AuthUsed }>();
  /** The challenge each host last answered a 401 with, so other scopes skip the anonymous try. */
  readonly #challenges = new Map<string, AuthChallenge>();
  /** Every secret and token this client has held: cut out of any message. */
  readonly #secrets = new Set<string>();

  constructor(options: RegistryClientOptions = {}) {
    this.#lookup = options.credentials;
    this.#insecure = options.insecure ?? [];
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? "bk-build";
  }

  /**
   * The manifest or index `reference` (a tag or a digest) of `ref`. Fetched
   * by digest, the bytes must have that digest; fetched by tag, they must
   * have the digest the registry names (Docker-Content-Digest) when it
   * names one. The media type is the document's own `mediaType`, else the
   * answer's Content-Type.
   */
  async getManifest(ref: RegistryRef, reference: string, options: RegistryCallOptions = {}): Promise<ManifestBytes> {
    const { origin, repository } = registryEndpoint(ref, this.#insecure);
    const byDigest = reference.includes(":");
    if (byDigest ? !isKnownDigest(reference) : !referencePatterns.tag.test(reference)) {
      throw new UsageError(`invalid manifest reference ${JSON.stringify(reference)} for ${ref.host}/${repository}: give a tag or a sha256 digest`);
    }
    const ctx: Context = { host: ref.host, repository, what: `GET manifest ${reference}` };
    const { answer, used } = await this.#exchange(ctx, "pull", {
      method: "GET",
      url: new URL(`${origin}/v2/${repository}/manifests/${reference}`),
      headers: { Accept: MANIFEST_ACCEPT },
      maxBytes: MAX_MANIFEST_BYTES,
      signal: options.signal,
    });
    if (answer.status !== 200) throw this.#refused(ctx, answer, used);
    const bytes = answer.body;
    const said = header(answer.headers, "docker-content-digest");
    const expected = byDigest ? reference : said;
    let digest = digestOf(bytes, "sha256")!;
    if (expected !== undefined) {
      const actual = digestOf(bytes, expected.split(":")[0]!);
      if (actual === undefined) {
        throw this.#fail(ctx, `the registry names the manifest ${expected}, an algorithm bk-build cannot verify`, "DATA_LOSS");
      }
      if (actual !== expected) {
        throw this.#fail(
          ctx,
          `the manifest's bytes have the digest ${actual}, not ${expected}${byDigest ? "" : " (the registry's Docker-Content-Digest)"}`,
          "DATA_LOSS",
        );
      }
      if (byDigest && said !== undefined && said !== reference) {
        throw this.#fail(ctx, `the registry names the manifest ${said}, not the ${reference} asked for`, "DATA_LOSS");
      }
      digest = expected;
    }
    return { mediaType: manifestMediaType(bytes, answer.headers), digest, size: bytes.length, bytes };
  }

  /**
   * Puts `bytes` (a manifest or index of `mediaType`) under `tag` (or under
   * its digest, given as `tag`). Resolves the sha256 digest of the bytes;
   * a registry that names another (Docker-Content-Digest) fails it.
   */
  async putManifest(ref: RegistryRef, tag: string, bytes: Buffer, mediaType: string, options: RegistryCallOptions = {}): Promise<string> {
    const { origin, repository } = registryEndpoint(ref, this.#insecure);
    const digest = digestOf(bytes, "sha256")!;
    if (tag.includes(":") ? tag !== digest : !referencePatterns.tag.test(tag)) {
      throw new UsageError(
        tag.includes(":")
          ? `cannot put a manifest under ${JSON.stringify(tag)} in ${ref.host}/${repository}: its digest is ${digest}`
          : `invalid tag ${JSON.stringify(tag)} for ${ref.host}/${repository}: use 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
      );
    }
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(mediaType)) throw new UsageError(`invalid media type ${JSON.stringify(mediaType)} for the manifest put under ${tag}`);
    const ctx: Context = { host: ref.host, repository, what: `PUT manifest ${tag}` };
    const { answer, used } = await this.#exchange(ctx, "push", {
      method: "PUT",
      url: new URL(`${origin}/v2/${repository}/manifests/${tag}`),
      headers: { "Content-Type": mediaType },
      body: bytes,
      maxBytes: MAX_ERROR_BYTES,
      signal: options.signal,
    });
    if (answer.status < 200 || answer.status >= 300) throw this.#refused(ctx, answer, used);
    const said = header(answer.headers, "docker-content-digest");
    if (said !== undefined && said !== digest) {
      throw this.#fail(ctx, `the registry stored the manifest as ${said}, not as ${digest} (the digest of the bytes sent)`, "DATA_LOSS");
    }
    return digest;
  }

  /**
   * One request with auth: what is known for the host and scope first (or
   * nothing); on a 401, the challenge's flow, then the request once more.
   */
  async #exchange(ctx: Context, access: "pull" | "push", spec: HttpSpec): Promise<{ answer: Answer; used: AuthUsed }> {
    const scope = `repository:${ctx.repository}:${access === "push" ? "pull,push" : "pull"}`;
    const key = `${ctx.host} ${scope}`;
    let auth = this.#auth.get(key);
    const known = this.#challenges.get(ctx.host);
    // A challenge seen before (another scope): straight to its flow, without its scope parameter, which was for that request.
    if (!auth && known) auth = await this.#authorize(ctx, scope, { ...known, params: { ...known.params, scope: "" } }, spec.signal);
    const send = (a: typeof auth): Promise<Answer> => this.#send(ctx, { ...spec, headers: a ? { ...spec.headers, Authorization: a.header } : spec.headers });
    let answer = await send(auth);
    if (answer.status === 401) {
      this.#auth.delete(key);
      const challenges = parseWwwAuthenticate(header(answer.headers, "www-authenticate") ?? "");
      const challenge = challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
      if (!challenge) return { answer, used: "no challenge" };
      this.#challenges.set(ctx.host, challenge);
      auth = await this.#authorize(ctx, scope, challenge, spec.signal);
      if (!auth) return { answer, used: "none" };
      answer = await send(auth);
    }
    // Kept unless refused: a 404 with a good token is still a good token.
    if (auth && answer.status !== 401 && answer.status !== 403) this.#auth.set(key, auth);
    return { answer, used: auth?.used ?? "none" };
  }

  /** The Authorization for `scope` under `challenge`: a token (Bearer) or the credentials (Basic); undefined for Basic without any. */
  async #authorize(
    ctx: Context,
    scope: string,
    challenge: AuthChallenge,
    signal: AbortSignal | undefined,
  ): Promise<{ header: string; used: AuthUsed } | undefined> {
    const creds = await this.#credentialsFor(ctx);
    if (challenge.scheme === "basic") {
      if (!creds) return undefined;
      const value = Buffer.from(`${creds.username}:${creds.secret}`).toString("base64");
      this.#secrets.add(value);
      return { header: `Basic ${value}`, used: "credentials" };
    }
    const token = await this.#fetchToken(ctx, scope, challenge, creds, signal);
    return { header: `Bearer ${token}`, used: creds ? "credentials" : "anonymous token" };
  }

  async #credentialsFor(ctx: Context): Promise<Credentials | undefined> {
    if (!this.#lookup) return undefined;
    let p = this.#credentials.get(ctx.host);
    if (!p) {
      p = this.#lookup(ctx.host);
      this.#credentials.set(ctx.host, p);
    }
    let creds: Credentials | undefined;
    try {
      creds = await p;
    } catch (e) {
      // The lookup's own messages name the host and helper, never a secret.
      throw this.#fail(ctx, `reading the credentials for ${ctx.host}: ${e instanceof Error ? e.message : String(e)}`, "FAILED_PRECONDITION", e);
    }
    if (creds) {
      if (creds.secret) this.#secrets.add(creds.secret);
      if (!creds.username && !creds.secret) return undefined;
    }
    return creds;
  }

  /**
   * The Bearer token flow (distribution's token spec): GET the realm with
   * service and scope, with Basic auth when we have a password; with an
   * identity token, POST it as an OAuth2 refresh token (as docker and
   * containerd). The answer's `token`, else `access_token`.
   */
  async #fetchToken(ctx: Context, scope: string, challenge: AuthChallenge, creds: Credentials | undefined, signal: AbortSignal | undefined): Promise<string> {
    const realm = challenge.params["realm"];
    let url: URL;
    try {
      url = new URL(realm ?? "");
      if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("not http(s)");
    } catch {
      throw this.#fail(ctx, `the registry asks for a Bearer token without a usable realm (${JSON.stringify(oneLine(realm ?? ""))})`, "UNAUTHENTICATED");
    }
    const where = `${url.origin}${url.pathname}`;
    const tokenCtx: Context = { ...ctx, what: `${ctx.what}: getting a token from ${where}` };
    if (creds && url.protocol === "http:" && !plainHttp(url.host, this.#insecure)) {
      throw this.#fail(
        tokenCtx,
        `refusing to send the credentials for ${ctx.host} over plain HTTP (name ${url.host} in insecure to allow it)`,
        "UNAUTHENTICATED",
      );
    }
    const scopes = [scope];
    for (const s of (challenge.params["scope"] ?? "").split(" ")) if (s && !scopes.includes(s)) scopes.push(s);
    const service = challenge.params["service"];
    let spec: HttpSpec;
    if (creds && creds.username === "") {
      const form = new URLSearchParams();
      form.set("grant_type", "refresh_token");
      form.set("refresh_token", creds.secret);
      if (service !== undefined) form.set("service", service);
      form.set("scope", scopes.join(" "));
      form.set("client_id", "bk-build");
      spec = {
        method: "POST",
        url,
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: Buffer.from(form.toString()),
        maxBytes: MAX_TOKEN_BYTES,
        signal,
      };
    } else {
      if (service !== undefined) url.searchParams.set("service", service);
      for (const s of scopes) url.searchParams.append("scope", s);
      const headers: Record<string, string> = { Accept: "application/json" };
      if (creds) {
        const basic = Buffer.from(`${creds.username}:${creds.secret}`).toString("base64");
        this.#secrets.add(basic);
        headers["Authorization"] = `Basic ${basic}`;
      }
      spec = { method: "GET", url, headers, maxBytes: MAX_TOKEN_BYTES, signal };
    }
    const answer = await this.#send(tokenCtx, spec);
    if (answer.status < 200 || answer.status >= 300) throw this.#refused(tokenCtx, answer, creds ? "credentials" : "none");
    let token: unknown;
    try {
      const j = JSON.parse(answer.body.toString("utf8")) as Record<string, unknown>;
      token = j["token"] || j["access_token"];
    } catch {
      throw this.#fail(tokenCtx, "the token server's answer is not JSON", "UNAUTHENTICATED");
    }
    if (typeof token !== "string" || !token) throw this.#fail(tokenCtx, "the token server's answer has no token", "UNAUTHENTICATED");
    this.#secrets.add(token);
    return token;
  }

  /** One HTTP exchange on a connection of its own; redirects of GETs are followed (without our Authorization to another host). */
  async #send(ctx: Context, spec: HttpSpec, redirects = MAX_REDIRECTS): Promise<Answer> {
    const { http, https } = await loadHttp();
    return new Promise<Answer>((resolve, reject) => {
      if (spec.signal?.aborted) {
        reject(abortedError(spec.signal, this.#message(ctx, "cancelled")));
        return;
      }
      const headers: Record<string, string> = { "User-Agent": this.#userAgent, ...spec.headers };
      if (spec.body) headers["Content-Length"] = String(spec.body.length);
      let req: ClientRequest;
      try {
        const options: RequestOptions = { method: spec.method, headers, agent: false };
        req = spec.url.protocol === "http:" ? http.request(spec.url, options) : https.request(spec.url, withDeferredCa(options));
      } catch (e) {
        reject(this.#fail(ctx, `invalid request: ${e instanceof Error ? e.message : String(e)}`, "INVALID_ARGUMENT", e));
        return;
      }
      let settled = false;
      const settle = (f: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        spec.signal?.removeEventListener("abort", onAbort);
        f();
      };
      const fail = (e: BuildKitError): void => {
        settle(() => reject(e));
        req.destroy();
      };
      const timer = setTimeout(() => fail(this.#fail(ctx, `no answer within ${this.#timeoutMs} ms`, "DEADLINE_EXCEEDED")), this.#timeoutMs);
      const onAbort = (): void => fail(abortedError(spec.signal!, this.#message(ctx, "cancelled")));
      spec.signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e: NodeJS.ErrnoException) => fail(this.#fail(ctx, e.message || String(e.code), "UNAVAILABLE", e)));
      req.on("response", (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const location = header(res.headers, "location");
        if (status >= 300 && status < 400 && location !== undefined && spec.method === "GET") {
          res.resume();
          settle(() => resolve(this.#redirect(ctx, spec, location, redirects)));
          req.destroy();
          return;
        }
        const ok = status >= 200 && status < 300;
        const limit = ok ? spec.maxBytes : MAX_ERROR_BYTES;
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (): void => settle(() => resolve({ status, reason: http.STATUS_CODES[status], headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("data", (c: Buffer) => {
          if (settled) return;
          if (size + c.length > limit) {
            if (ok) {
              fail(this.#fail(ctx, `the answer is larger than ${limit} bytes`, "RESOURCE_EXHAUSTED"));
              return;
            }
            chunks.push(c.subarray(0, limit - size)); // enough of a refusal for its message
            done();
            req.destroy();
            return;
          }
          size += c.length;
          chunks.push(c);
        });
        res.on("end", done);
        res.on("error", (e) => fail(this.#fail(ctx, `reading the answer: ${e.message}`, "UNAVAILABLE", e)));
        res.on("close", () => {
          if (!res.complete) fail(this.#fail(ctx, "the connection closed before the answer was complete", "UNAVAILABLE"));
        });
      });
      req.end(spec.body);
    });
  }

  #redirect(ctx: Context, spec: HttpSpec, location: string, redirects: number): Promise<Answer> {
    if (redirects <= 0) return Promise.reject(this.#fail(ctx, `more than ${MAX_REDIRECTS} redirects`, "UNAVAILABLE"));
    let next: URL;
    try {
      next = new URL(location, spec.url);
    } catch {
      return Promise.reject(this.#fail(ctx, `redirected to an invalid URL`, "UNAVAILABLE"));
    }
    if (next.protocol !== "https:" && !(next.protocol === "http:" && (spec.url.protocol === "http:" || plainHttp(next.host, this.#insecure)))) {
      return Promise.reject(this.#fail(ctx, `redirected from HTTPS to ${next.protocol}//${next.host}, which is not allowed`, "UNAVAILABLE"));
    }
    const headers = { ...spec.headers };
    if (next.host !== spec.url.host) delete headers["Authorization"];
    return this.#send(ctx, { ...spec, url: next, headers }, redirects - 1);
  }

  /** A refusal as an error: status, the registry's message, and for 401/403 how we asked. */
  #refused(ctx: Context, answer: Answer, used: AuthUsed): RegistryError {
    const said = registryErrorMessage(answer.body);
    let hint = "";
    if (answer.status === 401 || answer.status === 403) {
      const hints: Record<AuthUsed, string> = {
        credentials: ` (with the credentials for ${ctx.host})`,
        "anonymous token": ` (anonymously: there are no credentials for ${ctx.host})`,
        none: ` (no credentials for ${ctx.host})`,
        "no challenge": " (the registry named no way to log in: no Bearer or Basic challenge in WWW-Authenticate)",
      };
      hint = hints[used];
    }
    const status = `HTTP ${answer.status}${answer.reason ? ` ${answer.reason}` : ""}`;
    return new RegistryError(
      this.#message(ctx, `${status}${said ? `: ${said}` : ""}${hint}`),
      { host: ctx.host, repository: ctx.repository, status: answer.status },
      { code: codeForStatus(answer.status) },
    );
  }

  #fail(ctx: Context, detail: string, code: string, cause?: unknown): RegistryError {
    return new RegistryError(this.#message(ctx, detail), ctx, cause === undefined ? { code } : { code, cause });
  }

  /** One line naming the registry, the repository and the request; no secret this client has held survives in it. */
  #message(ctx: Context, detail: string): string {
    let text = oneLine(`registry ${ctx.host}, repository ${ctx.repository}: ${ctx.what}: ${detail}`, 2000);
    for (const s of this.#secrets) if (s.length >= 4) text = text.split(s).join("<redacted>");
    return text;
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v.join(", ") : v;
  return s === undefined || s === "" ? undefined : s;
}

/** The document's own `mediaType`, else the Content-Type (without parameters), else "". */
function manifestMediaType(bytes: Buffer, headers: IncomingHttpHeaders): string {
  try {
    const j: unknown = JSON.parse(bytes.toString("utf8"));
    const t = typeof j === "object" && j !== null ? (j as Record<string, unknown>)["mediaType"] : undefined;
    if (typeof t === "string" && t) return t;
  } catch {
    // not JSON: the header says what it is
  }
  return (header(headers, "content-type") ?? "").split(";")[0]!.trim();
}
