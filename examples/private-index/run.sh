#!/usr/bin/env bash
# Builds examples/private-index twice with two different CI_JOB_TOKEN values
# against the test environment:
#   eval "$(scripts/test-env.sh up)" && bash examples/private-index/run.sh
# The second build reports every step CACHED and the index sees no request.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${BUILDKIT_HOST:?run: eval \"\$(scripts/test-env.sh up)\" first}"
: "${BK_TEST_REGISTRY:?run: eval \"\$(scripts/test-env.sh up)\" first}"
bk() { node "$root/dist/src/cli/main.js" "$@"; }

work=$(mktemp -d)
trap 'kill $index_pid 2>/dev/null || true; rm -rf "$work"' EXIT
token_file=$work/token
echo "token-$RANDOM$RANDOM" >"$token_file"
coproc INDEX { EXAMPLE_TOKEN_FILE=$token_file exec node "$here/index-server.mjs"; }
index_pid=$INDEX_PID
read -r port <&"${INDEX[0]}"

build() {
  CI_JOB_TOKEN=$(cat "$token_file") bk build --progress plain \
    --secret id=CI_JOB_TOKEN \
    --build-arg "BASE=$BK_TEST_REGISTRY/bk-test/busybox:latest" \
    --build-arg "INDEX_URL=http://127.0.0.1:$port" \
    "$here"
}

echo "== build with the first token" >&2
build
echo "token-$RANDOM$RANDOM" >"$token_file"
echo "== the token rotated: build again (expect CACHED, no index request)" >&2
build
