/**
 * The RPC boundary is typed from the proto (src/gen/methods.ts). The checks
 * are the `@ts-expect-error` lines below, compiled with the rest of the test
 * build: tsc fails if one of them no longer errors. The test then compiles
 * this file again without those directives and checks that each line fails
 * for the reason written after its `--`, not some other one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { defineService } from "../../src/grpc/server.js";
import type { Connection } from "../../src/transport/connection.js";
import { typecheck } from "../helpers/typecheck.js";
import { repoRoot } from "../helpers/env.js";

/** Never run: it only has to compile (or fail to, where marked). */
export function typeChecks(): void {
  defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      // @ts-expect-error -- 'GetSecrett' does not exist
      GetSecrett: async () => ({ data: "" }),
    },
  });
  defineService("moby.sshforward.v1.SSH", {
    unary: {
      // @ts-expect-error -- 'ForwardAgent' does not exist
      ForwardAgent: async () => ({}),
    },
  });
  defineService("moby.buildkit.secrets.v1.Secrets", {
    // @ts-expect-error -- is not assignable to type 'never'
    streams: { GetSecret: async () => undefined },
  });
  defineService("moby.filesync.v1.Auth", {
    unary: {
      // @ts-expect-error -- Types of property 'Secrett' are incompatible
      Credentials: async (req) => ({ Username: req.Host, Secrett: "" }),
    },
  });
  defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      // @ts-expect-error -- has no properties in common with type 'GetSecretResponse'
      GetSecret: async () => ({ dataa: "" }),
    },
  });
  defineService("moby.buildkit.secrets.v1.Secrets", {
    unary: {
      GetSecret: async (req) => ({
        // @ts-expect-error -- Property 'Id' does not exist on type 'GetSecretRequest__Output'
        data: req.Id,
      }),
    },
  });
  defineService("moby.sshforward.v1.SSH", {
    streams: {
      ForwardAgent: async (call) => {
        for await (const m of call) {
          // @ts-expect-error -- 'dat' does not exist in type 'BytesMessage'
          await call.send({ dat: m.data });
        }
      },
    },
  });
  // @ts-expect-error -- not assignable to parameter of type 'keyof SessionMethods'
  defineService("moby.sshforward.v1.SSHH", {});
  // The correct spellings compile.
  defineService("moby.filesync.v1.Auth", { unary: { Credentials: async (req) => ({ Username: req.Host, Secret: "" }) } });
}

/** Never run, as typeChecks. */
export async function controlTypeChecks(conn: Connection): Promise<void> {
  await conn.unary("Control.Solve", {
    Ref: "r",
    // @ts-expect-error -- 'Entitlement' does not exist in type 'SolveRequest'
    Entitlement: ["network.host"],
  });
  await conn.unary("Control.Solve", {
    // @ts-expect-error -- 'Atrs' does not exist in type 'Exporter'
    Exporters: [{ Type: "image", Atrs: {} }],
  });
  // @ts-expect-error -- Argument of type '"Control.Infoo"' is not assignable
  await conn.unary("Control.Infoo", {});
  // @ts-expect-error -- Argument of type '"Control.Solve"' is not assignable
  conn.serverStream("Control.Solve", {});
  // @ts-expect-error -- Argument of type '"Control.Status"' is not assignable
  await conn.unary("Control.Status", { Ref: "r" });
  const info = await conn.unary("Control.Info", {});
  // @ts-expect-error -- Property 'buildkitVersio' does not exist on type 'InfoResponse__Output'
  void info.buildkitVersio;
  for await (const s of conn.serverStream("Control.Status", { Ref: "r" })) {
    // @ts-expect-error -- Property 'vertex' does not exist on type 'StatusResponse__Output'
    void s.vertex;
  }
  // The correct spellings compile.
  await conn.unary("Control.Solve", { Ref: "r", Entitlements: ["network.host"], Exporters: [{ Type: "image", Attrs: {} }] });
  void info.buildkitVersion?.version;
}

const source = join(repoRoot, "test", "unit", "rpc-types.test.ts");

test("each @ts-expect-error line fails to compile without it, for the reason it names", () => {
  const text = readFileSync(source, "utf8");
  const lines = text.split("\n");
  const expected = new Map<number, string>(); // 0-based line of the code -> reason
  const stripped = lines.map((line, i) => {
    const m = /^\s*\/\/ @ts-expect-error -- (.+)$/.exec(line);
    if (!m) return line;
    expected.set(i + 1, m[1]!);
    return "";
  });
  assert.ok(expected.size >= 5, "the directives are found");

  const program = typecheck(new Map([[source, stripped.join("\n")]]));
  const file = program.getSourceFile(source)!;
  const errors = new Map<number, string[]>();
  for (const d of program.getSemanticDiagnostics(file)) {
    const line = file.getLineAndCharacterOfPosition(d.start ?? 0).line;
    errors.set(line, [...(errors.get(line) ?? []), ts.flattenDiagnosticMessageText(d.messageText, "\n")]);
  }
  for (const [line, reason] of expected) {
    const got = errors.get(line) ?? [];
    assert.ok(
      got.some((m) => m.includes(reason)),
      `line ${line + 1}: want an error with "${reason}", got ${JSON.stringify(got)}`,
    );
    errors.delete(line);
  }
  assert.deepEqual([...errors], [], "no other errors");
});
