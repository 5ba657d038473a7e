#!/usr/bin/env bash
# Polder demo: a local federation on this machine.
#
# What it does today (foundation stage, see README): installs what is missing, builds Polder,
# and starts one real Kafka cluster (KRaft, loopback only) per organisation of the demo
# federation — the national operator and the cities of Groningen, Amersfoort and Enschede —
# then shows each cluster's status until you press Ctrl-C, which stops everything cleanly.
# Later stages add the registry, the city nodes, sharing contracts and live data flows.
#
#   ./demo.sh                 run until Ctrl-C
#   ./demo.sh --once          start, show the status once, stop (a smoke test)
#   DEMO_CITIES="groningen amersfoort" ./demo.sh    fewer clusters on a busy machine
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
once=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

orgs=(${DEMO_CITIES:-national groningen amersfoort enschede})
run_dir=$(mktemp -d /tmp/polder-demo.XXXXXX)
pids=()

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping ${#pids[@]} Kafka cluster(s)..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
  fi
  rm -rf "$run_dir"
  say "stopped; no Polder process left running."
}
trap stop_all EXIT
trap 'exit 130' INT TERM

source tools/setup/versions.sh
say "phase 1/3: installing what is missing (apt packages, Kafka $POLDER_KAFKA_VERSION, npm tools)"
env_lines=$(tools/setup/setup.sh --print-env) || { say "setup failed"; exit 1; }
eval "$env_lines"
export POLDER_KAFKA_HOME

say "phase 2/3: building Polder (bazel, offline)"
if ! bazel build //tools/kafka:polder-kafka 2>"$run_dir/build.log"; then
  cat "$run_dir/build.log" >&2
  say "build failed"; exit 1
fi
bin=$(bazel info bazel-bin 2>/dev/null)/tools/kafka/polder-kafka
cp "$bin" "$run_dir/polder-kafka"
bazel shutdown >/dev/null 2>&1 || true   # No Bazel server is left behind by the demo.

say "phase 3/3: starting one Kafka cluster per organisation: ${orgs[*]}"
for org in "${orgs[@]}"; do
  mkdir -p "$run_dir/$org"
  "$run_dir/polder-kafka" --name="$org" --work_dir="$run_dir/$org" \
      --ready_file="$run_dir/$org.ready" --heap=384m >"$run_dir/$org.out" 2>&1 &
  pids+=($!)
done
deadline=$(( $(date +%s) + 120 ))
for i in "${!orgs[@]}"; do
  org=${orgs[$i]}
  until [ -f "$run_dir/$org.ready" ]; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      say "the $org cluster failed to start:"; cat "$run_dir/$org.out" >&2; exit 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $org"; exit 1; }
    sleep 0.2
  done
done

show_status() {
  printf '\n%-12s %-22s %-8s %-7s %s\n' ORGANISATION KAFKA PID TOPICS "BROKER"
  for i in "${!orgs[@]}"; do
    org=${orgs[$i]}
    addr=$(cat "$run_dir/$org.ready")
    bpid=$(cat "$run_dir/$org/broker.pid" 2>/dev/null || echo -)
    md=$(kcat -b "$addr" -L -m 3 2>/dev/null)
    if [ -n "$md" ]; then
      topics=$(grep -c '^  topic ' <<<"$md" || true)
      state="serving ($(grep -m1 -o 'broker [0-9]* at [^ ]*' <<<"$md"))"
    else
      topics=-; state="not answering"
    fi
    printf '%-12s %-22s %-8s %-7s %s\n' "$org" "$addr" "$bpid" "$topics" "$state"
  done
  echo
  echo "Look inside a cluster, e.g.:  kcat -b $(cat "$run_dir/${orgs[0]}.ready") -L"
  echo "Broker logs:                  $run_dir/<organisation>/broker.log"
}

show_status
if [ "$once" -eq 1 ]; then exit 0; fi
say "running; status every 10 s. Press Ctrl-C to stop everything."
while true; do
  sleep 10 &
  wait $! || true
  for i in "${!orgs[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || { say "the ${orgs[$i]} cluster stopped unexpectedly"; exit 1; }
  done
  show_status
done
