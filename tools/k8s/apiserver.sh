#!/usr/bin/env bash
# A real Kubernetes API server for testing the charts offline: etcd + kube-apiserver on loopback,
# no kubelet, no controller-manager, no scheduler. Enough for `helm install --dry-run=server`
# and for dry-run creations (?dryRun=All) that go through the real validation and the default
# admission plugins, PodSecurity among them.
#
#   tools/k8s/apiserver.sh build       builds etcd and kube-apiserver, pinned by deploy/go-k8s/
#                                      go.mod + go.sum, from the Go module proxy into
#                                      /var/cache/polder/k8s-tier-<hash>/bin (skipped when built;
#                                      a cold build takes minutes). Not part of tools/setup/setup.sh.
#   tools/k8s/apiserver.sh bin         prints that bin directory (building first if needed)
#   tools/k8s/apiserver.sh start DIR   starts both (building first if needed), data and logs in
#                                      DIR (must not exist or be empty), waits for /readyz, writes
#                                      DIR/kubeconfig (for helm/kubectl) and DIR/env (shell lines:
#                                      APISERVER_URL, APISERVER_TOKEN, KUBECONFIG), prints the PIDs
#   tools/k8s/apiserver.sh stop DIR    stops both and removes DIR
#
# Always pair start with stop (e.g. `trap 'tools/k8s/apiserver.sh stop "$dir"' EXIT`): the
# processes outlive this script. Authentication: a bearer token (DIR/env, in a static token file,
# user "polder-admin" in system:masters); authorization: AlwaysAllow.
# Nothing runs the controllers: namespaces get no `default` ServiceAccount by themselves, so a
# Pod creation (dry-run or not) is refused by the ServiceAccount admission plugin until one is
# created in its namespace.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mod_dir=$repo/deploy/go-k8s
cache=${POLDER_CACHE:-/var/cache/polder}
go_bin=${POLDER_GO:-/usr/local/go/bin/go}
go_cache=$cache/go
# The version kube-apiserver reports (/version, and so helm's kubeVersion checks): the module
# carries no git data, so it is linked in the way Kubernetes' hack/lib/version.sh does.
# Keep in step with k8s.io/kubernetes in deploy/go-k8s/go.mod.
k8s_version=v1.37.2

log() { echo "[apiserver] $*" >&2; }
die() { echo "[apiserver] ERROR: $*" >&2; exit 1; }

go_run() {
  env -u GOFLAGS -u GONOSUMDB -u GOPRIVATE -u GOINSECURE \
    GOENV=off GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 \
    GOPATH="$go_cache" GOMODCACHE="$go_cache/pkg/mod" GOSUMDB="${GOSUMDB:-sum.golang.org}" \
    "$go_bin" "$@"
}

tier_home() {
  local h
  h=$(cat "$mod_dir/go.mod" "$mod_dir/go.sum" | sha256sum | cut -c1-16)
  echo "$cache/k8s-tier-$h"
}

build() {
  local home tmp
  home=$(tier_home)
  if [ -f "$home/.complete" ] && [ -x "$home/bin/etcd" ] && [ -x "$home/bin/kube-apiserver" ]; then
    log "build: present in $home"
    return
  fi
  [ -x "$go_bin" ] || die "no Go toolchain at $go_bin (set POLDER_GO)"
  mkdir -p "$cache"
  exec 9>"$home.lock"
  flock 9
  if [ -f "$home/.complete" ]; then log "build: present in $home"; return; fi
  # The build cache stays in $tmp between failed attempts and goes once the build is complete.
  tmp=$home.partial
  mkdir -p "$tmp/bin" "$tmp/gocache"
  local major=${k8s_version#v}; major=${major%%.*}
  local minor=${k8s_version#v*.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean"
  done
  log "build: etcd and kube-apiserver $k8s_version into $home (a cold build takes minutes)"
  local start=$SECONDS
  (cd "$mod_dir" && GOBIN="$tmp/bin" GOCACHE="$tmp/gocache" \
      go_run install -mod=readonly -trimpath -buildvcs=false -ldflags "$ld" tool) \
    >"$tmp/go.log" 2>&1 \
    || { tail -n 50 "$tmp/go.log" >&2; die "build failed (full log: $tmp/go.log)"; }
  mv "$tmp/bin/server" "$tmp/bin/etcd"  # the package is go.etcd.io/etcd/server/v3
  "$tmp/bin/etcd" --version >/dev/null || die "build: etcd does not run"
  local v
  v=$("$tmp/bin/kube-apiserver" --version) || die "build: kube-apiserver does not run"
  [ "$v" = "Kubernetes $k8s_version" ] || die "build: kube-apiserver reports '$v'"
  (cd "$tmp/bin" && go_run version -m ./*) >"$tmp/BUILDINFO"
  rm -rf "$tmp/gocache" "$tmp/go.log"
  touch "$tmp/.complete"
  rm -rf "$home"
  mv "$tmp" "$home"
  log "build: done in $((SECONDS - start))s"
}

# n free TCP ports on 127.0.0.1 (bound by the kernel, then released).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# is_ours PIDFILE BINARY: the pid in PIDFILE is alive and runs BINARY.
is_ours() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$2" ]
}

stop_one() {  # stop_one DIR NAME
  local pidfile=$1/$2.pid bin pid i
  [ -f "$pidfile" ] || return 0
  bin=$(cat "$1/bin" 2>/dev/null)/$2
  if is_ours "$pidfile" "$bin"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      is_ours "$pidfile" "$bin" || break
      sleep 0.2
    done
    if is_ours "$pidfile" "$bin"; then
      log "stop: $2 ($pid) ignored SIGTERM, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    log "stop: $2 ($pid) stopped"
  fi
  rm -f "$pidfile"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || { log "stop: $dir does not exist"; return 0; }
  [ -f "$dir/.polder-apiserver" ] || die "stop: $dir was not made by 'apiserver.sh start'"
  stop_one "$dir" kube-apiserver
  stop_one "$dir" etcd
  rm -rf "$dir"
}

wait_for() {  # wait_for SECONDS NAME PIDFILE BINARY LOG COMMAND...
  local secs=$1 name=$2 pidfile=$3 bin=$4 logf=$5 i
  shift 5
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    is_ours "$pidfile" "$bin" || { tail -n 30 "$logf" >&2; return 1; }
    sleep 0.2
  done
  tail -n 30 "$logf" >&2
  log "$name not ready after ${secs}s"
  return 1
}

starting=
cleanup_failed_start() {
  local rc=$?
  if [ -n "$starting" ]; then
    log "start failed; stopping what was started"
    stop "$starting" || true
  fi
  exit "$rc"
}

start() {
  local dir=$1 home bin
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "start: $dir exists and is not empty"; fi
  build
  home=$(tier_home)
  bin=$home/bin
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  touch "$dir/.polder-apiserver"
  echo "$bin" >"$dir/bin"
  # From here on a failure (or an interrupt) stops what was started and removes DIR.
  starting=$dir
  trap 'cleanup_failed_start' EXIT
  trap 'exit 130' INT TERM

  local ports etcd_client etcd_peer api_port
  ports=$(free_ports 3)
  read -r etcd_client etcd_peer api_port <<<"$ports"

  mkdir -m 700 "$dir/etcd"
  setsid "$bin/etcd" --name polder --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "polder=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync --log-level warn \
    </dev/null >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_for 30 etcd "$dir/etcd.pid" "$bin/etcd" "$dir/etcd.log" \
    curl -sf "http://127.0.0.1:$etcd_client/health"

  local token
  token=$(openssl rand -hex 24)
  mkdir -m 700 "$dir/pki"
  printf '%s,polder-admin,polder-admin,"system:masters"\n' "$token" >"$dir/pki/tokens.csv"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/pki/sa.key" 2>/dev/null
  openssl pkey -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null

  setsid "$bin/kube-apiserver" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$dir/pki/serving" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --token-auth-file "$dir/pki/tokens.csv" \
    --authorization-mode AlwaysAllow \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.pub" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none \
    --profiling=false \
    </dev/null >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  local url=https://127.0.0.1:$api_port
  wait_for 180 kube-apiserver "$dir/kube-apiserver.pid" "$bin/kube-apiserver" \
    "$dir/kube-apiserver.log" \
    curl -sfk -H "Authorization: Bearer $token" "$url/readyz"

  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: polder-apiserver
  cluster:
    server: $url
    certificate-authority: $dir/pki/serving/apiserver.crt
users:
- name: polder-admin
  user:
    token: $token
contexts:
- name: polder-apiserver
  context:
    cluster: polder-apiserver
    user: polder-admin
    namespace: default
current-context: polder-apiserver
EOF
  chmod 600 "$dir/kubeconfig"
  cat >"$dir/env" <<EOF
APISERVER_URL=$url
APISERVER_TOKEN=$token
KUBECONFIG=$dir/kubeconfig
EOF
  starting=
  trap - EXIT INT TERM
  log "ready: $url (etcd at http://127.0.0.1:$etcd_client); kubeconfig $dir/kubeconfig"
  echo "etcd pid $(cat "$dir/etcd.pid")"
  echo "kube-apiserver pid $(cat "$dir/kube-apiserver.pid")"
}

case "${1:-}" in
  build) build ;;
  bin) build; echo "$(tier_home)/bin" ;;
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  -h|--help) sed -n '2,23p' "$0" ;;
  *) sed -n '2,23p' "$0" >&2; exit 2 ;;
esac
