# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Kafka connection handling for the fraudstream.platform modules."""
from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError
except ImportError:
    HAS_KAFKA = False
    KAFKA_IMPORT_ERROR = traceback.format_exc()
    KafkaError = Exception
else:
    HAS_KAFKA = True
    KAFKA_IMPORT_ERROR = None

# A topic name as Kafka accepts it (kafka.common.internals.Topic).
TOPIC_NAME_CHARS = "ASCII letters, digits, '.', '_' and '-'"
TOPIC_NAME_MAX = 249


def kafka_argument_spec():
    """Connection options shared by every Kafka module (doc fragment fraudstream.platform.kafka)."""
    return dict(
        bootstrap_servers=dict(type="list", elements="str", default=["localhost:9092"]),
        security_protocol=dict(type="str", default="PLAINTEXT",
                               choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        sasl_mechanism=dict(type="str", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
        sasl_plain_username=dict(type="str"),
        sasl_plain_password=dict(type="str", no_log=True),
        ssl_cafile=dict(type="path"),
        ssl_certfile=dict(type="path"),
        ssl_keyfile=dict(type="path", no_log=False),
        request_timeout_ms=dict(type="int", default=30000),
        api_version=dict(type="str"),
    )


def topic_name_error(name):
    """Why a topic name is invalid, or None."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name) > TOPIC_NAME_MAX:
        return "is %d characters long; the maximum is %d" % (len(name), TOPIC_NAME_MAX)
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
    if bad:
        return "contains %s; use only %s" % (", ".join(repr(c) for c in bad), TOPIC_NAME_CHARS)
    return None


def client_config(params):
    """kafka-python client settings from the module parameters."""
    config = dict(
        bootstrap_servers=params["bootstrap_servers"],
        security_protocol=params["security_protocol"],
        request_timeout_ms=params["request_timeout_ms"],
        # Fail fast on an unreachable cluster instead of retrying for a minute.
        bootstrap_timeout_ms=params["request_timeout_ms"],
    )
    for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
                "ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if params.get(key) is not None:
            config[key] = params[key]
    if params.get("api_version"):
        config["api_version"] = tuple(int(part) for part in params["api_version"].split("."))
    return config


class KafkaModuleClient:
    """Admin (and, on demand, consumer) clients for one module run; close() releases both."""

    def __init__(self, module):
        self.module = module
        if not HAS_KAFKA:
            module.fail_json(msg=missing_required_lib("kafka-python"), exception=KAFKA_IMPORT_ERROR)
        version = module.params.get("api_version")
        if version and not all(part.isdigit() for part in version.split(".")):
            module.fail_json(msg="api_version '%s' is not a version like 4.1 or 3.9.0; "
                                 "omit it to negotiate with the broker" % version)
        self.config = client_config(module.params)
        self._admin = None
        self._consumer = None

    @property
    def admin(self):
        if self._admin is None:
            try:
                self._admin = KafkaAdminClient(client_id="ansible-fraudstream", **self.config)
            except KafkaError as exc:
                self.fail("cannot connect to Kafka at %s" % ",".join(self.config["bootstrap_servers"]), exc)
        return self._admin

    @property
    def consumer(self):
        """A group-less consumer, used only to read begin/end offsets."""
        if self._consumer is None:
            try:
                self._consumer = KafkaConsumer(client_id="ansible-fraudstream", enable_auto_commit=False,
                                               **self.config)
            except KafkaError as exc:
                self.fail("cannot connect to Kafka at %s" % ",".join(self.config["bootstrap_servers"]), exc)
        return self._consumer

    def offsets(self, partitions):
        """{TopicPartition: (begin, end)} for the given partitions."""
        if not partitions:
            return {}
        begin = self.consumer.beginning_offsets(partitions)
        end = self.consumer.end_offsets(partitions)
        return {tp: (begin[tp], end[tp]) for tp in partitions}

    def fail(self, what, exc, **result):
        self.close()
        self.module.fail_json(msg="%s: %s: %s" % (what, type(exc).__name__, exc), **result)

    def close(self):
        for client in (self._consumer, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # pylint: disable=broad-except
                    pass
        self._admin = self._consumer = None
