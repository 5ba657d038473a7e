#!/usr/bin/env bash
# Checks that the pinned Kafka version is the same in tools/setup/versions.sh, the Maven pom,
# the jar hash lists (the broker's and Kafka Streams') and the broker launcher, and that the npm lockfile holds exactly the
# versions package.json pins.
set -euo pipefail
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

source tools/setup/versions.sh
v=$POLDER_KAFKA_VERSION
[[ "$v" =~ ^4\.[0-9]+\.[0-9]+$ ]] || err "POLDER_KAFKA_VERSION '$v' is not a 4.x.y version"
[[ "$v" != "4.0.0" ]] || err "Kafka 4.0.0 lacks the JoinGroup versions librdkafka 2.0.2 needs"
grep -q "<kafka.version>$v</kafka.version>" deploy/kafka/pom.xml || err "pom.xml kafka.version != $v"
grep -q " kafka_2.13-$v.jar\$" deploy/kafka/jars.sha256 || err "jars.sha256 lacks kafka_2.13-$v.jar"
grep -q " kafka-tools-$v.jar\$" deploy/kafka/jars.sha256 || err "jars.sha256 lacks kafka-tools-$v.jar"
grep -q "kPinnedKafkaVersion\[\] = \"$v\"" tools/kafka/kafka_broker.h || err "kafka_broker.h pins another version"
grep -q " log4j-slf4j2-impl-" deploy/kafka/jars.sha256 || err "no log4j2 slf4j backend in jars.sha256"
if grep -q " slf4j-api-1\." deploy/kafka/jars.sha256; then err "slf4j-api 1.x would silence the broker"; fi
awk 'NF != 2 || length($1) != 64 { bad = 1 } END { exit bad }' deploy/kafka/jars.sha256 \
  || err "jars.sha256 has malformed lines"
# Kafka Streams, the views' baseline, is of the same version as the broker.
grep -q "<kafka.version>$v</kafka.version>" deploy/kafka-streams/pom.xml \
  || err "kafka-streams/pom.xml kafka.version != $v"
grep -q " kafka-streams-$v.jar\$" deploy/kafka-streams/jars.sha256 \
  || err "kafka-streams/jars.sha256 lacks kafka-streams-$v.jar"
grep -q " kafka-streams-test-utils-$v.jar\$" deploy/kafka-streams/jars.sha256 \
  || err "kafka-streams/jars.sha256 lacks kafka-streams-test-utils-$v.jar"
awk 'NF != 2 || length($1) != 64 { bad = 1 } END { exit bad }' deploy/kafka-streams/jars.sha256 \
  || err "kafka-streams/jars.sha256 has malformed lines"

python3 - <<'PY' || fail=1
import json, sys
pkg = json.load(open("deploy/npm/package.json"))
lock = json.load(open("deploy/npm/package-lock.json"))
ok = True
for name, want in pkg["dependencies"].items():
    if not want[0].isdigit():
        print(f"FAIL: {name} is not pinned to an exact version ({want})", file=sys.stderr); ok = False
    got = lock["packages"].get(f"node_modules/{name}", {}).get("version")
    if got != want:
        print(f"FAIL: lockfile has {name} {got}, package.json pins {want}", file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PY
[ "$fail" -eq 0 ] && echo "pins consistent: Kafka $v"
exit "$fail"
