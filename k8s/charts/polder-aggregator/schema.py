"""values.schema.json of polder-aggregator (written by `tools/k8s/charts.py schemas`)."""

from schema_dsl import (CIDR, DATASET_ID, PEER_ID, QUANTITY, array, boolean, duration, free_map,
                        image, integer, obj, selector, string)

SCHEMA = obj("Values of the polder-aggregator chart: national figures and the dashboard.", {
    "fullnameOverride": string("The objects' name; default aggregator."),
    "id": string("The national operator's peer id (its node's).", pattern=PEER_ID),
    "federation": string("The federation's name.", pattern=PEER_ID),
    "replicaCount": integer("Replicas: all serve the API; one holds the national job.",
                            minimum=1, maximum=16),
    "image": image("registry.example.nl/polder/polder-aggregator"),
    "imagePullSecrets": array("Secrets for pulling the image.", {"type": "object"}),
    "api": obj("The public read API and dashboard (HTTPS).", {
        "clientAuth": string("none: public, read-only; required: federation certificates.",
                             enum=["none", "required"]),
        "maxConnections": integer("Connections at once (sizes memory).", minimum=1),
        "maxConnectionsPerSource": integer("Connections from one address.", minimum=1),
        "maxStreams": integer("Live dashboard streams at once (sizes memory).", minimum=1),
        "maxStreamsPerSource": integer("Live streams from one address.", minimum=1),
        "certificate": obj("The dashboard's public certificate from cert-manager; disabled: "
                           "the federation identity.", {
            "enabled": boolean("Issue it with cert-manager."),
            "dnsNames": array("The dashboard's public names.", string("A DNS name."),
                              unique=True),
            "issuerRef": obj("The issuer of public certificates.", {
                "name": string("Issuer or ClusterIssuer name."),
                "kind": string("Its kind.", enum=["Issuer", "ClusterIssuer"]),
            }),
            "duration": duration("Certificate lifetime."),
            "renewBefore": duration("Renewal margin."),
        }),
    }),
    "replicas": obj("Replica group timing (ADR 0021).", {
        "sessionTimeout": duration("A silent replica loses the national job after this."),
    }),
    "registry": obj("The federation's registry.", {
        "address": string("host:port of its gRPC listener.", min_len=1),
        "peer": string("Its peer id.", pattern=PEER_ID),
    }, required=["address"]),
    "kafka": obj("The national operator's Kafka.", {
        "bootstrapServers": string("host:port list of the mutual-TLS listener.", min_len=1),
        "clusterCaSecret": string("Secret with the brokers' ca.crt.", min_len=1),
        "userSecret": string("Secret with user.crt and user.key (polder-kafka's KafkaUser "
                             "aggregator).", min_len=1),
        "replicationFactor": integer("Of the national topics and changelog.", minimum=1),
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
    "identity": obj("The national operator's federation identity (polderctl pki issue).", {
        "secretName": string("Secret with tls.crt, tls.key and ca.crt.", min_len=1),
    }, required=["secretName"]),
    "national": obj("The aggregator's national: section as in services/aggregator/README.md "
                    "(checked by the aggregator at start).", {
        "deadline": duration("After window end plus the cities' grace."),
        "revision_horizon": duration("How long windows may still be revised."),
        "views": array("The national views.", obj("A view.", {
            "dataset": string("Dataset id.", pattern=DATASET_ID),
            "view": string("View id.", pattern=r"^[a-z][a-z0-9-]*$"),
            "definition_hashes": array("The cities' definitions it accepts.",
                                       string("A SHA-256 (hex).", pattern=r"^[0-9a-f]{64}$"),
                                       min_items=1),
            "cities": array("The cities it combines.", string("A peer id.", pattern=PEER_ID),
                            min_items=1),
            "grace": duration("The cities' grace."),
            "deadline": duration("This view's deadline."),
        }, required=["dataset", "view", "definition_hashes", "cities"]), min_items=1),
    }, required=["views"]),
    "service": obj("The L4 Service (externalTrafficPolicy: Local).", {
        "type": string("LoadBalancer or NodePort (L4); ClusterIP only behind a proxy, with "
                       "perSourceLimits false.", enum=["LoadBalancer", "NodePort", "ClusterIP"]),
        "perSourceLimits": boolean("false: the API listener applies no per-source caps "
                                   "(every client has the proxy's address); logged at start; "
                                   "the listener-wide caps hold."),
        "annotations": free_map("Annotations."),
        "loadBalancerSourceRanges": array("CIDRs allowed at the load balancer.",
                                          string("A CIDR.", pattern=CIDR)),
    }),
    "persistence": obj("The state volume per replica: schema cache, last good directory.", {
        "size": string("Volume size.", pattern=QUANTITY, min_len=1),
        "storageClass": string("StorageClass; empty: the default."),
    }),
    "resources": obj("Resources.", {
        "cpu": obj("CPU.", {"request": string("CPU request (no limit).", pattern=QUANTITY)}),
        "memory": string("Memory request and limit; empty: the README's formula.",
                         pattern=QUANTITY),
    }),
    "networkPolicy": obj("Default-deny NetworkPolicy with the aggregator's allows.", {
        "enabled": boolean("Create it."),
        "apiFrom": array("NetworkPolicy peers allowed to the API; empty: any (public).",
                         {"type": "object"}),
        "kafka": obj("The brokers.", {
            "port": integer("Their mutual-TLS listener port.", minimum=1, maximum=65535),
            "podSelector": selector("The broker pods."),
            "namespaceSelector": selector("Their namespace (empty: this one)."),
        }),
        "registry": obj("The registry: pods in the cluster, or CIDRs.", {
            "port": integer("Its gRPC port.", minimum=1, maximum=65535),
            "cidrs": array("Its addresses.", string("A CIDR.", pattern=CIDR)),
            "podSelector": selector("Its pods."),
            "namespaceSelector": selector("Their namespace."),
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
            "staleSeconds": integer("PolderNationalFiguresStale threshold.", minimum=60),
            "cityFreshnessSeconds": integer("PolderCityFeedStale threshold.", minimum=60),
        }),
    }),
    "podAnnotations": free_map("Extra pod annotations."),
    "nodeSelector": free_map("Node selector."),
    "tolerations": array("Tolerations.", {"type": "object"}),
}, required=["id", "image", "registry", "kafka", "trust", "identity", "national"])
