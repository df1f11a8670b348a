/**
 * compose-go's loader tests, the cases that decide what a build gets, as
 * ours: their inputs and expected results, our words. From
 * compose-spec/compose-go at e70e961c3a3acebf0800b882f1afb3dbf1fb74a2:
 * loader/loader_test.go, loader/tests/*_test.go, loader/extends_test.go,
 * loader/include_test.go, loader/reset_test.go, loader/merge_reset_test.go,
 * loader/normalize_test.go, loader/paths_test.go, loader/validate_test.go,
 * loader/omitEmpty_test.go, loader/loader_yaml_test.go,
 * loader/mapstructure_test.go and schema/schema_test.go (each test names
 * the upstream test it carries). Their testdata/ files are written out here
 * with the same layout.
 *
 * Where an upstream test checks a service key that a build does not use
 * (environment, hostname, container_name, command, ports, ...), the case is
 * carried over with the build key of the same compose-go type instead
 * (build.args is the same MappingWithEquals as environment, build.labels
 * the same Labels, build.extra_hosts the same HostsList, build.ulimits the
 * same UlimitsConfig, image for container_name). The cases that are only
 * about such keys are left out; the report lists them.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { planCompose } from "../../src/compose/build.js";
import { assertContains, buildOf, composeDir, errorOf, hostsOf, load, loadError, loadIn, optionsOf, service } from "../helpers/compose.js";

describe("loader/loader_test.go", () => {
  test("TestInvalidTopLevelObjectType: a top level that is not a mapping", () => {
    for (const text of ["1", '"hello"', '["hello"]']) assertContains(loadError(text), "top-level object must be a mapping");
  });

  test("TestNonStringKeys: keys that are not strings, at the top, in services, in a build's args", () => {
    assertContains(loadError("123:\n  foo:\n    image: busybox\n"), "non-string key at top level: 123");
    assertContains(loadError("services:\n  foo:\n    image: busybox\n  123:\n    image: busybox\n"), "non-string key in services: 123");
    // Upstream: environment: {1: FOO}; build.args is the same type.
    assertContains(
      loadError("services:\n  dict-env:\n    build:\n      context: .\n      args:\n        1: FOO\n"),
      "non-string key in services.dict-env.build.args: 1",
    );
  });

  test("TestV1Unsupported: a version 1 file (services at the top level) does not load", () => {
    errorOf(() => load("foo:\n  image: busybox\n"));
  });

  test("TestNonMappingObject: services, and each service, must be mappings", () => {
    assertContains(loadError("name: non-mapping-object\nservices:\n  - foo:\n      image: busybox\n"), "services must be a mapping");
    assertContains(loadError("name: non-mapping-object\nservices:\n  foo: busybox\n"), "services.foo must be a mapping");
  });

  test("TestNonStringImage: image must be a string", () => {
    assertContains(loadError('name: non-mapping-object\nservices:\n  foo:\n    image: ["busybox", "latest"]\n'), "services.foo.image must be a string");
  });

  test("TestLoadWithEnvironment: args as a mapping and as a list; a bare key takes the environment's value, or is left out", () => {
    const p = load(
      [
        "name: load-with-environment",
        "services:",
        "  dict-env:",
        "    build:",
        "      context: .",
        "      args:",
        '        FOO: "1"',
        "        BAR: 2",
        "        GA: 2.5",
        '        BU: ""',
        "        ZO:",
        "        MEU:",
        "  list-env:",
        "    build:",
        "      context: .",
        "      args:",
        "        - FOO=1",
        "        - BAR=2",
        "        - GA=2.5",
        "        - BU=",
        "        - ZO",
        "        - MEU",
        "",
      ].join("\n"),
      { env: { MEU: "Shadoks" } },
    );
    // Upstream keeps ZO as a nil environment entry; for build args compose-go's normalize drops an unresolved one.
    const want = { FOO: "1", BAR: "2", GA: "2.5", BU: "", MEU: "Shadoks" };
    assert.deepEqual(buildOf(p, "dict-env").args, want);
    assert.deepEqual(buildOf(p, "list-env").args, want);
  });

  test("TestLoadEnvironmentWithBoolean: boolean values are their text", () => {
    const p = load("name: b\nservices:\n  dict-env:\n    build:\n      context: .\n      args:\n        FOO: true\n        BAR: false\n");
    assert.deepEqual(buildOf(p, "dict-env").args, { FOO: "true", BAR: "false" });
  });

  test("TestInvalidEnvironmentValue: a list as an arg's value", () => {
    assertContains(
      loadError('name: i\nservices:\n  dict-env:\n    build:\n      context: .\n      args:\n        FOO: ["1"]\n'),
      "services.dict-env.build.args.FOO must be a boolean, null, number or string",
    );
  });

  test("TestInvalidEnvironmentObject: args as a plain string", () => {
    assertContains(
      loadError('name: i\nservices:\n  dict-env:\n    build:\n      context: .\n      args: "FOO=1"\n'),
      "services.dict-env.build.args must be a mapping",
    );
  });

  test("TestLoadWithEnvironmentInterpolation: $VAR, ${VAR}, unset and defaults in labels; a ${...} in a comment is not read", () => {
    const p = load(
      [
        "# This is a comment, so using variable syntax here ${SHOULD_NOT_BREAK} parsing",
        "name: load-with-environment-interpolation",
        "services:",
        "  test:",
        "    build:",
        "      context: .",
        "      labels:",
        "        - home1=$HOME",
        "        - home2=${HOME}",
        "        - nonexistent=$NONEXISTENT",
        "        - default=${NONEXISTENT-default}",
        "",
      ].join("\n"),
      { env: { HOME: "/home/foo", FOO: "foo" } },
    );
    assert.deepEqual(buildOf(p, "test").labels, { home1: "/home/foo", home2: "/home/foo", nonexistent: "", default: "default" });
  });

  test("TestLoadWithInterpolationCastFull: interpolated booleans and sizes are cast (the build section's keys of that table)", () => {
    const p = load(
      [
        "name: load-with-interpolation-cast-full",
        "services:",
        "  web:",
        "    build:",
        "      context: .",
        "      privileged: $thebool",
        "      shm_size: ${thesize}",
        "      secrets: [super]",
        "secrets:",
        "  super:",
        "    external: $thebool",
        "",
      ].join("\n"),
      { env: { theint: "555", thefloat: "3.14", thebool: "true", theduration: "60s", thesize: "2gb" } },
    );
    assert.equal(p.secrets["super"]!.external, true);
    const b = buildOf(p, "web");
    assert.deepEqual(b.entitlements, ["security.insecure"]);
    assert.equal(b.shmSize, String(2 * 1024 * 1024 * 1024));
  });

  test("TestLoadWithInterpolationCastFull (ulimits): interpolated ulimits", () => {
    // Upstream casts services.*.ulimits only; an interpolated build.ulimits
    // value fails compose-go's transform ("invalid type string"). We read
    // the number, as the service-level key is read: kept on purpose.
    const p = load(
      "name: c\nservices:\n  web:\n    build:\n      context: .\n      ulimits:\n        nproc: $theint\n        nofile:\n          hard: $theint\n          soft: $theint\n",
      {
        env: { theint: "555" },
      },
    );
    assert.deepEqual(buildOf(p, "web").ulimits, ["nproc=555", "nofile=555:555"]);
  });

  test("TestUnsupportedProperties: keys a build does not use (links, pid) load", () => {
    const p = load(
      "name: test\nservices:\n  web:\n    image: web\n    build:\n     context: ./web\n    links:\n      - db\n    pid: host\n  db:\n    image: db\n    build:\n     context: ./db\n",
    );
    assert.equal(buildOf(p, "db").context, join(p.directory, "db"));
  });

  test("TestDecodeErrors: a tab in the indentation", () => {
    assertContains(loadError("name: test\nservices:\n  web:\n    image: nginx\n\tbuild: ."), "found a tab character that violates indentation");
  });

  test("TestBuildProperties: build: . and a mapping; the Dockerfile defaults to Dockerfile; shm_size in units", () => {
    const p = load(
      "name: test\nservices:\n  web:\n    image: web\n    build: .\n    links:\n      - db\n  db:\n    image: db\n    build:\n     context: ./db\n     shm_size: 2gb\n",
    );
    const web = buildOf(p, "web");
    assert.equal(web.context, p.directory);
    assert.equal(web.dockerfile, "Dockerfile");
    const db = buildOf(p, "db");
    assert.equal(db.context, join(p.directory, "db"));
    assert.equal(db.dockerfile, "Dockerfile");
    assert.equal(optionsOf(p, "db").frontendAttrs?.["shm-size"], String(2 * 1024 * 1024 * 1024));
  });

  test("TestLoadExtraHostsMap: extra_hosts as a mapping", () => {
    const p = load(
      'name: h\nservices:\n  web:\n    build:\n      context: .\n      extra_hosts:\n        "zulu": "162.242.195.82"\n        "alpha": "50.31.209.229"\n',
    );
    assert.deepEqual(hostsOf(p, "web"), ["alpha=50.31.209.229", "zulu=162.242.195.82"]);
  });

  test("TestLoadExtraHostsList: extra_hosts as a list, a host named twice keeps both addresses", () => {
    const p = load(
      'name: h\nservices:\n  web:\n    build:\n      context: .\n      extra_hosts:\n        - "alpha:50.31.209.229"\n        - "zulu:127.0.0.2"\n        - "zulu:ff02::1"\n',
    );
    assert.deepEqual(hostsOf(p, "web"), ["alpha=50.31.209.229", "zulu=127.0.0.2", "zulu=ff02::1"]);
  });

  test("TestLoadInvalidIsolation: a service's isolation is not checked by the loader", () => {
    const p = load("name: load-invalid-isolation\nservices:\n  foo:\n    image: busybox\n    isolation: invalid\nconfigs:\n  super:\n    external: true\n");
    assert.equal(p.services.length, 1);
  });

  test("TestLoadSecretInvalidExternalNameAndNameCombination: name and external.name together", () => {
    assertContains(
      loadError("name: s\nsecrets:\n  external_secret:\n    name: user_specified_name\n    external:\n      name: external_name\n"),
      "secrets.external_secret: name and external.name conflict; only use name",
    );
  });

  test("TestComposeFileWithVersion: the obsolete version key is accepted; build: PATH is a context", () => {
    const p = load({
      "compose.yaml":
        'version: "2"\nname: compose-test-with-version\nservices:\n  web:\n    build: ./Dockerfile\n  other:\n    image: busybox:1.31.0-uclibc\n    command: top\n',
      "Dockerfile/Dockerfile": "FROM scratch\n",
    });
    assert.equal(buildOf(p, "web").context, join(p.directory, "Dockerfile"));
  });

  test("TestLoadWithExtendsWithContextUrl: a remote context from an extended file is left as it is", () => {
    const p = load({
      "compose.yaml":
        "name: compose-test-extends-with-context-url\nservices:\n  importer-with-https-url:\n    extends:\n      file: compose-test-extends-with-context-url-imported.yaml\n      service: imported-with-https-url\n",
      "compose-test-extends-with-context-url-imported.yaml":
        "services:\n  imported-with-https-url:\n    build:\n      context: https://github.com/docker/compose.git\n",
    });
    const b = buildOf(p, "importer-with-https-url");
    assert.equal(b.context, "https://github.com/docker/compose.git");
    assert.equal(b.dockerfile, "Dockerfile");
  });

  test("TestLoadNoSSHInBuildConfig: no ssh", () => {
    assert.deepEqual(buildOf(load("name: n\nservices:\n  test:\n    build:\n      context: .\n"), "test").ssh, {});
  });

  test("TestLoadSSHWithoutValueInBuildConfig: ssh: with no value", () => {
    assertContains(loadError("name: n\nservices:\n  test:\n    build:\n      context: .\n      ssh:\n"), "services.test.build.ssh must be a mapping");
  });

  test("TestLoadLegacyBoolean: yes is a YAML 1.1 boolean compose still reads (build.no_cache for init)", () => {
    assert.equal(buildOf(load("name: l\nservices:\n  test:\n    build:\n      context: .\n      no_cache: yes\n"), "test").noCache, true);
  });

  test("TestLoadSSHWithDefaultValueInBuildConfig: ssh: [default]", () => {
    assert.deepEqual(buildOf(load("name: n\nservices:\n  test:\n    build:\n      context: .\n      ssh: [default]\n"), "test").ssh, { default: null });
  });

  test("TestLoadSSHWithKeyValueInBuildConfig: a relative key path is the project directory's", () => {
    const p = load("name: n\nservices:\n  test:\n    build:\n      context: .\n      ssh:\n        key1: value1\n");
    assert.deepEqual(buildOf(p, "test").ssh, { key1: join(p.directory, "value1") });
  });

  test("TestLoadSSHWithKeysValuesInBuildConfig: the list form with ids and default", () => {
    const p = load("name: n\nservices:\n  test:\n    build:\n      context: .\n      ssh:\n        - key1=value1\n        - key2=value2\n        - default\n");
    assert.deepEqual(buildOf(p, "test").ssh, { key1: join(p.directory, "value1"), key2: join(p.directory, "value2"), default: null });
  });

  describe("TestProjectNameInterpolation", () => {
    test("project name simple interpolation", () => {
      const p = load("name: interpolated\nservices:\n  web:\n    image: ${COMPOSE_PROJECT_NAME}-web\n    build: .\n");
      assert.equal(service(p, "web").image, "interpolated-web");
    });
    test("project name interpolation with override: the last file's name counts for every file", () => {
      const p = load(
        {
          "a.yaml": "name: interpolated\nservices:\n  web:\n    image: ${COMPOSE_PROJECT_NAME}-web\n    build: .\n",
          "b.yaml": "name: overrided\nservices:\n  db:\n    image: ${COMPOSE_PROJECT_NAME}-db\n    build: .\n",
          "c.yaml": "services:\n  proxy:\n    image: ${COMPOSE_PROJECT_NAME}-proxy\n    build: .\n",
        },
        { files: ["a.yaml", "b.yaml", "c.yaml"] },
      );
      assert.deepEqual(
        p.services.map((s) => s.image),
        ["overrided-web", "overrided-db", "overrided-proxy"],
      );
    });
    test("project name override: -p wins over name:", () => {
      const p = load("name: another_name\nservices:\n  web:\n    image: ${COMPOSE_PROJECT_NAME}-web\n    build: .\n", { projectName: "interpolated" });
      assert.equal(service(p, "web").image, "interpolated-web");
    });
  });

  test("TestLoadServiceExtension: a service named extension with an x- key", () => {
    const p = load("name: test\nservices:\n  extension:\n    image: web\n    x-foo: bar\n");
    assert.equal(service(p, "extension").image, "web");
  });

  test("TestInvalidProjectNameType: name: 123", () => {
    assertContains(loadError("name: 123\nservices:\n  a:\n    build: .\n"), "name must be a string");
  });

  test("TestXService: a service may be named x-foo", () => {
    const p = load(
      "name: 'test-x-service'\nservices:\n  x-foo:\n    image: busybox\n    build:\n      context: .\n      secrets: [x-secret]\nsecrets:\n  x-secret:\n    external: true\n",
    );
    assert.deepEqual(
      p.services.map((s) => s.name),
      ["x-foo"],
    );
    assert.deepEqual(Object.keys(p.secrets), ["x-secret"]);
  });

  describe("TestLoadWithInclude", () => {
    const files = {
      "compose.yaml": [
        "name: 'test-include'",
        "include:",
        "  - path: ./testdata/subdir/compose-test-extends-imported.yaml",
        "    env_file: ./testdata/subdir/extra.env",
        "services:",
        "  foo:",
        "    image: busybox",
        "    depends_on:",
        "      - imported",
        "",
      ].join("\n"),
      // Upstream sets container_name: ${SOURCE:-imported}; the image's tag stands in.
      "testdata/subdir/compose-test-extends-imported.yaml": "services:\n  imported:\n    image: nginx:${SOURCE:-imported}\n    build: .\n",
      "testdata/subdir/extra.env": "SOURCE=extends\n",
    };
    test("the included file reads its env_file", () => {
      const p = load(files);
      assert.deepEqual(p.services.map((s) => s.name).sort(), ["foo", "imported"]);
      assert.equal(service(p, "imported").image, "nginx:extends");
      assert.equal(buildOf(p, "imported").context, join(p.directory, "testdata", "subdir"));
    });
    test("the shell's value wins over the env_file's", () => {
      assert.equal(service(load(files, { env: { SOURCE: "override" } }), "imported").image, "nginx:override");
    });
  });

  test("TestLoadWithIncludeCycle: a file that includes itself", () => {
    const msg = loadError(
      { "testdata/compose-include-cycle.yaml": "include:\n  - compose-include-cycle.yaml\n\nname: project\nservices:\n  foo:\n    image: foo\n" },
      {
        files: ["testdata/compose-include-cycle.yaml"],
      },
    );
    assertContains(msg, "include cycle detected");
  });

  test("TestLoadWithIncludeOverride: a later -f file overrides an included service", () => {
    const p = load(
      {
        "compose.yaml": "name: 'test-include-override'\ninclude:\n  - ./testdata/subdir/compose-test-extends-imported.yaml\n",
        "override.yaml": "# override\nservices:\n  imported:\n    image: overridden\n",
        "testdata/subdir/compose-test-extends-imported.yaml": "services:\n  imported:\n    image: nginx\n    build: .\n",
      },
      { files: ["compose.yaml", "override.yaml"] },
    );
    assert.equal(service(p, "imported").image, "overridden");
  });

  test("TestLoadDependsOnCycle: depends_on in a circle", () => {
    const msg = loadError(
      "name : depends-on-cycle\nservices:\n  service1:\n    image: service1\n    depends_on:\n      - service2\n  service2:\n    image: service2\n    depends_on:\n      - service3\n  service3:\n    image: service3\n    depends_on:\n      - service1\n",
    );
    assertContains(msg, "dependency cycle detected: service1 -> service2 -> service3 -> service1");
  });

  test("TestLoadDependsOnSelf: a service that depends on itself", () => {
    assertContains(
      loadError("name : depends-on-cycle\nservices:\n  service1:\n    image: service1\n    depends_on:\n      - service1\n"),
      "dependency cycle detected: service1 -> service1",
    );
  });

  test("TestLoadMulmtiDocumentYaml: a later document in the file overrides an earlier one", () => {
    const p = load("name: load-multi-docs\nservices:\n  test:\n    image: nginx:latest\n    build: .\n---\nservices:\n  test:\n    image: nginx:override\n\n");
    assert.equal(service(p, "test").image, "nginx:override");
  });

  describe("TestLoadProjectName", () => {
    const yaml = "services:\n  web:\n    image: ${COMPOSE_PROJECT_NAME}-web\n    build: .\n";
    test("no name at all (a directory name with no letter or digit): project name must not be empty", () => {
      assertContains(loadError({ "___/compose.yaml": yaml }, { files: ["___/compose.yaml"] }), "project name must not be empty");
    });
    test("from the options (-p): the name, COMPOSE_PROJECT_NAME and interpolation agree", () => {
      const p = load(yaml, { projectName: "testproject" });
      assert.equal(p.name, "testproject");
      assert.equal(p.environment["COMPOSE_PROJECT_NAME"], "testproject");
      assert.equal(service(p, "web").image, "testproject-web");
    });
  });

  test("TestLoadUnitBytes: sizes as -1 and with units (the same UnitBytes as build.shm_size)", () => {
    const p = load(
      "name: load-unit-bytes\nservices:\n  test1:\n    build:\n      context: .\n      shm_size: -1\n  test2:\n    build:\n      context: .\n      shm_size: 640kb\n",
    );
    assert.equal(buildOf(p, "test1").shmSize, "-1");
    assert.equal(optionsOf(p, "test2").frontendAttrs?.["shm-size"], String(640 * 1024));
  });

  test("TestBuildUlimits: a single value and soft/hard", () => {
    const p = load(
      "name: test-build-ulimits\nservices:\n  test:\n    build:\n      context: .\n      ulimits:\n        nproc: 65535\n        nofile:\n          soft: 20000\n          hard: 40000\n",
    );
    assert.deepEqual(buildOf(p, "test").ulimits, ["nproc=65535", "nofile=20000:40000"]);
  });

  test("TestServiceNameWithDots: service names with dots", () => {
    assert.equal(buildOf(load("name: d\nservices:\n  test.a.b.c:\n    image: foo\n    build: .\n"), "test.a.b.c").context.length > 0, true);
  });

  test("TestLoadWithEmptyFile: an empty override file changes nothing", () => {
    const p = load(
      { "compose.yaml": "name: test-with-empty-file\nservices:\n  test:\n    image: foo\n", "override.yaml": "" },
      { files: ["compose.yaml", "override.yaml"] },
    );
    assert.equal(p.name, "test-with-empty-file");
    assert.equal(service(p, "test").image, "foo");
  });

  describe("TestWithSelectedServicesOption (the services compose build is given)", () => {
    const yaml = "name: test\nservices:\n  web:\n    build: .\n  api:\n    build: .\n  worker:\n    build: .\n";
    const names = (p: ReturnType<typeof load>, wanted: string[] | undefined, withDependencies = false): string[] =>
      planCompose(p, wanted, { withDependencies }).map((s) => s.name);
    test("empty list keeps all services", () => {
      assert.deepEqual(names(load(yaml), undefined), ["web", "api", "worker"]);
    });
    test("restricts project to selected services", () => {
      assert.deepEqual(names(load(yaml), ["web"]), ["web"]);
    });
    test("includes dependencies of selected services (--with-dependencies)", () => {
      const p = load("name: test\nservices:\n  web:\n    build: .\n    depends_on:\n      - api\n  api:\n    build: .\n  worker:\n    build: .\n");
      assert.deepEqual(names(p, ["web"], true), ["web", "api"]);
    });
    test("re-activates a profile-disabled service when selected", () => {
      const p = load("name: test\nservices:\n  web:\n    build: .\n  debug:\n    build: .\n    profiles:\n      - debug\n");
      assert.deepEqual(names(p, ["debug"]), ["debug"]);
    });
  });

  test("TestLoadExtendsMultipleFiles: a base's context is its file's directory; a base without one gets the project's", () => {
    const p = load({
      "a/compose.yaml": "services:\n  a:\n    build: .\n",
      "b/compose.yaml": "services:\n  b:\n    build:\n      target: fake\n",
      "compose.yaml":
        "services:\n  a:\n    extends:\n      file: ./a/compose.yaml\n      service: a\n  b:\n    extends:\n      file: ./b/compose.yaml\n      service: b\n",
    });
    assert.equal(buildOf(p, "a").context, join(p.directory, "a"));
    assert.equal(buildOf(p, "b").context, p.directory);
  });

  test("TestLoadExtends: a service in the same file; own keys win", () => {
    // Upstream: the base's command is inherited; a build target stands in.
    const p = load(
      "name: load-extends\nservices:\n  foo:\n    image: busybox\n    extends: bar\n  bar:\n    image: alpine\n    build:\n      context: .\n      target: echo\n",
    );
    assert.equal(service(p, "foo").image, "busybox");
    assert.equal(buildOf(p, "foo").target, "echo");
  });

  test("TestLoadExtendsWihReset: !reset in the extending service drops the base's value", () => {
    const p = load(
      "name: load-extends\nservices:\n  foo:\n    extends:\n      service: bar\n    build:\n      tags: !reset []\n  bar:\n    image: alpine\n    build:\n      context: .\n      tags: [reg/bar:1]\n",
    );
    assert.deepEqual(buildOf(p, "foo").tags, []);
    assert.deepEqual(buildOf(p, "bar").tags, ["reg/bar:1"]);
  });

  test("TestLoadExtensions: x- keys at the top, in a service, its build and its depends_on", () => {
    const p = load(
      [
        "name: load-extensions",
        "x-project: project",
        "configs:",
        "  x-config-name:",
        "    external: true",
        "    x-config-ext: config",
        "services:",
        "  another:",
        "    image: busybox",
        "    depends_on:",
        "      foo:",
        "        condition: service_started",
        "        x-depends-on: depends",
        "  foo:",
        "    image: busybox",
        "    x-foo: bar",
        "    build:",
        "      context: .",
        "      x-build: yes",
        "",
      ].join("\n"),
    );
    assert.deepEqual(service(p, "another").dependsOn, ["foo"]);
    assert.equal(buildOf(p, "foo").context, p.directory);
  });
});

describe("loader/tests/*_test.go", () => {
  test("build_test.go TestBuildConfig: the build section's keys", () => {
    const p = load(
      [
        "name: test",
        "services:",
        "  foo:",
        "    build:",
        "      context: ./dir",
        "      dockerfile: Dockerfile",
        "      args:",
        "        foo: bar",
        "      target: foo",
        "      network: foo",
        "      cache_from:",
        "        - foo",
        "        - bar",
        "      labels: [FOO=BAR]",
        "      additional_contexts:",
        "        foo: ./bar",
        "      tags:",
        "        - foo:v1.0.0",
        "        - docker.io/username/foo:my-other-tag",
        "      platforms:",
        "        - linux/amd64",
        "        - linux/arm64",
        "",
      ].join("\n"),
    );
    const b = buildOf(p, "foo");
    assert.equal(b.dockerfile, "Dockerfile");
    assert.deepEqual(b.args, { foo: "bar" });
    assert.equal(b.target, "foo");
    assert.equal(b.network, "foo");
    assert.deepEqual(b.cacheFrom, ["foo", "bar"]);
    assert.deepEqual(b.labels, { FOO: "BAR" });
    assert.deepEqual(b.additionalContexts, { foo: join(p.directory, "bar") });
    assert.deepEqual(b.tags, ["foo:v1.0.0", "docker.io/username/foo:my-other-tag"]);
    assert.deepEqual(b.platforms, ["linux/amd64", "linux/arm64"]);
  });

  test("build_test.go TestDockerfileInline", () => {
    const p = load('name: test\nservices:\n  bar:\n    build:\n      dockerfile_inline: |\n        FROM alpine\n        RUN echo "hello" > /world.txt\n');
    assert.equal(buildOf(p, "bar").dockerfileInline, 'FROM alpine\nRUN echo "hello" > /world.txt\n');
    assert.equal(buildOf(p, "bar").dockerfile, undefined, "no default Dockerfile beside an inline one");
  });

  test("build_test.go TestBuildSSH", () => {
    assert.deepEqual(buildOf(load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      ssh:\n        - default\n"), "foo").ssh, {
      default: null,
    });
  });

  test("build_test.go TestBuildSecrets: short and long forms (uid, gid and mode load; builds do not use them)", () => {
    const p = load(
      [
        "name: test",
        "services:",
        "  foo:",
        "    build:",
        "      context: .",
        "      secrets:",
        "        - source: secret1",
        "          target: /run/secrets/secret1",
        "        - source: secret2",
        "          target: my_secret",
        "          uid: '103'",
        "          gid: '103'",
        "          mode: 0440",
        "secrets:",
        "  secret1:",
        "    file: ./secret_data",
        "  secret2:",
        "    external: true",
        "",
      ].join("\n"),
    );
    assert.deepEqual(buildOf(p, "foo").secrets, [
      { source: "secret1", target: "/run/secrets/secret1" },
      { source: "secret2", target: "my_secret" },
    ]);
  });

  test("build_extra_test.go TestBuildCacheTo", () => {
    const p = load(
      "name: test\nservices:\n  foo:\n    build:\n      context: .\n      cache_to:\n        - user/app:cache\n        - type=local,dest=path/to/cache\n",
    );
    assert.deepEqual(buildOf(p, "foo").cacheTo, ["user/app:cache", "type=local,dest=path/to/cache"]);
  });

  test("build_extra_test.go TestBuildNoCache", () => {
    assert.equal(buildOf(load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      no_cache: true\n"), "foo").noCache, true);
  });

  test("build_extra_test.go TestBuildPull", () => {
    assert.equal(buildOf(load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      pull: true\n"), "foo").pull, true);
  });

  test("build_extra_test.go TestBuildShmSize", () => {
    const p = load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      shm_size: 128m\n");
    assert.equal(optionsOf(p, "foo").frontendAttrs?.["shm-size"], String(128 * 1024 * 1024));
  });

  test("build_extra_test.go TestBuildIsolation: we refuse what BuildKit would not apply", () => {
    // compose-go loads isolation: process, and docker compose does not hand
    // it to bake, so it is dropped without a word. Ours says so instead
    // (README: never dropped silently): kept on purpose.
    assertContains(
      loadError("name: test\nservices:\n  foo:\n    build:\n      context: .\n      isolation: process\n"),
      'build.isolation "process" is a Windows container setting',
    );
  });

  test("build_extra_test.go TestBuildPrivileged", () => {
    assert.deepEqual(buildOf(load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      privileged: true\n"), "foo").entitlements, [
      "security.insecure",
    ]);
  });

  test("build_extra_test.go TestBuildEntitlements", () => {
    const p = load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      entitlements:\n        - network.host\n        - security.insecure\n");
    assert.deepEqual(buildOf(p, "foo").entitlements, ["network.host", "security.insecure"]);
  });

  test("build_extra_test.go TestBuildAttestations: provenance and sbom as text", () => {
    const b = buildOf(load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      provenance: mode=max\n      sbom: true\n"), "foo");
    assert.equal(b.provenance, "mode=max");
    assert.equal(b.sbom, "true");
  });

  test("build_extra_test.go TestBuildNoCacheFilter: a string or a list", () => {
    const p = load(
      "name: test\nservices:\n  string:\n    build:\n      context: .\n      no_cache_filter: foo\n  list:\n    build:\n      context: .\n      no_cache_filter: [foo, bar]\n",
    );
    assert.deepEqual(buildOf(p, "string").noCacheFilter, ["foo"]);
    assert.deepEqual(buildOf(p, "list").noCacheFilter, ["foo", "bar"]);
  });

  test("extra_hosts_test.go TestExtraHostsMap", () => {
    const p = load(
      'name: test\nservices:\n  foo:\n    build:\n      context: .\n      extra_hosts:\n        alpha: "50.31.209.229"\n        zulu: "162.242.195.82"\n',
    );
    assert.deepEqual(hostsOf(p, "foo"), ["alpha=50.31.209.229", "zulu=162.242.195.82"]);
  });

  test("extra_hosts_test.go TestExtraHostsList", () => {
    const p = load(
      'name: test\nservices:\n  foo:\n    build:\n      context: .\n      extra_hosts:\n        - "alpha:50.31.209.229"\n        - "zulu:127.0.0.2"\n        - "zulu:ff02::1"\n',
    );
    assert.deepEqual(hostsOf(p, "foo"), ["alpha=50.31.209.229", "zulu=127.0.0.2", "zulu=ff02::1"]);
  });

  test("extra_hosts_test.go TestExtraHostsRepeated: several addresses after one =", () => {
    const p = load('name: test\nservices:\n  foo:\n    build:\n      context: .\n      extra_hosts:\n        - "myhost=0.0.0.1,0.0.0.2"\n');
    assert.deepEqual(hostsOf(p, "foo"), ["myhost=0.0.0.1", "myhost=0.0.0.2"]);
  });

  test("extra_hosts_test.go TestExtraHostsLongSyntax: a host mapped to a list", () => {
    const p = load(
      'name: test\nservices:\n  foo:\n    build:\n      context: .\n      extra_hosts:\n        myhost:\n          - "0.0.0.1"\n          - "0.0.0.2"\n',
    );
    assert.deepEqual(hostsOf(p, "foo"), ["myhost=0.0.0.1", "myhost=0.0.0.2"]);
  });

  test("labels_test.go TestServiceLabels: a mapping with a number and an empty value", () => {
    const p = load(
      'name: test\nservices:\n  foo:\n    build:\n      context: .\n      labels:\n        com.example.description: "Accounting webapp"\n        com.example.number: 42\n        com.example.empty-label:\n',
    );
    assert.deepEqual(buildOf(p, "foo").labels, { "com.example.description": "Accounting webapp", "com.example.number": "42", "com.example.empty-label": "" });
  });

  test("labels_test.go TestServiceLabelsListSyntax", () => {
    const p = load(
      'name: test\nservices:\n  foo:\n    build:\n      context: .\n      labels:\n        - "com.example.description=Accounting webapp"\n        - "com.example.number=42"\n        - "com.example.empty-label"\n',
    );
    assert.deepEqual(buildOf(p, "foo").labels, { "com.example.description": "Accounting webapp", "com.example.number": "42", "com.example.empty-label": "" });
  });

  test("ulimits_test.go TestUlimits", () => {
    const p = load(
      "name: test\nservices:\n  foo:\n    build:\n      context: .\n      ulimits:\n        nproc: 65535\n        nofile:\n          soft: 20000\n          hard: 40000\n",
    );
    assert.deepEqual(buildOf(p, "foo").ulimits, ["nproc=65535", "nofile=20000:40000"]);
  });

  test("secrets_test.go TestTopLevelSecrets: every form of a top-level secret loads", () => {
    const p = load(
      [
        "name: test",
        "services:",
        "  foo:",
        "    image: alpine",
        "secrets:",
        "  secret1:",
        "    file: ./secret_data",
        "    labels:",
        "      foo: bar",
        "  secret2:",
        "    external:",
        "      name: my_secret",
        "  secret3:",
        "    external: true",
        "  secret4:",
        "    name: bar",
        "    environment: BAR",
        "    x-bar: baz",
        "    x-foo: bar",
        "  secret5:",
        "    file: /abs/secret_data",
        "",
      ].join("\n"),
      { env: { BAR: "this is a secret" } },
    );
    assert.equal(p.secrets["secret1"]!.file, join(p.directory, "secret_data"));
    assert.equal(p.secrets["secret2"]!.external, true);
    assert.equal(p.secrets["secret3"]!.external, true);
    assert.equal(p.secrets["secret4"]!.environment, "BAR");
    assert.equal(p.secrets["secret5"]!.file, "/abs/secret_data");
  });

  test("secrets_test.go TestSecretEnvironmentResolution: an environment secret's value is the variable's", () => {
    const p = load("name: test\nservices:\n  foo:\n    build:\n      context: .\n      secrets: [secret]\nsecrets:\n  secret:\n    environment: MEU\n", {
      env: { GA: "BU", MEU: "Shadoks" },
    });
    assert.deepEqual(optionsOf(p, "foo").secrets, { secret: { env: "MEU" } });
    assert.equal(p.environment["MEU"], "Shadoks");
  });

  test("platform_test.go TestPlatform: the service's platform is what it is built for", () => {
    // docker compose (cmd/compose/options.go applyPlatforms) builds a
    // service with platform: and no build.platforms for that platform.
    const p = load("name: test\nservices:\n  foo:\n    image: alpine\n    platform: linux/amd64\n    build: .\n");
    assert.equal(service(p, "foo").platform, "linux/amd64");
    assert.deepEqual(buildOf(p, "foo").platforms, ["linux/amd64"]);
  });

  test("isolation_test.go TestIsolation: a service's isolation loads", () => {
    assert.equal(load("name: test\nservices:\n  foo:\n    image: alpine\n    isolation: process\n").services.length, 1);
  });

  test("image_test.go TestImage", () => {
    assert.equal(service(load("name: test\nservices:\n  foo:\n    image: redis\n"), "foo").image, "redis");
  });

  test("profiles_test.go TestProfiles: a service with profiles is active only when one is on", () => {
    const yaml = "name: test\nservices:\n  foo:\n    image: alpine\n    profiles:\n      - debug\n      - dev\n  bar:\n    image: alpine\n";
    assert.equal(service(load(yaml), "foo").active, false);
    assert.equal(service(load(yaml), "bar").active, true);
    const on = load(yaml, { profiles: ["debug"] });
    assert.equal(service(on, "foo").active, true);
    assert.deepEqual(service(on, "foo").profiles, ["debug", "dev"]);
  });

  test("depends_on_test.go TestDependsOnList", () => {
    const p = load(
      "name: test\nservices:\n  web:\n    image: alpine\n    depends_on:\n      - db\n      - redis\n  db:\n    image: postgres\n  redis:\n    image: redis\n",
    );
    assert.deepEqual(service(p, "web").dependsOn, ["db", "redis"]);
  });

  test("depends_on_test.go TestDependsOnObject", () => {
    const p = load(
      "name: test\nservices:\n  web:\n    image: alpine\n    depends_on:\n      db:\n        condition: service_healthy\n        restart: true\n      redis:\n        condition: service_started\n  db:\n    image: postgres\n  redis:\n    image: redis\n",
    );
    assert.deepEqual(service(p, "web").dependsOn, ["db", "redis"]);
  });

  test("depends_on_test.go TestDependsOnXService", () => {
    const p = load("name: test\nservices:\n  test:\n    image: test\n    depends_on:\n      - x-foo\n  x-foo:\n    image: foo\n");
    assert.deepEqual(service(p, "test").dependsOn, ["x-foo"]);
  });

  test("extensions_test.go TestTopLevelExtensions", () => {
    assert.equal(load("name: test\nservices:\n  foo:\n    image: alpine\nx-foo: bar\nx-bar: baz\nx-nested:\n  foo: bar\n  bar: baz\n").services.length, 1);
  });

  test("extensions_test.go TestServiceExtensions", () => {
    assert.equal(service(load("name: test\nservices:\n  foo:\n    image: alpine\n    x-bar: baz\n    x-foo: bar\n"), "foo").image, "alpine");
  });
});

/** loader/testdata/extends/ as upstream has it, with build keys where a case needs them. */
const EXTENDS_TESTDATA = {
  "testdata/extends/base.yaml": [
    "services:",
    "  base:",
    "    image: base",
    "",
    "  another:",
    "    extends: base",
    "",
    "  withUlimits:",
    "    image: test",
    "    build:",
    "      context: .",
    "      ulimits:",
    "        nproc: 65535",
    "        nofile:",
    "          soft: 20000",
    "          hard: 40000",
    "",
    "  with-build:",
    "    extends:",
    "      file: sibling.yaml",
    "      service: test",
    "",
    "  nil: #left intentionally empty",
    "",
  ].join("\n"),
  "testdata/extends/sibling.yaml": "services:\n  test:\n    build: .\n",
  "testdata/extends/nested.yaml": "services:\n  with-build:\n    extends:\n      file: sibling.yaml\n      service: test\n",
  "testdata/extends/depends_on.yaml": "services:\n  with_depends_on:\n    image: foo\n    depends_on:\n      - zot\n\n  zot:\n    image: hidden\n",
  // Upstream resets command; the build target stands in.
  "testdata/extends/reset.yaml":
    "services:\n  init:\n    image: alpine:latest\n    build:\n      context: .\n      target: sleep\n  base:\n    extends: { service: init }\n    build:\n      target: !reset\n",
  "testdata/extends/interpolated.yaml": "services:\n  foo:\n    image: bash\n    build:\n      context: .\n      args:\n        SRC: ${SOURCE:-/dev/null}\n",
};

describe("loader/extends_test.go", () => {
  test("TestExtends: services of another file, one extending another there", () => {
    const p = load({
      ...EXTENDS_TESTDATA,
      "compose.yaml": [
        "name: test-extends",
        "services:",
        "  test1:",
        "    extends:",
        "      file: testdata/extends/base.yaml",
        "      service: base",
        "    build:",
        "      target: test1",
        "  test2:",
        "    extends:",
        "      file: testdata/extends/base.yaml",
        "      service: base",
        "    build:",
        "      target: test2",
        "  test3:",
        "    extends:",
        "      file: testdata/extends/base.yaml",
        "      service: another",
        "    build:",
        "      target: test3",
        "",
      ].join("\n"),
    });
    for (const name of ["test1", "test2", "test3"]) {
      assert.equal(service(p, name).image, "base");
      assert.equal(buildOf(p, name).target, name);
    }
  });

  test("TestExtendsUlimits: a base's ulimits", () => {
    const p = load({
      ...EXTENDS_TESTDATA,
      "compose.yaml": "name: test-extends\nservices:\n  test:\n    extends:\n      file: testdata/extends/base.yaml\n      service: withUlimits\n",
    });
    assert.deepEqual(buildOf(p, "test").ulimits, ["nproc=65535", "nofile=20000:40000"]);
  });

  test("TestExtendsRelativePath: a context two files away stays that file's", () => {
    const p = load({
      ...EXTENDS_TESTDATA,
      "compose.yaml": "name: test-extends-port\nservices:\n  test:\n    extends:\n      file: testdata/extends/base.yaml\n      service: with-build\n",
    });
    assert.equal(buildOf(p, "test").context, join(p.directory, "testdata", "extends"));
  });

  test("TestExtendsNil: extending an empty service", () => {
    const p = load({
      ...EXTENDS_TESTDATA,
      "compose.yaml":
        "name: test-extends-port\nservices:\n  test:\n    image: test\n    extends:\n      file: testdata/extends/base.yaml\n      service: nil\n",
    });
    assert.equal(service(p, "test").image, "test");
  });

  test("TestExtendsWihtMissingService: extends with a file and no service", () => {
    assertContains(
      loadError({
        ...EXTENDS_TESTDATA,
        "compose.yaml": "name: test-extends-port\nservices:\n  test:\n    image: test\n    extends:\n      file: testdata/extends/base.yaml\n",
      }),
      "extends.test.service is required",
    );
  });

  test("TestIncludeWithExtends: an included file's extends", () => {
    const p = load({ ...EXTENDS_TESTDATA, "compose.yaml": "name: test-include-with-extends\ninclude:\n  - testdata/extends/nested.yaml\n" });
    assert.equal(buildOf(p, "with-build").context, join(p.directory, "testdata", "extends"));
  });

  test("TestLoadExtendsSameFile: a base that extends one in its own file keeps that file's paths", () => {
    const p = load({
      "sub/compose.yaml": "services:\n  base:\n    build:\n      context: ..\n  service:\n    extends: base\n    build:\n      target: target\n",
      "compose.yaml":
        "services:\n  out-base:\n    extends:\n      file: sub/compose.yaml\n      service: base\n  out-service:\n    extends:\n      file: sub/compose.yaml\n      service: service\n",
    });
    assert.equal(buildOf(p, "out-base").context, p.directory);
    assert.equal(buildOf(p, "out-service").context, p.directory);
    assert.equal(buildOf(p, "out-service").target, "target");
  });

  test("TestExtendsWithServiceRef (depends_on): a base's dependency must exist in the extending project", () => {
    const yaml =
      "name: test-extends_with_depends_on\nservices:\n  bar:\n    extends:\n      file: ./testdata/extends/depends_on.yaml\n      service: with_depends_on\n";
    assertContains(loadError({ ...EXTENDS_TESTDATA, "compose.yaml": yaml }), 'service "bar" depends on undefined service "zot"');
    const p = load({ ...EXTENDS_TESTDATA, "compose.yaml": yaml + "  zot:\n    image: zot\n" });
    assert.deepEqual(service(p, "bar").dependsOn, ["zot"]);
  });

  test("TestLoadExtendsDependsOn: !override in the extending service replaces the base's depends_on", () => {
    const p = load(
      "name: extends-depends_on\nservices:\n  service_a:\n    image: a\n    depends_on:\n      - service_c\n  \n  service_b:\n    extends: service_a\n    depends_on: !override\n      - service_a\n\n  service_c:\n    image: c",
    );
    assert.deepEqual(service(p, "service_b").dependsOn, ["service_a"]);
  });

  test("TestExtendsReset: a !reset inside the extended file applies there", () => {
    const p = load({
      ...EXTENDS_TESTDATA,
      "compose.yaml": "name: test-extends-reset\nservices:\n  test:\n    extends:\n      file: testdata/extends/reset.yaml\n      service: base\n",
    });
    assert.equal(buildOf(p, "test").target, undefined);
  });

  test("TestExtendsWithInterpolation: the extended file is interpolated", () => {
    const p = load({
      ...EXTENDS_TESTDATA,
      "compose.yaml": "name: test-extends-with-interpolation\nservices:\n  test:\n    extends: { file: testdata/extends/interpolated.yaml, service: foo }\n",
    });
    assert.deepEqual(buildOf(p, "test").args, { SRC: "/dev/null" });
  });
});

describe("loader/include_test.go", () => {
  test("TestLoadIncludeExtendsCombined: an included file that extends a file beside it", () => {
    const p = load(
      {
        "testdata/combined/compose.yaml": "include:\n  - path:\n      - dir/included.yaml\n\n",
        "testdata/combined/dir/extended.yaml": "services:\n  service:\n    build: .\n",
        "testdata/combined/dir/included.yaml": "services:\n  service:\n    extends:\n      file: extended.yaml\n      service: service\n",
      },
      { files: ["testdata/combined/compose.yaml"], projectName: "test-load-combined" },
    );
    assert.equal(buildOf(p, "service").context, join(p.directory, "dir"));
  });

  const imported = "services:\n  imported:\n    image: nginx:${SOURCE:-imported}\n    build: .\n";
  test("TestLoadWithMultipleInclude: the same service included twice is one service", () => {
    const p = load(
      {
        "compose.yaml": [
          "name: 'test-multi-include'",
          "include:",
          "  - path: ./testdata/subdir/compose-test-extends-imported.yaml",
          "    env_file: ./testdata/subdir/extra.env",
          "  - path: ./testdata/compose-include.yaml",
          "services:",
          "  foo:",
          "    image: busybox",
          "    depends_on:",
          "      - imported",
          "",
        ].join("\n"),
        "testdata/subdir/compose-test-extends-imported.yaml": imported,
        "testdata/subdir/extra.env": "SOURCE=extends\n",
        "testdata/compose-include.yaml":
          "include:\n    - path: ./subdir/compose-test-extends-imported.yaml\n\nservices:\n  bar:\n    image: bar\n    build:\n      context: .\n      args:\n        - FOO=BAR\n",
      },
      { env: { SOURCE: "override" } },
    );
    assert.equal(service(p, "imported").image, "nginx:override");
    assert.equal(p.services.filter((s) => s.name === "imported").length, 1);
  });

  test("TestLoadWithMultipleIncludeConflict: a service defined here and included merges, this file's !override winning", () => {
    const p = load(
      {
        "compose.yaml": [
          "name: 'test-multi-include'",
          "include:",
          "  - path: ./testdata/subdir/compose-test-extends-imported.yaml",
          "    env_file: ./testdata/subdir/extra.env",
          "  - path: ./testdata/compose-include.yaml",
          "    env_file: ./testdata/subdir/extra.env",
          "services:",
          "  bar:",
          "    image: busybox",
          "    build:",
          "      args: !override",
          "        - ZOT=QIX",
          "",
        ].join("\n"),
        "testdata/subdir/compose-test-extends-imported.yaml": imported,
        "testdata/subdir/extra.env": "SOURCE=extends\n",
        "testdata/compose-include.yaml":
          "include:\n    - path: ./subdir/compose-test-extends-imported.yaml\n\nservices:\n  bar:\n    image: bar\n    build:\n      context: .\n      args:\n        - FOO=BAR\n",
      },
      { env: { SOURCE: "override" } },
    );
    assert.equal(service(p, "bar").image, "busybox");
    assert.deepEqual(buildOf(p, "bar").args, { ZOT: "QIX" });
  });

  test("TestIncludeRelative: an included build: . is the included file's directory", () => {
    const p = load(
      {
        "testdata/include/compose.yaml": "include:\n  - path: included.yaml\n",
        "testdata/include/included.yaml": "services:\n  included:\n    build: .\n    volumes:\n      - ./:/mnt\n",
      },
      { files: ["testdata/include/compose.yaml"], projectName: "test-include-relative" },
    );
    assert.equal(buildOf(p, "included").context, p.directory);
  });

  test("TestLoadWithIncludeEnv: an include's env_file is seen only inside the include", () => {
    // Upstream: a bare environment entry VAR_NAME; interpolation in build args stands in.
    const p = load(
      {
        "compose.yml":
          "include:\n  - path:\n    - ./module/compose.yml\n    env_file:\n      - ./custom.env\nservices:\n  a:\n    build:\n      context: .\n      args:\n        VAR_NAME: ${VAR_NAME:-unset}\n",
        "custom.env": "VAR_NAME=value",
        "module/compose.yml":
          "services:\n  b:\n    build:\n      context: .\n      args:\n        VAR_NAME: ${VAR_NAME:-unset}\n  c:\n    build:\n      context: .\n      args:\n        VAR_NAME: ${VAR_NAME:-unset}\n",
      },
      { files: ["compose.yml"], projectName: "project" },
    );
    assert.deepEqual(buildOf(p, "a").args, { VAR_NAME: "unset" });
    assert.deepEqual(buildOf(p, "b").args, { VAR_NAME: "value" });
    assert.deepEqual(buildOf(p, "c").args, { VAR_NAME: "value" });
  });

  test("TestIncludeWithProjectDirectory: project_directory sets where the included paths start", () => {
    const p = load(
      {
        "testdata/include/project-directory.yaml": "include:\n  - project_directory: ../subdir\n    path: ./dir/compose.yaml",
        "testdata/include/dir/compose.yaml":
          "services:\n  service:\n    build:\n      dockerfile_inline: |\n        FROM busybox\n        COPY compose-test-extends-imported.yaml compose.yaml\n",
        "testdata/subdir/compose-test-extends-imported.yaml": "services: {}\n",
      },
      { files: ["testdata/include/project-directory.yaml"], projectName: "test-load-project-directory" },
    );
    assert.equal(buildOf(p, "service").context, join(p.directory, "..", "subdir"));
  });

  test("TestNestedIncludeAndExtends: an included file extends a file relative to the project directory it was given", () => {
    const p = load(
      {
        "compose.yml": "include:\n  - project_directory: .\n    path: dir/included.yaml\n",
        "dir/included.yaml": "services:\n  included:\n    extends:\n      file: dir/extended.yaml\n      service: extended\n",
        "dir/extended.yaml": "services:\n  extended:\n    image: alpine\n",
      },
      { files: ["compose.yml"], projectName: "project" },
    );
    assert.equal(service(p, "included").image, "alpine");
  });
});

describe("loader/reset_test.go and loader/merge_reset_test.go", () => {
  test("Test_DuplicateReset: a key written twice in one mapping", () => {
    assertContains(
      loadError("\nname: test\nservices:\n  foo:\n    image: hello\n    image: !reset hello world\n"),
      'line 6: mapping key "image" already defined at line 5',
    );
  });

  test("TestResetRemove: !reset {} drops a section of an earlier file", () => {
    const p = load(
      {
        "a.yaml": "name: test-reset\nservices:\n  app:\n    image: app\n    build:\n      context: .\n",
        "b.yaml": "services:\n  app:\n    build: !reset {}\n",
      },
      { files: ["a.yaml", "b.yaml"] },
    );
    assert.equal(service(p, "app").build, undefined);
  });

  test("TestOverrideReplace: !override replaces a section of an earlier file whole", () => {
    const p = load(
      {
        "a.yaml": "name: test-override\nservices:\n  app:\n    build:\n      context: .\n      dockerfile: other.Dockerfile\n      args: {A: '1'}\n",
        "b.yaml": "services:\n  app:\n    build: !override\n      context: ./sub\n",
      },
      { files: ["a.yaml", "b.yaml"] },
    );
    const b = buildOf(p, "app");
    assert.equal(b.context, join(p.directory, "sub"));
    assert.equal(b.dockerfile, "Dockerfile");
    assert.deepEqual(b.args, {});
  });

  describe("TestResetCycle", () => {
    const cases: Array<[string, string, string | undefined]> = [
      ["simple_alias_no_cycle", "name: test\nservices:\n  a: &a\n    image: alpine\n  a2: *a\n", undefined],
      ["simple_alias_reversed_no_cycle", "name: test\nservices:\n  a2: &a\n    image: alpine\n  a: *a\n", undefined],
      [
        "nested_merge_no_cycle",
        "name: test\nx-templates:\n  x-gluetun: &gluetun\n    environment: &gluetun_env\n      a: b\n  x-gluetun-pia: &gluetun_pia\n    <<: *gluetun\n  x-gluetun-env-pia: &gluetun_env_pia\n    <<: *gluetun_env\n  vp0:\n    <<: *gluetun_pia\n    environment:\n      <<: *gluetun_env_pia\n",
        undefined,
      ],
      [
        "multiple_services_common_config",
        "name: test\nx-common:\n  &common\n  restart: unless-stopped\n\nservices:\n  backend:\n    <<: *common\n    image: alpine:latest\n\n  backend-static:\n    <<: *common\n    image: alpine:latest\n\n  backend-worker:\n    <<: *common\n    image: alpine:latest\n",
        undefined,
      ],
      [
        "dotted_service_names_prefix_no_cycle",
        "name: test\nservices:\n  test.unit: &shared\n    image: alpine\n  test: *shared\n  test.other: *shared\n",
        undefined,
      ],
      [
        "direct_self_reference_cycle",
        "name: test\nx-healthcheck: &healthcheck\n  egress-service:\n    <<: *healthcheck\n",
        "cycle detected: node at path x-healthcheck.egress-service.egress-service references node at path x-healthcheck.egress-service",
      ],
    ];
    for (const [name, yaml, err] of cases) {
      test(name, () => {
        if (err === undefined) load(yaml);
        else assertContains(loadError(yaml), err);
      });
    }
  });

  const bomb = (branching: number, levels: number): string => {
    const names = "abcdefghijklmnop";
    let s = "name: test\nx-a: &a {k: v}\n";
    for (let i = 1; i < levels; i++)
      s += `x-${names[i]!}: &${names[i]!} [${Array<string>(branching)
        .fill(`*${names[i - 1]!}`)
        .join(", ")}]\n`;
    return s + "services:\n  svc:\n    image: alpine\n";
  };
  describe("TestAliasBombPrevented", () => {
    test("B3_N10_small_branching: either loads or is refused as aliasing, quickly", () => {
      try {
        load(bomb(3, 11));
      } catch (e) {
        assertContains((e as Error).message, "excessive aliasing");
      }
    });
    test("B9_N9_original_poc: refused", () => {
      assertContains(loadError(bomb(9, 10)), "excessive aliasing");
    });
  });

  test("TestAliasNodePreservation: nine levels of nine aliases are refused", () => {
    assertContains(loadError(bomb(9, 9)), "excessive aliasing");
  });

  test("TestLargeLegitimateFile: 400 services with 122 args each load", () => {
    let s = "name: test\nservices:\n";
    for (let i = 0; i < 400; i++) {
      s += `  svc${i}:\n    build:\n      context: .\n      args:\n`;
      for (let e = 0; e < 122; e++) s += `        KEY_${e}: val\n`;
    }
    const p = load(s);
    assert.equal(p.services.length, 400);
    assert.equal(Object.keys(buildOf(p, "svc399").args).length, 122);
  });

  const twoTagged =
    "name: test\nservices:\n  svc1:\n    build:\n      context: .\n      tags: [reg/a:1]\n  svc2:\n    build:\n      context: .\n      tags: [reg/b:1]\n";
  test("TestResetTagWithSharedAlias: a !reset inside a shared anchor applies at each use", () => {
    const p = load(
      {
        "a.yaml": twoTagged,
        "b.yaml":
          "x-reset-tags: &reset-tags\n  tags: !reset []\n\nservices:\n  svc1:\n    build:\n      <<: *reset-tags\n  svc2:\n    build:\n      <<: *reset-tags\n",
      },
      { files: ["a.yaml", "b.yaml"] },
    );
    assert.deepEqual(buildOf(p, "svc1").tags, []);
    assert.deepEqual(buildOf(p, "svc2").tags, []);
  });

  test("TestOverrideTagWithSharedAlias: a shared !override anchor replaces at each use", () => {
    const p = load(
      {
        "a.yaml": "name: test\nservices:\n  svc1:\n    build:\n      context: .\n      target: one\n  svc2:\n    build:\n      context: .\n      target: two\n",
        "b.yaml": "x-override: &ov !override {context: ./other}\n\nservices:\n  svc1:\n    build: *ov\n  svc2:\n    build: *ov\n",
      },
      { files: ["a.yaml", "b.yaml"] },
    );
    for (const n of ["svc1", "svc2"]) {
      assert.equal(buildOf(p, n).target, undefined);
      assert.equal(buildOf(p, n).context, join(p.directory, "other"));
    }
  });

  test("TestNestedAliasReset: a !reset two aliases down", () => {
    const p = load(
      {
        "a.yaml": "name: test\nservices:\n  svc:\n    build:\n      context: .\n      tags: [reg/a:1]\n",
        "b.yaml": "x-inner: &inner\n  tags: !reset []\n\nx-outer: &outer\n  <<: *inner\n\nservices:\n  svc:\n    build:\n      <<: *outer\n",
      },
      { files: ["a.yaml", "b.yaml"] },
    );
    assert.deepEqual(buildOf(p, "svc").tags, []);
  });

  test("TestDirectAliasWithReset: an alias of a !reset node", () => {
    const p = load(
      {
        "a.yaml": twoTagged,
        "b.yaml": "x-reset: &reset !reset []\n\nservices:\n  svc1:\n    build:\n      tags: *reset\n  svc2:\n    build:\n      tags: *reset\n",
      },
      { files: ["a.yaml", "b.yaml"] },
    );
    assert.deepEqual(buildOf(p, "svc1").tags, []);
    assert.deepEqual(buildOf(p, "svc2").tags, []);
  });

  describe("TestMergeKeyAliasTargets: << takes a mapping, or a sequence of mappings, by alias or inline", () => {
    const cases: Array<[string, string]> = [
      ["alias_to_mapping", "name: test\nx-base: &base\n  image: nginx\n  restart: unless-stopped\nservices:\n  s1:\n    <<: *base\n"],
      ["alias_to_sequence_of_mappings", "name: test\nx-list: &alist\n  - image: nginx\nservices:\n  s1:\n    <<: *alist\n"],
      [
        "alias_to_sequence_shared_across_services",
        "name: test\nx-list: &alist\n  - image: nginx\n    restart: unless-stopped\nservices:\n  s1:\n    <<: *alist\n  s2:\n    <<: *alist\n",
      ],
      ["inline_sequence_of_mappings", "name: test\nx-base: &base\n  image: nginx\nservices:\n  s1:\n    <<: [*base, {restart: unless-stopped}]\n"],
    ];
    for (const [name, yaml] of cases) test(name, () => assert.equal(service(load(yaml), "s1").image, "nginx"));
  });

  test("TestMergeKeyAliasToScalarRejected: << of a scalar", () => {
    assertContains(loadError('name: test\nx-scalar: &s "not-a-map"\nservices:\n  s1:\n    <<: *s\n'), "map merge requires map");
  });
});

describe("loader/normalize_test.go", () => {
  test("TestNormalizeNetworkNames (its build): null args take the environment's value or are dropped; the default Dockerfile", () => {
    const p = load(
      { "compose.yaml": "name: myProject\nservices:\n  foo:\n    build:\n      context: ./testdata\n      args:\n        FOO: null\n        ZOT: null\n" },
      { env: { FOO: "BAR" } },
    );
    const b = buildOf(p, "foo");
    assert.deepEqual(b.args, { FOO: "BAR" });
    assert.equal(b.dockerfile, "Dockerfile");
  });

  test("TestNormalizeDependsOn: network_mode service: and volumes_from add dependencies (what --with-dependencies follows)", () => {
    const p = load(
      "name: myProject\nservices:\n  foo:\n    build: .\n    depends_on:\n      bar:\n        condition: service_healthy\n        required: true\n        restart: true\n    network_mode: service:zot\n\n  bar:\n    build: .\n    volumes_from:\n      - zot\n      - container:xxx\n\n  zot:\n    build: .\n",
    );
    assert.deepEqual(service(p, "foo").dependsOn.sort(), ["bar", "zot"]);
    assert.deepEqual(service(p, "bar").dependsOn, ["zot"]);
    assert.deepEqual(
      planCompose(p, ["foo"], { withDependencies: true })
        .map((s) => s.name)
        .sort(),
      ["bar", "foo", "zot"],
    );
  });

  test("TestNormalizeImplicitDependencies: ipc, cgroup, uts, pid, volumes_from and links; an explicit one is kept", () => {
    // Upstream normalizes without a consistency check; the services it names are defined here so the project loads.
    const others = ["foo", "bar", "baz", "qux", "quux", "corge"].map((n) => `  ${n}:\n    image: ${n}\n`).join("");
    const p = load(
      "name: myProject\nservices:\n  test:\n    build: .\n    ipc: service:foo\n    cgroup: service:bar\n    uts: service:baz\n    pid: service:qux\n    volumes_from: [quux]\n    links: [corge]\n    depends_on:\n      foo:\n        condition: service_healthy\n" +
        others,
    );
    assert.deepEqual(service(p, "test").dependsOn.sort(), ["bar", "baz", "corge", "foo", "quux", "qux"]);
  });

  test("TestImplicitContextPath: build: {} is the project directory and its Dockerfile", () => {
    const p = load("name: myProject\nservices:\n  test:\n    build: {}\n");
    assert.equal(buildOf(p, "test").context, p.directory);
    assert.equal(buildOf(p, "test").dockerfile, "Dockerfile");
  });
});

describe("loader/paths_test.go", () => {
  test("TestResolveComposeFilePaths: the project's files are absolute", () => {
    const dir = composeDir({
      "simple/compose.yaml": "services:\n  a:\n    build: .\n",
      "simple/compose-with-overrides.yaml": "services:\n  a:\n    build:\n      target: t\n",
    });
    const p = loadIn(dir, { files: ["simple/compose.yaml", "simple/compose-with-overrides.yaml"], projectName: "myproject" });
    assert.deepEqual(p.files, [join(dir, "simple", "compose.yaml"), join(dir, "simple", "compose-with-overrides.yaml")]);
  });

  test("TestResolveBuildContextPaths: a relative context is made absolute; the Dockerfile stays relative to it", () => {
    const p = load("name: test-resolve-build-context-paths\nservices:\n  foo:\n    build:\n      context: ./testdata\n      dockerfile: Dockerfile-sample\n");
    assert.equal(buildOf(p, "foo").context, join(p.directory, "testdata"));
    assert.equal(buildOf(p, "foo").dockerfile, "Dockerfile-sample");
  });

  test("TestResolveAdditionalContexts: images, OCI layouts, absolute paths and git repositories are kept; relative paths made absolute", () => {
    const p = load(
      "name: test-resolve-additional-contexts\nservices:\n  test:\n    build:\n      context: .\n      dockerfile: Dockerfile\n      additional_contexts:\n        image: docker-image://foo\n        oci:  oci-layout://foo\n        abs_path: /dir\n        github:   github.com/compose-spec/compose-go\n        rel_path: ./testdata\n",
    );
    assert.deepEqual(buildOf(p, "test").additionalContexts, {
      image: "docker-image://foo",
      oci: "oci-layout://foo",
      abs_path: "/dir",
      github: "github.com/compose-spec/compose-go",
      rel_path: join(p.directory, "testdata"),
    });
  });
});

describe("loader/validate_test.go", () => {
  test("TestValidateNoBuildNoImage", () => {
    assertContains(
      loadError("services:\n  myservice:\n    command: echo\n"),
      'service "myservice" has neither an image nor a build context specified: invalid compose project',
    );
  });

  test("TestValidateDependsOn", () => {
    assertContains(
      loadError("services:\n  myservice:\n    image: scratch\n    depends_on:\n      missingservice: {}\n"),
      'service "myservice" depends on undefined service "missingservice": invalid compose project',
    );
  });

  test("TestValidateWatch (depends on disabled service): a dependency that is not required may be off", () => {
    const p = load(
      "services:\n  myservice:\n    image: scratch\n    depends_on:\n      other:\n        required: false\n  other:\n    image: scratch\n    profiles: [off]\n",
    );
    assert.deepEqual(service(p, "myservice").dependsOn, ["other"]);
  });

  test("TestValidateWatch (depends on unknown service): one that does not exist is an error, required or not", () => {
    assertContains(
      loadError("services:\n  myservice:\n    image: scratch\n    depends_on:\n      other:\n        required: false\n"),
      "depends on undefined service",
    );
  });
});

describe("loader/omitEmpty_test.go, loader/loader_yaml_test.go, loader/mapstructure_test.go", () => {
  test("TestOmitEmptyPreservesEmptySlice: cache_to: [] stays an empty list", () => {
    assert.deepEqual(buildOf(load("services:\n  foo:\n    build:\n      cache_to: []\n"), "foo").cacheTo, []);
  });

  test("TestParseYAMLFiles: a later file's values win; x- sections merge", () => {
    const p = load(
      {
        "test.yaml": "x-extension:\n    test1: first\n\nservices:\n  test:\n    image: foo\n    command: echo hello\n    init: true\n    build: .\n",
        "override.yaml": "x-extension:\n    test2: second\n\nservices:\n  test:\n    image: bar\n    command: echo world\n    init: false\n",
      },
      { files: ["test.yaml", "override.yaml"] },
    );
    assert.equal(service(p, "test").image, "bar");
  });

  test("TestParseYAMLFilesMergeOverride: !override under extends, and copied by a << alias", () => {
    // Upstream overrides configs; build.args stands in.
    const p = load(
      [
        "services:",
        "  base:",
        "    build:",
        "      context: .",
        "      args: [CREDENTIALS=/credentials/file1]",
        "  x: &x",
        "    extends:",
        "      base",
        "    build:",
        "      args: !override",
        "        - CREDENTIALS=/literally-anywhere-else",
        "",
        "  y:",
        "    <<: *x",
        "",
      ].join("\n"),
    );
    assert.deepEqual(buildOf(p, "base").args, { CREDENTIALS: "/credentials/file1" });
    assert.deepEqual(buildOf(p, "x").args, { CREDENTIALS: "/literally-anywhere-else" });
    assert.deepEqual(buildOf(p, "y").args, { CREDENTIALS: "/literally-anywhere-else" });
  });

  test("TestDecodeMapStructure: labels as a list, and as a mapping with null, number and boolean values", () => {
    const p = load(
      "services:\n  a:\n    build:\n      context: .\n      labels: [FOO=BAR]\n  b:\n    build:\n      context: .\n      labels:\n        FOO: BAR\n        BAZ: null\n        QIX: 2\n        ZOT: true\n",
    );
    assert.deepEqual(buildOf(p, "a").labels, { FOO: "BAR" });
    assert.deepEqual(buildOf(p, "b").labels, { FOO: "BAR", BAZ: "", QIX: "2", ZOT: "true" });
  });
});

describe("schema/schema_test.go", () => {
  test("TestValidateUndefinedTopLevelOption", () => {
    assertContains(loadError("helicopters:\n  foo:\n    image: busybox\n"), "additional properties 'helicopters' not allowed");
  });

  test("TestValidateAllowsXTopLevelFields", () => {
    load("x-extra-stuff: {}\nservices:\n  a:\n    build: .\n");
  });

  test("TestValidateAllowsXFields: x- keys in services, depends_on and secrets", () => {
    const p = load(
      "services:\n  bar:\n    image: bar\n    x-extra-stuff: {}\n  foo:\n    image: foo\n    depends_on:\n      x-dependency:\n        condition: service_started\n  x-dependency:\n    image: dep\nsecrets:\n  bar:\n    file: ./s\n    x-extra-stuff: {}\n",
    );
    assert.deepEqual(service(p, "foo").dependsOn, ["x-dependency"]);
  });

  test("TestValidateIsolation: a service's isolation value is not checked", () => {
    load("services:\n  foo:\n    image: busybox\n    isolation: some-isolation-value\n");
  });
});
