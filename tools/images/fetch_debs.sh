#!/usr/bin/env bash
# Keeps the .deb Debian serves today of each named package in DIR (ADR 0022 §1):
#   tools/images/fetch_debs.sh DIR PACKAGE...
# A package whose served version is already there is left alone; otherwise its .deb is
# downloaded (apt-get download) and older versions of it are removed, so DIR holds one .deb per
# package. Prints how many were downloaded. Needs apt's package lists (apt-get update) only for a
# version not yet seen.
set -euo pipefail

dir=${1:?usage: fetch_debs.sh DIR PACKAGE...}
shift
mkdir -p "$dir"
# The served (candidate) version of every package, from one apt-cache call.
declare -A served
while read -r package version; do
  served[$package]=$version
done < <(apt-cache policy "$@" | awk '/^[^ ]/ {sub(/:$/, "", $1); p = $1}
                                     /^  Candidate:/ {print p, $2}')
downloaded=0
for package in "$@"; do
  version=${served[$package]:-}
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "fetch_debs: Debian serves no package '$package'" >&2
    exit 1
  fi
  # apt-get download names the file <package>_<version, ':' as %3a>_<arch>.deb.
  file_version=${version//:/%3a}
  have=0
  for deb in "$dir/${package}_${file_version}"_*.deb; do
    [ -e "$deb" ] && have=1
  done
  [ "$have" -eq 1 ] && continue
  tmp=$(mktemp -d "$dir/.download.XXXXXX")
  if ! (cd "$tmp" && apt-get download -q=2 -o APT::Sandbox::User=root "$package=$version"); then
    # Package lists older than the mirror (a version since replaced): read them again, once.
    echo "fetch_debs: $package $version not served; apt-get update, then the current one" >&2
    apt-get update -qq
    version=$(apt-cache policy "$package" | awk '/^  Candidate:/ {print $2}')
    (cd "$tmp" && apt-get download -q=2 -o APT::Sandbox::User=root "$package=$version")
  fi
  for deb in "$dir/${package}"_*.deb; do
    [ -e "$deb" ] && [ "$(dpkg-deb -f "$deb" Package)" = "$package" ] && rm -f "$deb"
  done
  mv "$tmp"/*.deb "$dir/"
  rmdir "$tmp"
  downloaded=$((downloaded + 1))
done
[ "$downloaded" -eq 0 ] || echo "fetch_debs: downloaded $downloaded .deb file(s) into $dir" >&2
