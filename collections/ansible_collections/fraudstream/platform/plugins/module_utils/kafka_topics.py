# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading topics from a cluster, shared by kafka_topic and kafka_topic_info."""
from __future__ import annotations

try:
    from kafka import TopicPartition
    from kafka.admin import ConfigResource
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
        if topic["error_code"]:
            raise RuntimeError("describe topic '%s' failed with error code %d" % (topic["name"], topic["error_code"]))
    if not metadata:
        return {}
    configs = client.admin.describe_configs(
        [ConfigResource("TOPIC", t["name"]) for t in metadata], config_filter="all")["topic"]
    topics = {}
    for topic in metadata:
        entries = configs.get(topic["name"], {})
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
    entries = client.admin.describe_configs([ConfigResource("TOPIC", name)], config_filter="all")["topic"]
    return set(entries.get(name, {}))
