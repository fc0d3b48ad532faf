# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka clients for the fraudstream.platform modules: KafkaModuleClient.

It refuses connection options that cannot work before connecting (kafka_options), hands them to
kafka-python, and turns every library error into a message that names the cause and the fix
(kafka_explain); none of them ever holds the password. The modules import their connection
options and helpers from here too (__all__).
"""
from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_explain import ConnectionLog, explain, scrub
from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_options import (
    SASL_PROTOCOLS,
    client_config,
    connection_problems,
    kafka_argument_spec,
    topic_name_error,
)

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

# What the modules import from here.
__all__ = ["SASL_PROTOCOLS", "ConnectionLog", "KafkaError", "KafkaModuleClient", "kafka_argument_spec", "scrub",
           "topic_name_error"]


class KafkaModuleClient:
    """Admin (and, on demand, consumer) clients for one module run; close() releases both.

    acls: what the module needs on the topic, the group and the cluster, and names: the topic's or
    group's name (both named in authorization failures). Fails the module, before connecting, on
    connection options that cannot work.
    """

    def __init__(self, module, acls=None, names=None):
        self.module = module
        self.acls = acls or {}
        self.names = names or {}
        if not HAS_KAFKA:
            module.fail_json(msg=missing_required_lib("kafka-python"), exception=KAFKA_IMPORT_ERROR)
        version = module.params.get("api_version")
        if version and not all(part.isdigit() for part in version.split(".")):
            module.fail_json(msg="api_version '%s' is not a version like 4.1 or 3.9.0; "
                                 "omit it to negotiate with the broker" % version)
        errors, warnings = connection_problems(module.params)
        if errors:
            module.fail_json(msg="; ".join(errors))
        for warning in warnings:
            module.warn(warning)
        self.config = client_config(module.params)
        self._admin = None
        self._consumer = None

    def _connect(self, make):
        seen = ConnectionLog()
        with seen:
            try:
                return make(client_id="ansible-fraudstream", **self.config)
            except (KafkaError, OSError, ValueError) as exc:  # OSError, ValueError: a file kafka-python cannot load
                failure = exc
        self.close()
        self.module.fail_json(msg=self.message("", failure, seen))

    @property
    def admin(self):
        if self._admin is None:
            self._admin = self._connect(KafkaAdminClient)
        return self._admin

    @property
    def consumer(self):
        """A group-less consumer, used only to read begin/end offsets."""
        if self._consumer is None:
            self._consumer = self._connect(lambda **kw: KafkaConsumer(enable_auto_commit=False, **kw))
        return self._consumer

    def offsets(self, partitions):
        """{TopicPartition: (begin, end)} for the given partitions."""
        if not partitions:
            return {}
        begin = self.consumer.beginning_offsets(partitions)
        end = self.consumer.end_offsets(partitions)
        return {tp: (begin[tp], end[tp]) for tp in partitions}

    def message(self, what, exc, seen=None):
        text = explain(exc, self.config, seen, self.acls, self.names)
        return scrub("%s: %s" % (what, text) if what else text, self.config.get("sasl_plain_password"))

    def fail(self, what, exc, **result):
        self.close()
        self.module.fail_json(msg=self.message(what, exc), **result)

    def close(self):
        for client in (self._consumer, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # pylint: disable=broad-except
                    pass
        self._admin = self._consumer = None
