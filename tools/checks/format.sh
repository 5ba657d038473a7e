#!/usr/bin/env bash
# The tree's format checks, run by ./test.sh before the build (and by hand):
#   clang-format   every .cc/.h of the repository as clang-format-14 formats it (.clang-format)
#   buildifier     every BUILD, WORKSPACE and .bzl file as buildifier formats it (format only:
#                  its lint warnings are about native rules without load(), which Debian's
#                  offline Bazel 4.2.3 with rule stubs cannot avoid)
# Usage: tools/checks/format.sh [--fix]   (--fix rewrites the files instead of checking them)
# Needs clang-format-14 and $POLDER_BUILDIFIER, both from tools/setup/setup.sh (--print-env).
# Prints one line per check — `format: <check> ok (N files)` or the files that differ — and exits
# 1 if any check failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
fix=0
[ "${1:-}" = "--fix" ] && fix=1

list() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -- "$@"
  else
    local p args=()
    for p in "$@"; do args+=(-o -name "${p##*/}"); done
    find . -path ./bazel-\* -prune -o -type f \( -false "${args[@]}" \) -print | sed 's|^\./||'
  fi
}

rc=0
mapfile -t cc < <(list '*.cc' '*.h')
if ! command -v clang-format-14 >/dev/null; then
  echo "format: clang-format-14 missing (run tools/setup/setup.sh)" >&2
  rc=1
elif [ "$fix" -eq 1 ]; then
  clang-format-14 -i "${cc[@]}"
else
  mapfile -t bad < <(for f in "${cc[@]}"; do clang-format-14 --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
  if [ ${#bad[@]} -eq 0 ]; then
    echo "format: clang-format ok (${#cc[@]} files)"
  else
    echo "format: clang-format: ${#bad[@]} file(s) differ — run tools/checks/format.sh --fix:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    rc=1
  fi
fi

mapfile -t bzl < <(list 'BUILD' '*/BUILD' 'WORKSPACE' '*.bzl')
buildifier=${POLDER_BUILDIFIER:-}
if [ -z "$buildifier" ] || [ ! -x "$buildifier" ]; then
  echo "format: buildifier missing (\$POLDER_BUILDIFIER; run tools/setup/setup.sh --print-env)" >&2
  rc=1
elif [ "$fix" -eq 1 ]; then
  "$buildifier" --mode=fix "${bzl[@]}"
else
  if out=$("$buildifier" --mode=check "${bzl[@]}" 2>&1); then
    echo "format: buildifier ok (${#bzl[@]} files)"
  else
    echo "format: buildifier: files differ — run tools/checks/format.sh --fix:" >&2
    echo "$out" | sed 's/^/  /' >&2
    rc=1
  fi
fi
exit "$rc"
