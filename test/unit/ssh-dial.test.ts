import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { checkHostKey, knownHostsName } from "../../src/transport/ssh-dial.js";
import { parseAddress } from "../../src/transport/address.js";

const keyA = Buffer.from("host key A blob");
const keyB = Buffer.from("host key B blob");
const a64 = keyA.toString("base64");
const b64 = keyB.toString("base64");

function hashed(name: string): string {
  const salt = Buffer.from("0123456789abcdefghij");
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

test("known_hosts: plain, bracketed port, hashed, wildcard and negated names", () => {
  assert.equal(knownHostsName("build.example", 22), "build.example");
  assert.equal(knownHostsName("127.0.0.1", 2222), "[127.0.0.1]:2222");
  assert.equal(checkHostKey(`build.example,10.0.0.1 ssh-ed25519 ${a64}\n`, "build.example", keyA), "ok");
  assert.equal(checkHostKey(`[127.0.0.1]:2222 ssh-ed25519 ${a64}\n`, "[127.0.0.1]:2222", keyA), "ok");
  assert.equal(checkHostKey(`127.0.0.1 ssh-ed25519 ${a64}\n`, "[127.0.0.1]:2222", keyA), "unknown", "port 22's entry is not port 2222's");
  assert.equal(checkHostKey(`${hashed("[127.0.0.1]:2222")} ssh-ed25519 ${a64}\n`, "[127.0.0.1]:2222", keyA), "ok");
  assert.equal(checkHostKey(`*.example ssh-ed25519 ${a64}\n`, "build.example", keyA), "ok");
  assert.equal(checkHostKey(`*.example,!build.example ssh-ed25519 ${a64}\n`, "build.example", keyA), "unknown");
  assert.equal(checkHostKey(`# comment\n\nother.example ssh-ed25519 ${a64}\n`, "build.example", keyA), "unknown");
});

test("known_hosts: a different key for a known name is a change; @revoked wins; @cert-authority is not a host key", () => {
  assert.equal(checkHostKey(`build.example ssh-ed25519 ${b64}\n`, "build.example", keyA), "changed");
  // Several keys for one host (one per type): any match is fine.
  assert.equal(checkHostKey(`build.example ssh-rsa ${b64}\nbuild.example ssh-ed25519 ${a64}\n`, "build.example", keyA), "ok");
  assert.equal(checkHostKey(`build.example ssh-ed25519 ${a64}\n@revoked * ssh-ed25519 ${a64}\n`, "build.example", keyA), "revoked");
  assert.equal(checkHostKey(`@cert-authority *.example ssh-ed25519 ${a64}\n`, "build.example", keyA), "unknown");
});

test("ssh:// addresses: user, port, socket path (buildctl's default when none)", () => {
  assert.deepEqual(parseAddress("ssh://root@127.0.0.1:2222/tmp/bk.sock"), {
    kind: "ssh",
    user: "root",
    host: "127.0.0.1",
    port: 2222,
    socketPath: "/tmp/bk.sock",
    address: "ssh://root@127.0.0.1:2222/tmp/bk.sock",
  });
  const d = parseAddress("ssh://build.example");
  assert.ok(d.kind === "ssh");
  assert.equal(d.port, 22);
  assert.equal(d.user, undefined);
  assert.equal(d.socketPath, "/run/buildkit/buildkitd.sock");
  assert.throws(() => parseAddress("ssh://host?x=1"), /ssh:\/\/ addresses take no query string/);
  assert.throws(() => parseAddress("ssh://host:99999"), /port must be between 1 and 65535/);
  assert.throws(() => parseAddress("ssh://"), /expected ssh:\/\/\[user@\]host/);
});
