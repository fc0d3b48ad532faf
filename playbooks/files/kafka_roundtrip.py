"""Produce one unique record to a health-check topic and read that same record back.

Prints one JSON line; exits non-zero with the reason when the broker does not round-trip.
"""
import argparse
import json
import sys
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

TOPIC = "fraudstream-healthcheck"


def roundtrip(bootstrap: str, timeout_ms: int) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()

    nonce = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms)
    meta = producer.send(TOPIC, nonce).get(timeout=timeout_ms / 1000)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=timeout_ms)
    tp = TopicPartition(TOPIC, meta.partition)
    consumer.assign([tp])
    consumer.seek(tp, meta.offset)
    try:
        for record in consumer:
            if record.value == nonce:
                return f"round trip at {TOPIC}[{meta.partition}]@{meta.offset}"
    finally:
        consumer.close()
    raise RuntimeError(f"produced {TOPIC}[{meta.partition}]@{meta.offset} but could not read it back")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-server", required=True)
    parser.add_argument("--timeout-ms", type=int, default=15000)
    args = parser.parse_args()
    try:
        detail = roundtrip(args.bootstrap_server, args.timeout_ms)
    except (KafkaError, RuntimeError) as exc:
        print(json.dumps({"ok": False, "detail": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"ok": True, "detail": detail}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
