#!/usr/bin/env bash
# Polder demo: a local federation on this machine.
#
# Installs what is missing, builds Polder, makes the federation's trust with polderctl (PKI,
# signing keys, a signed peer directory, sharing contracts both parties sign), starts one real
# Kafka broker per organisation — the national operator (with the federation's schema registry)
# and the cities Groningen, Amersfoort and Enschede, each with its own polder-node — registers
# the standard datasets, streams synthetic city data (tools/generator) into each node, and lets
# the cities mirror each other's datasets over mutual-TLS federation streams, exactly once, with
# audit trails and receipts on both sides. Groningen also computes a privacy-guarded aggregate view
# of its bicycle counts (counts per municipality and quarter hour, ADR 0016), which Enschede
# mirrors under an aggregate-only contract naming the view — raw counts never leave Groningen for
# Enschede. Every city computes that view, and the national operator's node mirrors each city's
# view under an aggregate-only contract; polder-aggregator combines them into national figures
# (complete when every city closed a window, revised when a city arrives late, ADR 0018) and serves
# them on its read API. It shows rates, mirror lag, receipts and the newest national figure until you
# press Ctrl-C, which stops everything cleanly.
#
#   ./demo.sh                 run until Ctrl-C
#   ./demo.sh --once          start, wait for the first records and a national figure from all
#                             three cities, show the status once, stop
#   ./demo.sh --replicas 2    run every organisation's node as 2 replicas (ADR 0021): each key
#                             partition, subscription, view set and the audit index is held by
#                             one of them, and the status shows which (combine with --once)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
once=0
replicas=1
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --once) once=1 ;;
    --replicas) i=$((i + 1)); replicas=${args[$i]:-} ;;
    --replicas=*) replicas=${args[$i]#--replicas=} ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '${args[$i]}' (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$replicas" =~ ^[1-4]$ ]] || { echo "demo.sh: --replicas takes 1 to 4, got '$replicas'" >&2; exit 2; }

orgs=(national groningen amersfoort enschede)
cities=(groningen amersfoort enschede)
# Who shares what with whom (provider consumer dataset): one contract each, signed by both.
shares=("groningen amersfoort mobility.bike-counts"
        "amersfoort groningen environment.air-quality"
        "amersfoort enschede energy.streetlights"
        "enschede groningen economy.footfall")
# An aggregate view shared under an aggregate-only contract (provider consumer dataset view); its
# contract names the view's definition hash, which the provider's node reports once it runs.
view_share="groningen enschede mobility.bike-counts quarter-municipality"
# Every city computes that view; the national operator mirrors each city's under an aggregate-only
# contract, and its aggregator combines them.
national_view="mobility.bike-counts quarter-municipality"
run_dir=$(mktemp -d /tmp/polder-demo.XXXXXX)
pids=()      # Kafka clusters
services=()  # registry, node, generator

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

stop_all() {
  trap - INT TERM EXIT
  if [ ${#services[@]} -gt 0 ]; then
    say "stopping the generators, the aggregator, the nodes and the registry..."
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
export POLDER_KAFKA_HOME POLDER_NPM_HOME  # the broker; the dashboard's chart library (@polder_npm)

say "phase 2/5: building Polder (bazel, offline)"
targets=(//tools/kafka:polder-kafka //services/registry:polder-registry //services/node:polder-node
         //services/aggregator:polder-aggregator //tools/polderctl //tools/generator:polder-generate)
if ! bazel build "${targets[@]}" 2>"$run_dir/build.log"; then
  cat "$run_dir/build.log" >&2
  say "build failed"; exit 1
fi
bin=$(bazel info bazel-bin 2>/dev/null)
mkdir -p "$run_dir/bin"
cp "$bin/tools/kafka/polder-kafka" "$bin/services/registry/polder-registry" "$bin/services/node/polder-node" \
   "$bin/services/aggregator/polder-aggregator" "$bin/tools/polderctl/polderctl" \
   "$bin/tools/generator/polder-generate" "$run_dir/bin/"
bazel shutdown >/dev/null 2>&1 || true   # No Bazel server is left behind by the demo.
PATH="$run_dir/bin:$PATH"

say "phase 3/5: the federation's trust: PKI, signing keys, signed directory (polderctl)"
cat >"$run_dir/pki.sh" <<'SH'
set -euo pipefail
polderctl pki init --dir pki --federation nl-smartcity >/dev/null
polderctl keys new --out operator.key >/dev/null
polderctl directory create --federation nl-smartcity --serial 1 --out directory.json >/dev/null
for peer in registry national groningen amersfoort enschede; do
  polderctl pki issue --dir pki --peer "$peer" --out "$peer/tls" --dns localhost --ip 127.0.0.1 >/dev/null
  polderctl keys new --out "$peer/signing.key" >/dev/null
  polderctl directory add-peer --file directory.json --peer "$peer" --endpoint "localhost:7445" \
      --tls-cert "$peer/tls/cert.pem" --signing-key "$peer/signing.key.pub" >/dev/null
done
polderctl directory sign --file directory.json --key operator.key >/dev/null
# Each city's own ingest CA for its gateways, and a bearer token for its data generator.
for city in groningen amersfoort enschede national; do
  polderctl pki init --dir "$city/ingest-pki" --federation "$city-ingest" >/dev/null
  (umask 077; openssl rand -hex 24 > "$city/generator.token")
done
SH
(cd "$run_dir" && bash "$run_dir/pki.sh") || { say "making the PKI failed"; exit 1; }
mkdir -p "$run_dir/contracts" "$run_dir/revocations"
for share in "${shares[@]}"; do
  read -r provider consumer dataset <<<"$share"
  id="${provider:0:2}-${consumer:0:2}-${dataset#*.}"
  (cd "$run_dir" &&
   polderctl contract propose --id "$id" --federation nl-smartcity --provider "$provider" --consumer "$consumer" \
       --dataset "$dataset" --schema-versions 1 --purpose "regional $dataset dashboard" --retention 168h \
       --out "contracts/$id.json" >/dev/null &&
   polderctl contract sign --file "contracts/$id.json" --peer "$provider" --key "$provider/signing.key" >/dev/null &&
   polderctl contract sign --file "contracts/$id.json" --peer "$consumer" --key "$consumer/signing.key" >/dev/null) ||
    { say "making contract $id failed"; exit 1; }
done
say "contracts signed by both parties: $(cd "$run_dir/contracts" && ls | sed 's/.json//' | tr '\n' ' ')"

say "phase 4/5: Kafka brokers (${orgs[*]}), the registry, the standard datasets, the cities' nodes"
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
  ops_address: 127.0.0.1:0
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
registry_ops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_port"])' "$run_dir/registry.ready")

op=$run_dir/national/tls
if ! polderctl federation bootstrap --address "localhost:$registry_grpc" --cert "$op/cert.pem" --key "$op/key.pem" \
    --bundle "$op/bundle.pem" --directory "$run_dir/directory.json" --operator-key "$run_dir/operator.key.pub" \
    >"$run_dir/bootstrap.log" 2>&1; then
  cat "$run_dir/bootstrap.log" >&2; say "bootstrap failed"; exit 1
fi
say "registered: $(tail -1 "$run_dir/bootstrap.log")"

# Fixed federation ports (the cities subscribe to each other, so each must know the others').
declare -A fed_port
for city in "${orgs[@]}"; do
  fed_port[$city]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
done
write_node_config() {  # city [replica]: replica 0 listens for the federation on the city's port
  local city=$1 replica=${2:-0} share provider consumer dataset view subs="" views=""
  for share in "${shares[@]}"; do
    read -r provider consumer dataset <<<"$share"
    [ "$consumer" = "$city" ] || continue
    subs+="    - {provider: $provider, endpoint: \"localhost:${fed_port[$provider]}\", dataset: $dataset, contract: ${provider:0:2}-${consumer:0:2}-${dataset#*.}, partitions: 3, replication_factor: 1}"$'\n'
  done
  read -r provider consumer dataset view <<<"$view_share"
  if [ "$consumer" = "$city" ]; then
    subs+="    - {provider: $provider, endpoint: \"localhost:${fed_port[$provider]}\", dataset: $dataset, view: $view, contract: ${provider:0:2}-${consumer:0:2}-$view, replication_factor: 1}"$'\n'
  fi
  if [ "$city" = national ]; then
    read -r dataset view <<<"$national_view"
    for provider in "${cities[@]}"; do
      subs+="    - {provider: $provider, endpoint: \"localhost:${fed_port[$provider]}\", dataset: $dataset, view: $view, contract: ${provider:0:2}-na-$view, replication_factor: 1}"$'\n'
    done
  else
    read -r dataset view <<<"$national_view"
    # A counter's records go to one partition, and a city with few counters may leave one idle:
    # the view's watermark passes it after idle_timeout.
    views="views:
  - dataset: $dataset
    idle_timeout: 1m
    views:
      - {id: $view, window: 15m, group_by: [municipality], measures: [count]}"
  fi
  # Replicas share the view key (on Kubernetes: one Secret mounted by every replica).
  local state="$run_dir/$city/state" fed_address="127.0.0.1:${fed_port[$city]}" config="$run_dir/$city/node.yaml"
  if [ "$replica" -gt 0 ]; then
    state="$run_dir/$city/state-$replica" fed_address="127.0.0.1:0" config="$run_dir/$city/node-$replica.yaml"
    mkdir -p "$state" "$run_dir/$city/state/views" && ln -sfn "$run_dir/$city/state/views" "$state/views"
  fi
  cat >"$config" <<YAML
node:
  peer_id: $city
  federation: nl-smartcity
  state_dir: $state
  grpc_address: 127.0.0.1:0
  http_address: 127.0.0.1:0
  schema_address: 127.0.0.1:0
  ops_address: 127.0.0.1:0
replicas:
  id: $city-node-$replica
  internal_address: 127.0.0.1:0
kafka:
  bootstrap_servers: $(cat "$run_dir/$city.kafka")
  internal_replication_factor: 1
  production_replication_factor: 1   # one broker per city in this demo
  production_min_insync_replicas: 1
registry:
  address: localhost:$registry_grpc
tls:
  cert_file: $run_dir/$city/tls/cert.pem
  key_file: $run_dir/$city/tls/key.pem
  trust_bundle_file: $run_dir/$city/tls/bundle.pem
  crl_dir: $run_dir/pki/crl
trust:
  federation: nl-smartcity
  directory_file: $run_dir/directory.json
  directory_state: $run_dir/$city/directory-state.json
  operator_keys:
    - public_key_file: $run_dir/operator.key.pub
ingest:
  trust_domain: $city-ingest
  client_ca_file: $run_dir/$city/ingest-pki/bundle.pem
  identities:
    - {id: generator, datasets: ["*"], token_file: $run_dir/$city/generator.token}
datasets:$( [ "$city" = national ] && echo " []   # the national operator publishes no dataset of its own")
$( [ "$city" = national ] || for d in mobility.bike-counts:mobility.v1.BikeCount mobility.shuttle-telemetry:mobility.v1.ShuttleTelemetry \
           parking.occupancy:parking.v1.ParkingOccupancy environment.air-quality:environment.v1.AirQualityObserved \
           energy.streetlights:energy.v1.StreetlightReading economy.footfall:economy.v1.FootfallCount \
           safety.incident-counts:safety.v1.IncidentCount; do
    echo "  - {id: ${d%%:*}, subject: polder.datasets.${d#*:}, partitions: 3, replication_factor: 1, licence: CC-BY-4.0, owner_contact: data@$city.example}"
  done)
federation:
  address: $fed_address
  contracts_dir: $run_dir/contracts
  revocations_dir: $run_dir/revocations
  signing_key_file: $run_dir/$city/signing.key
  receipt_interval: 5s
  subscriptions:
$subs
$views
YAML
}
declare -A node_pid
start_node() {  # city: its replica 0, then (--replicas) the others
  local r
  write_node_config "$1"
  polder-node --config "$run_dir/$1/node.yaml" --ready_file "$run_dir/$1.node" >"$run_dir/node-$1.log" 2>&1 &
  services+=($!)
  node_pid[$1]=$!
  for ((r = 1; r < replicas; r++)); do
    write_node_config "$1" "$r"
    polder-node --config "$run_dir/$1/node-$r.yaml" --ready_file "$run_dir/$1-$r.node" \
        >"$run_dir/node-$1-$r.log" 2>&1 &
    services+=($!)
  done
}
# Which replica of each organisation's node holds which role (ADR 0021), from their /statusz.
show_replicas() {
  [ "$replicas" -gt 1 ] || return 0
  local org r ready
  printf '\n%-28s %-12s %s\n' "REPLICA" "KEY PARTS" "ROLES HELD (subscriptions, view sets, audit index)"
  for org in "${orgs[@]}"; do
    for ((r = 0; r < replicas; r++)); do
      ready="$run_dir/$org.node"; [ "$r" -gt 0 ] && ready="$run_dir/$org-$r.node"
      [ -s "$ready" ] || continue
      curl -s "http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_port"])' "$ready")/statusz" |
        python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["replica"]
except (ValueError, KeyError):
    sys.exit(0)
roles = ", ".join(x["name"] for x in r.get("roles_held", [])) or "-"
print("%-28s %-12s %s" % (r.get("id", "?"), len(r.get("key_partitions_held", [])), roles))'
    done
  done
}
port() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$run_dir/$1.node" "$2"; }
# A view's aggregate-only contract names the hash of the view's definition, which the provider's
# node reports on /statusz once its view job runs.
view_hash_of() {  # city dataset view
  local hash="" _
  for _ in $(seq 1 60); do
    hash=$(curl -s "http://127.0.0.1:$(port "$1" ops_port)/statusz" | python3 -c '
import json, sys
try:
    for s in json.load(sys.stdin).get("views", []):
        for v in s["views"]:
            if s["dataset"] == sys.argv[1] and v["id"] == sys.argv[2]:
                print(v["definition_hash"])
except ValueError:
    pass' "$2" "$3")
    [ -n "$hash" ] && break
    sleep 1
  done
  [ -n "$hash" ] || { say "node-$1 reports no view $3" >&2; tail -5 "$run_dir/node-$1.log" >&2; exit 1; }
  echo "$hash"
}
view_contract() {  # provider consumer dataset view hash purpose
  local id="${1:0:2}-${2:0:2}-$4"
  (cd "$run_dir" &&
   polderctl contract propose --id "$id" --federation nl-smartcity --provider "$1" --consumer "$2" \
       --dataset "$3" --schema-versions 1 --access aggregate-only --view "$4" --definition-hashes "$5" \
       --purpose "$6" --retention 168h --out "contracts/$id.json" >/dev/null &&
   polderctl contract sign --file "contracts/$id.json" --peer "$1" --key "$1/signing.key" >/dev/null &&
   polderctl contract sign --file "contracts/$id.json" --peer "$2" --key "$2/signing.key" >/dev/null) ||
    { say "making the view contract $id failed"; exit 1; }
  say "view $4 of $1's $3 (definition ${5:0:12}…): aggregate-only contract $id signed"
}
# Groningen first (Enschede subscribes to its view), then the other cities; each city's view goes
# to the national operator.
declare -A view_hash
read -r provider consumer dataset view <<<"$view_share"
start_node "$provider"
wait_for_file "$run_dir/$provider.node" "${node_pid[$provider]}" "node-$provider"
view_hash[$provider]=$(view_hash_of "$provider" "$dataset" "$view") || exit 1
view_contract "$provider" "$consumer" "$dataset" "$view" "${view_hash[$provider]}" \
    "regional cycling figures, aggregates only"
for city in "${cities[@]}"; do [ "$city" = "$provider" ] || start_node "$city"; done
for city in "${cities[@]}"; do wait_for_file "$run_dir/$city.node" "${node_pid[$city]}" "node-$city"; done
read -r dataset view <<<"$national_view"
for city in "${cities[@]}"; do
  [ -n "${view_hash[$city]:-}" ] || view_hash[$city]=$(view_hash_of "$city" "$dataset" "$view") || exit 1
  view_contract "$city" national "$dataset" "$view" "${view_hash[$city]}" \
      "national cycling figures, aggregates only"
done
start_node national
wait_for_file "$run_dir/national.node" "${node_pid[national]}" "node-national"

# The national aggregator beside the national node, on the national cluster.
cat >"$run_dir/aggregator.yaml" <<YAML
aggregator:
  id: national
  federation: nl-smartcity
  state_dir: $run_dir/national/aggregator-state
  api_address: 127.0.0.1:0
  ops_address: 127.0.0.1:0
registry:
  address: localhost:$registry_grpc
kafka:
  bootstrap_servers: $(cat "$run_dir/national.kafka")
  replication_factor: 1   # one broker in this demo
tls:
  cert_file: $run_dir/national/tls/cert.pem
  key_file: $run_dir/national/tls/key.pem
  trust_bundle_file: $run_dir/national/tls/bundle.pem
  crl_dir: $run_dir/pki/crl
trust:
  federation: nl-smartcity
  directory_file: $run_dir/directory.json
  directory_state: $run_dir/national/aggregator-directory-state.json
  operator_keys:
    - public_key_file: $run_dir/operator.key.pub
national:
  deadline: 2m   # after window end + the cities' grace (5m)
  views:
    - dataset: $dataset
      view: $view
      definition_hashes: [$(printf '%s\n' "${view_hash[@]}" | sort -u | paste -sd, -)]
      cities: [$(IFS=,; echo "${cities[*]}")]
YAML
polder-aggregator --config "$run_dir/aggregator.yaml" --ready_file "$run_dir/aggregator.ready" \
    >"$run_dir/aggregator.log" 2>&1 &
services+=($!)
wait_for_file "$run_dir/aggregator.ready" "${services[-1]}" aggregator
aggregator_api=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_port"])' "$run_dir/aggregator.ready")
aggregator_ops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_port"])' "$run_dir/aggregator.ready")
declare -A node_http node_ops
for city in "${cities[@]}"; do node_http[$city]=$(port "$city" http_port); node_ops[$city]=$(port "$city" ops_port); done
city_metrics() {  # city: the metrics of every replica of its node (a share runs on one of them)
  local r ready
  for ((r = 0; r < replicas; r++)); do
    ready="$run_dir/$1.node"; [ "$r" -gt 0 ] && ready="$run_dir/$1-$r.node"
    [ -s "$ready" ] || continue
    curl -s "http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_port"])' "$ready")/metrics"
  done
}
node_schema=$(port groningen schema_port)
# The dashboard's certificate comes from the demo's own CA: a browser trusts it by importing
# national/tls/bundle.pem, or (Chromium) by this key pin.
dashboard_pin=$(openssl x509 -in "$run_dir/national/tls/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
                | openssl dgst -sha256 -binary | base64)
dashboard_url="https://localhost:$aggregator_api/"
say "the national dashboard: $dashboard_url (the demo's CA: import $run_dir/national/tls/bundle.pem into the browser, or run chromium --ignore-certificate-errors-spki-list=$dashboard_pin $dashboard_url)"

say "phase 5/5: streaming synthetic city data into each node (6 hours back, then live); cities mirror each other"
for city in "${cities[@]}"; do
  polder-generate --city "$city" --from -6h --speedup 120 --follow --post "https://localhost:${node_http[$city]}" \
      --cacert "$run_dir/$city/tls/bundle.pem" --token_file "$run_dir/$city/generator.token" \
      >"$run_dir/generator-$city.log" 2>&1 &
  services+=($!)
done

declare -A last_total
last_time=$(date +%s)
metric_sum() {  # metrics-text series-prefix [also-containing]: sum of the matching series
  awk -v p="$2" -v c="${3:-}" 'index($0, p) == 1 && index($0, c) > 0 {s+=$NF} END {printf "%d", s}' <<<"$1"
}
show_status() {
  local now elapsed city metrics total rate provider consumer dataset share
  now=$(date +%s); elapsed=$(( now - last_time > 0 ? now - last_time : 1 )); last_time=$now
  declare -A m
  for city in "${cities[@]}"; do m[$city]=$(city_metrics "$city"); done
  printf '\n%-12s %-26s %-16s %s\n' "CITY" "KAFKA" "INGEST rec/s" "TOTAL ACCEPTED"
  for city in "${cities[@]}"; do
    total=$(metric_sum "${m[$city]}" 'polder_ingest_records_total{' 'outcome="accepted"')
    rate=$(( (total - ${last_total[$city]:-0}) / elapsed )); last_total[$city]=$total
    printf '%-12s %-26s %-16s %s\n' "$city" "$(cat "$run_dir/$city.kafka")" "$rate" "$total"
  done
  printf '\n%-50s %-10s %-9s %-9s %-9s %s\n' "SHARE (provider -> consumer: dataset)" "STATE" "MIRRORED" "LAG rec" "LAG s" "RECEIPTS kept (consumer/provider)"
  for share in "${shares[@]}"; do
    read -r provider consumer dataset <<<"$share"
    local sel="dataset=\"$dataset\",provider=\"$provider\""
    local state mirrored lag lag_s got kept
    state=$(awk -v s="$sel" 'index($0, "polder_federation_subscription_state{" s) == 1 && $NF == 1 {match($0, /state="[a-z-]+"/); v = substr($0, RSTART+7, RLENGTH-8); if (v != "elsewhere" || st == "") st = v} END {print st}' <<<"${m[$consumer]}")
    mirrored=$(metric_sum "${m[$consumer]}" "polder_federation_subscription_records_total{$sel")
    lag=$(metric_sum "${m[$consumer]}" "polder_federation_subscription_lag_records{$sel")
    lag_s=$(awk -v s="polder_federation_subscription_lag_seconds{$sel}" 'index($0, s) == 1 {printf "%.0f", $NF}' <<<"${m[$consumer]}")
    got=$(metric_sum "${m[$consumer]}" "polder_federation_subscription_receipts_total{$sel")
    kept=$(metric_sum "${m[$provider]}" 'polder_federation_receipts_received_total ')
    printf '%-50s %-10s %-9s %-9s %-9s %s\n' "$provider -> $consumer: $dataset" "${state:-?}" "$mirrored" "$lag" "${lag_s:-0}" "$got/$kept"
  done
  local view
  read -r provider consumer dataset view <<<"$view_share"
  local vsel="dataset=\"$dataset.view.$view\",provider=\"$provider\""
  printf '%-50s %-10s %-9s %s\n' "$provider -> $consumer: view $view" \
    "$(awk -v s="$vsel" 'index($0, "polder_federation_subscription_state{" s) == 1 && $NF == 1 {match($0, /state="[a-z-]+"/); v = substr($0, RSTART+7, RLENGTH-8); if (v != "elsewhere" || st == "") st = v} END {print st}' <<<"${m[$consumer]}")" \
    "$(metric_sum "${m[$consumer]}" "polder_federation_subscription_records_total{$vsel")" \
    "cells: $(metric_sum "${m[$provider]}" 'polder_view_cells_total{')  protected: $(metric_sum "${m[$provider]}" 'polder_view_cells_protected_total{')"
  national_status
  show_replicas
  echo
  echo "Read a mirror (read_committed):  kcat -C -b $(cat "$run_dir/amersfoort.kafka") -t groningen.mobility.bike-counts -X isolation.level=read_committed -f '%k %h\\n' -e"
  echo "Read the mirrored view:          kcat -C -b $(cat "$run_dir/enschede.kafka") -t groningen.mobility.bike-counts.view.quarter-municipality -X isolation.level=read_committed -f '%k %h\\n' -e"
  echo "Its schemas (no client cert):    curl -s --cacert $run_dir/groningen/tls/bundle.pem https://localhost:$node_schema/subjects/polder.datasets.mobility.v1.BikeCount/versions/latest"
  echo "Exchanges in the audit trail:    $run_dir/bin/polderctl audit query --bootstrap $(cat "$run_dir/amersfoort.kafka") --peer groningen"
  echo "Verify it against Groningen's:   (cd $run_dir && bin/polderctl audit verify --bootstrap $(cat "$run_dir/amersfoort.kafka") --peer-endpoint localhost:${fed_port[groningen]} --self amersfoort --peer groningen --cert amersfoort/tls/cert.pem --key amersfoort/tls/key.pem --bundle amersfoort/tls/bundle.pem --crl-dir pki/crl --directory directory.json --operator-key operator.key.pub)"
  echo "Metrics / readiness:             curl -s http://127.0.0.1:${node_ops[groningen]}/metrics | grep polder_federation   ·   /readyz"
  echo "Registry metrics / status:       curl -s http://127.0.0.1:$registry_ops/metrics | grep polder_registry   ·   /readyz   ·   /statusz"
  echo "Registry gRPC health (mTLS):     localhost:$registry_grpc  grpc.health.v1.Health/Check with a federation certificate, e.g. (cd $run_dir && $POLDER_NPM_HOME/node_modules/.bin/buf curl --protocol grpc --cacert national/tls/bundle.pem --cert national/tls/cert.pem --key national/tls/key.pem --servername localhost https://localhost:$registry_grpc/grpc.health.v1.Health/Check)"
  echo "National dashboard (browser):    $dashboard_url  (trust $run_dir/national/tls/bundle.pem, or chromium --ignore-certificate-errors-spki-list=$dashboard_pin $dashboard_url)"
  echo "National figures (public API):   curl -s --cacert $run_dir/national/tls/bundle.pem 'https://localhost:$aggregator_api/api/v1/views/mobility.bike-counts/quarter-municipality/figures?revisions=all&format=csv'"
  echo "Aggregator status / metrics:     curl -s http://127.0.0.1:$aggregator_ops/statusz   ·   /metrics"
  echo "Logs:                            $run_dir/{node-*,registry,aggregator,generator-*,kafka-*}.log"
}

national_api() {  # path: GET on the aggregator's read API (public, read-only, HTTPS)
  curl -s --cacert "$run_dir/national/tls/bundle.pem" "https://localhost:$aggregator_api$1"
}
national_status() {  # the newest national figures and how complete they are
  read -r dataset view <<<"$national_view"
  national_api "/api/v1/views/$dataset/$view/figures?limit=4" | python3 -c '
import json, sys
try:
    figures = json.load(sys.stdin)["figures"]
except (ValueError, KeyError):
    figures = []
print("\n%-22s %-9s %-12s %-30s %s" % ("NATIONAL WINDOW (UTC)", "REVISION", "REASON", "CITIES REPORTED", "BICYCLES COUNTED (withheld cells)"))
for f in figures:
    total = next((t for t in f["totals"] if t["measure"] == "count"), None)
    value = "withheld" if total is None or total["value"] is None else "%d" % total["value"]
    print("%-22s %-9s %-12s %-30s %s (%d)" % (f["window_start"], "%d of %d" % (f["revision"], f["revisions"]),
          f["reason"], ",".join(f["cities_reported"]) + ("" if f["complete"] else " (incomplete)"),
          value, 0 if total is None else total["withheld_cells"]))
if not figures:
    print("(no national window closed yet)")'
  national_api "/api/v1/feed-quality" | python3 -c '
import json, sys
try:
    listed = json.load(sys.stdin)["feed_quality"]
except (ValueError, KeyError):
    listed = []
print("\n%-12s %-22s %-12s %-10s %-9s %-6s %s" % ("FEED", "DATASET", "FRESHNESS s", "ACCEPTED", "REFUSED", "LATE", "UNITS LAST HOUR / DAY (guarded; as each city reports it to its contract holders)"))
def units(e):
    if not e:
        return "-"
    return "withheld" if e.get("withheld") else "%g" % e["value"]
for e in listed:
    q = e["feed_quality"] or {}
    fresh = q.get("freshness_seconds")
    print("%-12s %-22s %-12s %-10s %-9s %-6s %s / %s" % (e["city"], e["dataset"],
          "-" if fresh is None else "%.0f" % fresh, q.get("records_accepted", "-"),
          q.get("records_rejected", "-"), "-" if q.get("records_late") is None else q["records_late"],
          units(q.get("entities_hour")), units(q.get("entities_day"))))'
}
national_complete() {  # a national figure built from all three cities' views
  read -r dataset view <<<"$national_view"
  national_api "/api/v1/views/$dataset/$view/figures" | python3 -c '
import json, sys
figures = json.load(sys.stdin)["figures"]
sys.exit(0 if any(len(f["cities_reported"]) == 3 and f["complete"] for f in figures) else 1)' 2>/dev/null
}

all_mirroring() {  # every share has mirrored records
  local share provider consumer dataset
  for share in "${shares[@]}"; do
    read -r provider consumer dataset <<<"$share"
    [ "$(metric_sum "$(city_metrics "$consumer")" \
          "polder_federation_subscription_records_total{dataset=\"$dataset\",provider=\"$provider\"")" -gt 0 ] || return 1
  done
  local view
  read -r provider consumer dataset view <<<"$view_share"
  [ "$(metric_sum "$(city_metrics "$consumer")" \
        "polder_federation_subscription_records_total{dataset=\"$dataset.view.$view\",provider=\"$provider\"")" -gt 0 ]
}

if [ "$once" -eq 1 ]; then
  for _ in $(seq 1 240); do all_mirroring && national_complete && break; sleep 1; done
  show_status
  all_mirroring || { say "not every share (the view included) mirrored records"; tail -n 5 "$run_dir"/node-*.log "$run_dir"/generator-*.log >&2; exit 1; }
  national_complete || { say "the aggregator's API has no national figure from all three cities"; tail -n 5 "$run_dir"/aggregator.log "$run_dir"/node-national.log >&2; exit 1; }
  say "the national API answers with figures from all three cities: curl -s --cacert $run_dir/national/tls/bundle.pem https://localhost:$aggregator_api/api/v1/views"
  # The dashboard: its page and scripts, and a live stream that opens with the cities' feed quality.
  page=$(national_api "/"); chart=$(national_api "/dashboard/vendor/uPlot.esm.js")
  [[ "$page" == *'<script type="module" src="/dashboard/app.js">'* && "$chart" == *uPlot* ]] ||
    { say "the aggregator does not serve the dashboard"; exit 1; }
  read -r dataset view <<<"$national_view"
  events=$(curl -s --max-time 3 --cacert "$run_dir/national/tls/bundle.pem" \
             "https://localhost:$aggregator_api/api/v1/views/$dataset/$view/events" 2>/dev/null || true)
  [[ "$events" == *"event: feed-quality"* ]] || { say "the dashboard's live updates do not answer"; exit 1; }
  say "the national dashboard is served with live updates: $dashboard_url"
  if [ "$replicas" -gt 1 ]; then
    # Every organisation's replicas together hold each key partition once.
    for org in "${orgs[@]}"; do
      held=0
      for ((r = 0; r < replicas; r++)); do
        ready="$run_dir/$org.node"; [ "$r" -gt 0 ] && ready="$run_dir/$org-$r.node"
        [ -s "$ready" ] || { say "replica $r of $org's node did not start"; exit 1; }
        n=$(curl -s "http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_port"])' "$ready")/statusz" |
              python3 -c 'import json,sys; print(len(json.load(sys.stdin)["replica"]["key_partitions_held"]))')
        held=$((held + n))
      done
      [ "$held" -eq 12 ] || { say "$org's replicas hold $held key partitions, not 12"; exit 1; }
    done
    say "each organisation's $replicas replicas share its 12 key partitions and its roles (above)"
  fi
  say "Amersfoort's audit trail against Groningen's entries (polderctl audit verify --peer-endpoint):"
  (cd "$run_dir" && polderctl audit verify --bootstrap "$(cat amersfoort.kafka)" --peer-endpoint "localhost:${fed_port[groningen]}" \
      --self amersfoort --peer groningen --cert amersfoort/tls/cert.pem --key amersfoort/tls/key.pem \
      --bundle amersfoort/tls/bundle.pem --crl-dir pki/crl --directory directory.json --operator-key operator.key.pub) ||
    { say "the audit trails do not verify"; exit 1; }
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
