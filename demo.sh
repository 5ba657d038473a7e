#!/usr/bin/env bash
# Polder demo: a local federation on this machine.
#
# Today (ingest stage, see README): installs what is missing, builds Polder, makes a federation
# PKI with polderctl (CA, certificates, signed peer directory, a Groningen ingest CA and token),
# starts one real Kafka cluster per organisation (the national operator's and Groningen's),
# the federation's schema registry on the national cluster, registers the standard datasets,
# starts Groningen's node on its own cluster — all over mutual TLS — and streams synthetic city
# data (tools/generator) into the node. It shows rates and how to read the topics until you
# press Ctrl-C, which stops everything cleanly. Later stages add Amersfoort and Enschede,
# contracts and mirroring between the cities.
#
#   ./demo.sh                 run until Ctrl-C
#   ./demo.sh --once          start, wait for the first records, show the status once, stop
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
once=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

orgs=(national groningen)
run_dir=$(mktemp -d /tmp/polder-demo.XXXXXX)
pids=()      # Kafka clusters
services=()  # registry, node, generator

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

stop_all() {
  trap - INT TERM EXIT
  if [ ${#services[@]} -gt 0 ]; then
    say "stopping the generator, the node and the registry..."
    for pid in $(printf '%s\n' "${services[@]}" | tac); do
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    done
  fi
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping ${#pids[@]} Kafka cluster(s)..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    done
  fi
  wait 2>/dev/null || true
  rm -rf "$run_dir"
  say "stopped; no Polder process left running."
}
trap stop_all EXIT
trap 'exit 130' INT TERM

wait_for_file() {  # file pid what
  local deadline=$(( $(date +%s) + 120 ))
  until [ -s "$1" ]; do
    if ! kill -0 "$2" 2>/dev/null; then say "$3 failed to start:"; tail -20 "$run_dir/$3.log" >&2; exit 1; fi
    [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $3"; exit 1; }
    sleep 0.2
  done
}

source tools/setup/versions.sh
say "phase 1/5: installing what is missing (apt packages, Kafka $POLDER_KAFKA_VERSION, npm tools)"
env_lines=$(tools/setup/setup.sh --print-env) || { say "setup failed"; exit 1; }
eval "$env_lines"
export POLDER_KAFKA_HOME

say "phase 2/5: building Polder (bazel, offline)"
targets=(//tools/kafka:polder-kafka //services/registry:polder-registry //services/node:polder-node
         //tools/polderctl //tools/generator:polder-generate)
if ! bazel build "${targets[@]}" 2>"$run_dir/build.log"; then
  cat "$run_dir/build.log" >&2
  say "build failed"; exit 1
fi
bin=$(bazel info bazel-bin 2>/dev/null)
mkdir -p "$run_dir/bin"
cp "$bin/tools/kafka/polder-kafka" "$bin/services/registry/polder-registry" "$bin/services/node/polder-node" \
   "$bin/tools/polderctl/polderctl" "$bin/tools/generator/polder-generate" "$run_dir/bin/"
bazel shutdown >/dev/null 2>&1 || true   # No Bazel server is left behind by the demo.
PATH="$run_dir/bin:$PATH"

say "phase 3/5: the federation's trust: PKI, signing keys, signed directory (polderctl)"
cat >"$run_dir/pki.sh" <<'SH'
set -euo pipefail
polderctl pki init --dir pki --federation nl-smartcity >/dev/null
polderctl keys new --out operator.key >/dev/null
polderctl directory create --federation nl-smartcity --serial 1 --out directory.json >/dev/null
for peer in registry national groningen; do
  polderctl pki issue --dir pki --peer "$peer" --out "$peer/tls" --dns localhost --ip 127.0.0.1 >/dev/null
  polderctl keys new --out "$peer/signing.key" >/dev/null
  polderctl directory add-peer --file directory.json --peer "$peer" --endpoint "localhost:7443" \
      --tls-cert "$peer/tls/cert.pem" --signing-key "$peer/signing.key.pub" >/dev/null
done
polderctl directory sign --file directory.json --key operator.key >/dev/null
# Groningen's own ingest CA for its gateways, and a bearer token for the data generator.
polderctl pki init --dir ingest-pki --federation groningen-ingest >/dev/null
polderctl pki issue --dir ingest-pki --peer gateway-north --out gateway-north --dns localhost >/dev/null
(umask 077; openssl rand -hex 24 > generator.token)
SH
(cd "$run_dir" && bash "$run_dir/pki.sh") || { say "making the PKI failed"; exit 1; }

say "phase 4/5: Kafka clusters (${orgs[*]}), the registry, the standard datasets, Groningen's node"
for org in "${orgs[@]}"; do
  mkdir -p "$run_dir/$org/kafka"
  polder-kafka --name="$org" --work_dir="$run_dir/$org/kafka" --ready_file="$run_dir/$org.kafka" --heap=384m \
      >"$run_dir/kafka-$org.log" 2>&1 &
  pids+=($!)
done
for i in "${!orgs[@]}"; do wait_for_file "$run_dir/${orgs[$i]}.kafka" "${pids[$i]}" "kafka-${orgs[$i]}"; done

cat >"$run_dir/registry.yaml" <<YAML
registry:
  replica_id: reg-a
  primary: reg-a
  federation: nl-smartcity
  grpc_address: 127.0.0.1:0
  http_address: 127.0.0.1:0
  operator_peers: [national]
kafka:
  bootstrap_servers: $(cat "$run_dir/national.kafka")
  replication_factor: 1
tls:
  cert_file: $run_dir/registry/tls/cert.pem
  key_file: $run_dir/registry/tls/key.pem
  trust_bundle_file: $run_dir/registry/tls/bundle.pem
  crl_dir: $run_dir/pki/crl
trust:
  federation: nl-smartcity
  directory_file: $run_dir/directory.json
  directory_state: $run_dir/registry/directory-state.json
  operator_keys:
    - public_key_file: $run_dir/operator.key.pub
YAML
polder-registry --config "$run_dir/registry.yaml" --ready_file "$run_dir/registry.ready" >"$run_dir/registry.log" 2>&1 &
services+=($!)
wait_for_file "$run_dir/registry.ready" "${services[-1]}" registry
registry_grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$run_dir/registry.ready")

op=$run_dir/national/tls
if ! polderctl federation bootstrap --address "localhost:$registry_grpc" --cert "$op/cert.pem" --key "$op/key.pem" \
    --bundle "$op/bundle.pem" --directory "$run_dir/directory.json" --operator-key "$run_dir/operator.key.pub" \
    >"$run_dir/bootstrap.log" 2>&1; then
  cat "$run_dir/bootstrap.log" >&2; say "bootstrap failed"; exit 1
fi
say "registered: $(tail -1 "$run_dir/bootstrap.log")"

cat >"$run_dir/node.yaml" <<YAML
node:
  peer_id: groningen
  federation: nl-smartcity
  state_dir: $run_dir/groningen/state
  grpc_address: 127.0.0.1:0
  http_address: 127.0.0.1:0
  schema_address: 127.0.0.1:0
  ops_address: 127.0.0.1:0
kafka:
  bootstrap_servers: $(cat "$run_dir/groningen.kafka")
  internal_replication_factor: 1
  production_replication_factor: 1   # one broker per city in this demo
  production_min_insync_replicas: 1
registry:
  address: localhost:$registry_grpc
tls:
  cert_file: $run_dir/groningen/tls/cert.pem
  key_file: $run_dir/groningen/tls/key.pem
  trust_bundle_file: $run_dir/groningen/tls/bundle.pem
  crl_dir: $run_dir/pki/crl
trust:
  federation: nl-smartcity
  directory_file: $run_dir/directory.json
  directory_state: $run_dir/groningen/directory-state.json
  operator_keys:
    - public_key_file: $run_dir/operator.key.pub
ingest:
  trust_domain: groningen-ingest
  client_ca_file: $run_dir/ingest-pki/bundle.pem
  identities:
    - {id: gateway-north, datasets: [mobility.bike-counts, parking.occupancy]}
    - {id: generator, datasets: ["*"], token_file: $run_dir/generator.token}
datasets:
$(for d in mobility.bike-counts:mobility.v1.BikeCount mobility.shuttle-telemetry:mobility.v1.ShuttleTelemetry \
           parking.occupancy:parking.v1.ParkingOccupancy environment.air-quality:environment.v1.AirQualityObserved \
           energy.streetlights:energy.v1.StreetlightReading economy.footfall:economy.v1.FootfallCount \
           safety.incident-counts:safety.v1.IncidentCount; do
    echo "  - {id: ${d%%:*}, subject: polder.datasets.${d#*:}, partitions: 3, replication_factor: 1, licence: CC-BY-4.0, owner_contact: data@groningen.example}"
  done)
YAML
polder-node --config "$run_dir/node.yaml" --ready_file "$run_dir/node.ready" >"$run_dir/node.log" 2>&1 &
services+=($!)
wait_for_file "$run_dir/node.ready" "${services[-1]}" node
port() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$run_dir/node.ready" "$1"; }
node_http=$(port http_port); node_schema=$(port schema_port); node_ops=$(port ops_port)

say "phase 5/5: streaming synthetic Groningen data into the node (6 hours back, then live)"
polder-generate --city groningen --from -6h --speedup 360 --follow --post "https://localhost:$node_http" \
    --cacert "$run_dir/groningen/tls/bundle.pem" --token_file "$run_dir/generator.token" \
    >"$run_dir/generator.log" 2>&1 &
services+=($!)

last_total=0; last_time=$(date +%s)
show_status() {
  local metrics total now rate
  metrics=$(curl -s "http://127.0.0.1:$node_ops/metrics")
  total=$(awk '/^polder_ingest_records_total\{.*outcome="accepted"/ {s+=$2} END {printf "%d", s}' <<<"$metrics")
  now=$(date +%s); rate=$(( (total - last_total) / (now - last_time > 0 ? now - last_time : 1) ))
  last_total=$total; last_time=$now
  printf '\n%-30s %s\n' "COMPONENT" "STATE"
  for i in "${!orgs[@]}"; do
    printf '%-30s %s\n' "kafka ${orgs[$i]}" "$(cat "$run_dir/${orgs[$i]}.kafka") ($(kill -0 "${pids[$i]}" 2>/dev/null && echo up || echo DOWN))"
  done
  printf '%-30s %s\n' "registry (national cluster)" "localhost:$registry_grpc, mTLS"
  printf '%-30s %s\n' "node groningen" "ingest https://localhost:$node_http, $(curl -s "http://127.0.0.1:$node_ops/readyz")"
  printf '%-30s %s records accepted, %s records/s now\n' "ingest" "$total" "$rate"
  awk -F'[{}" ]+' '/^polder_ingest_records_total\{.*outcome="accepted"/ {printf "  %-28s %d\n", $3, $NF}' <<<"$metrics"
  echo
  echo "Read a topic (read_committed):  kcat -C -b $(cat "$run_dir/groningen.kafka") -t groningen.mobility.bike-counts -X isolation.level=read_committed -f '%k %h\\n' -e"
  echo "Its schemas (no client cert):   curl -s --cacert $run_dir/groningen/tls/bundle.pem https://localhost:$node_schema/subjects/polder.datasets.mobility.v1.BikeCount/versions/latest"
  echo "Metrics / readiness:            curl -s http://127.0.0.1:$node_ops/metrics | grep polder_   ·   /readyz"
  echo "Logs:                           $run_dir/{node,registry,generator,kafka-*}.log"
}

if [ "$once" -eq 1 ]; then
  for _ in $(seq 1 120); do
    curl -s "http://127.0.0.1:$node_ops/metrics" | grep -q 'outcome="accepted"' && break
    sleep 1
  done
  show_status
  curl -s "http://127.0.0.1:$node_ops/metrics" | grep -q 'outcome="accepted"' || { say "no records arrived"; tail -n 5 "$run_dir/generator.log" "$run_dir/node.log" >&2; exit 1; }
  exit 0
fi
say "running; status every 10 s. Press Ctrl-C to stop everything."
while true; do
  sleep 10 &
  wait $! || true
  for pid in "${pids[@]}" "${services[@]}"; do
    kill -0 "$pid" 2>/dev/null || { say "a demo process ($pid) stopped unexpectedly; see $run_dir/*.log"; tail -5 "$run_dir"/*.log; exit 1; }
  done
  show_status
done
