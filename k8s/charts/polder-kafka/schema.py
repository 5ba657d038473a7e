"""values.schema.json of polder-kafka (written by `tools/k8s/charts.py schemas`)."""

from schema_dsl import (DATASET_ID, DURATION, PEER_ID, QUANTITY, any_obj, array, boolean, duration,
                        free_map, integer, obj, string)


def pool(desc):
    return obj(desc, {
        "replicas": integer("Nodes in the pool (3: a quorum / RF 3 with min ISR 2).", minimum=1),
        "storage": obj("Persistent volume per node (never deleted with the pool).", {
            "size": string("Volume size.", pattern=QUANTITY, min_len=1),
            "class": string("StorageClass; empty: the cluster's default."),
        }),
        "resources": any_obj("Container resources (requests, limits)."),
    })


SCHEMA = obj("Values of the polder-kafka chart: a city's Kafka as Strimzi resources.", {
    "cluster": obj("The Strimzi Kafka cluster (KRaft, node pools).", {
        "name": string("The cluster's name, e.g. groningen-kafka; its bootstrap Service is "
                       "<name>-kafka-bootstrap.", pattern=PEER_ID),
        "kafkaVersion": string("Kafka version Strimzi runs (4.0 or newer: KRaft).",
                               pattern=r"^[4-9]\.[0-9]+\.[0-9]+$"),
        "metadataVersion": string("KRaft metadata version; empty: Strimzi's default for the "
                                  "version."),
        "listenerPort": integer("The mutual-TLS listener's port.", minimum=1024, maximum=65535),
        "clients": array("NetworkPolicy peers allowed to the listener (Strimzi writes the "
                         "policy).", {"type": "object"}, min_items=1),
        "rack": obj("Rack awareness: replicas of a partition in different zones.", {
            "enabled": boolean("Set broker.rack from the node's zone label."),
            "topologyKey": string("The node label naming the zone.", min_len=1),
        }),
        "controllers": pool("The KRaft controller pool."),
        "brokers": pool("The broker pool."),
        "extraConfig": free_map("More broker settings (Strimzi refuses those it manages).",
                                values=["string", "number", "boolean"]),
    }, required=["name"]),
    "node": obj("The city's node: its topics and KafkaUser (must agree with its polder-node "
                "values).", {
        "enabled": boolean("This cluster serves a Polder node."),
        "peerId": string("The node's peer id.", pattern=PEER_ID),
        "internalReplicationFactor": integer("Replication of the internal topics.", minimum=1),
        "keysPartitions": integer("Partitions of _polder.ingest-keys.v2 (fixed once "
                                  "created).", minimum=1),
        "idempotencyWindow": duration("The node's ingest.idempotencyWindow (the keys topic "
                                      "keeps twice it)."),
        "maxBatchBytes": integer("The node's ingest.limits.maxBatchBytes (max.message.bytes "
                                 "follows).", minimum=1024),
        "datasets": array("The city's datasets.", obj("A dataset.", {
            "id": string("Its id.", pattern=DATASET_ID),
            "partitions": integer("Partitions.", minimum=1),
            "replicationFactor": integer("Replication factor (default 3).", minimum=1),
            "retention": duration("Retention (default 720h)."),
        }, required=["id", "partitions"])),
        "views": array("The node's view sets: the dataset and its views' ids.", obj("A set.", {
            "dataset": string("One of datasets.", pattern=DATASET_ID),
            "ids": array("Its views' ids.", string("A view id.", pattern=r"^[a-z][a-z0-9-]*$"),
                         min_items=1),
        }, required=["dataset", "ids"])),
        "federation": boolean("The node shares and mirrors (cursor and audit topics)."),
        "subscriptions": array("What it mirrors (for the mirror ACLs and transactional ids).",
                               obj("A subscription.", {
                                   "provider": string("The providing peer.", pattern=PEER_ID),
                                   "dataset": string("The dataset.", pattern=DATASET_ID),
                                   "view": string("The view, if a view is mirrored."),
                               }, required=["provider", "dataset"])),
    }),
    "registry": obj("The federation's registry (the national operator's cluster).", {
        "enabled": boolean("This cluster holds the registry's topic."),
        "federation": string("The federation's name (the registry's transactional id).",
                             pattern=PEER_ID),
        "replicationFactor": integer("Replication of _polder.schemas.", minimum=1),
    }),
    "aggregator": obj("The national aggregator (the national operator's cluster).", {
        "enabled": boolean("This cluster holds the aggregator's topics."),
        "id": string("The aggregator's id (the national node's peer id)."),
        "replicationFactor": integer("Replication of its topics.", minimum=1),
        "views": array("The national views (as in its national.views).", obj("A view.", {
            "dataset": string("Dataset id.", pattern=DATASET_ID),
            "view": string("View id.", pattern=r"^[a-z][a-z0-9-]*$"),
            "cities": array("The cities whose views it combines.", string("A peer id.",
                                                                          pattern=PEER_ID),
                            min_items=1),
        }, required=["dataset", "view", "cities"])),
    }),
}, required=["cluster", "node"])
