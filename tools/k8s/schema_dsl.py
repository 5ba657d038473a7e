"""A small way to write the charts' values.schema.json files (ADR 0022 §4).

Each chart's schema is written in Python (k8s/charts/<chart>/schema.py) with these helpers, and
`tools/k8s/charts.py schemas` writes the JSON beside it; the test checks the JSON is current.
Every object refuses unknown keys unless it is declared free-form, and every property has a
description, from which the chart README's table of values is generated.
"""

import json


def obj(desc, props, required=(), free=False):
    s = {"type": "object", "description": desc, "properties": props}
    if not free:
        s["additionalProperties"] = False
    if required:
        s["required"] = list(required)
    return s


def free_map(desc, values="string"):
    return {"type": "object", "description": desc, "additionalProperties": {"type": values}}


def any_obj(desc):
    return {"type": "object", "description": desc}


def string(desc, pattern=None, enum=None, min_len=None, fmt=None):
    s = {"type": "string", "description": desc}
    if pattern:
        s["pattern"] = pattern
    if enum:
        s["enum"] = list(enum)
    if min_len is not None:
        s["minLength"] = min_len
    return s


def integer(desc, minimum=None, maximum=None):
    s = {"type": "integer", "description": desc}
    if minimum is not None:
        s["minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    return s


def boolean(desc):
    return {"type": "boolean", "description": desc}


def array(desc, items, min_items=None, unique=False):
    s = {"type": "array", "description": desc, "items": items}
    if min_items is not None:
        s["minItems"] = min_items
    if unique:
        s["uniqueItems"] = True
    return s


DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
PEER_ID = r"^[a-z][a-z0-9-]{0,62}$"
DATASET_ID = r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*$"
CIDR = r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"
QUANTITY = r"^([0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?)?$"


def duration(desc):
    return string(desc, pattern=DURATION)


def image(default_repo):
    return obj("The container image (tools/images/build_image.py).", {
        "repository": string(f"Image repository, e.g. {default_repo}.", min_len=1),
        "tag": string("Image tag; empty: the chart's appVersion. Ignored when digest is set."),
        "digest": string("Manifest digest (sha256:...); when set, the image is pulled by digest.",
                         pattern=r"^(sha256:[0-9a-f]{64})?$"),
        "pullPolicy": string("Image pull policy.", enum=["Always", "IfNotPresent", "Never"]),
    }, required=["repository"])


def selector(desc):
    return obj(desc, {
        "matchLabels": free_map("Labels that must all match."),
        "matchExpressions": array("Label selector requirements.", {"type": "object"}),
    })


def network_peer_list(desc):
    return array(desc, {"type": "object"})


def write(schema, path):
    schema = dict(schema)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    with open(path, "w") as f:
        json.dump(schema, f, indent=2, ensure_ascii=False)
        f.write("\n")


# ---- sections several charts share -------------------------------------------------------

def trust_section():
    return obj("The federation's trust anchors, kept up to date without a helm upgrade.", {
        "directoryConfigMap": string("ConfigMap with directory.json, the operator-signed "
                                     "directory; replaced in place when the operator publishes a "
                                     "new one (installed if newer and valid).", min_len=1),
        "operatorKeysConfigMap": string("ConfigMap with the operator's public keys, one key per "
                                        "file.", min_len=1),
        "operatorKeys": array("The pinned operator keys; overlap two to rotate.", obj(
            "A pinned key.", {
                "file": string("Its key in operatorKeysConfigMap.", min_len=1),
                "validFrom": string("RFC 3339; optional."),
                "validUntil": string("RFC 3339; optional."),
            }, required=["file"]), min_items=1),
        "crlConfigMap": string("ConfigMap with the federation CA's CRLs (no key: none revoked).",
                               min_len=1),
    }, required=["directoryConfigMap", "operatorKeysConfigMap", "operatorKeys", "crlConfigMap"])


def kafka_client_section(user_secret_desc, replication_desc):
    return obj("The Kafka cluster (polder-kafka, or the organisation's own).", {
        "bootstrapServers": string("host:port list of the brokers' mutual-TLS listener, e.g. "
                                   "<cluster>-kafka-bootstrap:9093.", min_len=1),
        "clusterCaSecret": string("Secret whose ca.crt signs the brokers' certificates (Strimzi: "
                                  "<cluster>-cluster-ca-cert).", min_len=1),
        "userSecret": string(user_secret_desc, min_len=1),
        "replicationFactor": integer(replication_desc, minimum=1),
    }, required=["bootstrapServers", "clusterCaSecret", "userSecret"])


def l4_service(desc, listener):
    return obj(desc, {
        "type": string("LoadBalancer or NodePort (L4); ClusterIP only behind a proxy, with "
                       "perSourceLimits false.", enum=["LoadBalancer", "NodePort", "ClusterIP"]),
        "perSourceLimits": boolean(f"false: the {listener} listener applies no per-source caps "
                                   "(every client has the proxy's address); logged at start; "
                                   "the listener-wide caps hold."),
        "annotations": free_map("Annotations (e.g. the cloud's load balancer settings)."),
        "loadBalancerSourceRanges": array("CIDRs allowed at the load balancer.",
                                          string("A CIDR.", pattern=CIDR)),
    })


def peer_selectors():
    """The NetworkPolicy peers every chart names: the brokers, the cluster DNS, the scraper."""
    return {
        "kafka": obj("The brokers.", {
            "port": integer("Their mutual-TLS listener port.", minimum=1, maximum=65535),
            "podSelector": selector("The broker pods."),
            "namespaceSelector": selector("Their namespace (empty: this one)."),
        }),
        "dns": obj("The cluster DNS.", {
            "namespaceSelector": selector("Its namespace."),
            "podSelector": selector("Its pods."),
        }),
        "prometheus": obj("The scraper, allowed to the ops port.", {
            "namespaceSelector": selector("Its namespace."),
            "podSelector": selector("Its pods."),
        }),
    }


def registry_peer():
    return obj("The registry, in the cluster (selectors) or outside (CIDRs; neither: any "
               "address outside the cluster).", {
        "port": integer("Its gRPC port.", minimum=1, maximum=65535),
        "cidrs": array("Its addresses.", string("A CIDR.", pattern=CIDR)),
        "podSelector": selector("Its pods."),
        "namespaceSelector": selector("Their namespace."),
    })


def metrics_section(rule_thresholds=None):
    return obj("Opt-in Prometheus Operator resources.", {
        "serviceMonitor": obj("ServiceMonitor of the ops port.", {
            "enabled": boolean("Create it."),
            "interval": duration("Scrape interval."),
            "scrapeTimeout": duration("Scrape timeout."),
            "labels": free_map("Labels the Prometheus selects on."),
        }),
        "prometheusRule": obj("Alert rules.", {
            "enabled": boolean("Create it."),
            "labels": free_map("Labels the Prometheus selects on."),
            **(rule_thresholds or {}),
        }),
    })


def placement():
    return {
        "podAnnotations": free_map("Extra pod annotations."),
        "nodeSelector": free_map("Node selector."),
        "tolerations": array("Tolerations.", {"type": "object"}),
    }


def state_and_resources(state_desc):
    """A volume per replica and a fixed-formula memory (registry, aggregator)."""
    return {
        "persistence": obj(state_desc, {
            "size": string("Volume size.", pattern=QUANTITY, min_len=1),
            "storageClass": string("StorageClass; empty: the default."),
        }),
        "resources": obj("Resources.", {
            "cpu": obj("CPU.", {"request": string("CPU request (no limit).", pattern=QUANTITY)}),
            "memory": string("Memory request and limit; empty: the README's formula.",
                             pattern=QUANTITY),
        }),
    }
