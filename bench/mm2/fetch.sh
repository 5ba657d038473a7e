#!/usr/bin/env bash
# Fetches MirrorMaker 2 (bench/mm2/pom.xml) into /var/cache/polder/mm2-<version>/libs and prints
# that folder. Idempotent.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$repo/tools/setup/versions.sh"
dest=${POLDER_MM2_HOME:-/var/cache/polder/mm2-$POLDER_KAFKA_VERSION}
if [ ! -f "$dest/.complete" ]; then
  mkdir -p "$dest/libs"
  mvn -q -B -Dmaven.repo.local="${POLDER_M2_REPO:-$HOME/.m2/repository}" -f "$repo/bench/mm2/pom.xml" \
      dependency:copy-dependencies -DoutputDirectory="$dest/libs" -DincludeScope=runtime >&2
  touch "$dest/.complete"
fi
echo "$dest"
