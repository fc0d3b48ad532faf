# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading topics from a cluster, shared by kafka_topic and kafka_topic_info."""
from __future__ import annotations

import time

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka import KafkaError
from ansible_collections.fraudstream.platform.plugins.module_utils.topic import seen_description

try:
    from kafka import TopicPartition
    from kafka.admin import ConfigResource
    from kafka.errors import ClusterAuthorizationFailedError, TopicAuthorizationFailedError, for_code
    from kafka.protocol.metadata import MetadataRequest
except ImportError:
    pass  # reported by KafkaModuleClient

UNKNOWN_TOPIC_OR_PARTITION = 3
# A value set on the topic itself (kafka-python names the ConfigSourceType).
DYNAMIC_TOPIC_CONFIG = "DYNAMIC_TOPIC_CONFIG"


def describe_topics(client, names, with_offsets=False):
    """{name: description} for the topics that exist; absent names are left out."""
    if not names:
        return {}
    metadata = [t for t in client.admin.describe_topics(list(names)) if t["error_code"] != UNKNOWN_TOPIC_OR_PARTITION]
    for topic in metadata:
        if topic["error_code"]:  # TopicAuthorizationFailed above all: the library's error, for the caller to explain
            raise for_code(topic["error_code"])("describing topic '%s'" % topic["name"])
    if not metadata:
        return {}
    configs = client.admin.describe_configs(
        [ConfigResource("TOPIC", t["name"]) for t in metadata], config_filter="all").get("topic", {})
    topics = {}
    for topic in metadata:
        entries = configs.get(topic["name"])
        if not entries:  # kafka-python drops a refused resource; an existing topic always has configs
            raise TopicAuthorizationFailedError(
                "the broker returned no config for topic '%s' (DescribeConfigs not allowed?)" % topic["name"])
        partitions = sorted(topic["partitions"], key=lambda p: p["partition_index"])
        topics[topic["name"]] = {
            "name": topic["name"],
            "topic_id": str(topic.get("topic_id") or ""),
            "internal": bool(topic.get("is_internal")),
            "partitions": len(partitions),
            "replication_factor": len(partitions[0]["replica_nodes"]) if partitions else 0,
            "partition_details": [
                {"partition": p["partition_index"], "leader": p["leader_id"],
                 "replicas": list(p["replica_nodes"]), "isr": list(p["isr_nodes"]),
                 "offline_replicas": list(p.get("offline_replicas") or [])}
                for p in partitions],
            "config": {k: e["value"] for k, e in sorted(entries.items()) if e.get("value") is not None},
            "overrides": {k: e["value"] for k, e in sorted(entries.items())
                          if str(e.get("config_source")) == DYNAMIC_TOPIC_CONFIG},
        }
    if with_offsets:
        tps = [TopicPartition(name, p["partition"]) for name, t in topics.items() for p in t["partition_details"]]
        offsets = client.offsets(tps)
        for name, topic in topics.items():
            for part in topic["partition_details"]:
                part["begin_offset"], part["end_offset"] = offsets[TopicPartition(name, part["partition"])]
            topic["messages"] = sum(p["end_offset"] - p["begin_offset"] for p in topic["partition_details"])
    return topics


def topic_config_keys(client, name):
    """Every config key the broker knows for an existing topic."""
    entries = client.admin.describe_configs([ConfigResource("TOPIC", name)], config_filter="all").get("topic", {})
    if not entries.get(name):  # kafka-python drops a refused resource
        raise TopicAuthorizationFailedError(
            "the broker returned no config for topic '%s' (DescribeConfigs not allowed?)" % name)
    return set(entries[name])


def live_brokers(client):
    """[(broker id, "host:port")] of the cluster's brokers, fenced ones left out, by id."""
    brokers = client.admin.describe_cluster()["brokers"]
    return sorted((b["broker_id"], "%s:%s" % (b["host"], b["port"])) for b in brokers if not b.get("is_fenced"))


BROKER_DEFAULT_KEYS = ("num.partitions", "default.replication.factor")


def broker_defaults(client):
    """{"num.partitions": int, "default.replication.factor": int} as a live broker is configured."""
    brokers = live_brokers(client)
    if not brokers:
        raise RuntimeError("the cluster reports no live broker to read num.partitions from")
    broker = str(brokers[0][0])
    described = client.admin.describe_configs(
        [ConfigResource("BROKER", broker, list(BROKER_DEFAULT_KEYS))], config_filter="all").get("broker", {})
    entries = described.get(broker) or next(iter(described.values()), {})
    if not entries:  # kafka-python drops a refused resource
        raise ClusterAuthorizationFailedError(
            "the broker returned no config for broker %s (DescribeConfigs on the cluster not allowed?)" % broker)
    missing = [key for key in BROKER_DEFAULT_KEYS if (entries.get(key) or {}).get("value") is None]
    if missing:
        raise RuntimeError("broker %s does not report %s" % (broker, ", ".join(missing)))
    return {key: int(entries[key]["value"]) for key in BROKER_DEFAULT_KEYS}


async def _metadata_from(admin, broker_id, names):
    request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=n) for n in names],
                              allow_auto_topic_creation=False)
    # pylint: disable-next=protected-access
    response = await admin._manager.send(request, node_id=broker_id)
    return response.to_dict()


def topic_seen_by(client, broker_id, name):
    """One broker's own metadata for a topic, or None when that broker does not list it.

    KafkaAdminClient.describe_topics asks whichever broker is least loaded; this asks the given one,
    the way the client's own describe_log_dirs addresses brokers (kafka-python 3.0 has no public
    per-broker metadata call).
    """
    admin = client.admin
    # pylint: disable-next=protected-access
    metadata = admin._manager.run(_metadata_from, admin, broker_id, [name])
    for topic in metadata["topics"]:
        if topic["name"] == name and topic["error_code"] != UNKNOWN_TOPIC_OR_PARTITION:
            return topic
    return None


def wait_until_deleted(client, name, timeout, deleted_id=None, poll=0.2, clock=time.monotonic, sleep=time.sleep):
    """Poll every live broker's metadata until none lists the topic any more.

    Returns {} once no broker lists it, or, when timeout seconds have passed, {"broker ID (host:port)":
    what it still showed, or why it did not answer}. A broker that is down counts as unfinished until
    the controller fences it (broker.session.timeout.ms), after which it is no longer asked.
    """
    deadline = clock() + timeout
    pending = None
    while True:
        brokers = live_brokers(client)
        if not brokers:
            raise RuntimeError("the cluster reports no live broker to ask about topic '%s'" % name)
        if pending is None:
            pending = {broker: None for broker in brokers}
        else:  # a broker fenced meanwhile is no longer asked
            pending = {broker: seen for broker, seen in pending.items() if broker in brokers}
        for broker in list(pending):
            try:
                topic = topic_seen_by(client, broker[0], name)
            except KafkaError as exc:
                pending[broker] = "did not answer (%s: %s)" % (type(exc).__name__, exc)
                continue
            if topic is None:
                del pending[broker]
            else:
                error = for_code(topic["error_code"]).__name__ if topic["error_code"] else None
                pending[broker] = seen_description(len(topic.get("partitions") or []), error,
                                                   str(topic.get("topic_id") or ""), deleted_id)
        if not pending or clock() >= deadline:
            return {"broker %s (%s)" % broker: seen for broker, seen in sorted(pending.items())}
        sleep(poll)
