#!/usr/bin/env bash
# The charts against a real API server (apiserver_test.py), with the Python of setup's pip set.
# Only in ./test.sh --k8s (tagged manual): its first run builds etcd and kube-apiserver (minutes).
set -euo pipefail
: "${POLDER_PIP_HOME:?run through ./test.sh --k8s}"
exec "$POLDER_PIP_HOME/bin/python" "$(dirname "$0")/apiserver_test.py"
