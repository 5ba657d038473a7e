#!/usr/bin/env bash
# The differencing attack on the views (ADR 0016 §11, §13): a synthetic 23-hour DST day published
# through Polder's engine, guard and gate (attack_data), attacked by linear programming with
# HiGHS through highspy (attack.py) — for bicycle counts (AGGREGATED: thresholds, dominance,
# additive relations, the map between municipalities and grid cells) and shuttles (PSEUDONYMISED: distinct units). The control publishes the same
# bicycle day without the gate and must be caught, so the attack is shown to find what it
# looks for.
set -euo pipefail
py="${POLDER_PIP_HOME:-}/bin/python"
if [ ! -x "$py" ]; then
  echo "attack_test: no Python venv with highspy (POLDER_PIP_HOME='${POLDER_PIP_HOME:-}'); run tools/setup/setup.sh" >&2
  exit 1
fi
data=tests/views/attack_data
tmp=${TEST_TMPDIR:-$(mktemp -d)}

echo "== bicycle counts, gate on"
"$data" --class=aggregated --gate=on --seed=1 >"$tmp/aggregated.json"
"$py" tests/views/attack.py "$tmp/aggregated.json"
echo "== shuttles, gate on"
"$data" --class=pseudonymised --gate=on --seed=2 >"$tmp/pseudonymised.json"
"$py" tests/views/attack.py "$tmp/pseudonymised.json"
echo "== control: bicycle counts without the gate"
"$data" --class=aggregated --gate=off --seed=1 >"$tmp/control.json"
"$py" tests/views/attack.py --expect-violations "$tmp/control.json"
echo "attack_test: C0-C3 hold with the gate; the control without it is caught"
