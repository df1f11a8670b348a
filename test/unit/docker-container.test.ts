/**
 * docker-container:// and podman-container://: the address forms (against
 * buildctl's helpers, which take the URL's host as the container), the
 * Engine each one reaches (docker contexts, podman's sockets), and the
 * dial through a fake Engine API on a unix socket: `buildctl dial-stdio`
 * exec'd and its stdio relayed to a fake buildkitd (node:http2), and each
 * failure as one line naming the container.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { BuildKitClient, ConnectionError, UsageError } from "../../src/index.js";
import { parseAddress } from "../../src/transport/address.js";
import { containerEngine, dialStdioFailure, type ContainerAddress } from "../../src/docker/container.js";
import { contextDirName } from "../../src/docker/host.js";
import { stdcopyFrame } from "../../src/docker/stdcopy.js";
import { codec } from "../../src/grpc/codec.js";
import { frame } from "../../src/grpc/frame.js";
import { tempDir } from "../helpers/files.js";
import { leakCheckEachTest } from "../helpers/leaks.js";

leakCheckEachTest();

function container(address: string): ContainerAddress {
  const a = parseAddress(address);
  if (a.kind !== "container") throw new Error(`${address} parsed as ${a.kind}`);
  return a;
}

test("docker-container:// and podman-container:// parse to the container (and docker context) buildctl would use", () => {
  assert.deepEqual(parseAddress("docker-container://buildkitd"), {
    kind: "container",
    runtime: "docker",
    container: "buildkitd",
    context: undefined,
    address: "docker-container://buildkitd",
  });
  assert.deepEqual(parseAddress("docker-container://bk_1.a-b?context=ci-host"), {
    kind: "container",
    runtime: "docker",
    container: "bk_1.a-b",
    context: "ci-host",
    address: "docker-container://bk_1.a-b?context=ci-host",
  });
  // As buildctl: an empty context is no context; the scheme is case-insensitive; a trailing slash is no path.
  assert.equal(container("docker-container://bk?context=").context, undefined);
  assert.equal(container("DOCKER-CONTAINER://Bk/").address, "docker-container://Bk");
  assert.equal(container("docker-container://0123abcd").container, "0123abcd");
  assert.deepEqual(parseAddress("podman-container://buildkitd"), {
    kind: "container",
    runtime: "podman",
    container: "buildkitd",
    context: undefined,
    address: "podman-container://buildkitd",
  });
});

test("container addresses refuse what buildctl would silently ignore, with a line that says what is wrong", () => {
  const cases: Array<[string, RegExp]> = [
    ["docker-container://", /no container name \(expected docker-container:\/\/NAME\[\?context=CONTEXT\]\)/],
    ["docker-container://?context=x", /no container name/],
    ["podman-container://", /no container name \(expected podman-container:\/\/NAME\)/],
    ["docker-container://me@bk", /a user part has no meaning here/],
    ["docker-container://bk:1234", /a port has no meaning here/],
    ["docker-container://bk/run/buildkit/buildkitd.sock", /a path has no meaning here/],
    ["docker-container://bk?ctx=a", /unknown parameter "ctx"/],
    ["docker-container://bk?context=a&context=b", /context is given more than once/],
    ["podman-container://bk?context=a", /unknown parameter "context"/],
    ["docker-container://bk#x", /a fragment/],
    ["docker-container://-bk", /"-bk" is not a container name or ID/],
    ["docker-container://b%20k", /is not a container name or ID/],
  ];
  for (const [input, re] of cases) {
    assert.throws(
      () => parseAddress(input),
      (e: unknown) => e instanceof UsageError && e.message.startsWith(`invalid buildkitd address "${input}": `) && re.test(e.message),
      input,
    );
  }
});

test("the Engine of a docker-container:// address: the docker CLI's without ?context=, the named docker context with it", () => {
  const config = tempDir("bk-dc-config-");
  const meta = join(config, "contexts", "meta", contextDirName("remote"));
  mkdirSync(meta, { recursive: true });
  writeFileSync(join(meta, "meta.json"), JSON.stringify({ Name: "remote", Endpoints: { docker: { Host: "unix:///ctx/docker.sock" } } }));
  const env = { DOCKER_CONFIG: config, DOCKER_HOST: "unix:///env/docker.sock" };
  assert.equal(containerEngine(container("docker-container://bk"), env, 0).address, "docker+unix:///env/docker.sock");
  // --context wins over DOCKER_HOST, as `docker --context=remote exec`.
  const ctx = containerEngine(container("docker-container://bk?context=remote"), env, 0);
  assert.equal(ctx.address, "docker+unix:///ctx/docker.sock");
  assert.equal(ctx.source, 'context "remote"');
  assert.equal(containerEngine(container("docker-container://bk"), { DOCKER_CONFIG: config }, 0).address, "docker+unix:///var/run/docker.sock");
  assert.throws(
    () => containerEngine(container("docker-container://bk?context=missing"), env, 0),
    (e: unknown) => e instanceof UsageError && /docker context "missing" not found/.test(e.message),
  );
  assert.throws(
    () => containerEngine(container("docker-container://bk?context=a%2Fb"), env, 0),
    (e: unknown) => e instanceof UsageError && /invalid docker context name "a\/b"/.test(e.message),
  );
});

test("the podman service of a podman-container:// address: CONTAINER_HOST, else the rootful or the user's rootless socket", () => {
  const bk = container("podman-container://bk");
  assert.equal(containerEngine(bk, {}, 0).address, "unix:///run/podman/podman.sock");
  assert.equal(containerEngine(bk, { XDG_RUNTIME_DIR: "/run/user/0" }, 0).address, "unix:///run/podman/podman.sock");
  assert.equal(containerEngine(bk, { XDG_RUNTIME_DIR: "/run/user/1000" }, 1000).address, "unix:///run/user/1000/podman/podman.sock");
  assert.equal(containerEngine(bk, {}, 1000).address, "unix:///run/user/1000/podman/podman.sock");
  assert.equal(containerEngine(bk, { CONTAINER_HOST: "unix:///tmp/p.sock" }, 1000).address, "unix:///tmp/p.sock");
  assert.equal(containerEngine(bk, { CONTAINER_HOST: "unix:///tmp/p.sock" }, 1000).source, "CONTAINER_HOST");
  assert.equal(containerEngine(bk, { CONTAINER_HOST: "tcp://10.0.0.5:8888" }, 1000).address, "tcp://10.0.0.5:8888");
  const ssh = containerEngine(bk, { CONTAINER_HOST: "ssh://core@h:2222/run/user/1000/podman/podman.sock" }, 1000);
  assert.deepEqual(ssh.endpoint, { kind: "ssh", user: "core", host: "h", port: 2222, socketPath: "/run/user/1000/podman/podman.sock" });
  // The docker CLI's variables are not podman's.
  assert.equal(containerEngine(bk, { DOCKER_HOST: "unix:///env/docker.sock" }, 0).address, "unix:///run/podman/podman.sock");
  for (const [value, re] of [
    ["ssh://core@h", /name the podman socket on the remote host/],
    ["/tmp/p.sock", /expected unix:\/\/\/path\/to\/podman.sock/],
    ["npipe:////./pipe/podman", /expected unix:\/\/\/path\/to\/podman.sock/],
  ] as const) {
    assert.throws(
      () => containerEngine(bk, { CONTAINER_HOST: value }, 1000),
      (e: unknown) => e instanceof UsageError && e.message.startsWith(`invalid CONTAINER_HOST "${value}"`) && re.test(e.message),
      value,
    );
  }
});

test("dialStdioFailure: no buildctl by exit code or the runtime's words; otherwise dial-stdio's last line", () => {
  const bk = container("docker-container://bk");
  const oci = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "buildctl": executable file not found in $PATH: unknown\r\n';
  for (const e of [dialStdioFailure(bk, oci, "", undefined), dialStdioFailure(bk, "", "sh: buildctl: not found\n", 127)]) {
    assert.ok(e instanceof ConnectionError);
    assert.equal(e.code, "FAILED_PRECONDITION");
    assert.match(e.message, /^container bk has no buildctl to run \(.+\); docker-container:\/\/ runs "buildctl dial-stdio" in it/);
    assert.equal(e.address, "docker-container://bk");
  }
  const down = dialStdioFailure(bk, "", "time=x level=debug\nerror: dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory\n", 1);
  assert.equal(
    down.message,
    "buildctl dial-stdio in container bk ended before buildkitd answered (exit code 1): error: dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory; is buildkitd running in the container?",
  );
  assert.match(dialStdioFailure(bk, "", "", undefined).message, /ended before buildkitd answered: it wrote nothing$/);
});

/* ------------------------------------------------------------------ */
/* A fake Engine API and a fake buildkitd                              */
/* ------------------------------------------------------------------ */

type Exec = "relay" | "no-buildctl" | "no-buildkitd" | "garbage";

interface FakeEngine {
  socket: string;
  execs: unknown[];
  close: () => Promise<void>;
}

const infoCodec = codec("moby.buildkit.v1.InfoResponse");

/** A fake buildkitd on a unix socket: answers Control.Info. */
async function fakeBuildkitd(dir: string): Promise<{ socket: string; close: () => Promise<void> }> {
  const server = http2.createServer();
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", (s) => s.on("error", () => undefined));
  server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    if (headers[":path"] !== "/moby.buildkit.v1.Control/Info") {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
      return;
    }
    const body = infoCodec.encode({ buildkitVersion: { package: "github.com/moby/buildkit", version: "v0.24.0-fake", revision: "r" } });
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame([body], body.length));
  });
  const socket = join(dir, "buildkitd.sock");
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * The Engine API as far as exec goes: ping, inspect (`state` per
 * container), exec create, and exec start hijacked, where `exec` decides
 * what the process does.
 */
async function fakeEngine(
  dir: string,
  o: { containers: Record<string, { running: boolean; status?: string }>; exec: Exec; buildkitd?: string },
): Promise<FakeEngine> {
  const execs: unknown[] = [];
  let exitCode = 0;
  const sockets = new Set<Duplex>();
  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { "Content-Type": "application/json", "Api-Version": "1.41" });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = req.url ?? "";
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      if (url === "/_ping") return json(res, 200, "OK");
      const inspect = /^\/v1\.41\/containers\/([^/]+)\/json$/.exec(url);
      const create = /^\/v1\.41\/containers\/([^/]+)\/exec$/.exec(url);
      const name = decodeURIComponent((inspect ?? create)?.[1] ?? "");
      const c = o.containers[name];
      if ((inspect || create) && !c) return json(res, 404, { message: `No such container: ${name}` });
      if (inspect) return json(res, 200, { Id: "c1", State: { Running: c!.running, Status: c!.status ?? (c!.running ? "running" : "exited") } });
      if (create) {
        execs.push(JSON.parse(body));
        return json(res, 201, { Id: "e1" });
      }
      if (url === "/v1.41/exec/e1/json") return json(res, 200, { Running: false, ExitCode: exitCode });
      json(res, 404, { message: `page not found: ${url}` });
    });
  });
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    // The start request's JSON body comes first; the exec's stdin after it.
    let skip = Number(req.headers["content-length"] ?? 0);
    socket.write("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
    if (o.exec === "no-buildctl") {
      exitCode = 126;
      socket.end(stdcopyFrame(1, 'OCI runtime exec failed: exec failed: exec: "buildctl": executable file not found in $PATH: unknown\r\n'));
      return;
    }
    if (o.exec === "no-buildkitd") {
      exitCode = 1;
      socket.end(stdcopyFrame(2, "error: dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory\n"));
      return;
    }
    if (o.exec === "garbage") {
      socket.write(stdcopyFrame(1, "hello, this is not HTTP/2\n"));
      return;
    }
    const upstream = net.connect(o.buildkitd!);
    sockets.add(upstream);
    upstream.on("error", () => socket.destroy());
    upstream.on("data", (d: Buffer) => socket.write(stdcopyFrame(1, d)));
    upstream.on("close", () => socket.destroy());
    const stdin = (d: Buffer): void => {
      const rest = d.subarray(Math.min(skip, d.length));
      skip -= d.length - rest.length;
      if (rest.length) upstream.write(rest);
    };
    stdin(head);
    socket.on("data", stdin);
    socket.on("close", () => upstream.destroy());
  });
  const socket = join(dir, "docker.sock");
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket,
    execs,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function connectError(address: string, env: Record<string, string>): Promise<ConnectionError> {
  try {
    const c = await BuildKitClient.connect({ address, env, timeoutMs: 5000 });
    await c.close();
  } catch (e) {
    assert.ok(e instanceof ConnectionError, `a ConnectionError, not ${String(e)}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    return e;
  }
  throw new Error(`connecting to ${address} succeeded`);
}

test("through a fake Engine: buildctl dial-stdio is exec'd with stdin attached and its stdio carries the gRPC connection", async (t) => {
  const dir = tempDir("bk-dc-", t);
  const bk = await fakeBuildkitd(dir);
  const engine = await fakeEngine(dir, { containers: { bk: { running: true } }, exec: "relay", buildkitd: bk.socket });
  try {
    const client = await BuildKitClient.connect({ address: "docker-container://bk", env: { DOCKER_HOST: `unix://${engine.socket}` } });
    try {
      const info = await client.info();
      assert.equal(info.address, "docker-container://bk");
      assert.equal(info.buildkit.version, "v0.24.0-fake");
      assert.equal(info.engine, undefined, "buildkitd in a container is not the Engine's BuildKit");
    } finally {
      await client.close();
    }
    assert.ok(engine.execs.length >= 1);
    assert.deepEqual(engine.execs[0], { AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: ["buildctl", "dial-stdio"] });
  } finally {
    await engine.close();
    await bk.close();
  }
});

test("through a fake Engine: unknown, stopped, without buildctl, without buildkitd, not HTTP/2: one line naming the container", async (t) => {
  const dir = tempDir("bk-dc-", t);
  const cases: Array<[Exec, string, RegExp]> = [
    [
      "relay",
      "docker-container://nope",
      /^the Docker Engine at docker\+unix:\/\/.*docker.sock has no container nope \(No such container: nope\); check the name \(docker ps\)$/,
    ],
    ["relay", "docker-container://stopped", /^container stopped on the Docker Engine at .* is not running \(exited\); start it \(docker start stopped\)$/],
    [
      "no-buildctl",
      "docker-container://bare",
      /^container bare has no buildctl to run \(OCI runtime exec failed: .*executable file not found in \$PATH: unknown\)/,
    ],
    [
      "no-buildkitd",
      "docker-container://idle",
      /^buildctl dial-stdio in container idle ended before buildkitd answered \(exit code 1\): error: dial unix .*; is buildkitd running/,
    ],
    [
      "garbage",
      "docker-container://chatty",
      /^buildctl dial-stdio in container chatty ended before buildkitd answered \(exit code 0\): hello, this is not HTTP\/2$/,
    ],
  ];
  for (const [exec, address, re] of cases) {
    const sub = join(dir, exec + String(cases.findIndex((c) => c[1] === address)));
    mkdirSync(sub);
    const engine = await fakeEngine(sub, {
      containers: { stopped: { running: false }, bare: { running: true }, idle: { running: true }, chatty: { running: true } },
      exec,
    });
    try {
      const e = await connectError(address, { DOCKER_HOST: `unix://${engine.socket}` });
      assert.match(e.message, re, address);
      assert.equal(e.address, address);
    } finally {
      await engine.close();
    }
  }
});

test("an Engine that is not there: the container, the Engine's address and the usual hint in one line", async (t) => {
  const dir = tempDir("bk-dc-", t);
  const e = await connectError("docker-container://bk", { DOCKER_HOST: `unix://${join(dir, "none.sock")}` });
  assert.match(
    e.message,
    /^cannot run buildctl dial-stdio in container bk: cannot connect to the Docker Engine at docker\+unix:\/\/.*none\.sock: no such socket; is dockerd running\?$/,
  );
  const p = await connectError("podman-container://bk", { CONTAINER_HOST: `unix://${join(dir, "none.sock")}` });
  assert.match(
    p.message,
    /^cannot run buildctl dial-stdio in container bk: cannot connect to the podman service at unix:\/\/.*none\.sock: no such socket; is the podman API service \(podman\.socket\) running\?$/,
  );
});

test("podman-container:// through podman's Docker-compatible API (a fake one): its words, podman's hints", async (t) => {
  const dir = tempDir("bk-dc-", t);
  const engine = await fakeEngine(dir, { containers: { stopped: { running: false } }, exec: "relay" });
  try {
    const env = { CONTAINER_HOST: `unix://${engine.socket}` };
    const stopped = await connectError("podman-container://stopped", env);
    assert.match(stopped.message, /^container stopped on the podman service at unix:\/\/.* is not running \(exited\); start it \(podman start stopped\)$/);
    const missing = await connectError("podman-container://nope", env);
    assert.match(missing.message, /^the podman service at unix:\/\/.* has no container nope \(No such container: nope\); check the name \(podman ps\)$/);
  } finally {
    await engine.close();
  }
});
