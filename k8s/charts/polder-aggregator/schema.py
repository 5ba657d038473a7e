"""values.schema.json of polder-aggregator (written by `tools/k8s/charts.py schemas`)."""

from schema_dsl import (DATASET_ID, PEER_ID, array, boolean, duration, image, integer,
                        kafka_client_section, l4_service, metrics_section, obj, peer_selectors,
                        placement, registry_peer, state_and_resources, string, trust_section)

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
    "kafka": kafka_client_section("Secret with user.crt and user.key (polder-kafka's KafkaUser "
                                  "aggregator).", "Of the national topics and changelog."),
    "trust": trust_section(),
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
    "service": l4_service("The L4 Service (externalTrafficPolicy: Local).", "API"),
    **state_and_resources("The state volume per replica: schema cache, last good directory."),
    "networkPolicy": obj("Default-deny NetworkPolicy with the aggregator's allows.", {
        "enabled": boolean("Create it."),
        "apiFrom": array("NetworkPolicy peers allowed to the API; empty: any (public).",
                         {"type": "object"}),
        "registry": registry_peer(),
        **peer_selectors(),
    }),
    "metrics": metrics_section({
        "staleSeconds": integer("PolderNationalFiguresStale threshold.", minimum=60),
        "cityFreshnessSeconds": integer("PolderCityFeedStale threshold.", minimum=60),
    }),
    **placement(),
}, required=["id", "image", "registry", "kafka", "trust", "identity", "national"])
