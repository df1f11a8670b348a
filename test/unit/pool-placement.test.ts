/**
 * Builder pool placement without daemons: rendezvous order and its
 * stability, the busy threshold, native vs emulated platforms, the
 * placement key, how a failure is charged to its node, and the options
 * BuildKitPool.connect() refuses before dialling anything.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { eligible, pickNode, placementKey, rendezvousOrder, splitWorkerPlatforms, type Candidate } from "../../src/pool/placement.js";
import { BuildKitPool, nodeFailure } from "../../src/pool/pool.js";
import { TransportError } from "../../src/grpc/client.js";
import { ConnectionError, UsageError } from "../../src/errors.js";

const node = (id: string, active = 0, native: string[] = ["linux/amd64"], emulated: string[] = []): Candidate => ({ id, active, native, emulated });

test("rendezvousOrder: the same key gives the same order, whatever order the nodes come in", () => {
  const nodes = [node("a"), node("b"), node("c")];
  for (let i = 0; i < 50; i++) {
    const key = `ctx-${i}`;
    const one = rendezvousOrder(key, nodes).map((n) => n.id);
    const two = rendezvousOrder(key, [...nodes].reverse()).map((n) => n.id);
    assert.deepEqual(one, two, key);
    assert.equal(new Set(one).size, 3);
  }
});

test("rendezvousOrder: keys spread evenly, and removing a node moves only the keys it had", () => {
  const three = [node("n1"), node("n2"), node("n3")];
  const count = new Map<string, number>();
  const first = new Map<string, string>();
  for (let i = 0; i < 3000; i++) {
    const id = rendezvousOrder(`/src/service-${i}`, three)[0]!.id;
    first.set(`/src/service-${i}`, id);
    count.set(id, (count.get(id) ?? 0) + 1);
  }
  for (const [id, n] of count) assert.ok(n > 900 && n < 1100, `${id} got ${n} of 3000`);
  const two = three.filter((n) => n.id !== "n2");
  for (const [key, was] of first) {
    const now = rendezvousOrder(key, two)[0]!.id;
    if (was !== "n2") assert.equal(now, was, `${key} moved from ${was} though its node stayed`);
  }
});

test("pickNode: the key's node unless it is at the threshold; then the next; all busy: the least busy", () => {
  const key = "k";
  const order = rendezvousOrder(key, [node("a"), node("b"), node("c")]).map((n) => n.id);
  const with_ = (busy: Record<string, number>): Candidate[] => ["a", "b", "c"].map((id) => node(id, busy[id] ?? 0));
  assert.equal(pickNode(key, with_({}), 2)!.id, order[0]);
  assert.equal(pickNode(key, with_({ [order[0]!]: 2 }), 2)!.id, order[1]);
  assert.equal(pickNode(key, with_({ [order[0]!]: 2, [order[1]!]: 5 }), 2)!.id, order[2]);
  assert.equal(pickNode(key, with_({ [order[0]!]: 3, [order[1]!]: 2, [order[2]!]: 4 }), 2)!.id, order[1]);
  // A tie among the busy ones goes to the earliest in the key's order.
  assert.equal(pickNode(key, with_({ a: 2, b: 2, c: 2 }), 2)!.id, order[0]);
  assert.equal(pickNode(key, [], 2), undefined);
});

test("eligible: native nodes first, emulating nodes only when none is native, none when nobody can", () => {
  const amd = node("amd", 0, ["linux/amd64", "linux/386"], ["linux/arm64"]);
  const arm = node("arm", 0, ["linux/arm64", "linux/arm/v7"], []);
  assert.deepEqual(
    eligible([amd, arm], "linux/arm64").nodes.map((n) => n.id),
    ["arm"],
  );
  assert.deepEqual(eligible([amd], "linux/arm64"), { nodes: [amd], emulated: true });
  assert.deepEqual(eligible([amd, arm], "linux/s390x").nodes, []);
  assert.deepEqual(
    eligible([amd, arm], undefined).nodes.map((n) => n.id),
    ["amd", "arm"],
  );
});

test("splitWorkerPlatforms: the host platform and what it runs without emulation are native", () => {
  assert.deepEqual(splitWorkerPlatforms(["linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/386", "linux/arm64", "linux/riscv64"]), {
    native: ["linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/386"],
    emulated: ["linux/arm64", "linux/riscv64"],
  });
  assert.deepEqual(splitWorkerPlatforms(["linux/arm64", "linux/arm/v7", "linux/amd64"]), {
    native: ["linux/arm64", "linux/arm/v7"],
    emulated: ["linux/amd64"],
  });
  // A worker limited to linux/386 (buildkitd's platforms setting) is a 386 node.
  assert.deepEqual(splitWorkerPlatforms(["linux/386"]), { native: ["linux/386"], emulated: [] });
  assert.deepEqual(splitWorkerPlatforms([]), { native: [], emulated: [] });
});

test("placementKey: a local context by absolute path, remote ones as given, streams by Dockerfile and target", () => {
  assert.equal(placementKey({ context: "app" }, "/work"), placementKey({ context: "/work/app" }, "/"));
  assert.notEqual(placementKey({ context: "app", target: "a" }, "/work"), placementKey({ context: "app", target: "b" }, "/work"));
  assert.notEqual(placementKey({ context: "app", dockerfile: "app/Dockerfile.dev" }, "/w"), placementKey({ context: "app" }, "/w"));
  assert.equal(placementKey({ context: "https://github.com/o/r.git#main" }, "/a"), placementKey({ context: "https://github.com/o/r.git#main" }, "/b"));
  assert.equal(placementKey({ context: "git@github.com:o/r.git" }, "/a"), placementKey({ context: "git@github.com:o/r.git" }, "/b"));
  const stream = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
  assert.equal(placementKey({ context: stream, dockerfile: { contents: "FROM x" } }), JSON.stringify(["stream", "inline", ""]));
});

test("nodeFailure: a dial that failed or a refused call is 'unreached', a broken connection 'lost', anything else the build's own", () => {
  const wrap = (kind: ConstructorParameters<typeof TransportError>[2]): ConnectionError =>
    new ConnectionError("x", "unix:///s", { cause: new TransportError(14, "m", kind) });
  assert.equal(nodeFailure(wrap("connect")), "unreached");
  assert.equal(nodeFailure(wrap("refused")), "unreached");
  assert.equal(nodeFailure(wrap("lost")), "lost");
  assert.equal(nodeFailure(wrap("reset")), "lost");
  assert.equal(nodeFailure(wrap("closed")), undefined);
  assert.equal(nodeFailure(new UsageError("bad")), undefined);
  assert.equal(nodeFailure(new Error("failed to solve")), undefined);
});

test("BuildKitPool.connect: bad nodes are refused before anything is dialled", async () => {
  await assert.rejects(BuildKitPool.connect({ nodes: [] }), (e: Error) => e instanceof UsageError && /at least one node/.test(e.message));
  await assert.rejects(
    BuildKitPool.connect({
      nodes: [
        { address: "unix:///a", name: "x" },
        { address: "unix:///b", name: "x" },
      ],
    }),
    (e: Error) => e instanceof UsageError && /two pool nodes are named "x"/.test(e.message),
  );
  await assert.rejects(
    BuildKitPool.connect({ nodes: [{ address: "unix:///a", platforms: ["linux/"] }] }),
    (e: Error) => e instanceof UsageError && /platform of node unix:\/\/\/a/.test(e.message),
  );
  await assert.rejects(
    BuildKitPool.connect({ nodes: [{ address: "unix:///a" }], placement: { maxActivePerNode: 0 } }),
    (e: Error) => e instanceof UsageError && /maxActivePerNode/.test(e.message),
  );
});

test("BuildKitPool.connect: one node that cannot be reached fails as BuildKitClient.connect does; several name each node", async () => {
  const gone = "unix:///nonexistent/bk-pool-test.sock";
  await assert.rejects(
    BuildKitPool.connect({ nodes: [{ address: gone }] }),
    (e: Error) => e instanceof ConnectionError && e.message.includes(gone) && !e.message.includes("no node"),
  );
  await assert.rejects(
    BuildKitPool.connect({
      nodes: [
        { address: gone, name: "one" },
        { address: `${gone}2`, name: "two" },
      ],
    }),
    (e: Error) => e instanceof ConnectionError && /^no node of the builder answers \(one: .*; two: .*\)$/.test(e.message),
  );
});
