"""An independent CloudEvents reader of a Polder topic (ADR 0012).

It does what a CloudEvents consumer that knows nothing of Polder does: the CloudEvents Python SDK
(cloudevents 2.2.0, Kafka binding, binary mode) turns each Kafka record into an event, and the
event's own attributes decide how its data is decoded:

  datacontenttype  picks the decoder: application/x-protobuf is bare Protobuf (its common
                   meaning); application/vnd.polder.confluent-protobuf is Confluent-framed Protobuf,
                   decoded by confluent-kafka-python's ProtobufDeserializer;
  dataschema       names the schema: urn:polder:<federation>:schemas:<id>, looked up by id in the
                   consumer's own Confluent-compatible registry (here the node's schema endpoint);
  type             names the message in that schema.

  python cloudevents_reader.py <brokers> <topic> <count> <schema-endpoint-url> <ca.pem> <out.json>

Writes one JSON object per record read; exits 1 with the first record it could not decode.
"""

import base64
import json
import os
import re
import sys
import time

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import (any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, empty_pb2,  # noqa: F401
                             message_factory, struct_pb2, timestamp_pb2, wrappers_pb2)

URN = re.compile(r"^urn:polder:([^:]+):schemas:([1-9][0-9]*)$", re.IGNORECASE)


class Schemas:
    """Message classes by (schema id, message name), built from the registry's serialized schemas."""

    def __init__(self, client):
        self.client = client
        self.classes = {}

    def _add_file(self, pool, fdp, added):
        if fdp.name in added:
            return
        added.add(fdp.name)
        pool.Add(fdp)

    def _file(self, serialized):
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(base64.b64decode(serialized))
        return fdp

    def _add_with_references(self, pool, schema, added, name=None):
        """Adds `schema` after its references; a referenced file takes its reference's name (the
        import path), as Confluent's clients do, whatever the serialized file calls itself."""
        for ref in schema.references or []:
            registered = self.client.get_version(ref.subject, ref.version, fmt="serialized")
            self._add_with_references(pool, registered.schema, added, ref.name)
        fdp = self._file(schema.schema_str)
        if name is not None:
            fdp.name = name
        for dep in fdp.dependency:  # well-known types are not references (Confluent's rule)
            if dep.startswith("google/protobuf/") and dep not in added:
                wkt = descriptor_pb2.FileDescriptorProto()
                descriptor_pool.Default().FindFileByName(dep).CopyToProto(wkt)
                self._add_file(pool, wkt, added)
        self._add_file(pool, fdp, added)

    def message_class(self, dataschema, type_name):
        if not dataschema:
            raise ValueError("the event has no dataschema: its schema cannot be found")
        m = URN.match(dataschema)
        if m is None:
            raise ValueError(f"dataschema {dataschema!r} is not urn:polder:<federation>:schemas:<id>")
        schema_id = int(m.group(2))
        key = (schema_id, type_name)
        if key not in self.classes:
            pool = descriptor_pool.DescriptorPool()
            added = set()
            schema = self.client.get_schema(schema_id, fmt="serialized")
            self._add_with_references(pool, schema, added)
            try:
                descriptor = pool.FindMessageTypeByName(type_name)
            except KeyError:
                raise ValueError(f"schema {schema_id} (files {sorted(added)}) has no message {type_name}; "
                                 f"references {schema.references!r}")
            self.classes[key] = message_factory.GetMessageClass(descriptor)
        return schema_id, self.classes[key]


def main():
    brokers, topic, count, url, ca, out_path = sys.argv[1:7]
    count = int(count)
    client = SchemaRegistryClient({"url": url, "ssl.ca.location": ca})
    schemas = Schemas(client)

    def bare_protobuf(data, cls, schema_id):
        return cls.FromString(data)

    def confluent_protobuf(data, cls, schema_id):
        framed_id = int.from_bytes(data[1:5], "big")
        if framed_id != schema_id:
            raise ValueError(f"dataschema names schema {schema_id}, the frame {framed_id}")
        de = ProtobufDeserializer(cls, {"use.deprecated.format": False}, client)
        return de(data, SerializationContext(topic, MessageField.VALUE))

    decoders = {
        "application/x-protobuf": bare_protobuf,
        "application/vnd.polder.confluent-protobuf": confluent_protobuf,
    }
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"cloudevents-reader-{os.getpid()}-{time.time_ns()}",
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < count and time.monotonic() < deadline:
            record = consumer.poll(1.0)
            if record is None:
                continue
            if record.error():
                raise RuntimeError(str(record.error()))
            headers = {k: v for k, v in (record.headers() or [])}
            event = from_binary(KafkaMessage(headers=headers, key=record.key(), value=record.value()), JSONFormat())
            attrs = event.get_attributes()
            data = event.get_data()
            if isinstance(data, str):  # the SDK's generic format hands valid UTF-8 back as text
                data = data.encode("utf-8")
            content_type = attrs.get("datacontenttype")
            decoder = decoders.get(content_type)
            try:
                if decoder is None:
                    raise ValueError(f"no decoder for datacontenttype {content_type!r}")
                schema_id, cls = schemas.message_class(attrs.get("dataschema"), attrs["type"])
                msg = decoder(data, cls, schema_id)
            except Exception as e:
                print(f"record {attrs.get('id')}: {content_type!r}, dataschema {attrs.get('dataschema')!r}: {e!r}",
                      file=sys.stderr)
                sys.exit(1)
            out.append({
                "ce_id": attrs["id"],
                "type": attrs["type"],
                "source": attrs["source"],
                "datacontenttype": content_type,
                "dataschema": attrs.get("dataschema"),
                "schema_id": schema_id,
                "key": record.key().decode("utf-8"),
                "counterId": getattr(msg, "counter_id", None),
            })
    finally:
        consumer.close()
    with open(out_path, "w") as f:
        json.dump(out, f)
    if len(out) < count:
        print(f"read {len(out)} of {count} records in 60 s", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
