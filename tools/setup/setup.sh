#!/usr/bin/env bash
# Installs everything Polder's build, tests and demo need on a fresh Debian 12 machine (as root):
#   1. the apt packages in tools/setup/versions.sh (only when one is missing);
#   2. the pinned Apache Kafka runtime from Maven Central (deploy/kafka/pom.xml) into
#      $POLDER_KAFKA_HOME (default /var/cache/polder/kafka-<version>), checked against
#      deploy/kafka/jars.sha256;
#   3. the npm test tools (deploy/npm/package.json + lockfile) into
#      /var/cache/polder/npm-<lockfile hash>/node_modules;
#   4. the Python test clients (deploy/pip/requirements.txt, exact versions and hashes) into a
#      venv of Debian's python3 at /var/cache/polder/pip-<requirements hash>/.
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
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
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

# ---- 2. Kafka -------------------------------------------------------------------------------
verify_kafka() {
  local libs="$POLDER_KAFKA_HOME/libs"
  [ -d "$libs" ] || return 1
  # Exactly the pinned set: every listed jar present with its hash, nothing else.
  (cd "$libs" && sha256sum --quiet --strict -c "$repo/deploy/kafka/jars.sha256") >/dev/null 2>&1 || return 1
  local want have
  want=$(wc -l < "$repo/deploy/kafka/jars.sha256")
  have=$(find "$libs" -maxdepth 1 -name '*.jar' | wc -l)
  [ "$want" -eq "$have" ]
}

install_kafka() {
  if [ -f "$POLDER_KAFKA_HOME/.complete" ] && verify_kafka; then
    log "kafka: $POLDER_KAFKA_VERSION present in $POLDER_KAFKA_HOME (hashes verified)"
    return
  fi
  log "kafka: fetching Apache Kafka $POLDER_KAFKA_VERSION from Maven Central into $POLDER_KAFKA_HOME"
  mkdir -p "$POLDER_CACHE_ROOT"
  local tmp="$POLDER_KAFKA_HOME.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/libs"
  # Offline first: the local Maven repository may already hold everything.
  if ! mvn -q -B -o -Dmaven.repo.local="$POLDER_M2_REPO" -f "$repo/deploy/kafka/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" \
        >"$tmp/mvn.log" 2>&1; then
    rm -rf "$tmp/libs"; mkdir -p "$tmp/libs"
    mvn -q -B -Dmaven.repo.local="$POLDER_M2_REPO" -f "$repo/deploy/kafka/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" \
        >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; die "maven could not resolve Kafka"; }
  fi
  if ! (cd "$tmp/libs" && sha256sum --quiet --strict -c "$repo/deploy/kafka/jars.sha256"); then
    die "kafka: fetched jars do not match deploy/kafka/jars.sha256 (left in $tmp)"
  fi
  local want have
  want=$(wc -l < "$repo/deploy/kafka/jars.sha256")
  have=$(find "$tmp/libs" -maxdepth 1 -name '*.jar' | wc -l)
  [ "$want" -eq "$have" ] || die "kafka: expected $want jars, maven produced $have (left in $tmp)"
  echo "$POLDER_KAFKA_VERSION" > "$tmp/VERSION"
  touch "$tmp/.complete"
  rm -rf "$POLDER_KAFKA_HOME"
  mv "$tmp" "$POLDER_KAFKA_HOME"
  log "kafka: $want jars verified"
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
  "$tmp/bin/python" -c "import confluent_kafka.schema_registry.protobuf, cloudevents.core.bindings.kafka" \
    || die "pip: confluent_kafka.schema_registry.protobuf or cloudevents does not import"
  touch "$tmp/.complete"
  rm -rf "$home"
  mv "$tmp" "$home"
}

install_apt
install_kafka
install_npm
install_pip

if [ "$print_env" -eq 1 ]; then
  echo "export POLDER_KAFKA_HOME='$POLDER_KAFKA_HOME'"
  echo "export POLDER_NPM_HOME='$(npm_home)'"
  echo "export POLDER_PIP_HOME='$(pip_home)'"
fi
