#!/usr/bin/env bash
# Runs every benchmark as docs/BENCHMARKS.md documents it, one after another (never two at once:
# on 2 cores they would starve each other), and writes their tables to one file.
#
#   bench/run_all.sh [--out DIR] [--quick]
#
# Needs nothing but what ./test.sh needs: it installs what is missing (tools/setup/setup.sh, and
# MirrorMaker 2 with bench/mm2/fetch.sh), builds the benchmarks with -c opt and runs them.
# DIR (default /tmp/polder-bench-<date>-<commit>) gets one log per benchmark and tables.md:
# each benchmark's command, its tables (the lines of its output that are Markdown table rows)
# and its wall time. --quick: one run each with shorter phases (a smoke run, not figures to
# report). Leaves no process running (the Bazel server is shut down at the end).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="" quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "bench/run_all.sh: unknown argument $1 (--out DIR, --quick)" >&2; exit 2 ;;
  esac
done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${out:-/tmp/polder-bench-$(date +%Y%m%d-%H%M%S)-$commit}
mkdir -p "$out"
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT

eval "$(tools/setup/setup.sh --print-env)"
export POLDER_KAFKA_HOME POLDER_STREAMS_HOME POLDER_NPM_HOME POLDER_PIP_HOME POLDER_GO \
  POLDER_BUILDIFIER POLDER_DEBS_HOME POLDER_GO_TOOLS
bash bench/mm2/fetch.sh >/dev/null

# The commands of docs/BENCHMARKS.md (the flags each section documents).
if [ "$quick" -eq 1 ]; then
  commands=(
    "registry_bench --runs=1 --seconds=2 --threads=4"
    "ingest_bench --runs=1 --seconds=5 --streams=4 --batch=100"
    "federation_bench --runs=1 --records=20000 --live=1000"
    "views_bench --runs=1 --records=100000 --sensors=2000"
    "fanout_bench --runs=1 --records=2000 --live_seconds=5 --max_streams=8"
    "failover_bench --runs=1"
  )
else
  commands=(
    "registry_bench --runs=3 --seconds=5 --threads=4"
    "ingest_bench --runs=3 --seconds=15 --streams=4 --batch=100"
    "federation_bench --runs=3 --records=200000 --live=6000"
    "views_bench --runs=3 --records=1000000 --sensors=2000"
    "fanout_bench --runs=3 --records=10000 --live_seconds=20"
    "failover_bench --runs=3"
  )
fi
targets=()
for c in "${commands[@]}"; do targets+=("//bench:${c%% *}"); done
bazel build -c opt "${targets[@]}"

{
  echo "# Benchmarks of $commit ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
  echo
} > "$out/tables.md"
failed=0
for c in "${commands[@]}"; do
  name=${c%% *}
  args=${c#* }
  echo "[run_all] $name $args" >&2
  start=$(date +%s)
  # shellcheck disable=SC2086  # the documented flags, one word each
  if bazel run -c opt "//bench:$name" -- $args > "$out/$name.log" 2>&1; then status=ok; else
    status="FAILED (exit $?, see $name.log)"
    failed=$((failed + 1))
  fi
  {
    echo "## $name"
    echo
    echo '```sh'
    echo "bazel run -c opt //bench:$name -- $args"
    echo '```'
    echo
    grep -E '^\|' "$out/$name.log" || echo "(no table: $status)"
    echo
    echo "$status, $(( $(date +%s) - start )) s"
    echo
  } >> "$out/tables.md"
done
echo "[run_all] tables: $out/tables.md ($failed failed)" >&2
[ "$failed" -eq 0 ]
