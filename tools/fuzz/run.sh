#!/usr/bin/env bash
# Builds Polder's libFuzzer targets with clang (AddressSanitizer + libFuzzer) in a Bazel output
# base of their own, and fuzzes each for a while, starting from and growing the corpus kept in
# the repository (tests/fuzz/corpus/<target>). ./test.sh replays that corpus with gcc every run.
#
#   tools/fuzz/run.sh                  every target, 60 s each
#   tools/fuzz/run.sh --seconds 600 record federation
#
# Installs clang-14 and libclang-rt-14-dev (Debian) if missing. New inputs that add coverage are
# merged into the corpus (libFuzzer -merge=1); a crash leaves crash-* files in the current
# directory and exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(frame record proto_schema federation http_ingest registry_rest)
if ! command -v clang-14 >/dev/null || [ ! -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  echo "[fuzz] installing clang-14 and libclang-rt-14-dev"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-14 libclang-rt-14-dev >/dev/null
fi
eval "$(tools/setup/setup.sh --print-env)"
base=${POLDER_FUZZ_OUTPUT_BASE:-$HOME/.cache/polder/bazel-fuzz}
labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:${t}_fuzzer"); done
echo "[fuzz] building ${labels[*]} with clang-14 (output base $base)"
bazel --output_base="$base" build --config=fuzz "${labels[@]}"
bin=$(bazel --output_base="$base" info --config=fuzz bazel-bin)
status=0
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/$t
  fresh=$(mktemp -d)
  echo "[fuzz] $t: ${seconds}s from $(ls "$corpus" | wc -l) corpus inputs"
  if ! "$bin/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$fresh" "$corpus"; then
    echo "[fuzz] $t: CRASH (see crash-* files above)"; status=1
  fi
  # Keep only inputs that add coverage.
  merged=$(mktemp -d)
  "$bin/tests/fuzz/${t}_fuzzer" -merge=1 "$merged" "$corpus" "$fresh" >/dev/null 2>&1 || true
  if [ -n "$(ls "$merged")" ]; then rm -f "$corpus"/*; cp "$merged"/* "$corpus"/; fi
  echo "[fuzz] $t: corpus now $(ls "$corpus" | wc -l) inputs"
  rm -rf "$fresh" "$merged"
done
bazel --output_base="$base" shutdown >/dev/null 2>&1 || true
exit $status
