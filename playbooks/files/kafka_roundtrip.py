"""Produce one unique record to a health-check topic and read that same record back.

Prints one JSON line; exits non-zero with the reason when the broker does not round-trip.
"""
import argparse
import json
import re
import sys
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

TOPIC = "fraudstream-healthcheck"


def client_settings(path: str | None) -> dict:
    """kafka-python settings from a Kafka tools' client properties file (--command-config): the
    protocol, a SCRAM login from sasl.jaas.config, and a PEM truststore."""
    if not path:
        return {}
    props = {}
    for line in open(path, encoding="utf-8"):
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            props[key.strip()] = value.strip()
    settings = {"security_protocol": props.get("security.protocol", "PLAINTEXT")}
    if "sasl.jaas.config" in props:
        login = dict(re.findall(r'(username|password)="([^"]*)"', props["sasl.jaas.config"]))
        settings.update(sasl_mechanism=props.get("sasl.mechanism", "SCRAM-SHA-512"),
                        sasl_plain_username=login.get("username"), sasl_plain_password=login.get("password"))
    if props.get("ssl.truststore.location"):
        settings["ssl_cafile"] = props["ssl.truststore.location"]
    return settings


def roundtrip(bootstrap: str, timeout_ms: int, security: dict) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **security)
    try:
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()

    nonce = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms, **security)
    meta = producer.send(TOPIC, nonce).get(timeout=timeout_ms / 1000)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=timeout_ms, **security)
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
    parser.add_argument("--command-config", help="the Kafka tools' client properties (security settings)")
    args = parser.parse_args()
    try:
        detail = roundtrip(args.bootstrap_server, args.timeout_ms, client_settings(args.command_config))
    except (KafkaError, RuntimeError, OSError) as exc:
        print(json.dumps({"ok": False, "detail": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"ok": True, "detail": detail}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
