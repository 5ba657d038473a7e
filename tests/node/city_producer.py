"""A city's own producer, configured exactly as docs/producers.md says (issue 15, item 8).

It writes BikeCount records straight to the city's Kafka with confluent-kafka-python's
SerializingProducer pieces — ProtobufSerializer with record-name subjects, no registration, the
registry's latest version, message indexes — compiled against Polder's own .proto files (the
descriptor set of proto/polder/datasets/mobility/v1/bike_count.proto with its imports), with the
CloudEvents headers of the table, the entity id as key, murmur2_random partitioning and an
idempotent producer (acks=all). Polder's reader (polderctl tail) must then accept every record.

  python city_producer.py <brokers> <topic> <registry-url> <cert> <key> <ca> <descriptor-set>
                          <peer> <federation> <count> <out.json>

Writes {"ce_ids": [...], "schema_ids": [...]} after every record was acknowledged; exits 1 with
the first delivery error.
"""

import datetime
import json
import sys
import uuid

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CONTENT_TYPE = "application/vnd.polder.confluent-protobuf"


def main():
    (brokers, topic, url, cert, key, ca, descriptor_set, peer, federation, count, out_path) = sys.argv[1:12]
    count = int(count)
    dataset = topic[len(peer) + 1:]

    fds = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    bike_count = message_factory.GetMessageClass(pool.FindMessageTypeByName("polder.datasets.mobility.v1.BikeCount"))

    registry = SchemaRegistryClient({
        "url": url, "ssl.certificate.location": cert, "ssl.key.location": key, "ssl.ca.location": ca,
    })
    serializer = ProtobufSerializer(bike_count, registry, {
        "subject.name.strategy": record_subject_name_strategy,
        "auto.register.schemas": False,
        "use.latest.version": True,
        "use.deprecated.format": False,
    })
    producer = Producer({
        "bootstrap.servers": brokers,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "client.id": "city-producer",
    })

    errors = []
    delivered = []

    def on_delivery(ce_id, err, msg):
        if err is not None:
            errors.append(f"{ce_id}: {err}")
        else:
            delivered.append(ce_id)

    ctx = SerializationContext(topic, MessageField.VALUE)
    schema_ids = set()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for i in range(count):
        event_time = now - datetime.timedelta(minutes=15 * (i + 1))
        msg = bike_count(counter_id=f"gn-direct-{i % 3}", count=10 + i)
        msg.event_time.FromDatetime(event_time)
        msg.interval_start.FromDatetime(event_time - datetime.timedelta(minutes=15))
        msg.location.latitude = 53.2194
        msg.location.longitude = 6.5665
        value = serializer(msg, ctx)
        schema_id = int.from_bytes(value[1:5], "big")
        schema_ids.add(schema_id)
        ce_id = str(uuid.uuid4())
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", ce_id.encode()),
            ("ce_source", f"/peers/{peer}/datasets/{dataset}".encode()),
            ("ce_type", b"polder.datasets.mobility.v1.BikeCount"),
            ("ce_time", event_time.strftime("%Y-%m-%dT%H:%M:%SZ").encode()),
            ("ce_dataschema", f"urn:polder:{federation}:schemas:{schema_id}".encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        producer.produce(topic, key=msg.counter_id.encode(), value=value, headers=headers,
                         on_delivery=lambda err, m, ce_id=ce_id: on_delivery(ce_id, err, m))
    remaining = producer.flush(30)
    if errors or remaining:
        print(f"delivery failed: {errors} ({remaining} not delivered)", file=sys.stderr)
        sys.exit(1)
    with open(out_path, "w") as f:
        json.dump({"ce_ids": delivered, "schema_ids": sorted(schema_ids)}, f)


if __name__ == "__main__":
    main()
