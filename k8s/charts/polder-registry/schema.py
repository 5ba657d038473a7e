"""values.schema.json of polder-registry (written by `tools/k8s/charts.py schemas`)."""

from schema_dsl import (PEER_ID, array, image, integer, kafka_client_section, l4_service,
                        metrics_section, obj, peer_selectors, placement, state_and_resources,
                        string, trust_section)

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
    "kafka": kafka_client_section("Secret with user.crt and user.key (polder-kafka's KafkaUser "
                                  "registry).", "Of _polder.schemas if the registry creates it."),
    "trust": trust_section(),
    "identity": obj("The registry's federation identity (polderctl pki issue).", {
        "secretName": string("Secret with tls.crt, tls.key and ca.crt.", min_len=1),
    }, required=["secretName"]),
    "service": l4_service("The L4 Service (externalTrafficPolicy: Local).", "REST"),
    **state_and_resources("The state volume per replica: the last good directory and its "
                          "rollback serial."),
    "networkPolicy": obj("Default-deny NetworkPolicy with the registry's allows.", {
        "enabled": {"type": "boolean", "description": "Create it."},
        "clientsFrom": array("NetworkPolicy peers allowed to gRPC and REST; empty: any.",
                             {"type": "object"}),
        **peer_selectors(),
    }),
    "metrics": metrics_section(),
    **placement(),
}, required=["image", "kafka", "trust", "identity"])
