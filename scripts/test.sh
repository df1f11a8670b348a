#!/usr/bin/env bash
# The test command: `npm test` (all), `npm run test:unit`, `npm run test:integration`.
#
# Builds (which type-checks), checks that src/gen matches proto/, runs the unit
# tests, and runs the integration tests against a real buildkitd and registry:
# the ones named by BUILDKIT_HOST and BK_TEST_REGISTRY when both are set,
# otherwise those that scripts/test-env.sh starts (and stops again at the end
# unless BK_TEST_KEEP_ENV=1). If the environment cannot start, the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

echo "== build and type check" >&2
npx tsc -p tsconfig.json
echo "== generated code matches proto/" >&2
node scripts/generate.mjs --check

files=()
if [[ $what == all || $what == unit ]]; then
  files+=(dist/test/unit/*.test.js)
fi
started=0
if [[ $what == all || $what == integration ]]; then
  if [[ -z ${BUILDKIT_HOST:-} || -z ${BK_TEST_REGISTRY:-} ]]; then
    echo "== starting the test environment (scripts/test-env.sh up)" >&2
    env_lines=$(bash scripts/test-env.sh up) || {
      echo "error: the BuildKit test environment did not start (see the lines above); integration tests cannot run" >&2
      exit 1
    }
    eval "$env_lines"
    started=1
    if [[ ${BK_TEST_KEEP_ENV:-} != 1 ]]; then
      trap 'bash scripts/test-env.sh down' EXIT
    fi
  else
    echo "== using BUILDKIT_HOST=$BUILDKIT_HOST BK_TEST_REGISTRY=$BK_TEST_REGISTRY" >&2
  fi
  files+=(dist/test/integration/*.test.js)
fi

echo "== tests" >&2
# One file at a time: integration tests share one daemon and prune its cache.
node --test --test-concurrency=1 "${files[@]}"
