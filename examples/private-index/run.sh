#!/usr/bin/env bash
# The private-index example (`npm run example`): builds examples/private-index
# twice, with two different CI_JOB_TOKEN values, and checks what a secret
# promises: the second build reports the secret step and every later step
# CACHED, and the stand-in index sees no request from it.
#
# Uses the daemon and registry named by BUILDKIT_HOST and BK_TEST_REGISTRY;
# when they are not set, starts the test environment (scripts/test-env.sh up,
# as root) and leaves it running for the next run (stop it with
# `bash scripts/test-env.sh down`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ -z ${BUILDKIT_HOST:-} || -z ${BK_TEST_REGISTRY:-} ]]; then
  echo "== starting the test environment (scripts/test-env.sh up; the first time builds buildkitd, about 2 minutes)" >&2
  env_lines=$(bash "$root/scripts/test-env.sh" up)
  eval "$env_lines"
fi
bk() { node -- "$root/dist/src/cli/bin.js" "$@"; }

work=$(mktemp -d)
index_pid=
trap '[[ -n $index_pid ]] && kill "$index_pid" 2>/dev/null; rm -rf "$work"' EXIT
token_file=$work/token
index_log=$work/index.log
echo "token-$RANDOM$RANDOM" >"$token_file"
coproc INDEX { EXAMPLE_TOKEN_FILE=$token_file exec node "$here/index-server.mjs" 2>"$index_log"; }
index_pid=$INDEX_PID
read -r port <&"${INDEX[0]}"

build() {
  CI_JOB_TOKEN=$(cat "$token_file") bk build --progress plain \
    --secret id=CI_JOB_TOKEN \
    --build-arg "BASE=$BK_TEST_REGISTRY/bk-test/busybox:latest" \
    --build-arg "INDEX_URL=http://127.0.0.1:$port" \
    "$here" 2>&1 | tee -a "$work/build.log" >&2
}

echo "== build with the first token" >&2
build
requests=$(wc -l <"$index_log")
echo "token-$RANDOM$RANDOM" >"$token_file"
: >"$work/build.log"
echo "== the token rotated: build again (expect CACHED, no index request)" >&2
build

cached=$(grep -cE '^#[0-9]+ CACHED$' "$work/build.log" || true)
if [[ $(wc -l <"$index_log") != "$requests" ]]; then
  echo "example: FAILED: the second build asked the index again" >&2
  exit 1
fi
# The secret step's number in plain progress, then its CACHED line.
step=$(grep -oE '^#[0-9]+ \[[^]]*\] RUN --mount=type=secret' "$work/build.log" | head -1 | cut -d' ' -f1)
if [[ -z $step ]] || ! grep -qx "$step CACHED" "$work/build.log"; then
  echo "example: FAILED: the secret step was not CACHED after the token rotated" >&2
  exit 1
fi
echo "== ok: after the token rotated, the secret step and $((cached - 1)) other steps were CACHED and the index saw no request" >&2
