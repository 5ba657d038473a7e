#!/usr/bin/env bash
# The differencing attack on the views (ADR 0016 §11, §13): a synthetic 23-hour DST day published
# through Polder's engine, guard and gate (attack_data), attacked by linear programming with
# HiGHS through highspy (attack.py) — for bicycle counts (AGGREGATED: thresholds, dominance,
# additive relations, the map between municipalities and grid cells, sensors reporting per hour
# and day as feed quality's entities views) and shuttles (PSEUDONYMISED: distinct units). The
# control publishes the same bicycle day without the gate and must be caught, so the attack is
# shown to find what it looks for.
set -euo pipefail
py="${POLDER_PIP_HOME:-}/bin/python"
if [ ! -x "$py" ]; then
  echo "attack_test: no Python venv with highspy (POLDER_PIP_HOME='${POLDER_PIP_HOME:-}'); run tools/setup/setup.sh" >&2
  exit 1
fi
data=tests/views/attack_data
tmp=${TEST_TMPDIR:-$(mktemp -d)}

# The shuttle day (the longest) runs beside the other two: Bazel runs one test at a time, so this
# one may use both cores.
shuttles() {
  "$data" --class=pseudonymised --gate=on --seed=2 >"$tmp/pseudonymised.json" &&
    "$py" tests/views/attack.py "$tmp/pseudonymised.json"
}
shuttles >"$tmp/shuttles.out" 2>&1 &
shuttles_pid=$!

status=0
echo "== bicycle counts, gate on"
"$data" --class=aggregated --gate=on --seed=1 >"$tmp/aggregated.json"
"$py" tests/views/attack.py "$tmp/aggregated.json" || status=1
echo "== control: bicycle counts without the gate"
"$data" --class=aggregated --gate=off --seed=1 >"$tmp/control.json"
"$py" tests/views/attack.py --expect-violations "$tmp/control.json" || status=1
echo "== shuttles, gate on"
wait "$shuttles_pid" || status=1
cat "$tmp/shuttles.out"
if [ "$status" -ne 0 ]; then
  echo "attack_test: FAILED (see above)" >&2
  exit 1
fi
echo "attack_test: C0-C3 hold with the gate; the control without it is caught"
