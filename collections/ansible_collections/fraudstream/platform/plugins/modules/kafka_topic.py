#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kafka_topic
short_description: Create, update and delete Kafka topics idempotently
version_added: 0.1.0
description:
  - Creates a topic, raises its partition count and applies its config with incremental alter
    (IncrementalAlterConfigs), or deletes it.
  - Refuses, before changing anything, a partition decrease or a replication-factor change, and
    unknown config keys. A new topic is validated by the broker (validate-only create) first.
  - Compares effective values, so repeating a run reports no change.
  - Raising the partition count of an existing topic warns that keys move to other partitions,
    and that co-partitioned topics must be grown with it.
  - A delete waits until no live broker lists the topic any more, and fails after O(timeout)
    seconds naming what was still seen. Deleting a topic that does not exist changes nothing.
author: fraudstream developers (@fraudstream)
options:
  name:
    description: Topic name (ASCII letters, digits, C(.), C(_), C(-); at most 249 characters).
    type: str
    required: true
  partitions:
    description:
      - Partition count. Creates the topic with it, or raises an existing topic's count to it.
      - Omitted, a new topic gets the broker's C(num.partitions) and an existing one is left alone.
      - "Raising it warns: records with the same key map to different partitions from then on, so
        ordering per key breaks across the change, and a co-partitioned topic (for example the
        scorers' changelog C(<group>-changelog), or C(fraud-labels) next to C(fraud-transactions))
        must be grown to the same count together with this one."
    type: int
  replication_factor:
    description:
      - Replication factor. Omitted, a new topic gets the broker's C(default.replication.factor).
      - A different value on an existing topic fails; reassignment is not implemented.
    type: int
  config:
    description: Topic-level configuration, for example C(retention.ms) or C(cleanup.policy).
    type: dict
    default: {}
  config_mode:
    description:
      - V(merge) sets only the keys in O(config) and leaves other topic-level overrides alone.
      - V(replace) also resets every other topic-level override to the broker default.
    type: str
    choices: [merge, replace]
    default: merge
  state:
    description: Whether the topic should exist.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description:
      - Seconds to wait for the cluster to finish a change.
      - After a delete, until no live (unfenced) broker lists the topic in its metadata any more;
        the module fails when one still does, naming the broker and what it showed.
      - After a create, until every partition of the new topic has a leader.
    type: int
    default: 60
    version_added: 0.2.0
extends_documentation_fragment:
  - fraudstream.platform.kafka
attributes:
  check_mode:
    support: full
    description:
      - Predicts every change, validated by the broker where Kafka allows it, without applying it.
      - A topic to be created without O(partitions) or O(replication_factor) is predicted with the
        counts the broker would give it, so RV(topic.partitions) and RV(topic.replication_factor)
        stay integers.
  diff_mode:
    support: full
    description: Shows the topic's partitions, replication factor and config overrides before and after.
notes:
  - Deleting a topic deletes its data.
  - Kafka cannot lower a partition count; the module refuses it before changing anything.
  - With an authorizer, the principal needs C(Describe), C(DescribeConfigs), C(Create), C(Alter),
    C(AlterConfigs) and C(Delete) on the topic, and C(DescribeConfigs) on the cluster to create a
    topic without O(partitions) or O(replication_factor). A refusal fails the module naming the
    missing ACL.
"""

EXAMPLES = r"""
- name: Create the transactions topic
  fraudstream.platform.kafka_topic:
    name: fraud-transactions
    partitions: 6
    replication_factor: 1
    config:
      retention.ms: 604800000
    bootstrap_servers: [127.0.0.1:9092]

- name: Keep only the given overrides on the DLQ
  fraudstream.platform.kafka_topic:
    name: fraud-transactions-dlq
    partitions: 1
    config:
      retention.ms: 2592000000
    config_mode: replace

- name: Delete a scratch topic
  fraudstream.platform.kafka_topic:
    name: scratch
    state: absent
"""

RETURN = r"""
topic:
  description: The topic after the run (predicted in check mode); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Topic name.
      returned: when the topic exists, or will in check mode
      type: str
      sample: fraud-transactions
    partitions:
      description:
        - Partition count. For a topic that check mode would create without O(partitions), the
          count the broker would give it (the controller's answer to a validate-only create, else
          the broker's C(num.partitions)).
      returned: when the topic exists, or will in check mode
      type: int
      sample: 6
    replication_factor:
      description:
        - Replication factor. For a topic that check mode would create without
          O(replication_factor), the broker's C(default.replication.factor) likewise.
      returned: when the topic exists, or will in check mode
      type: int
      sample: 1
    config:
      description: The topic's own config overrides, values as strings (broker defaults left out).
      returned: when the topic exists, or will in check mode
      type: dict
      sample: {retention.ms: "604800000"}
  sample:
    name: fraud-transactions
    partitions: 6
    replication_factor: 1
    config: {retention.ms: "604800000"}
actions:
  description: What was done, or would be done in check mode.
  returned: always
  type: list
  elements: str
  sample: ["add partitions 3 -> 6", "set retention.ms=604800000"]
diff:
  description: Before and after summaries of the topic (as RV(topic)), when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample:
    before: {name: fraud-transactions, partitions: 3, replication_factor: 1, config: {}}
    after: {name: fraud-transactions, partitions: 6, replication_factor: 1, config: {}}
still_seen:
  description:
    - On a delete that did not finish within O(timeout), each broker that still lists the topic
      (or did not answer), with what it showed.
  returned: when a delete times out (the module fails)
  type: dict
  sample: {"broker 2 (kafka-2:9092)": "lists it with 6 partition(s)"}
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka import (
    KafkaError,
    KafkaModuleClient,
    kafka_argument_spec,
    topic_name_error,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_topics import (
    UNKNOWN_TOPIC_OR_PARTITION,
    broker_defaults,
    describe_topics,
    topic_config_keys,
    wait_until_deleted,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.topic import (
    config_value,
    deletion_timeout_message,
    grow_warning,
    plan_update,
    summary,
    validate_desired,
)

try:
    from kafka import errors as kafka_errors
    from kafka.admin import AlterConfigOp, ConfigResource, NewPartitions
except ImportError:
    pass  # reported by KafkaModuleClient

# What the module does with a topic (and, for the broker defaults, the cluster): the ACLs it needs.
ACLS = {"topic": ["Describe", "DescribeConfigs", "Create", "Alter", "AlterConfigs", "Delete"],
        "cluster": ["DescribeConfigs"]}


def describe(client, name):
    return describe_topics(client, [name]).get(name)


def ensure_absent(module, client, current):
    if current is None:
        return [], {}
    name = current["name"]
    if module.check_mode:
        return ["delete topic"], {}
    answer = client.admin.delete_topics([name], raise_errors=False)["topics"][0]
    actions = ["delete topic"]
    if answer["error_code"] == UNKNOWN_TOPIC_OR_PARTITION:
        actions = []  # deleted by someone else since it was described; still wait for the brokers
    elif answer["error_code"]:
        raise kafka_errors.for_code(answer["error_code"])(answer.get("error_message") or "")
    still_seen = wait_until_deleted(client, name, module.params["timeout"], deleted_id=current.get("topic_id"))
    if still_seen:
        client.close()
        module.fail_json(msg=deletion_timeout_message(name, module.params["timeout"], still_seen),
                         changed=bool(actions), actions=actions, topic={}, still_seen=still_seen)
    return actions, {}


def positive(value):
    return value if isinstance(value, int) and value > 0 else None


def ensure_created(module, client):
    p = module.params
    config = {k: config_value(v) for k, v in p["config"].items()}
    spec = {p["name"]: {"num_partitions": p["partitions"] or -1,
                        "replication_factor": p["replication_factor"] or -1,
                        "configs": config}}
    # The broker validates names, counts and config keys first; nothing is created on error.
    checked = client.admin.create_topics(spec, validate_only=True, raise_errors=False)["topics"][0]
    error = kafka_errors.for_code(checked["error_code"]) if checked["error_code"] else None
    if error is not None and issubclass(error, kafka_errors.AuthorizationError):
        raise error(checked["error_message"] or "creating topic '%s'" % p["name"])
    if error is not None:
        client.close()
        module.fail_json(msg="topic '%s' cannot be created: the broker says %s: %s" % (
            p["name"], type(kafka_errors.for_code(checked["error_code"])()).__name__, checked["error_message"]))
    # The counts it would get: the controller's answer (CreateTopics v5+), else the broker defaults.
    partitions = p["partitions"] or positive(checked.get("num_partitions"))
    replication_factor = p["replication_factor"] or positive(checked.get("replication_factor"))
    if partitions is None or replication_factor is None:
        defaults = broker_defaults(client)
        partitions = partitions or defaults["num.partitions"]
        replication_factor = replication_factor or defaults["default.replication.factor"]
    actions = ["create topic (partitions=%d%s, replication_factor=%d%s)"
               % (partitions, "" if p["partitions"] else " (broker default)",
                  replication_factor, "" if p["replication_factor"] else " (broker default)")]
    actions += ["set %s=%s" % kv for kv in sorted(config.items())]
    if module.check_mode:
        predicted = {"name": p["name"], "partitions": partitions, "replication_factor": replication_factor,
                     "config": dict(sorted(config.items()))}
        return actions, predicted
    client.admin.create_topics(spec)
    client.admin.wait_for_topics([p["name"]], timeout_ms=p["timeout"] * 1000)
    return actions, None


def ensure_updated(module, client, current):
    p = module.params
    plan = plan_update(current, p["partitions"], p["replication_factor"], p["config"], p["config_mode"],
                       known_keys=topic_config_keys(client, p["name"]) if p["config"] else None)
    if plan.errors:
        client.close()
        module.fail_json(msg="; ".join(plan.errors), topic=summary(current))
    actions = []
    if plan.new_partitions:
        actions.append("add partitions %d -> %d" % (current["partitions"], plan.new_partitions))
        module.warn(grow_warning(p["name"], current["partitions"], plan.new_partitions))
    actions += ["set %s=%s" % kv for kv in sorted(plan.set_config.items())]
    actions += ["reset %s to the broker default" % key for key in plan.reset_config]
    if module.check_mode or not plan.changed:
        return actions, plan.after(current)
    if plan.new_partitions:
        client.admin.create_partitions({p["name"]: NewPartitions(plan.new_partitions)})
    if plan.set_config or plan.reset_config:
        ops = {k: (AlterConfigOp.SET, v) for k, v in plan.set_config.items()}
        ops.update({k: (AlterConfigOp.DELETE, None) for k in plan.reset_config})
        result = client.admin.alter_configs([ConfigResource("TOPIC", p["name"], ops)], incremental=True)
        outcome = result.get("topic", {}).get(p["name"])
        if outcome != "OK":
            client.fail("altering the config of topic '%s'" % p["name"], outcome_error(outcome))
    return actions, None


def outcome_error(outcome):
    """The library error of an alter_configs outcome ("[Error 29] TopicAuthorizationFailedError: ...")."""
    code = re.match(r"\[Error (\d+)\]", str(outcome))
    return kafka_errors.for_code(int(code.group(1)))(str(outcome)) if code else RuntimeError(str(outcome))


def main():
    argument_spec = kafka_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        partitions=dict(type="int"),
        replication_factor=dict(type="int"),
        config=dict(type="dict", default={}),
        config_mode=dict(type="str", default="merge", choices=["merge", "replace"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        timeout=dict(type="int", default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    errors = validate_desired(topic_name_error(p["name"]), p["partitions"], p["replication_factor"], p["timeout"])
    if errors:
        module.fail_json(msg="topic '%s': %s" % (p["name"], "; ".join(errors)))

    client = KafkaModuleClient(module, acls=ACLS, names={"topic": p["name"]})
    try:
        current = describe(client, p["name"])
        if p["state"] == "absent":
            actions, after = ensure_absent(module, client, current)
        elif current is None:
            actions, after = ensure_created(module, client)
        else:
            actions, after = ensure_updated(module, client, current)
        if after is None:
            after = summary(describe(client, p["name"]))
    except (KafkaError, RuntimeError) as exc:
        client.fail("topic '%s'" % p["name"], exc)
    finally:
        client.close()

    result = dict(changed=bool(actions), actions=actions, topic=after)
    if module._diff:
        result["diff"] = dict(before=summary(current), after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
