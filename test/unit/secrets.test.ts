import { test } from "node:test";
import { tempDir } from "../helpers/files.js";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, openSync, readdirSync, readlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { prepareSecrets } from "../../src/solve/secrets.js";
import { secretsService } from "../../src/session/secrets.js";
import { BuildKitError, UsageError } from "../../src/errors.js";
import { runModule } from "../helpers/child.js";

const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

function fifo(): string {
  const p = join(tempDir("bk-secret-fifo-"), "pipe");
  execFileSync("mkfifo", [p]);
  return p;
}

/** Opens a FIFO read-write: it never blocks, and counts as a writer until closed. */
function holdWriter(path: string): number {
  return openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
}

/** Waits until this process holds `path` open twice (the writer above and the reader). */
async function readerOpened(path: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    let n = 0;
    for (const fd of readdirSync("/proc/self/fd")) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
      } catch {
        // closed meanwhile
      }
    }
    if (n >= 2) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nothing opened ${path} to read`);
}

/** A secret provider's value, asked as buildkitd asks. */
async function getSecret(providers: Parameters<typeof secretsService>[0], failures: Parameters<typeof secretsService>[1], id: string): Promise<Buffer> {
  const handler = secretsService(providers, failures).unary.get("GetSecret")!;
  const r = (await handler({ ID: id }, { metadata: () => [], metadataKeys: () => [], signal: new AbortController().signal })) as { data: Buffer };
  return r.data;
}

test("a pipe (<(cmd)) as a secret file is read once, at the start, and the same value served to every request", () => {
  const value = `pipe-${randomBytes(8).toString("hex")}`;
  // As the shell hands it over: /dev/fd/63, readable once. In a child, so a regression cannot hang this runner.
  const r = runModule(
    `const { prepareSecrets } = await import(process.env.SRC + "solve/secrets.js");
     const { createHash } = await import("node:crypto");
     const { providers } = await prepareSecrets({ s: { file: process.argv[1] } }, {});
     for (let i = 0; i < 3; i++) console.log(createHash("sha256").update(await providers.get("s")()).digest("hex"));`,
    { shellArgs: `<(printf %s "$V")`, env: { V: value } },
  );
  assert.equal(r.signal, null, "blocked until killed");
  assert.equal(r.stdout, `${sha(value)}\n`.repeat(3), r.stderr);
  assert.ok(!r.stdout.includes(value) && !r.stderr.includes(value));
});

test("a pipe that gives nothing, or too much, fails at the start naming the id and the path", () => {
  const code = `const { prepareSecrets } = await import(process.env.SRC + "solve/secrets.js");
     try { await prepareSecrets({ s: { file: process.argv[1] } }, {}); console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message.replace(process.argv[1], "PATH")); }`;
  const empty = runModule(code, { shellArgs: "<(true)" });
  assert.equal(empty.signal, null);
  assert.match(empty.stdout, /^UsageError: secret "s": cannot read file "PATH": the pipe (gave no data|is empty and nothing writes to it); /, empty.stderr);
  const big = runModule(code, { shellArgs: "<(head -c 600000 /dev/zero)" });
  assert.equal(big.signal, null);
  assert.equal(big.stdout, 'UsageError: secret "s": cannot read file "PATH": larger than 500 KiB; buildkit takes secrets of up to 500 KiB\n', big.stderr);
});

test("a FIFO with no writer fails at once; a slow writer is waited for; a writer that never finishes times out; abort stops the wait", async () => {
  const lonely = fifo();
  const t = Date.now();
  await assert.rejects(prepareSecrets({ s: { file: lonely } }, {}), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(
      e.message,
      `secret "s": cannot read file "${lonely}": the pipe is empty and nothing writes to it; start what writes it before the build, or pass a regular file`,
    );
    return true;
  });
  assert.ok(Date.now() - t < 2000, `took ${Date.now() - t} ms`);

  const slow = fifo();
  const w = holdWriter(slow);
  try {
    const p = prepareSecrets({ s: { file: slow } }, {});
    await readerOpened(slow);
    writeSync(w, "first-");
    await new Promise((r) => setTimeout(r, 100));
    writeSync(w, "second");
    closeSync(w);
    const { providers } = await p;
    assert.equal((await providers.get("s")!()).toString(), "first-second");
    assert.equal((await providers.get("s")!()).toString(), "first-second", "served again from memory");
  } finally {
    try {
      closeSync(w);
    } catch {
      // closed above
    }
  }

  const stuck = fifo();
  const w2 = holdWriter(stuck);
  try {
    const t2 = Date.now();
    await assert.rejects(prepareSecrets({ s: { file: stuck } }, {}, { secretTimeoutMs: 150 }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(
        e.message,
        `secret "s": cannot read file "${stuck}": its writer did not finish within 150 ms; make it finish sooner, or raise secretTimeoutMs`,
      );
      return true;
    });
    assert.ok(Date.now() - t2 < 2000);

    const ac = new AbortController();
    const p = prepareSecrets({ s: { file: stuck } }, {}, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, (e: unknown) => e instanceof BuildKitError && e.code === "CANCELLED" && e.message.includes('secret "s"'));
  } finally {
    closeSync(w2);
  }
});

test("a directory, a file over the limit or a read error (EIO) fails at the start naming id, path and reason", async () => {
  const dir = tempDir("bk-secret-");
  await assert.rejects(prepareSecrets({ d: { file: dir } }, {}), {
    name: "UsageError",
    message: `secret "d": cannot read file "${dir}": is a directory; pass a file`,
  });
  const big = join(dir, "big");
  writeFileSync(big, Buffer.alloc(500 * 1024 + 1));
  await assert.rejects(prepareSecrets({ b: { file: big } }, {}), {
    name: "UsageError",
    message: `secret "b": cannot read file "${big}": larger than 500 KiB; buildkit takes secrets of up to 500 KiB`,
  });
  const ok = join(dir, "ok");
  writeFileSync(ok, "value");
  const eio = {
    readRegular: async (): Promise<Buffer> => {
      throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO", errno: -5, syscall: "read" });
    },
  };
  await assert.rejects(prepareSecrets({ s: { file: ok } }, {}, {}, eio), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(e.message, `secret "s": cannot read file "${ok}": i/o error; check the file and try again`);
    assert.equal((e.cause as NodeJS.ErrnoException).code, "EIO");
    return true;
  });
  const { providers } = await prepareSecrets({ s: { file: ok } }, {});
  assert.equal((await providers.get("s")!()).toString(), "value");
  await assert.rejects(prepareSecrets({}, {}, { secretTimeoutMs: 0 }), { name: "UsageError", message: /^invalid secretTimeoutMs 0: / });
});

test("a secret function that throws: buildkitd hears only the id; the build's error names it and has the thrown error as cause", async () => {
  const value = `leak-${randomBytes(6).toString("hex")}`;
  const thrown = new Error(`vault said no for ${value}`);
  const { providers, failures } = await prepareSecrets(
    {
      s: async () => {
        throw thrown;
      },
    },
    {},
  );
  await assert.rejects(getSecret(providers, failures, "s"), (e: unknown) => {
    assert.equal((e as Error).message, "secret s could not be read");
    return true;
  });
  const local = failures.first();
  assert.ok(local instanceof BuildKitError);
  assert.match(local.message, /^secret "s" could not be provided: its function failed/);
  assert.equal(local.cause, thrown);
  assert.ok(!local.message.includes(value) && !String(local.stack).includes(value));
});

test("a secret function that never answers is ended by secretTimeoutMs, with an error naming the id", async () => {
  const { providers, failures } = await prepareSecrets({ slow: () => new Promise<string>(() => undefined) }, {}, { secretTimeoutMs: 100 });
  const t = Date.now();
  await assert.rejects(getSecret(providers, failures, "slow"), { message: "secret slow could not be read" });
  assert.ok(Date.now() - t < 2000, `took ${Date.now() - t} ms`);
  const local = failures.first();
  assert.ok(local instanceof BuildKitError);
  assert.equal(local.code, "DEADLINE_EXCEEDED");
  assert.equal(
    local.message,
    'secret "slow" could not be provided: its function did not answer within 100 ms; make it answer sooner, or raise secretTimeoutMs',
  );

  // A call buildkitd gives up on ends the wait, and is not the build's failure.
  const other = await prepareSecrets({ s: () => new Promise<string>(() => undefined) }, {});
  const ac = new AbortController();
  const handler = secretsService(other.providers, other.failures).unary.get("GetSecret")!;
  const call = handler({ ID: "s" }, { metadata: () => [], metadataKeys: () => [], signal: ac.signal });
  ac.abort();
  await assert.rejects(call);
  assert.equal(other.failures.first(), undefined);
});
