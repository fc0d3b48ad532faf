# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decision logic of kafka_topic: compare a topic with the desired state, no I/O."""
from __future__ import annotations


def config_value(value):
    """A config value as Kafka reports it: strings, booleans in lower case, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(config_value(v) for v in value)
    return str(value)


def summary(topic):
    """The part of a topic description that kafka_topic manages, as shown in diff and results."""
    if topic is None:
        return {}
    return {
        "name": topic["name"],
        "partitions": topic["partitions"],
        "replication_factor": topic["replication_factor"],
        "config": dict(sorted(topic["overrides"].items())),
    }


class Plan:
    """What kafka_topic will do to an existing topic, or why it refuses."""

    def __init__(self):
        self.errors = []
        self.new_partitions = None
        self.set_config = {}
        self.reset_config = []

    @property
    def changed(self):
        return bool(self.new_partitions or self.set_config or self.reset_config)

    def after(self, current):
        """The summary the topic will have once the plan is applied."""
        after = summary(current)
        if self.new_partitions:
            after["partitions"] = self.new_partitions
        config = {k: v for k, v in after["config"].items() if k not in self.reset_config}
        config.update(self.set_config)
        after["config"] = dict(sorted(config.items()))
        return after


def plan_update(current, partitions=None, replication_factor=None, config=None, config_mode="merge",
                known_keys=None):
    """Compare an existing topic with the desired settings.

    current: {"name", "partitions", "replication_factor", "config": all effective values,
              "overrides": values set on the topic itself}
    known_keys: every topic config key the broker knows; unknown desired keys are errors.
    """
    plan = Plan()
    name = current["name"]
    if partitions is not None and partitions < current["partitions"]:
        plan.errors.append(
            "topic '%s' has %d partitions; Kafka cannot decrease that to %d. Keep partitions >= %d, "
            "or delete and recreate the topic (its data is lost)."
            % (name, current["partitions"], partitions, current["partitions"]))
    elif partitions is not None and partitions > current["partitions"]:
        plan.new_partitions = partitions
    if replication_factor is not None and replication_factor != current["replication_factor"]:
        plan.errors.append(
            "topic '%s' has replication factor %d; changing it to %d needs a partition reassignment, "
            "which this module does not do. Use kafka-reassign-partitions, then set replication_factor: %d."
            % (name, current["replication_factor"], replication_factor, replication_factor))

    desired = {key: config_value(value) for key, value in (config or {}).items()}
    unknown = sorted(set(desired) - set(known_keys)) if known_keys is not None else []
    if unknown:
        plan.errors.append(unknown_keys_message(name, unknown))
    for key, value in sorted(desired.items()):
        if key in unknown:
            continue
        if current["config"].get(key) != value:
            plan.set_config[key] = value
    if config_mode == "replace":
        plan.reset_config = sorted(set(current["overrides"]) - set(desired))
    return plan


def unknown_keys_message(name, unknown):
    return ("config of topic '%s': unknown key(s) %s. Use topic-level keys such as retention.ms, "
            "cleanup.policy, min.insync.replicas (kafka-configs --describe --all shows them all)."
            % (name, ", ".join(unknown)))


def validate_desired(name_error, partitions, replication_factor, timeout=None):
    """Argument errors that need no broker: [messages]."""
    errors = []
    if name_error:
        errors.append("name %s" % name_error)
    if partitions is not None and partitions < 1:
        errors.append("partitions must be a positive integer, got %d" % partitions)
    if replication_factor is not None and replication_factor < 1:
        errors.append("replication_factor must be a positive integer, got %d" % replication_factor)
    if timeout is not None and timeout < 1:
        errors.append("timeout must be a positive number of seconds, got %d" % timeout)
    return errors


def grow_warning(name, old, new):
    """What growing a topic's partitions does to keyed records, as kafka_topic warns it."""
    return (
        "topic '%s' grows from %d to %d partitions. Records with the same key will map to different "
        "partitions from now on (the default partitioner hashes the key modulo the partition count), so "
        "ordering per key breaks across the change: a key's records written before it and after it can "
        "sit in different partitions and be consumed out of order. Any co-partitioned topic (one read "
        "or joined by the same key with the same partitioning, such as the scorers' changelog "
        "'<group>-changelog' or fraud-labels next to fraud-transactions) must be grown to %d partitions "
        "together with this one." % (name, old, new, new))


def seen_description(partitions, error=None, topic_id=None, deleted_id=None):
    """How one broker still shows a topic that was deleted."""
    text = "lists it with %d partition(s)" % partitions
    if error:
        text += " (error %s)" % error
    if topic_id and deleted_id and topic_id != deleted_id and NO_TOPIC_ID not in (topic_id, deleted_id):
        text += ", as a new topic of the same name (topic id %s; the deleted one was %s)" % (topic_id, deleted_id)
    return text


NO_TOPIC_ID = "00000000-0000-0000-0000-000000000000"


def deletion_timeout_message(name, timeout, still_seen):
    """The failure of a delete that the brokers did not finish within the timeout."""
    seen = "; ".join("%s %s" % item for item in sorted(still_seen.items()))
    return ("topic '%s': the controller accepted the delete, but after %ss the topic is still seen: %s. "
            "Kafka may still finish the deletion; run again, raise timeout, or look at the brokers' "
            "and the controller's logs." % (name, timeout, seen))
