#!/usr/bin/env bash
# The real BuildKit test environment: buildkitd (OCI worker with runc), a
# registry on 127.0.0.1 and a busybox base image in it, and a Docker Engine
# (Debian's dockerd and containerd, with its own data root, no bridge, and a
# second listener on 127.0.0.1 with --tlsverify: the GitLab docker:dind shape).
#
#   eval "$(scripts/test-env.sh up)"   install what is missing, start, print exports
#   scripts/test-env.sh down           stop what `up` started, and only that
#   scripts/test-env.sh status         say whether it is running
#   scripts/test-env.sh seed           push the busybox base image to the registry
#                                      named by BK_TEST_REGISTRY through the daemon
#                                      at BUILDKIT_HOST (for docker-compose.test.yml)
#   scripts/test-env.sh buildx         build buildx (the tests' oracle) if it is not
#                                      cached yet, and print its path
#   scripts/test-env.sh harness        build the bench's Go harness (scripts/bench/harness,
#                                      buildkit's own client) if it is not cached yet,
#                                      and print its path
#
# stdout of `up` carries only `export NAME=value` lines; progress goes to stderr
# and the daemons' logs to files in the state directory.
#
# Settings (environment):
#   BK_TEST_STATE_DIR      state, sockets, logs     (default /tmp/bk-build-test-env)
#   BK_CACHE_DIR           cached binaries          (default ~/.cache/bk-build)
#   BK_TEST_REGISTRY_PORT  registry port            (default: a free port)
#   BK_TEST_TLS_PORT       buildkitd TLS tcp port   (default: a free port)
#   BK_TEST_DOCKER_TLS_PORT  the Engine's TLS port  (default: a free port)
set -euo pipefail

BUILDKIT_TAG=v0.24.0

STATE=${BK_TEST_STATE_DIR:-/tmp/bk-build-test-env}
CACHE=${BK_CACHE_DIR:-${HOME:-/root}/.cache/bk-build}
BIN=$CACHE/buildkit-$BUILDKIT_TAG/bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { echo "test-env: $*" >&2; }
die() { echo "test-env: error: $*" >&2; exit 1; }

# --- helpers -------------------------------------------------------------

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

port_in_use() {
  ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

pid_alive() { # pidfile expected-command-substring
  local f=$1 want=$2 pid
  [[ -s $f ]] || return 1
  pid=$(cat "$f")
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$want"
}

# For the wait loops after a start: the process is still there. (Not
# pid_alive: right after the fork its command line is still this script's,
# which made a start that was going fine look like one that had died.)
started_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

registry_up() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null; }

buildkitd_up() { "$BIN/buildctl" --addr "unix://$STATE/buildkitd.sock" --timeout 2 debug info >/dev/null 2>&1; }

dockerd_up() { [[ $(curl -fsS --max-time 2 --unix-socket "$STATE/docker.sock" http://engine/_ping 2>/dev/null) == OK ]]; }

apt_updated=0
apt_install() { # package...
  if [[ $apt_updated == 0 ]]; then
    log "apt-get update"
    apt-get update >"$STATE/apt.log" 2>&1 || die "apt-get update failed (last lines of $STATE/apt.log: $(tail -3 "$STATE/apt.log" | tr '\n' ' '))"
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1 ||
    die "apt-get install $* failed (last lines of $STATE/apt.log: $(tail -3 "$STATE/apt.log" | tr '\n' ' '))"
}

print_env() { cat "$STATE/env"; }

stop_pidfile() { # pidfile expected-command-substring
  local f=$1 want=$2 pid i
  if pid_alive "$f" "$want"; then
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# --- install ---------------------------------------------------------------

install_buildkit() {
  [[ -x $BIN/buildkitd && -x $BIN/buildctl ]] && return 0
  command -v go >/dev/null || die "go is not installed; it is needed once to build buildkitd $BUILDKIT_TAG (install Go, or use docker-compose.test.yml)"
  log "building buildkitd and buildctl $BUILDKIT_TAG with go (once; cached in $BIN)"
  # `go install github.com/moby/buildkit/cmd/buildkitd@$BUILDKIT_TAG` is refused
  # because buildkit's go.mod has exclude directives, so we download the module
  # through the Go module proxy and build its commands from the module cache.
  local dir tmp pkg=github.com/moby/buildkit
  dir=$(go mod download -json "$pkg@$BUILDKIT_TAG" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}console.log(j.Dir)})') ||
    die "go mod download $pkg@$BUILDKIT_TAG failed (is the Go module proxy reachable?)"
  tmp=$(mktemp -d "$CACHE/build.XXXXXX")
  (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $pkg/version.Version=$BUILDKIT_TAG -X $pkg/version.Package=$pkg" \
    -o "$tmp/" ./cmd/buildkitd ./cmd/buildctl) >"$STATE/go-build.log" 2>&1 ||
    { rm -rf "$tmp"; die "go build of buildkit $BUILDKIT_TAG failed (see $STATE/go-build.log: $(tail -2 "$STATE/go-build.log" | tr '\n' ' '))"; }
  mkdir -p "$BIN"
  mv "$tmp/buildkitd" "$tmp/buildctl" "$BIN/"
  rm -rf "$tmp"
}

# buildx is the oracle the tests compare with (--call check|outline|targets).
# Built like buildkitd: downloaded through the Go module proxy, built from
# the module cache, cached beside buildkit's binaries.
BUILDX_TAG=v0.38.2
BUILDX=$CACHE/buildx-$BUILDX_TAG
install_buildx() {
  [[ -x $BUILDX ]] && return 0
  command -v go >/dev/null || die "go is not installed; it is needed once to build buildx $BUILDX_TAG"
  log "building buildx $BUILDX_TAG with go (once; cached as $BUILDX)"
  local dir tmp pkg=github.com/docker/buildx
  mkdir -p "$STATE" "$CACHE"
  dir=$(go mod download -json "$pkg@$BUILDX_TAG" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}console.log(j.Dir)})') ||
    die "go mod download $pkg@$BUILDX_TAG failed (is the Go module proxy reachable?)"
  tmp=$(mktemp -d "$CACHE/build.XXXXXX")
  (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $pkg/version.Version=$BUILDX_TAG" -o "$tmp/buildx" ./cmd/buildx) >"$STATE/go-build-buildx.log" 2>&1 ||
    { rm -rf "$tmp"; die "go build of buildx $BUILDX_TAG failed (see $STATE/go-build-buildx.log: $(tail -2 "$STATE/go-build-buildx.log" | tr '\n' ' '))"; }
  mv "$tmp/buildx" "$BUILDX"
  rm -rf "$tmp"
}

# The bench's Go harness (scripts/bench/harness): buildkit's client package
# at BUILDKIT_TAG, built as buildkitd is, from the Go module cache with
# GOFLAGS=-mod=mod. Its sources are ours and change, so the cached binary is
# named by a hash of them (an older one is removed when a new one is built).
HARNESS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench/harness
install_harness() {
  local sum
  sum=$(cat "$HARNESS_SRC/go.mod" "$HARNESS_SRC/go.sum" "$HARNESS_SRC"/*.go | sha256sum | cut -c1-12)
  HARNESS=$CACHE/bench-harness-$BUILDKIT_TAG-$sum
  [[ -x $HARNESS ]] && return 0
  command -v go >/dev/null || die "go is not installed; it is needed once to build the bench's Go harness"
  log "building the bench's Go harness (buildkit $BUILDKIT_TAG's client) with go (once; cached as $HARNESS)"
  mkdir -p "$STATE" "$CACHE"
  local tmp
  tmp=$(mktemp -d "$CACHE/build.XXXXXX")
  (cd "$HARNESS_SRC" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/harness" .) \
    >"$STATE/go-build-harness.log" 2>&1 ||
    { rm -rf "$tmp"; die "go build of the bench harness failed (see $STATE/go-build-harness.log: $(tail -2 "$STATE/go-build-harness.log" | tr '\n' ' '))"; }
  rm -f "$CACHE"/bench-harness-"$BUILDKIT_TAG"-*
  mv "$tmp/harness" "$HARNESS"
  rm -rf "$tmp"
}

static_busybox() { # the base image needs a busybox that runs without shared libraries
  [[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || return 1
  local out
  out=$(LC_ALL=C ldd /bin/busybox 2>&1 || true) # ldd exits 1 for static binaries
  [[ $out == *"not a dynamic"* || $out == *"statically linked"* ]]
}

install_packages() {
  local need=()
  command -v runc >/dev/null || need+=(runc)
  command -v docker-registry >/dev/null || need+=(docker-registry)
  static_busybox || need+=(busybox-static)
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v ss >/dev/null || need+=(iproute2)
  # SSH forwarding tests: a real sshd and agent, and the client copied into an image.
  [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
  command -v ssh-agent >/dev/null || need+=(openssh-client)
  # The registry that requires a login reads a bcrypt htpasswd file.
  command -v htpasswd >/dev/null || need+=(apache2-utils)
  # The Docker Engine (its package brings containerd, runc and tini). Its
  # service is not started: there is no init system here, and we start our own.
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v containerd >/dev/null || need+=(containerd)
  # The tty progress tests run bk-build in a real terminal.
  command -v tmux >/dev/null || need+=(tmux)
  if ((${#need[@]})); then apt_install "${need[@]}"; fi
}

# --- pieces ------------------------------------------------------------------

make_certs() {
  local d=$STATE/tls
  [[ -s $d/client/key.pem && -s $d/server/key.pem ]] && return 0
  log "generating a test CA, server and client certificates in $d"
  rm -rf "$d"
  mkdir -p "$d/ca" "$d/server" "$d/client" "$d/wrong-ca"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=bk-build test CA" \
      -keyout ca/key.pem -out ca/cert.pem
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=bk-build unrelated CA" \
      -keyout wrong-ca/key.pem -out wrong-ca/ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=buildkitd" -keyout server/key.pem -out server/req.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:buildkitd\nextendedKeyUsage=serverAuth\n' >server/ext.cnf
    openssl x509 -req -in server/req.csr -CA ca/cert.pem -CAkey ca/key.pem -CAcreateserial -days 3650 \
      -extfile server/ext.cnf -out server/cert.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=bk-build test client" -keyout client/key.pem -out client/req.csr
    printf 'extendedKeyUsage=clientAuth\n' >client/ext.cnf
    openssl x509 -req -in client/req.csr -CA ca/cert.pem -CAkey ca/key.pem -CAcreateserial -days 3650 \
      -extfile client/ext.cnf -out client/cert.pem
    cp ca/cert.pem client/ca.pem
    cp ca/cert.pem server/ca.pem
    rm -f server/req.csr client/req.csr
  ) >"$STATE/certs.log" 2>&1 || die "openssl failed to make test certificates (see $STATE/certs.log)"
}

pick_port() { # variable-name override-value
  local name=$1 want=$2
  if [[ -n $want ]]; then
    port_in_use "$want" && die "port $want on 127.0.0.1 ($name) is in use; choose another or unset it to pick a free port"
    echo "$want"
  else
    free_port
  fi
}

start_registry() {
  local port=$1
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  log "starting registry on 127.0.0.1:$port"
  setsid docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/registry.pid"
  local i
  for i in $(seq 1 100); do
    registry_up "$port" && return 0
    started_alive "$STATE/registry.pid" || break
    sleep 0.1
  done
  die "the registry did not come up on 127.0.0.1:$port; last lines of $STATE/registry.log: $(tail -5 "$STATE/registry.log" | tr '\n' ' ')"
}

start_buildkitd() {
  local regport=$1 tlsport=$2 authport=$3
  mkdir -p "$STATE/buildkitd"
  cat >"$STATE/buildkitd.toml" <<EOF
root = "$STATE/buildkitd"

[grpc]
  address = ["unix://$STATE/buildkitd.sock", "tcp://127.0.0.1:$tlsport"]
  [grpc.tls]
    cert = "$STATE/tls/server/cert.pem"
    key = "$STATE/tls/server/key.pem"
    ca = "$STATE/tls/server/ca.pem"

[worker.oci]
  enabled = true
  binary = "$(command -v runc)"

[worker.containerd]
  enabled = false

[registry."127.0.0.1:$regport"]
  http = true

[registry."127.0.0.1:$authport"]
  http = true
EOF
  log "starting buildkitd $BUILDKIT_TAG (unix://$STATE/buildkitd.sock, TLS on 127.0.0.1:$tlsport)"
  rm -f "$STATE/buildkitd.sock"
  setsid "$BIN/buildkitd" --config "$STATE/buildkitd.toml" >"$STATE/buildkitd.log" 2>&1 </dev/null &
  echo $! >"$STATE/buildkitd.pid"
  local i
  for i in $(seq 1 120); do
    buildkitd_up && return 0
    started_alive "$STATE/buildkitd.pid" || break
    sleep 0.5
  done
  die "buildkitd did not come up; last lines of $STATE/buildkitd.log: $(tail -8 "$STATE/buildkitd.log" | tr '\n' ' ')"
}

start_dockerd() { # tls-port
  local tlsport=$1
  mkdir -p "$STATE/docker"
  # Our own (empty) config file, so that a machine's /etc/docker/daemon.json
  # changes nothing; 127.0.0.0/8 registries are insecure (plain HTTP) by default.
  echo '{}' >"$STATE/dockerd.json"
  log "starting dockerd $(dockerd --version | sed 's/^Docker version //') (unix://$STATE/docker.sock, --tlsverify on 127.0.0.1:$tlsport)"
  rm -f "$STATE/docker.sock"
  setsid dockerd --config-file "$STATE/dockerd.json" --data-root "$STATE/docker" --exec-root "$STATE/dexec" \
    --pidfile "$STATE/dockerd.pid" -H "unix://$STATE/docker.sock" -H "tcp://127.0.0.1:$tlsport" \
    --tlsverify --tlscacert "$STATE/tls/server/ca.pem" --tlscert "$STATE/tls/server/cert.pem" --tlskey "$STATE/tls/server/key.pem" \
    --iptables=false --ip-masq=false --bridge=none >"$STATE/dockerd.log" 2>&1 </dev/null &
  local pid=$! i
  for i in $(seq 1 120); do
    dockerd_up && { echo "$pid" >"$STATE/dockerd.pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  die "dockerd did not come up; last lines of $STATE/dockerd.log: $(grep -v 'module=grpc' "$STATE/dockerd.log" | tail -6 | tr '\n' ' ')"
}

image_present() { # registry-port repository: is REPO:latest in the registry already?
  curl -fsS -o /dev/null --max-time 5 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$1/v2/$2/manifests/latest" 2>/dev/null
}

push_busybox() { # registry-port [buildkitd-address]
  local regport=$1 addr=${2:-unix://$STATE/buildkitd.sock} ref=127.0.0.1:$1/bk-test/busybox:latest
  image_present "$regport" bk-test/busybox && return 0
  log "building the busybox base image and pushing $ref"
  local root=$STATE/busybox/rootfs df=$STATE/busybox/dockerfile
  rm -rf "$STATE/busybox"
  mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$df"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'FROM scratch\nCOPY . /\nENV PATH=/bin\nCMD ["/bin/sh"]\n' >"$df/Dockerfile"
  "$BIN/buildctl" --addr "$addr" build --progress plain \
    --frontend dockerfile.v0 --local "context=$root" --local "dockerfile=$df" \
    --output "type=image,name=$ref,push=true,registry.insecure=true" >"$STATE/busybox.log" 2>&1 ||
    die "pushing the busybox base image failed; last lines of $STATE/busybox.log: $(tail -5 "$STATE/busybox.log" | tr '\n' ' ')"
}

push_ssh_image() { # registry-port [buildkitd-address]: busybox plus OpenSSH's ssh and ssh-add with their libraries
  local regport=$1 addr=${2:-unix://$STATE/buildkitd.sock} ref=127.0.0.1:$1/bk-test/ssh:latest
  image_present "$regport" bk-test/ssh && return 0
  log "building the ssh client image and pushing $ref"
  local ctx=$STATE/ssh-image f lib
  rm -rf "$ctx"
  mkdir -p "$ctx/root/usr/bin"
  cp /usr/bin/ssh /usr/bin/ssh-add "$ctx/root/usr/bin/"
  for f in /usr/bin/ssh /usr/bin/ssh-add; do
    for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
      mkdir -p "$ctx/root$(dirname "$lib")"
      cp -L "$lib" "$ctx/root$lib"
    done
  done
  printf 'FROM 127.0.0.1:%s/bk-test/busybox:latest\nCOPY root/ /\nENV PATH=/usr/bin:/bin\n' "$regport" >"$ctx/Dockerfile"
  "$BIN/buildctl" --addr "$addr" build --progress plain \
    --frontend dockerfile.v0 --local "context=$ctx" --local "dockerfile=$ctx" \
    --output "type=image,name=$ref,push=true,registry.insecure=true" >"$STATE/ssh-image.log" 2>&1 ||
    die "pushing the ssh client image failed; last lines of $STATE/ssh-image.log: $(tail -5 "$STATE/ssh-image.log" | tr '\n' ' ')"
}

AUTH_USER=bk-test-user
AUTH_PASSWORD=bk-test-password-$(hostname | md5sum | cut -c1-8)

start_auth_registry() { # port: a registry that requires a login (htpasswd), with a private base image
  local port=$1
  mkdir -p "$STATE/auth-registry"
  htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$STATE/auth-registry.htpasswd"
  cat >"$STATE/auth-registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/auth-registry
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: bk-build-test
    path: $STATE/auth-registry.htpasswd
EOF
  log "starting the login-only registry on 127.0.0.1:$port"
  setsid docker-registry serve "$STATE/auth-registry.yml" >"$STATE/auth-registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/auth-registry.pid"
  local i code=
  for i in $(seq 1 60); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/" 2>/dev/null || true)
    [[ $code == 401 ]] && break
    started_alive "$STATE/auth-registry.pid" || break
    sleep 0.25
  done
  [[ $code == 401 ]] || die "the login-only registry did not come up on 127.0.0.1:$port; last lines of $STATE/auth-registry.log: $(tail -5 "$STATE/auth-registry.log" | tr '\n' ' ')"
  # The private base image, pushed with buildctl and a docker config login.
  local cfg=$STATE/auth-docker-config df=$STATE/private-base
  mkdir -p "$cfg" "$df"
  printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$port" "$(printf '%s:%s' "$AUTH_USER" "$AUTH_PASSWORD" | base64 -w0)" >"$cfg/config.json"
  printf 'FROM 127.0.0.1:%s/bk-test/busybox:latest\nRUN echo private-base >/private-marker\n' "$(cat "$STATE/registry.port")" >"$df/Dockerfile"
  DOCKER_CONFIG=$cfg "$BIN/buildctl" --addr "unix://$STATE/buildkitd.sock" build --progress plain \
    --frontend dockerfile.v0 --local "context=$df" --local "dockerfile=$df" \
    --output "type=image,name=127.0.0.1:$port/bk-test/private-base:latest,push=true,registry.insecure=true" >"$STATE/private-base.log" 2>&1 ||
    die "pushing the private base image failed; last lines of $STATE/private-base.log: $(tail -5 "$STATE/private-base.log" | tr '\n' ' ')"
}

# --- commands --------------------------------------------------------------

start_node() { # index platforms ("-": the worker's default) registry-port
  local i=$1 plats=$2 regport=$3 dir="$STATE/node$1"
  mkdir -p "$dir/root" "$dir/tmp"
  local platline=""
  [[ $plats == - ]] || platline="  platforms = [\"${plats//,/\", \"}\"]"
  cat >"$dir/buildkitd.toml" <<EOF
root = "$dir/root"

[grpc]
  address = ["unix://$dir/buildkitd.sock"]

[otel]
  socketPath = "$dir/otel-grpc.sock"

[worker.oci]
  enabled = true
  binary = "$(command -v runc)"
$platline

[worker.containerd]
  enabled = false

[registry."127.0.0.1:$regport"]
  http = true
EOF
  echo "$plats" >"$dir/platforms"
  rm -f "$dir/buildkitd.sock"
  log "starting node $i: buildkitd $BUILDKIT_TAG (unix://$dir/buildkitd.sock, platforms: ${plats/#-/default})"
  TMPDIR=$dir/tmp setsid "$BIN/buildkitd" --config "$dir/buildkitd.toml" >"$dir/buildkitd.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local n
  for n in $(seq 1 120); do
    "$BIN/buildctl" --addr "unix://$dir/buildkitd.sock" --timeout 2 debug info >/dev/null 2>&1 && return 0
    started_alive "$dir/pid" || break
    sleep 0.5
  done
  die "node $i (buildkitd) did not come up; last lines of $dir/buildkitd.log: $(tail -8 "$dir/buildkitd.log" | tr '\n' ' ')"
}

# Extra buildkitd nodes for builder pools: node1 with the worker's default
# platforms, node2 limited to linux/386, node3 to linux/amd64, the rest
# default; BK_TEST_NODE_PLATFORMS (comma-separated per node, "-" for the
# default, "+" between platforms of one node) overrides. Running nodes with
# the same platforms are reused. Prints BK_TEST_NODES (their addresses).
cmd_nodes() { # count
  local count=${1:-3}
  [[ $count =~ ^[0-9]+$ && $count -ge 1 && $count -le 16 ]] || die "nodes takes a count from 1 to 16, not '$count'"
  [[ -s $STATE/registry.port ]] || die "start the environment first: $0 up"
  local regport addrs="" i want wanted=()
  regport=$(cat "$STATE/registry.port")
  IFS=, read -r -a wanted <<<"${BK_TEST_NODE_PLATFORMS:-}"
  for i in $(seq 1 "$count"); do
    want=${wanted[$((i - 1))]:-}
    if [[ -z $want ]]; then
      case $i in 2) want=linux/386 ;; 3) want=linux/amd64 ;; *) want=- ;; esac
    fi
    want=${want//+/,}
    if ! pid_alive "$STATE/node$i/pid" buildkitd || [[ $(cat "$STATE/node$i/platforms" 2>/dev/null) != "$want" ]]; then
      stop_pidfile "$STATE/node$i/pid" buildkitd
      start_node "$i" "$want" "$regport"
    fi
    addrs+="${addrs:+,}unix://$STATE/node$i/buildkitd.sock"
  done
  echo "export BK_TEST_NODES=$addrs"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root: buildkitd's runc worker needs it (use sudo, or docker-compose.test.yml with BUILDKIT_HOST and BK_TEST_REGISTRY)"
  mkdir -p "$STATE" "$CACHE"
  command -v node >/dev/null || die "node is not on PATH"

  # Reuse a running environment.
  if [[ -s $STATE/env ]] && pid_alive "$STATE/buildkitd.pid" buildkitd && pid_alive "$STATE/registry.pid" docker-registry &&
    pid_alive "$STATE/auth-registry.pid" docker-registry && pid_alive "$STATE/dockerd.pid" dockerd; then
    local rp
    rp=$(cat "$STATE/registry.port")
    if buildkitd_up && registry_up "$rp" && dockerd_up; then
      log "reusing the running environment in $STATE"
      print_env
      return 0
    fi
  fi
  cmd_down quiet

  install_packages
  install_buildkit
  install_buildx
  make_certs

  local regport tlsport authport dockerport
  regport=$(pick_port BK_TEST_REGISTRY_PORT "${BK_TEST_REGISTRY_PORT:-}")
  tlsport=$(pick_port BK_TEST_TLS_PORT "${BK_TEST_TLS_PORT:-}")
  [[ $regport != "$tlsport" ]] || tlsport=$(free_port)
  authport=$(free_port)
  while [[ $authport == "$regport" || $authport == "$tlsport" ]]; do authport=$(free_port); done
  dockerport=$(pick_port BK_TEST_DOCKER_TLS_PORT "${BK_TEST_DOCKER_TLS_PORT:-}")
  while [[ $dockerport == "$regport" || $dockerport == "$tlsport" || $dockerport == "$authport" ]]; do dockerport=$(free_port); done
  echo "$regport" >"$STATE/registry.port"

  start_registry "$regport"
  start_buildkitd "$regport" "$tlsport" "$authport"
  push_busybox "$regport"
  push_ssh_image "$regport"
  start_auth_registry "$authport"
  start_dockerd "$dockerport"

  cat >"$STATE/env.tmp" <<EOF
export BUILDKIT_HOST=unix://$STATE/buildkitd.sock
export BK_TEST_REGISTRY=127.0.0.1:$regport
export BK_BUILDCTL=$BIN/buildctl
export BK_TEST_TLS_HOST=tcp://127.0.0.1:$tlsport
export BK_TEST_TLS_DIR=$STATE/tls
export BK_TEST_AUTH_REGISTRY=127.0.0.1:$authport
export BK_TEST_AUTH_USER=$AUTH_USER
export BK_TEST_AUTH_PASSWORD=$AUTH_PASSWORD
export BK_TEST_DOCKER_HOST=unix://$STATE/docker.sock
export BK_TEST_DOCKER_TLS_HOST=tcp://127.0.0.1:$dockerport
export BK_TEST_DOCKER_CERT_PATH=$STATE/tls/client
export BK_TEST_BUILDX=$BUILDX
EOF
  [[ -z ${BK_TEST_NODES:-} ]] || cmd_nodes "$BK_TEST_NODES" >>"$STATE/env.tmp"
  mv "$STATE/env.tmp" "$STATE/env"
  log "ready"
  print_env
}

cmd_down() {
  local quiet=${1:-}
  stop_pidfile "$STATE/buildkitd.pid" buildkitd
  local node
  for node in "$STATE"/node*/pid; do [[ -e $node ]] && stop_pidfile "$node" buildkitd; done
  stop_pidfile "$STATE/registry.pid" docker-registry
  stop_pidfile "$STATE/auth-registry.pid" docker-registry
  # dockerd stops the containerd it started; one left behind is stopped too.
  stop_pidfile "$STATE/dockerd.pid" dockerd
  stop_pidfile "$STATE/dexec/containerd/containerd.pid" containerd
  rm -f "$STATE/env" "$STATE/buildkitd.sock" "$STATE/docker.sock"
  [[ -n $quiet ]] || log "stopped (state kept in $STATE; binaries in $CACHE)"
}

cmd_status() {
  if [[ -s $STATE/env ]] && pid_alive "$STATE/buildkitd.pid" buildkitd && pid_alive "$STATE/registry.pid" docker-registry; then
    echo "running"
    print_env
  else
    echo "not running"
    return 1
  fi
}

cmd_seed() {
  [[ -n ${BUILDKIT_HOST:-} && ${BK_TEST_REGISTRY:-} == 127.0.0.1:* ]] ||
    die "seed needs BUILDKIT_HOST and BK_TEST_REGISTRY=127.0.0.1:PORT (see docker-compose.test.yml)"
  mkdir -p "$STATE" "$CACHE"
  static_busybox || apt_install busybox-static
  install_buildkit
  command -v ssh >/dev/null || apt_install openssh-client
  push_busybox "${BK_TEST_REGISTRY#127.0.0.1:}" "$BUILDKIT_HOST"
  push_ssh_image "${BK_TEST_REGISTRY#127.0.0.1:}" "$BUILDKIT_HOST"
  log "pushed $BK_TEST_REGISTRY/bk-test/busybox:latest and bk-test/ssh:latest"
}

case ${1:-} in
  up) cmd_up ;;
  seed) cmd_seed ;;
  down) cmd_down ;;
  status) cmd_status ;;
  buildx) install_buildx && echo "$BUILDX" ;;
  harness) install_harness && echo "$HARNESS" ;;
  nodes) cmd_nodes "${2:-3}" ;;
  *) echo "usage: $0 up|down|status|seed|buildx|harness|nodes [COUNT]" >&2; exit 2 ;;
esac
