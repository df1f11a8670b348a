#!/usr/bin/env bash
# The test command: `npm test` (all), `npm run test:unit`, `npm run test:integration`.
#
# Builds (which type-checks; the CLI is bundled as `npm run build` does), checks that src/gen matches proto/, lints and
# checks the formatting, runs the unit
# tests, and runs the integration tests against a real buildkitd and registry:
# the ones named by BUILDKIT_HOST and BK_TEST_REGISTRY when both are set,
# otherwise those that scripts/test-env.sh starts (and stops again at the end
# unless BK_TEST_KEEP_ENV=1). If the environment cannot start, the run fails.
#
# The tests get a temp dir of their own (TMPDIR) for the run; anything they
# leave in it fails the run, listed.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

echo "== build and type check, bundle the CLI" >&2
npx tsc -p tsconfig.json
node scripts/bundle.mjs
echo "== generated code matches proto/" >&2
node scripts/generate.mjs --check
echo "== lint (eslint) and format (prettier --check)" >&2
npx eslint src test scripts
npx prettier --check --log-level warn . || {
  echo "error: files are not formatted; run npm run format" >&2
  exit 1
}

cleanups=()
on_exit() {
  local c
  for c in "${cleanups[@]}"; do eval "$c" || true; done
}
trap on_exit EXIT

if [[ $what == all || $what == integration ]]; then
  if [[ -z ${BUILDKIT_HOST:-} || -z ${BK_TEST_REGISTRY:-} ]]; then
    echo "== starting the test environment (scripts/test-env.sh up)" >&2
    env_lines=$(bash scripts/test-env.sh up) || {
      echo "error: the BuildKit test environment did not start (see the lines above); integration tests cannot run" >&2
      exit 1
    }
    eval "$env_lines"
    if [[ ${BK_TEST_KEEP_ENV:-} != 1 ]]; then
      cleanups+=("bash scripts/test-env.sh down")
    fi
  else
    echo "== using BUILDKIT_HOST=$BUILDKIT_HOST BK_TEST_REGISTRY=$BK_TEST_REGISTRY" >&2
  fi
fi

run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/bk-build-tests.XXXXXX")
cleanups+=("rm -rf '$run_tmp'")
chmod 1777 "$run_tmp" # as /tmp: a test runs the CLI as nobody on a context in it
export TMPDIR=$run_tmp
# A builder picked with `bk-build builder use` on this machine must not take the tests elsewhere.
export BK_BUILDER=default

# Stack traces point into the .ts sources, in every test process.
node_flags=(--enable-source-maps)
status=0
if [[ $what == all || $what == unit ]]; then
  echo "== unit tests (files in parallel)" >&2
  node "${node_flags[@]}" --test --test-concurrency="${BK_UNIT_CONCURRENCY:-4}" dist/test/unit/*.test.js || status=1
fi
if [[ $what == all || $what == integration ]]; then
  # One file at a time: integration tests share one daemon and prune its cache.
  echo "== integration tests (one file at a time)" >&2
  node "${node_flags[@]}" --test --test-concurrency=1 dist/test/integration/*.test.js || status=1
fi

left=$(find "$run_tmp" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
if [[ -n $left ]]; then
  echo "error: the tests left these in their temp dir $run_tmp (each test temp dir goes through tempDir() in test/helpers/files.ts):" >&2
  echo "$left" | sed 's/^/  /' >&2
  status=1
fi
exit $status
