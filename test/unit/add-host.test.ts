/**
 * --add-host / extra_hosts entries, with the inputs of docker/cli's
 * opts/hosts_test.go (TestValidateExtraHosts) and buildx's
 * build/utils_test.go (toBuildkitExtraHosts) tables; outputs are
 * buildkitd's host=ip entries, as buildx sends them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAddHost } from "../../src/solve/options.js";
import { loadCompose } from "../../src/compose/load.js";
import { serviceBuildOptions } from "../../src/compose/build.js";
import { fileTree } from "../helpers/files.js";

test("add-host: colon or equals, IPv4 and IPv6, brackets, several IPs, host-gateway", () => {
  const ok: Array<[string, string[]]> = [
    ["myhost:192.168.0.1", ["myhost=192.168.0.1"]],
    ["thathost:10.0.2.1", ["thathost=10.0.2.1"]],
    ["anipv6host:2003:ab34:e::1", ["anipv6host=2003:ab34:e::1"]],
    ["ipv6local:::1", ["ipv6local=::1"]],
    ["myhost=192.168.0.1", ["myhost=192.168.0.1"]],
    ["ipv6local=0:0:0:0:0:0:0:1", ["ipv6local=0:0:0:0:0:0:0:1"]],
    ["ipv6local=[0:0:0:0:0:0:0:1]", ["ipv6local=0:0:0:0:0:0:0:1"]],
    ["myhost=[192.168.0.1]", ["myhost=192.168.0.1"]],
    ["myhost=162.242.195.82,162.242.195.83", ["myhost=162.242.195.82", "myhost=162.242.195.83"]],
    ["host.docker.internal:host-gateway", ["host.docker.internal=host-gateway"]],
    ["host.docker.internal=host-gateway", ["host.docker.internal=host-gateway"]],
  ];
  for (const [input, want] of ok) assert.deepEqual(parseAddHost(input, "--add-host"), want, input);
  const bad: Array<[string, RegExp]> = [
    ["myhost:192.notanipaddress.1", /"192\.notanipaddress\.1" is not an IP address/],
    ["myhost=192.notanipaddress.1", /is not an IP address/],
    ["thathost-nosemicolon10.0.0.1", /invalid --add-host "thathost-nosemicolon10\.0\.0\.1": use HOST:IP/],
    ["anipv6host:::::1", /"::::1" is not an IP address/],
    ["ipv6local:::0::", /"::0::" is not an IP address/],
    ["ipv6addr=[::1", /"\[::1" is not an IP address/],
    ["ipv6addr=::1]", /"::1\]" is not an IP address/],
    ["myhost.invalid:", /use HOST:IP/],
    ["myhost.invalid=", /use HOST:IP/],
    [":192.168.0.1", /use HOST:IP/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseAddHost(input, "--add-host"), re, input);
});

test("compose extra_hosts: list and mapping forms, several IPs per host, brackets", () => {
  const dir = fileTree("bk-hosts-", {
    "compose.yaml": [
      "services:",
      "  a:",
      "    build:",
      "      context: .",
      "      extra_hosts: ['somehost=162.242.195.82,162.242.195.83', 'ipv6=[::1]', 'otherhost:50.31.209.229']",
      "  b:",
      "    build:",
      "      context: .",
      "      extra_hosts:",
      "        somehost: [162.242.195.82, 162.242.195.83]",
      "        gw: host-gateway",
      "",
    ].join("\n"),
  });
  const p = loadCompose({ workingDir: dir, env: {} });
  const hosts = (name: string): string | undefined =>
    serviceBuildOptions(p, p.services.find((s) => s.name === name)!, {}, new Map(), false).options.frontendAttrs?.["add-hosts"];
  assert.equal(hosts("a"), "somehost=162.242.195.82,somehost=162.242.195.83,ipv6=::1,otherhost=50.31.209.229");
  assert.equal(hosts("b"), "somehost=162.242.195.82,somehost=162.242.195.83,gw=host-gateway");
});
