#!/usr/bin/env bash
# The charts' test (charts_test.py) with the Python of setup's pip set (PyYAML, jsonschema,
# kubernetes-validate) and helm from its Go tools.
set -euo pipefail
: "${POLDER_PIP_HOME:?run through ./test.sh or export tools/setup/setup.sh --print-env}"
here=$(dirname "$0")
exec "$POLDER_PIP_HOME/bin/python" "$here/charts_test.py"
