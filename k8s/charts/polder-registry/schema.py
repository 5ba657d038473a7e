"""values.schema.json of polder-registry (written by `tools/k8s/charts.py schemas`)."""

from schema_dsl import (CIDR, PEER_ID, QUANTITY, array, boolean, duration, free_map, image, integer,
                        obj, selector, string)

SCHEMA = obj("Values of the polder-registry chart: the federation's schema registry.", {
    "fullnameOverride": string("The objects' name; default registry."),
    "federation": string("The federation's name.", pattern=PEER_ID),
    "operatorPeers": array("Peers that may register federation-wide subjects and move the "
                           "primary.", string("A peer id.", pattern=PEER_ID), min_items=1),
    "maxSchemaBytes": integer("Largest schema accepted (sizes the memory request).",
                              minimum=1024),
    "replicaCount": integer("Replicas; <fullname>-0 is the first primary.", minimum=1,
                            maximum=16),
    "image": image("registry.example.nl/polder/polder-registry"),
    "imagePullSecrets": array("Secrets for pulling the image.", {"type": "object"}),
    "kafka": obj("The national operator's Kafka.", {
        "bootstrapServers": string("host:port list of the mutual-TLS listener.", min_len=1),
        "clusterCaSecret": string("Secret with ca.crt of the brokers.", min_len=1),
        "userSecret": string("Secret with user.crt and user.key (polder-kafka's KafkaUser "
                             "registry).", min_len=1),
        "replicationFactor": integer("Of _polder.schemas if the registry creates it.",
                                     minimum=1),
    }, required=["bootstrapServers", "clusterCaSecret", "userSecret"]),
    "trust": obj("The federation's trust anchors.", {
        "directoryConfigMap": string("ConfigMap with directory.json.", min_len=1),
        "operatorKeysConfigMap": string("ConfigMap with the operator's public keys.",
                                        min_len=1),
        "operatorKeys": array("The pinned operator keys.", obj("A pinned key.", {
            "file": string("Its key in operatorKeysConfigMap.", min_len=1),
            "validFrom": string("RFC 3339; optional."),
            "validUntil": string("RFC 3339; optional."),
        }, required=["file"]), min_items=1),
        "crlConfigMap": string("ConfigMap with the federation CA's CRLs.", min_len=1),
    }, required=["directoryConfigMap", "operatorKeysConfigMap", "operatorKeys",
                 "crlConfigMap"]),
    "identity": obj("The registry's federation identity (polderctl pki issue).", {
        "secretName": string("Secret with tls.crt, tls.key and ca.crt.", min_len=1),
    }, required=["secretName"]),
    "service": obj("The L4 Service (externalTrafficPolicy: Local).", {
        "type": string("LoadBalancer or NodePort (L4); ClusterIP only behind a proxy, with "
                       "perSourceLimits false.", enum=["LoadBalancer", "NodePort", "ClusterIP"]),
        "perSourceLimits": boolean("false: the REST listener applies no per-source caps "
                                   "(every client has the proxy's address); logged at start; "
                                   "the listener-wide caps hold."),
        "annotations": free_map("Annotations."),
        "loadBalancerSourceRanges": array("CIDRs allowed at the load balancer.",
                                          string("A CIDR.", pattern=CIDR)),
    }),
    "persistence": obj("The state volume per replica: the last good directory and its "
                       "rollback serial.", {
        "size": string("Volume size.", pattern=QUANTITY, min_len=1),
        "storageClass": string("StorageClass; empty: the default."),
    }),
    "resources": obj("Resources.", {
        "cpu": obj("CPU.", {"request": string("CPU request (no limit).", pattern=QUANTITY)}),
        "memory": string("Memory request and limit; empty: the README's formula.",
                         pattern=QUANTITY),
    }),
    "networkPolicy": obj("Default-deny NetworkPolicy with the registry's allows.", {
        "enabled": boolean("Create it."),
        "clientsFrom": array("NetworkPolicy peers allowed to gRPC and REST; empty: any.",
                             {"type": "object"}),
        "kafka": obj("The brokers.", {
            "port": integer("Their mutual-TLS listener port.", minimum=1, maximum=65535),
            "podSelector": selector("The broker pods."),
            "namespaceSelector": selector("Their namespace (empty: this one)."),
        }),
        "dns": obj("The cluster DNS.", {
            "namespaceSelector": selector("Its namespace."),
            "podSelector": selector("Its pods."),
        }),
        "prometheus": obj("The scraper.", {
            "namespaceSelector": selector("Its namespace."),
            "podSelector": selector("Its pods."),
        }),
    }),
    "metrics": obj("Opt-in Prometheus Operator resources.", {
        "serviceMonitor": obj("ServiceMonitor of the ops port.", {
            "enabled": boolean("Create it."),
            "interval": duration("Scrape interval."),
            "labels": free_map("Labels the Prometheus selects on."),
        }),
        "prometheusRule": obj("Alert rules.", {
            "enabled": boolean("Create it."),
            "labels": free_map("Labels the Prometheus selects on."),
        }),
    }),
    "nodeSelector": free_map("Node selector."),
    "tolerations": array("Tolerations.", {"type": "object"}),
}, required=["image", "kafka", "trust", "identity"])
