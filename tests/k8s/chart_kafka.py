#!/usr/bin/env python3
"""Makes a test broker the chart's cluster: renders polder-kafka with a values file and creates
its KafkaTopics (with their settings) and its KafkaUsers' ACLs on the broker, as Strimzi's Topic
and User Operators would (a tls user is the principal User:CN=<KafkaUser name>). Then checks the
authorizer refuses a client that holds a valid certificate but no ACL. Used by node_image_test.

usage: chart_kafka.py --helm H --chart DIR --values V --admin HOST:PORT
                      --tls HOST:PORT --ca CA --cert CERT --key KEY     (a client without ACLs)
Prints one JSON object: {"topics": n, "acls": n, "denied": "<the refusal>"}.
"""
import argparse
import json
import subprocess
import sys

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

TYPES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
         "transactionalId": ResourceType.TRANSACTIONAL_ID, "cluster": ResourceType.BROKER}
PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
OPS = {"Read": AclOperation.READ, "Write": AclOperation.WRITE, "Create": AclOperation.CREATE,
       "Delete": AclOperation.DELETE, "Alter": AclOperation.ALTER, "Describe": AclOperation.DESCRIBE,
       "ClusterAction": AclOperation.CLUSTER_ACTION, "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
       "AlterConfigs": AclOperation.ALTER_CONFIGS, "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
       "All": AclOperation.ALL}


def main():
    p = argparse.ArgumentParser()
    for flag in ("helm", "chart", "values", "admin", "tls", "ca", "cert", "key"):
        p.add_argument(f"--{flag}", required=True)
    a = p.parse_args()
    out = subprocess.run([a.helm, "template", "t", a.chart, "-f", a.values], check=True,
                         capture_output=True, text=True).stdout
    topics, acls = [], []
    for d in yaml.safe_load_all(out):
        if not d:
            continue
        if d["kind"] == "KafkaTopic":
            s = d["spec"]
            topics.append(NewTopic(s["topicName"], num_partitions=s["partitions"], replication_factor=s["replicas"],
                                   config={k: str(v) for k, v in s["config"].items()}))
        elif d["kind"] == "KafkaUser":
            principal = f"User:CN={d['metadata']['name']}"
            for acl in d["spec"]["authorization"]["acls"]:
                r = acl["resource"]
                for op in acl["operations"]:
                    acls.append(AclBinding(TYPES[r["type"]], r.get("name", "kafka-cluster"),
                                           PATTERNS[r.get("patternType", "literal")], principal,
                                           acl.get("host", "*"), OPS[op],
                                           AclPermissionType.ALLOW if acl.get("type", "allow") == "allow"
                                           else AclPermissionType.DENY))
    admin = AdminClient({"bootstrap.servers": a.admin})
    for name, f in admin.create_topics(topics, request_timeout=30).items():
        f.result()  # raises on failure, naming the topic
    for binding, f in admin.create_acls(acls, request_timeout=30).items():
        f.result()
    # The authorizer is on: a client with a certificate the listener accepts but no ACL is refused.
    stranger = AdminClient({"bootstrap.servers": a.tls, "security.protocol": "ssl", "ssl.ca.location": a.ca,
                            "ssl.certificate.location": a.cert, "ssl.key.location": a.key})
    denied = ""
    try:
        md = stranger.list_topics(timeout=20)
        visible = sorted(md.topics)
        if visible:
            print(f"a client without ACLs sees topics: {visible}", file=sys.stderr)
            return 1
        stranger.create_topics([NewTopic("stranger-topic", 1, 1)])["stranger-topic"].result()
        print("a client without ACLs created a topic", file=sys.stderr)
        return 1
    except KafkaException as e:
        denied = str(e.args[0])
    if "AUTHORIZATION" not in denied.upper():
        print(f"the stranger failed otherwise: {denied}", file=sys.stderr)
        return 1
    json.dump({"topics": len(topics), "acls": len(acls), "denied": denied}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
