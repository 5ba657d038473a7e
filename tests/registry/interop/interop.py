"""Drives Confluent's Python client (confluent-kafka 2.16.1) against a running polder-registry.

  python interop.py reads <url> <cert> <key> <ca> <subject> <descriptor-set> <frame-hex> <out.json>

Calls every read method of SchemaRegistryClient against `subject` (registered before) and
decodes `frame-hex` (a Confluent frame) with ProtobufDeserializer — whose first call is the
associations lookup — writing each result, or the SchemaRegistryError the client made of the
answer (HTTP status, error code), to out.json.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict


def plain(value):
    """JSON-friendly form of what the client returns."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    return str(value)


def main():
    mode, url, cert, key, ca, subject, descriptor_set, frame_hex, out_path = sys.argv[1:10]
    if mode != "reads":
        raise SystemExit("unknown mode " + mode)
    client = SchemaRegistryClient({
        "url": url, "ssl.certificate.location": cert, "ssl.key.location": key, "ssl.ca.location": ca,
    })
    latest = client.get_latest_version(subject)
    schema = Schema(latest.schema.schema_str, "PROTOBUF", latest.schema.references)
    calls = {
        "get_schema": lambda: client.get_schema(latest.schema_id, subject),
        "get_schema_by_guid": lambda: client.get_schema_by_guid("00000000-0000-0000-0000-000000000000"),
        "get_schema_types": lambda: client.get_schema_types(),
        "get_subjects_by_schema_id": lambda: client.get_subjects_by_schema_id(latest.schema_id),
        "get_schema_versions": lambda: client.get_schema_versions(latest.schema_id),
        "lookup_schema": lambda: client.lookup_schema(subject, schema),
        "get_subjects": lambda: client.get_subjects(),
        "get_subjects_prefix": lambda: client.get_subjects(subject_prefix="polder.interop."),
        "get_latest_version": lambda: client.get_latest_version(subject),
        "get_latest_with_metadata": lambda: client.get_latest_with_metadata(subject, {"owner": "groningen"}),
        "get_version": lambda: client.get_version(subject, 1),
        "get_referenced_by": lambda: client.get_referenced_by("tests/registry/interop/common.proto", 1),
        "get_versions": lambda: client.get_versions(subject),
        "get_compatibility": lambda: client.get_compatibility(),
        "test_compatibility": lambda: client.test_compatibility(subject, schema),
        "test_compatibility_all_versions": lambda: client.test_compatibility_all_versions(subject, schema),
        "get_config": lambda: client.get_config(),
        "get_mode": lambda: client.get_mode(subject),
        "get_global_mode": lambda: client.get_global_mode(),
        "get_contexts": lambda: client.get_contexts(),
        "get_associations_by_resource_name":
            lambda: client.get_associations_by_resource_name("groningen.mobility.bike-counts", "-"),
    }
    out = {}
    for name, call in calls.items():
        try:
            out[name] = {"ok": True, "value": plain(call())}
        except SchemaRegistryError as e:
            out[name] = {"ok": False, "status": e.http_status_code, "errorCode": e.error_code,
                         "message": e.error_message}
        except Exception as e:  # anything else is a client-side failure the test reports
            out[name] = {"ok": False, "status": None, "errorCode": None, "message": repr(e)}
    # The deserializer, as a consumer runs it: the message type from the descriptor set.
    fds = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    reading = message_factory.GetMessageClass(pool.FindMessageTypeByName("polder.interop.bikes.v1.BikeCount.Reading"))
    try:
        de = ProtobufDeserializer(reading, {"use.deprecated.format": False}, client)
        msg = de(bytes.fromhex(frame_hex),
                 SerializationContext("groningen.mobility.bike-counts", MessageField.VALUE))
        out["ProtobufDeserializer"] = {"ok": True, "value": MessageToDict(msg)}
    except Exception as e:
        out["ProtobufDeserializer"] = {"ok": False, "status": None, "errorCode": None, "message": repr(e)}
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
