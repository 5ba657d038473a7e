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
