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


def validate_desired(name_error, partitions, replication_factor):
    """Argument errors that need no broker: [messages]."""
    errors = []
    if name_error:
        errors.append("name %s" % name_error)
    if partitions is not None and partitions < 1:
        errors.append("partitions must be a positive integer, got %d" % partitions)
    if replication_factor is not None and replication_factor < 1:
        errors.append("replication_factor must be a positive integer, got %d" % replication_factor)
    return errors
