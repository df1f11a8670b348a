// Lint: typescript-eslint's strict, type-aware rules, and the layering of
// src/ (see README "Layout"): each room imports only the rooms below it.
import tseslint from "typescript-eslint";

/** Imports a room may not make: patterns relative to files in that room. */
const forbid = (...groups) => ({
  "no-restricted-imports": ["error", { patterns: groups.map((g) => ({ group: g.group, message: g.message })) }],
});
const below = (room, ...banned) => ({
  group: banned.flatMap((b) => [`../${b}/*`, `../../${b}/*`]),
  message: `${room}/ is below ${banned.join(", ")}: it must not import them (README: Layout).`,
});

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "src/gen/", "scripts/*.mjs", "eslint.config.js"] },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      // Numbers and booleans in messages are fine; objects are not.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      // `void promise` marks a deliberately unawaited promise.
      "no-void": "off",
      "@typescript-eslint/no-confusing-void-expression": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  { files: ["src/grpc/**/*.ts"], rules: forbid(below("grpc", "transport", "oci", "session", "solve", "gateway", "progress", "history", "compose", "cli")) },
  { files: ["src/transport/**/*.ts"], rules: forbid(below("transport", "oci", "session", "solve", "gateway", "progress", "history", "compose", "cli")) },
  {
    // OCI layouts on disk: node builtins, errors.ts and files.ts only.
    files: ["src/oci/**/*.ts"],
    rules: forbid({ group: ["../*", "!../errors.js", "!../files.js"], message: "oci/ imports only ../errors.js and ../files.js (README: Layout)." }),
  },
  {
    // The registry client and the index merge (builder pools): low in the layering, beside oci/. Node builtins,
    // errors.ts, transport/extra-ca.ts (the CLI's deferred NODE_EXTRA_CA_CERTS), and from solve/ only its leaf
    // modules: the reference and platform parsers, the credential lookup's type, the annotation type.
    files: ["src/registry/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(?!node:|\\./|\\.\\./errors\\.js$|\\.\\./transport/extra-ca\\.js$|\\.\\./solve/(reference|platform|registry-auth|attest)\\.js$)",
              message:
                "registry/ imports only node builtins, ../errors.js, ../transport/extra-ca.js and solve/'s reference.js, platform.js, registry-auth.js, attest.js (README: Layout).",
            },
          ],
        },
      ],
      // Of these two, types only: the credential lookup runs in the caller, the annotations are parsed there.
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["../solve/registry-auth.js", "../solve/attest.js"],
              allowTypeImports: true,
              message: "registry/ takes only types from solve/registry-auth.js and solve/attest.js.",
            },
          ],
        },
      ],
    },
  },
  { files: ["src/session/**/*.ts"], rules: forbid(below("session", "solve", "gateway", "progress", "compose", "cli")) },
  { files: ["src/solve/**/*.ts"], rules: forbid(below("solve", "gateway", "compose", "cli")) },
  // The gateway client (frontend subrequests; later, programmatic frontends) sits beside solve/.
  { files: ["src/gateway/**/*.ts"], rules: forbid(below("gateway", "compose", "cli")) },
  {
    files: ["src/outputs/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ regex: "^(?!node:|\\.\\./(files|errors)\\.js$|\\./)", message: "outputs/ imports only node builtins, ../files.js and ../errors.js." }] },
      ],
    },
  },
  { files: ["src/progress/**/*.ts"], rules: forbid(below("progress", "transport", "session", "solve", "gateway", "history", "compose", "cli")) },
  // Build history: records, filters, the stored-log decoder; above transport and progress, beside solve.
  { files: ["src/history/**/*.ts"], rules: forbid(below("history", "session", "solve", "gateway", "compose", "cli", "docker", "oci", "outputs", "audit")) },
  {
    // The leak audit stands alone: node builtins, tar-stream and the error classes.
    files: ["src/audit/**/*.ts"],
    rules: forbid({ group: ["../*", "!../errors.js"], message: "audit/ imports only ../errors.js from bk-build (and node builtins, tar-stream)." }),
  },
  // Builder pools sit beside client.ts, above every room but the CLI.
  { files: ["src/pool/**/*.ts"], rules: forbid(below("pool", "cli")) },
  {
    files: ["src/cli/*.ts"],
    rules: forbid({ group: ["../*", "!../index.js", "!../internal.js"], message: "The CLI uses the public API (../index.js) and ../internal.js only." }),
  },
  {
    files: ["src/cli/commands/*.ts"],
    rules: forbid({ group: ["../../*", "!../../index.js", "!../../internal.js"], message: "The CLI uses the public API (index.js) and internal.js only." }),
  },
  {
    // Tests assert with node:assert and poke at internals on purpose.
    files: ["test/**/*.ts", "scripts/**/*.ts"],
    rules: {
      // node:test's test() returns a promise the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "it", "describe", "suite", "before", "after", "beforeEach", "afterEach"] },
          ],
        },
      ],
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unused-vars": ["error", { varsIgnorePattern: "^_" }],
      // Handlers written async to match the API's shape; narrowing used as an
      // assertion; `void` marking an expression kept for its side effect.
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-meaningless-void-operator": "off",
    },
  },
);
