#!/usr/bin/env bash
# Polder's test command (README quick start, and what CI runs through .ci/run):
#   ./test.sh                 install what is missing, build everything, run every test
#   ./test.sh //common/...    the same for some targets only
#   ./test.sh --soak          the long matrices (connection floods of 10,000 per listener)
#   ./test.sh --k8s           the charts against a real API server (etcd + kube-apiserver built
#                             from the Go module proxy on first use: minutes, GBs; ADR 0022 §6)
# Before the build it checks the tree's format (tools/checks/format.sh: clang-format, buildifier);
# after it, the lock annotations (tools/checks/thread_safety.py: clang -Wthread-safety).
# Needs nothing but bash on a fresh Debian 12 machine as root. Prints the time of each phase and
# a final `N passed, N failed` line; exits non-zero on any failure; leaves no process running
# (test brokers and the Bazel server included).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
repo=$(pwd)
soak=0
k8s=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --soak) soak=1 ;;
    --k8s) k8s=1 ;;
    *) targets+=("$arg") ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("//...")

t0=$(date +%s)
phase_start=$t0
phase() {
  local now
  now=$(date +%s)
  if [ -n "${phase_name:-}" ]; then
    printf '[test.sh] %-8s %4ds\n' "$phase_name" $((now - phase_start))
  fi
  phase_name=$1
  phase_start=$now
  [ -n "$1" ] && echo "[test.sh] --- $1"
}

# Brokers the tests start carry -Dpolder.kafka.broker=... and live under this workspace's Bazel
# output base; none may outlive this script. (Brokers of a running demo or of other checkouts
# are not ours and are left alone.)
output_base=""
leftover_brokers() {
  [ -n "$output_base" ] || return 0
  pgrep -f -- "-Dlog4j2\.configurationFile=${output_base}/.*-Dpolder\.kafka\.broker=" || true
}

cleanup() {
  local pids
  pids=$(leftover_brokers)
  if [ -n "$pids" ]; then
    echo "[test.sh] killing leftover test brokers: $pids" >&2
    kill -9 $pids 2>/dev/null || true
  fi
  command -v bazel >/dev/null 2>&1 && bazel shutdown >/dev/null 2>&1 || true
}
trap cleanup EXIT

phase setup
if ! env_lines=$(tools/setup/setup.sh --print-env); then
  echo "[test.sh] setup failed" >&2
  exit 1
fi
eval "$env_lines"
export POLDER_KAFKA_HOME POLDER_STREAMS_HOME POLDER_NPM_HOME POLDER_PIP_HOME POLDER_GO POLDER_BUILDIFIER POLDER_DEBS_HOME POLDER_GO_TOOLS

# The tree's format (clang-format, buildifier): counted as one case each in the summary.
checks_passed=0
checks_failed=0
if [ "$soak" -eq 0 ] && [ "$k8s" -eq 0 ]; then
  phase format
  while IFS= read -r line; do
    echo "$line"
    case "$line" in
      "format: "*" ok "*) checks_passed=$((checks_passed + 1)) ;;
      "format: "*) checks_failed=$((checks_failed + 1)) ;;
    esac
  done < <(tools/checks/format.sh 2>&1)
fi

phase build
output_base=$(bazel info output_base 2>/dev/null)
if ! bazel build "${targets[@]}"; then
  phase ""
  echo "0 passed, 1 failed"
  echo "[test.sh] build failed" >&2
  exit 1
fi

# --soak: the long matrices instead (targets tagged "soak", kept out of //... by "manual"):
# connection floods of 10,000 per listener (tests/adversarial).
if [ "$soak" -eq 1 ]; then
  mapfile -t targets < <(bazel query 'attr(tags, "\bsoak\b", //...)' 2>/dev/null)
  if [ ${#targets[@]} -eq 0 ]; then
    echo "[test.sh] no soak targets found" >&2
    exit 1
  fi
  bazel build "${targets[@]}" || exit 1
fi

# --k8s: the API-server tier instead (targets tagged "k8s_tier", kept out of //... by "manual").
if [ "$k8s" -eq 1 ]; then
  mapfile -t targets < <(bazel query 'attr(tags, "\bk8s_tier\b", //...)' 2>/dev/null)
  if [ ${#targets[@]} -eq 0 ]; then
    echo "[test.sh] no k8s tier targets found" >&2
    exit 1
  fi
  bazel build "${targets[@]}" || exit 1
fi

# The lock annotations, checked by clang (gcc ignores them): one case in the summary. Only on a
# run of the whole tree, whose build produced every generated header the sources include.
thread_safety_failed=0
if [ "$soak" -eq 0 ] && [ "$k8s" -eq 0 ] && [ "${targets[*]}" = "//..." ]; then
  phase threads
  if python3 tools/checks/thread_safety.py; then
    checks_passed=$((checks_passed + 1))
  else
    checks_failed=$((checks_failed + 1))
    thread_safety_failed=1
  fi
fi

phase test
bazel test "${targets[@]}"
test_rc=$?

phase report
# The tests Bazel ran: manual ones (the soak) only when named explicitly (--soak).
if [ "$soak" -eq 1 ] || [ "$k8s" -eq 1 ]; then
  mapfile -t test_targets < <(bazel query "tests(set(${targets[*]}))" 2>/dev/null | sort)
else
  mapfile -t test_targets < <(bazel query "tests(set(${targets[*]})) except attr(tags, '\bmanual\b', //...)" \
                                2>/dev/null | sort)
fi
testlogs=$(bazel info bazel-testlogs 2>/dev/null)
python3 tools/setup/count_tests.py "$testlogs" "${test_targets[@]}" | tee /tmp/polder-test-count.$$
summary=$(tail -n 1 /tmp/polder-test-count.$$)
rm -f /tmp/polder-test-count.$$

stray=$(leftover_brokers)
if [ -n "$stray" ]; then
  echo "[test.sh] ERROR: test brokers still running after the tests: $stray" >&2
  test_rc=1
fi
phase ""
printf '[test.sh] total    %4ds\n' $(( $(date +%s) - t0 ))
if [ "$test_rc" -ne 0 ]; then
  echo "[test.sh] bazel test failed (exit $test_rc)" >&2
fi
# The format and thread-safety checks join the count; a failed one fails the run.
if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
  summary="$((BASH_REMATCH[1] + checks_passed)) passed, $((BASH_REMATCH[2] + checks_failed)) failed"
fi
if [ "$checks_failed" -gt 0 ]; then
  if [ "$thread_safety_failed" -eq 1 ]; then
    echo "[test.sh] thread-safety check failed: tools/checks/thread_safety.py" >&2
  fi
  if [ "$checks_failed" -gt "$thread_safety_failed" ]; then
    echo "[test.sh] format check failed: tools/checks/format.sh --fix" >&2
  fi
  test_rc=1
fi
# The counted cases and Bazel's verdict must agree: any failed case fails the run.
if ! grep -q ' 0 failed' <<<"$summary" && [ "$test_rc" -eq 0 ]; then
  test_rc=1
fi
echo "$summary"
exit "$test_rc"
