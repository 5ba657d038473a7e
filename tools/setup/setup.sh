#!/usr/bin/env bash
# Installs everything Polder's build, tests and demo need on a fresh Debian 12 machine (as root):
#   1. the apt packages in tools/setup/versions.sh (only when one is missing);
#   2. the pinned Apache Kafka runtime from Maven Central (deploy/kafka/pom.xml) into
#      $POLDER_KAFKA_HOME (default /var/cache/polder/kafka-<version>), checked against
#      deploy/kafka/jars.sha256; and Kafka Streams of the same version (deploy/kafka-streams/), the
#      views' differential test and benchmark baseline, into $POLDER_STREAMS_HOME;
#   3. the npm packages (deploy/npm/package.json + lockfile: the dashboard's chart library and the
#      test tools) into /var/cache/polder/npm-<lockfile hash>/node_modules;
#   4. the Python test clients (deploy/pip/requirements.txt, exact versions and hashes) into a
#      venv of Debian's python3 at /var/cache/polder/pip-<requirements hash>/;
#   5. one Go toolchain for every Go tool: the machine's `go` if it is at least the newest `go`
#      line of deploy/go/*/go.mod, otherwise the approved toolchain (deploy/go/toolchain.txt)
#      fetched as a Go module through the Go module proxy into /var/cache/polder/go/; with it the
#      Go tools pinned by deploy/go/<tool>/go.mod + go.sum (buildifier) into
#      /var/cache/polder/go-tools-<hash>/bin;
#   6. the .deb files of the container images' Debian packages (k8s/images/packages.lock's
#      names, the versions Debian serves today) into $POLDER_DEBS_HOME (/var/cache/polder/debs).
# Idempotent: a second run, or a fresh clone on the same machine, downloads nothing and takes
# seconds. Prints `export` lines for the caller to eval with --print-env.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=versions.sh
source "$repo/tools/setup/versions.sh"

print_env=0
for arg in "$@"; do
  case "$arg" in
    --print-env) print_env=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

log() { echo "[setup] $*" >&2; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

# ---- 1. apt ---------------------------------------------------------------------------------
install_apt() {
  local missing=()
  for p in "${POLDER_APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  local entry
  for entry in "${POLDER_APT_COMMANDS[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "apt: all ${#POLDER_APT_PACKAGES[@]} packages present"
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "apt packages missing (${missing[*]}) and not running as root"
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---- 2. Kafka and Kafka Streams -------------------------------------------------------------
# A pinned Maven set: every jar of deploy/<name>/jars.sha256 present with its hash, nothing else.
verify_maven_set() {
  local hashes=$1 libs=$2
  [ -d "$libs" ] || return 1
  (cd "$libs" && sha256sum --quiet --strict -c "$hashes") >/dev/null 2>&1 || return 1
  local want have
  want=$(wc -l < "$hashes")
  have=$(find "$libs" -maxdepth 1 -name '*.jar' | wc -l)
  [ "$want" -eq "$have" ]
}

# install_maven_set <label> <deploy dir> <home>: resolves deploy/<dir>/pom.xml into <home>/libs
# and checks it against deploy/<dir>/jars.sha256; the home appears only when complete.
install_maven_set() {
  local label=$1 dir="$repo/deploy/$2" home=$3
  if [ -f "$home/.complete" ] && verify_maven_set "$dir/jars.sha256" "$home/libs"; then
    log "$label: $POLDER_KAFKA_VERSION present in $home (hashes verified)"
    return
  fi
  log "$label: fetching $POLDER_KAFKA_VERSION from Maven Central into $home"
  mkdir -p "$POLDER_CACHE_ROOT"
  local tmp="$home.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/libs"
  # Offline first: the local Maven repository may already hold everything.
  if ! mvn -q -B -o -Dmaven.repo.local="$POLDER_M2_REPO" -f "$dir/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" \
        >"$tmp/mvn.log" 2>&1; then
    rm -rf "$tmp/libs"; mkdir -p "$tmp/libs"
    mvn -q -B -Dmaven.repo.local="$POLDER_M2_REPO" -f "$dir/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" \
        >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; die "maven could not resolve $label"; }
  fi
  if ! (cd "$tmp/libs" && sha256sum --quiet --strict -c "$dir/jars.sha256"); then
    die "$label: fetched jars do not match deploy/$2/jars.sha256 (left in $tmp)"
  fi
  local want have
  want=$(wc -l < "$dir/jars.sha256")
  have=$(find "$tmp/libs" -maxdepth 1 -name '*.jar' | wc -l)
  [ "$want" -eq "$have" ] || die "$label: expected $want jars, maven produced $have (left in $tmp)"
  echo "$POLDER_KAFKA_VERSION" > "$tmp/VERSION"
  touch "$tmp/.complete"
  rm -rf "$home"
  mv "$tmp" "$home"
  log "$label: $want jars verified"
}

# ---- 3. npm ---------------------------------------------------------------------------------
npm_home() {
  local h
  h=$(cat "$repo/deploy/npm/package.json" "$repo/deploy/npm/package-lock.json" | sha256sum | cut -c1-16)
  echo "$POLDER_CACHE_ROOT/npm-$h"
}

install_npm() {
  local home
  home=$(npm_home)
  if [ -f "$home/.complete" ]; then
    log "npm: test tools present in $home"
    return
  fi
  log "npm: installing test tools (deploy/npm/package-lock.json) into $home"
  local tmp="$home.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp "$repo/deploy/npm/package.json" "$repo/deploy/npm/package-lock.json" "$tmp/"
  (cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1) \
    || { cat "$tmp/npm.log" >&2; die "npm ci failed"; }
  [ -x "$tmp/node_modules/.bin/buf" ] || die "npm: buf binary missing after install"
  "$tmp/node_modules/.bin/buf" --version >/dev/null || die "npm: buf does not run"
  # The dashboard's chart library (built into polder-aggregator through @polder_npm) and the
  # browser-test drivers.
  local f
  for f in uplot/dist/uPlot.esm.js uplot/dist/uPlot.min.css uplot/LICENSE axe-core/axe.min.js \
      playwright-core/index.js; do
    [ -f "$tmp/node_modules/$f" ] || die "npm: $f missing after install"
  done
  touch "$tmp/.complete"
  rm -rf "$home"
  mv "$tmp" "$home"
}

# ---- 4. pip ---------------------------------------------------------------------------------
pip_home() {
  local h
  h=$(sha256sum < "$repo/deploy/pip/requirements.txt" | cut -c1-16)
  echo "$POLDER_CACHE_ROOT/pip-$h"
}

install_pip() {
  local home
  home=$(pip_home)
  if [ -f "$home/.complete" ]; then
    log "pip: test clients present in $home"
    return
  fi
  log "pip: installing test clients (deploy/pip/requirements.txt) into $home"
  local tmp="$home.tmp.$$"
  rm -rf "$tmp"
  /usr/bin/python3 -m venv "$tmp" || die "pip: python3 -m venv failed (python3-venv missing?)"
  "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
      -r "$repo/deploy/pip/requirements.txt" >"$tmp/pip.log" 2>&1 \
    || { cat "$tmp/pip.log" >&2; die "pip install failed"; }
  "$tmp/bin/python" -c "import confluent_kafka.schema_registry.protobuf, cloudevents.core.bindings.kafka, highspy" \
    || die "pip: confluent_kafka.schema_registry.protobuf, cloudevents or highspy does not import"
  touch "$tmp/.complete"
  rm -rf "$home"
  mv "$tmp" "$home"
}

# ---- 5. Go ----------------------------------------------------------------------------------
# Every Go command runs with setup's own settings: the module cache under $POLDER_CACHE_ROOT/go,
# no user go env file, no toolchain switching, and checksums always checked (go.sum, and the
# checksum database for anything go.sum does not cover); GOPROXY is taken from the environment.
go_cache=$POLDER_CACHE_ROOT/go
POLDER_GO=""

go_run() {
  local go=$1; shift
  env -u GOFLAGS -u GONOSUMDB -u GOPRIVATE -u GOINSECURE \
    GOENV=off GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 \
    GOPATH="$go_cache" GOMODCACHE="$go_cache/pkg/mod" GOSUMDB="${GOSUMDB:-sum.golang.org}" \
    "$go" "$@"
}

# The version a go binary reports, e.g. go1.26.8 (empty if it does not run).
go_version_of() {
  GOENV=off GOTOOLCHAIN=local "$1" version 2>/dev/null | awk '{ print $3 }'
}

# version_at_least A B: Go version A (go1.26.8) is B (go1.24) or newer.
version_at_least() {
  [ "$(printf '%s\n%s\n' "${2#go}" "${1#go}" | sort -V | head -n1)" = "${2#go}" ]
}

# The newest `go` line of the tool modules: the oldest Go that may build them.
go_min_version() {
  local v
  v=$(awk '$1 == "go" { print $2 }' "$repo"/deploy/go/*/go.mod | sort -V | tail -n1)
  [ -n "$v" ] || die "go: no go line in deploy/go/*/go.mod"
  echo "go$v"
}

go_approved_toolchain() {
  local v
  v=$(grep -v '^#' "$repo/deploy/go/toolchain.txt" | awk 'NF { print $1 }')
  [[ "$v" =~ ^go1\.[0-9]+\.[0-9]+$ ]] || die "go: deploy/go/toolchain.txt names no go1.N.M version"
  echo "$v"
}

# A go that can fetch modules when the machine has none: Debian 12's Go 1.19, installed off PATH
# (/usr/lib/go-1.19), too old to build the tools or to switch toolchains itself.
go_bootstrap() {
  local boot=/usr/lib/go-1.19/bin/go
  if [ ! -x "$boot" ]; then
    [ "$(id -u)" -eq 0 ] || die "go: no go on PATH, and not root to install Debian's golang-1.19-go"
    log "go: no go on PATH; installing Debian's golang-1.19-go (off PATH) to fetch the approved toolchain"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends golang-1.19-go >/dev/null
  fi
  [ -n "$(go_version_of "$boot")" ] || die "go: $boot does not run"
  echo "$boot"
}

install_go() {
  local min approved machine="" v
  min=$(go_min_version)
  approved=$(go_approved_toolchain)
  version_at_least "$approved" "$min" \
    || die "go: deploy/go/toolchain.txt ($approved) is older than $min, which deploy/go/*/go.mod needs"
  if [ "${GOSUMDB:-}" = off ]; then
    die "go: GOSUMDB=off; setup checks every Go module against the checksum database"
  fi
  if machine=$(command -v go); then
    v=$(go_version_of "$machine")
    if [ -n "$v" ] && version_at_least "$v" "$min"; then
      POLDER_GO=$machine
      log "go: the machine's $v ($machine), at least $min"
      return
    fi
    log "go: the machine's go ($machine) is ${v:-not working}, older than $min"
  fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) die "go: no Go toolchain module for machine type $(uname -m)" ;;
  esac
  local module="golang.org/toolchain@v0.0.1-$approved.linux-$arch"
  local dir="$go_cache/pkg/mod/$module"
  local marker="$go_cache/$approved.linux-$arch.complete"
  if [ -f "$marker" ] && [ "$(go_version_of "$dir/bin/go")" = "$approved" ]; then
    POLDER_GO=$dir/bin/go
    log "go: $approved present in $dir"
    return
  fi
  local boot
  if [ -n "$machine" ] && [ -n "$v" ]; then boot=$machine; else boot=$(go_bootstrap); fi
  log "go: fetching $approved ($module) through the Go module proxy with $(go_version_of "$boot") into $go_cache"
  mkdir -p "$go_cache"
  (cd "$go_cache" && go_run "$boot" mod download "$module") >"$go_cache/toolchain.log" 2>&1 \
    || { cat "$go_cache/toolchain.log" >&2; die "go: could not fetch $module"; }
  # Module zips carry no file modes: make the commands executable, as the go command does when
  # it switches to a downloaded toolchain itself.
  find "$dir/bin" "$dir/pkg/tool" -type f -exec chmod a+x {} +
  find "$dir/lib" -type f -name 'go_?*_?*_exec' -exec chmod a+x {} +
  v=$(go_version_of "$dir/bin/go")
  [ "$v" = "$approved" ] || die "go: $dir/bin/go reports '${v:-nothing}', expected $approved"
  rm -f "$go_cache/toolchain.log"
  touch "$marker"
  POLDER_GO=$dir/bin/go
}

go_tools_home() {
  local h
  h=$(cat "$repo"/deploy/go/*/go.mod "$repo"/deploy/go/*/go.sum | sha256sum | cut -c1-16)
  echo "$POLDER_CACHE_ROOT/go-tools-$h"
}

install_go_tools() {
  local home
  home=$(go_tools_home)
  if [ -f "$home/.complete" ]; then
    log "go tools: $(cd "$home/bin" && echo *) present in $home"
    return
  fi
  log "go tools: building $(cd "$repo/deploy/go" && echo */ | tr -d /) with $(go_version_of "$POLDER_GO") into $home"
  local tmp="$home.tmp.$$" mod
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  for mod in "$repo"/deploy/go/*/go.mod; do
    (cd "$(dirname "$mod")" && GOBIN="$tmp/bin" GOCACHE="$tmp/gocache" \
        go_run "$POLDER_GO" install -mod=readonly -trimpath -buildvcs=false tool) \
      >>"$tmp/go.log" 2>&1 \
      || { cat "$tmp/go.log" >&2; die "go tools: building $(dirname "$mod") failed"; }
  done
  rm -rf "$tmp/gocache"
  "$tmp/bin/buildifier" --version >/dev/null || die "go tools: buildifier does not run"
  "$tmp/bin/helm" version >/dev/null || die "go tools: helm does not run"
  (cd "$tmp/bin" && go_run "$POLDER_GO" version -m ./*) > "$tmp/BUILDINFO"
  touch "$tmp/.complete"
  rm -rf "$home"
  mv "$tmp" "$home"
}

# ---- 6. the container images' Debian packages -----------------------------------------------
install_image_debs() {
  local names
  names=$(grep -v '^#' "$repo/k8s/images/packages.lock" | cut -f1)
  # shellcheck disable=SC2086  # one word per package name
  bash "$repo/tools/images/fetch_debs.sh" "$POLDER_DEBS_HOME" $names \
    || die "image packages: could not fetch the .deb files into $POLDER_DEBS_HOME"
  log "image packages: $(echo $names | wc -w) .deb files (the versions Debian serves today) in $POLDER_DEBS_HOME"
}

install_apt
install_maven_set kafka kafka "$POLDER_KAFKA_HOME"
install_maven_set kafka-streams kafka-streams "$POLDER_STREAMS_HOME"
install_npm
install_pip
install_go
install_go_tools
install_image_debs

if [ "$print_env" -eq 1 ]; then
  echo "export POLDER_KAFKA_HOME='$POLDER_KAFKA_HOME'"
  echo "export POLDER_STREAMS_HOME='$POLDER_STREAMS_HOME'"
  echo "export POLDER_NPM_HOME='$(npm_home)'"
  echo "export POLDER_PIP_HOME='$(pip_home)'"
  echo "export POLDER_GO='$POLDER_GO'"
  echo "export POLDER_DEBS_HOME='$POLDER_DEBS_HOME'"
  echo "export POLDER_BUILDIFIER='$(go_tools_home)/bin/buildifier'"
  echo "export POLDER_GO_TOOLS='$(go_tools_home)/bin'"
fi
