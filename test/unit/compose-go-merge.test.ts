/**
 * compose-go's merge, transform and types tests for the build section, as
 * ours: their inputs and expected results, our words. From
 * compose-spec/compose-go at e70e961c3a3acebf0800b882f1afb3dbf1fb74a2:
 * override/merge_build_test.go, override/merge_extra_hosts_test.go,
 * override/merge_labels_test.go, override/merge_ulimits_test.go,
 * override/merge_profiles_test.go, override/merge_test.go,
 * override/uncity_test.go, transform/build_test.go, transform/ssh_test.go,
 * transform/external_test.go, types/hostList_test.go, types/bytes_test.go,
 * types/labels_test.go, types/types_test.go and types/project_test.go.
 *
 * An override test (assertMergeYaml(base, override, want)) becomes: the
 * two files loaded with -f base -f override give the same build as the
 * wanted file loaded alone. Service-level keys of the same compose-go type
 * stand in as their build keys where the table has no build variant
 * (extra_hosts, ulimits, environment for args); each case says so.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { planCompose } from "../../src/compose/build.js";
import type { ComposeBuild } from "../../src/compose/load.js";
import { parseAddHost } from "../../src/solve/options.js";
import { assertContains, buildOf, errorOf, hostsOf, load, loadError, optionsOf, service } from "../helpers/compose.js";

/** The build of service `test` from -f base.yaml -f override.yaml, and from want.yaml alone, with host lists as the sorted host=ip pairs a build gets. */
function merged(base: string, override: string, want: string): { got: ComposeBuild; want: ComposeBuild } {
  const sortHosts = (b: ComposeBuild): ComposeBuild => ({ ...b, extraHosts: b.extraHosts.flatMap((h) => parseAddHost(h, "extra_hosts")).sort() });
  const p = load({ "base.yaml": base, "override.yaml": override, "want.yaml": want }, { files: ["base.yaml", "override.yaml"] });
  const w = load({ "base.yaml": base, "override.yaml": override, "want.yaml": want }, { files: ["want.yaml"] });
  // The two loads are two directories; compare the paths inside them.
  const rel = (b: ComposeBuild, dir: string): ComposeBuild => JSON.parse(JSON.stringify(sortHosts(b)).replaceAll(dir, "<dir>")) as ComposeBuild;
  return { got: rel(buildOf(p, "test"), p.directory), want: rel(buildOf(w, "test"), w.directory) };
}

function assertMerge(base: string, override: string, want: string): void {
  const { got, want: expected } = merged(base, override, want);
  assert.deepEqual(got, expected);
}

describe("override/merge_build_test.go", () => {
  test("Test_mergeYamlBuildSequence: list forms append, keyed entries replace, tags stay unique", () => {
    // Upstream writes `platform:` (sic), and so does its unicity rule
    // (services.*.build.platform): the real key, platforms, is appended
    // as it comes, so linux/amd64 is there twice. The build (bake) drops
    // the duplicate, as serviceBuildOptions does.
    const { got, want } = merged(
      [
        "services:",
        "  test:",
        "    build:",
        "      context: .",
        "      args:",
        "        - FOO=BAR",
        "      additional_contexts:",
        "        - resources=/path/to/resources",
        "        - app=docker-image://my-app:latest",
        "      platforms:",
        "        - linux/amd64",
        "      tags:",
        '        - "myimage:mytag"',
        "      extra_hosts:",
        '        - "somehost=162.242.195.82"',
        '        - "otherhost=50.31.209.229"',
        "",
      ].join("\n"),
      [
        "services:",
        "  test:",
        "    build:",
        "      context: .",
        "      args:",
        "        - GIT_COMMIT=cdc3b19",
        "        - EMPTY=",
        "        - NIL",
        "      additional_contexts:",
        "        - source=https://github.com/myuser/project.git",
        "      platforms:",
        '        - "linux/arm64"',
        '        - "linux/amd64"',
        '        - "unsupported/unsupported"',
        "      tags:",
        '        - "myimage:mytag"',
        '        - "registry/username/myrepos:my-other-tag"',
        "      extra_hosts:",
        '        - "otherhost=50.31.209.230"',
        '        - "myhostv6=::1"',
        "",
      ].join("\n"),
      [
        "services:",
        "  test:",
        "    build:",
        "      context: .",
        "      args:",
        "        - FOO=BAR",
        "        - GIT_COMMIT=cdc3b19",
        "        - EMPTY=",
        "        - NIL",
        "      additional_contexts:",
        "        - resources=/path/to/resources",
        "        - app=docker-image://my-app:latest",
        "        - source=https://github.com/myuser/project.git",
        "      platforms:",
        '        - "linux/amd64"',
        '        - "linux/arm64"',
        '        - "linux/amd64"',
        '        - "unsupported/unsupported"',
        "      tags:",
        '        - "myimage:mytag"',
        '        - "registry/username/myrepos:my-other-tag"',
        "      extra_hosts:",
        '        - "somehost=162.242.195.82"',
        '        - "otherhost=50.31.209.229"',
        '        - "otherhost=50.31.209.230"',
        '        - "myhostv6=::1"',
        "",
      ].join("\n"),
    );
    assert.deepEqual(got, want);
    assert.deepEqual(got.args, { FOO: "BAR", GIT_COMMIT: "cdc3b19", EMPTY: "" });
    const p = load({
      "compose.yaml": "services:\n  test:\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64, linux/amd64]\n",
    });
    assert.deepEqual(optionsOf(p, "test").platforms, ["linux/amd64", "linux/arm64"]);
  });

  test("Test_mergeYamlArgsMapping: mappings merge by key", () => {
    assertMerge(
      "services:\n  test:\n    build:\n      context: .\n      args:\n        FOO: BAR\n      additional_contexts:\n        source: https://github.com/myuser/project.git\n",
      'services:\n  test:\n    build:\n      context: .\n      args:\n        EMPTY: ""\n        NIL: null\n        QIX: ZOT\n      additional_contexts:\n        app: docker-image://my-app:latest\n        resources: /path/to/resources\n',
      "services:\n  test:\n    build:\n      context: .\n      args:\n       - FOO=BAR\n       - EMPTY=\n       - NIL\n       - QIX=ZOT\n      additional_contexts:\n        - source=https://github.com/myuser/project.git\n        - app=docker-image://my-app:latest\n        - resources=/path/to/resources\n",
    );
  });

  test("Test_mergeYamlArgsMixed: a mapping over a list and a list over a mapping merge by key", () => {
    assertMerge(
      'services:\n  test:\n    build:\n      context: .\n      args:\n        FOO: BAR\n      additional_contexts:\n        - resources=/path/to/resources\n        - app=docker-image://my-app:latest\n      tags:\n        - "myimage:mytag"\n',
      'services:\n  test:\n    build:\n      args:\n        - QIX=ZOT\n      additional_contexts:\n        app: docker-image://new-app:latest\n        source: https://github.com/myuser/project.git\n      tags:\n        - "registry/username/myrepos:my-other-tag"\n\n',
      'services:\n  test:\n    build:\n      context: .\n      args:\n        - FOO=BAR\n        - QIX=ZOT\n      additional_contexts:\n        - resources=/path/to/resources\n        - app=docker-image://new-app:latest\n        - source=https://github.com/myuser/project.git\n      tags:\n        - "myimage:mytag"\n        - "registry/username/myrepos:my-other-tag"\n',
    );
  });

  test("Test_mergeYamlArgsNumber: a number over a number", () => {
    assertMerge(
      "services:\n  test:\n    build:\n      context: .\n      args:\n        FOO: 1\n",
      "services:\n  test:\n    build:\n      context: .\n      args:\n        FOO: 3\n",
      "services:\n  test:\n    build:\n      context: .\n      args:\n       - FOO=3\n",
    );
  });
});

describe("override/merge_extra_hosts_test.go (build.extra_hosts for the service's)", () => {
  test("TestMergeExtraHostsSequence: an entry already there is not repeated; a second address for a host is kept", () => {
    assertMerge(
      "services:\n  test:\n    image: foo\n    build:\n      extra_hosts:\n        - example.com=1.2.3.4\n",
      "services:\n  test:\n    build:\n      extra_hosts:\n        - localhost=127.0.0.1\n        - example.com=1.2.3.4\n        - example.com=4.3.2.1\n",
      "services:\n  test:\n    image: foo\n    build:\n      extra_hosts:\n        - example.com=1.2.3.4\n        - localhost=127.0.0.1\n        - example.com=4.3.2.1\n",
    );
  });

  test("TestMergeExtraHostsMapping: mappings, one host given a list", () => {
    assertMerge(
      'services:\n  test:\n    image: foo\n    build:\n      extra_hosts:\n        "example.com": "1.2.3.4"\n',
      'services:\n  test:\n    build:\n      extra_hosts:\n        "localhost": "127.0.0.1"\n        "example.com": ["1.2.3.4", "4.3.2.1"]\n',
      "services:\n  test:\n    image: foo\n    build:\n      extra_hosts:\n        - example.com=1.2.3.4\n        - example.com=4.3.2.1\n        - localhost=127.0.0.1\n",
    );
  });

  test("TestMergeExtraHostsMixed: a list over a mapping", () => {
    assertMerge(
      'services:\n  test:\n    image: foo\n    build:\n      extra_hosts:\n        "example.com": "1.2.3.4"\n',
      "services:\n  test:\n    build:\n      extra_hosts:\n        - localhost=127.0.0.1\n        - example.com=1.2.3.4\n        - example.com=4.3.2.1\n",
      "services:\n  test:\n    image: foo\n    build:\n      extra_hosts:\n        - example.com=1.2.3.4\n        - localhost=127.0.0.1\n        - example.com=4.3.2.1\n",
    );
  });
});

describe("override/merge_labels_test.go (the build.labels tests)", () => {
  test("Test_mergeYamlBuildLabelsSequence", () => {
    assertMerge(
      "services:\n  test:\n    image: foo\n    build:\n      labels:\n        - FOO=BAR\n",
      "services:\n  test:\n    build:\n      labels:\n        - QIX=ZOT\n        - EMPTY=\n        - NIL\n",
      "services:\n  test:\n    image: foo\n    build:\n      labels:\n        - FOO=BAR\n        - QIX=ZOT\n        - EMPTY=\n        - NIL\n",
    );
  });

  test("Test_mergeYamlBuildLabelsMapping", () => {
    assertMerge(
      "services:\n  test:\n    image: foo\n    build:\n      labels:\n        FOO: BAR\n",
      'services:\n  test:\n    build:\n      labels:\n        EMPTY: ""\n        NIL: null\n        QIX: ZOT\n',
      "services:\n  test:\n    image: foo\n    build:\n      labels:\n        - FOO=BAR\n        - EMPTY=\n        - NIL\n        - QIX=ZOT\n",
    );
  });

  test("Test_mergeYamlBuildLabelsMixed", () => {
    assertMerge(
      "services:\n  test:\n    image: foo\n    build:\n      labels:\n        FOO: BAR\n",
      "services:\n  test:\n    build:\n      labels:\n        - QIX=ZOT\n",
      "services:\n  test:\n    image: foo\n    build:\n      labels:\n        - FOO=BAR\n        - QIX=ZOT\n",
    );
  });

  test("Test_mergeYamlBuildLabelsNumber", () => {
    assertMerge(
      "services:\n  test:\n    build:\n      labels:\n        FOO: 1\n",
      "services:\n  test:\n    build:\n      labels:\n        FOO: 3\n",
      "services:\n  test:\n    build:\n      labels:\n        - FOO=3\n",
    );
  });
});

describe("override/merge_ulimits_test.go, merge_profiles_test.go, merge_test.go, uncity_test.go", () => {
  test("Test_mergeYamlUlimits (build.ulimits): entries merge key by key, and the result must give soft and hard", () => {
    // Upstream's table is the service's ulimits, merged alone, where a
    // later entry replaces the earlier one whole (mergeUlimit).
    // build.ulimits has no such rule in compose-go: its entries are
    // mappings merged key by key, and the loader then checks the merged
    // file against the compose-spec schema, which wants soft and hard
    // both. So their override, loaded, fails on nproc ({soft} over a
    // number), and without nproc, locks keeps the base's soft limit.
    const base =
      "services:\n  test:\n    image: foo\n    build:\n      ulimits:\n        nofile: \n            soft: 20000\n            hard: 40000\n        nproc: 65535\n        locks: \n            soft: 20000\n            hard: 40000\n";
    const override =
      "services:\n  test:\n    image: foo\n    build:\n      ulimits:\n        nofile: \n            soft: 10000\n            hard: 40000\n        nproc: \n            soft: 65535\n        locks:\n            hard: 65535\n";
    assertContains(
      loadError({ "base.yaml": base, "override.yaml": override }, { files: ["base.yaml", "override.yaml"] }),
      "services.test.build.ulimits.nproc missing property 'hard'",
    );
    const p = load(
      { "base.yaml": base, "override.yaml": override.replace("        nproc: \n            soft: 65535\n", "") },
      { files: ["base.yaml", "override.yaml"] },
    );
    assert.deepEqual(buildOf(p, "test").ulimits, ["nofile=10000:40000", "nproc=65535", "locks=20000:65535"]);
  });

  test("TestMergeProfilesUnicity: profiles are a set", () => {
    const p = load(
      {
        "base.yaml": "services:\n  test:\n    image: foo\n    profiles:\n      - profile1\n      - profile2\n",
        "override.yaml": "services:\n  test:\n    profiles:\n      - profile2\n      - profile3\n",
      },
      { files: ["base.yaml", "override.yaml"] },
    );
    assert.deepEqual(service(p, "test").profiles, ["profile1", "profile2", "profile3"]);
  });

  test("Test_mergeOverrides: a later scalar wins", () => {
    const p = load(
      { "base.yaml": "services:\n  test:\n    image: foo\n    scale: 1\n", "override.yaml": "services:\n  test:\n    image: bar\n    scale: 2\n" },
      { files: ["base.yaml", "override.yaml"] },
    );
    assert.equal(service(p, "test").image, "bar");
  });

  test("Test_EnvironmentUnicity (build.args): the last entry for a key wins", () => {
    const p = load(
      "services:\n  test:\n    image: foo\n    build:\n      args:\n        - FOO=BAR\n        - BAR=QIX\n        - QIX=\n        - ZOT\n        - FOO=ZOT\n        - QIX\n        - ZOT=\n",
      {
        env: {},
      },
    );
    // Upstream: [FOO=ZOT, BAR=QIX, QIX, ZOT=]; QIX has no value in the environment, so the build leaves it out.
    assert.deepEqual(buildOf(p, "test").args, { FOO: "ZOT", BAR: "QIX", ZOT: "" });
  });
});

describe("transform/build_test.go, transform/ssh_test.go, transform/external_test.go", () => {
  test("Test_transformBuild (single context string): build: PATH", () => {
    const p = load("services:\n  foo:\n    build: context_path\n");
    assert.equal(buildOf(p, "foo").context, join(p.directory, "context_path"));
  });

  test("Test_transformBuild (mapping without context): the project directory", () => {
    const p = load("services:\n  foo:\n    build:\n      dockerfile: foo.Dockerfile\n");
    assert.equal(buildOf(p, "foo").context, p.directory);
    assert.equal(buildOf(p, "foo").dockerfile, "foo.Dockerfile");
  });

  test("TestSSHConfig: default and ID=PATH", () => {
    const p = load("services:\n  foo:\n    build:\n      context: .\n      ssh: [default, foo=/bar]\n");
    assert.deepEqual(buildOf(p, "foo").ssh, { default: null, foo: "/bar" });
  });

  describe("an external secret in its forms is external (so a build cannot read it)", () => {
    const cases: Array<[string, string]> = [
      ["TestExternalNamed", "external: true\n    name: foo"],
      ["TestExternalUnnamed", "external: true"],
      ["TestExternalLegacy", "external:\n      name: foo"],
      ["TestExternalLegacyNamed", "external:\n      name: foo\n    name: foo"],
    ];
    for (const [name, body] of cases) {
      test(name, () => {
        const p = load(`services:\n  app:\n    build:\n      context: .\n      secrets: [test]\nsecrets:\n  test:\n    ${body}\n`);
        assert.equal(p.secrets["test"]!.external, true);
        assertContains(
          errorOf(() => optionsOf(p, "app")),
          'secret "test" is external',
        );
      });
    }
  });
});

describe("types/hostList_test.go (build.extra_hosts)", () => {
  for (const sep of ["=", ":"]) {
    describe(sep === "=" ? "TestHostsListEqual" : "TestHostsListComa", () => {
      const cases: Array<{ doc: string; input: string[]; out?: string; err?: string }> = [
        { doc: "IPv4", input: [`myhost${sep}192.168.0.1`], out: "myhost:192.168.0.1" },
        { doc: "Weird but permitted, IPv4 with brackets", input: [`myhost${sep}[192.168.0.1]`], out: "myhost:192.168.0.1" },
        { doc: "Host and domain", input: [`host.invalid${sep}10.0.2.1`], out: "host.invalid:10.0.2.1" },
        { doc: "IPv6", input: [`anipv6host${sep}2003:ab34:e::1`], out: "anipv6host:2003:ab34:e::1" },
        { doc: "IPv6, brackets", input: [`anipv6host${sep}[2003:ab34:e::1]`], out: "anipv6host:2003:ab34:e::1" },
        { doc: "IPv6 localhost", input: [`ipv6local${sep}::1`], out: "ipv6local:::1" },
        { doc: "IPv6 localhost, brackets", input: [`ipv6local${sep}[::1]`], out: "ipv6local:::1" },
        { doc: "host-gateway special case", input: [`host.docker.internal${sep}host-gateway`], out: "host.docker.internal:host-gateway" },
        {
          doc: "multiple inputs",
          input: [`myhost${sep}192.168.0.1`, `anipv6host${sep}[2003:ab34:e::1]`, `host.docker.internal${sep}host-gateway`],
          out: "anipv6host:2003:ab34:e::1 host.docker.internal:host-gateway myhost:192.168.0.1",
        },
        { doc: "bad host, colon", input: ["::::1"], err: "bad host name" },
        { doc: "bad host, eq", input: ["=::1"], err: "bad host name" },
        { doc: "both ipv4 and ipv6", input: ["foo:127.0.0.2", "foo:ff02::1"], out: "foo:127.0.0.2 foo:ff02::1" },
        { doc: "list of values", input: ["foo=127.0.0.2,127.0.0.3"], out: "foo:127.0.0.2 foo:127.0.0.3" },
      ];
      for (const c of cases) {
        test(c.doc, () => {
          const yaml = `services:\n  app:\n    build:\n      context: .\n      extra_hosts:\n${c.input.map((h) => `        - ${JSON.stringify(h)}\n`).join("")}`;
          if (c.err !== undefined) {
            // compose-go refuses these as it reads the file; so do we.
            assertContains(loadError(yaml), c.err);
            return;
          }
          // Upstream compares AsList(":"); the build gets the same pairs as host=ip.
          const want = c.out!.split(" ").map((h) => h.replace(":", "="));
          assert.deepEqual(hostsOf(load(yaml), "app"), want.sort());
        });
      }
    });
  }
});

describe("types/bytes_test.go (build.shm_size)", () => {
  const cases: Array<[string, string, string]> = [
    ["plain integer", "655360", "655360"],
    ["quoted string integer", '"655360"', "655360"],
    ["negative integer", "-1", "-1"],
    ["human readable 1g", '"1g"', "1073741824"],
    ["human readable 512m", '"512m"', "536870912"],
  ];
  for (const [name, yaml, bytes] of cases) {
    test(`TestUnitBytesUnmarshalYAML: ${name}`, () => {
      assert.equal(buildOf(load(`services:\n  app:\n    build:\n      context: .\n      shm_size: ${yaml}\n`), "app").shmSize, bytes);
    });
  }
  test("TestUnitBytesUnmarshalYAML_Invalid", () => {
    assertContains(loadError('services:\n  app:\n    build:\n      context: .\n      shm_size: "invalid"\n'), "shm_size");
  });
});

describe("types/labels_test.go, types/types_test.go", () => {
  test("TestDecodeLabel: a=b and a bare c", () => {
    assert.deepEqual(buildOf(load("services:\n  app:\n    build:\n      context: .\n      labels: [a=b, c]\n"), "app").labels, { a: "b", c: "" });
  });

  test("TestNewMapping: a bare key is an empty label but an unset arg", () => {
    const p = load("services:\n  app:\n    build:\n      context: .\n      labels: [FOO=BAR, ZOT=, QIX]\n      args: [FOO=BAR, ZOT=, QIX]\n");
    assert.deepEqual(buildOf(p, "app").labels, { FOO: "BAR", ZOT: "", QIX: "" });
    assert.deepEqual(buildOf(p, "app").args, { FOO: "BAR", ZOT: "" });
  });

  test("TestMarshalBuild_DockerfileInline: blank lines and comments of an inline Dockerfile are kept", () => {
    const p = load(
      "services:\n  app:\n    build:\n      dockerfile_inline: |\n        FROM alpine\n\n        # echo the env\n        RUN env\n\n        ENTRYPOINT /bin/echo\n",
    );
    assert.equal(buildOf(p, "app").dockerfileInline, "FROM alpine\n\n# echo the env\nRUN env\n\nENTRYPOINT /bin/echo\n");
  });
});

describe("types/project_test.go (profiles and the services compose build picks)", () => {
  // makeProject(), every service given a build.
  const yaml = [
    "services:",
    "  service_1:",
    "    build: .",
    "  service_2:",
    "    build: .",
    "    profiles: [foo]",
    "    depends_on: {service_1: {required: true}}",
    "  service_3:",
    "    build: .",
    "    profiles: [bar]",
    "    depends_on: {service_2: {required: true}}",
    "  service_4:",
    "    build: .",
    "    profiles: [zot]",
    "    depends_on: {service_2: {required: false}}",
    "  service_5:",
    "    build: .",
    "    profiles: [zot]",
    "  service_6:",
    "    build: .",
    "    links: [service_1]",
    "",
  ].join("\n");
  const active = (p: ReturnType<typeof load>): string[] => p.services.filter((s) => s.active).map((s) => s.name);

  test("Test_ApplyProfiles: profile foo turns on service_2; naming service_4 builds it", () => {
    const p = load(yaml, { profiles: ["foo"] });
    assert.deepEqual(active(p), ["service_1", "service_2", "service_6"]);
    assert.deepEqual(
      planCompose(p, ["service_4"]).map((s) => s.name),
      ["service_4"],
    );
  });

  test("Test_NoProfiles: without a profile only the services without one", () => {
    const p = load(yaml);
    assert.deepEqual(active(p), ["service_1", "service_6"]);
    assert.deepEqual(
      planCompose(p, undefined).map((s) => s.name),
      ["service_1", "service_6"],
    );
  });

  test("Test_ForServices: with its dependencies, service_2 brings service_1; service_6 its link", () => {
    // Upstream builds this project by hand, so service_6's link is not a
    // dependency there. Loaded from a file, compose-go's normalize makes
    // every link a depends_on entry (TestNormalizeImplicitDependencies), so
    // here service_1 comes along with service_6.
    const p = load(yaml, { profiles: ["foo"] });
    assert.deepEqual(
      planCompose(p, ["service_2"], { withDependencies: true }).map((s) => s.name),
      ["service_1", "service_2"],
    );
    assert.deepEqual(
      planCompose(p, ["service_6"], { withDependencies: true }).map((s) => s.name),
      ["service_1", "service_6"],
    );
  });

  test("Test_ForServicesIgnoreDependencies: without --with-dependencies only the named ones", () => {
    const p = load(yaml, { profiles: ["foo"] });
    assert.deepEqual(
      planCompose(p, ["service_2"]).map((s) => s.name),
      ["service_2"],
    );
    assert.deepEqual(
      planCompose(p, ["service_2", "service_3"]).map((s) => s.name),
      ["service_2", "service_3"],
    );
  });
});
