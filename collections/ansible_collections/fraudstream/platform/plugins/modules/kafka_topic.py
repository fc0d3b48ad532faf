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
extends_documentation_fragment:
  - fraudstream.platform.kafka
attributes:
  check_mode:
    support: full
    description: Predicts every change, validated by the broker where Kafka allows it, without applying it.
  diff_mode:
    support: full
    description: Shows the topic's partitions, replication factor and config overrides before and after.
notes:
  - Deleting a topic deletes its data.
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
  description: Before and after summaries of the topic, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {before: {partitions: 3}, after: {partitions: 6}}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka import (
    KafkaError,
    KafkaModuleClient,
    kafka_argument_spec,
    topic_name_error,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_topics import (
    describe_topics,
    topic_config_keys,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.topic import (
    config_value,
    plan_update,
    summary,
    validate_desired,
)

try:
    from kafka import errors as kafka_errors
    from kafka.admin import AlterConfigOp, ConfigResource, NewPartitions
except ImportError:
    pass  # reported by KafkaModuleClient


def describe(client, name):
    return describe_topics(client, [name]).get(name)


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def ensure_absent(module, client, current):
    if current is None:
        return [], {}
    if not module.check_mode:
        client.admin.delete_topics([current["name"]])
        wait_until(lambda: describe(client, current["name"]) is None, module.params["request_timeout_ms"] / 1000)
    return ["delete topic"], {}


def ensure_created(module, client):
    p = module.params
    config = {k: config_value(v) for k, v in p["config"].items()}
    spec = {p["name"]: {"num_partitions": p["partitions"] or -1,
                        "replication_factor": p["replication_factor"] or -1,
                        "configs": config}}
    # The broker validates names, counts and config keys first; nothing is created on error.
    checked = client.admin.create_topics(spec, validate_only=True, raise_errors=False)["topics"][0]
    if checked["error_code"]:
        client.close()
        module.fail_json(msg="topic '%s' cannot be created: the broker says %s: %s" % (
            p["name"], type(kafka_errors.for_code(checked["error_code"])()).__name__, checked["error_message"]))
    actions = ["create topic (partitions=%s, replication_factor=%s)"
               % (p["partitions"] or "broker default", p["replication_factor"] or "broker default")]
    actions += ["set %s=%s" % kv for kv in sorted(config.items())]
    if module.check_mode:
        predicted = {"name": p["name"], "partitions": p["partitions"] or "broker default",
                     "replication_factor": p["replication_factor"] or "broker default",
                     "config": dict(sorted(config.items()))}
        return actions, predicted
    client.admin.create_topics(spec, wait_for_metadata=True)
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
            client.fail("altering the config of topic '%s'" % p["name"], RuntimeError(outcome))
    return actions, None


def main():
    argument_spec = kafka_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        partitions=dict(type="int"),
        replication_factor=dict(type="int"),
        config=dict(type="dict", default={}),
        config_mode=dict(type="str", default="merge", choices=["merge", "replace"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_by={"sasl_plain_password": "sasl_plain_username"})
    p = module.params
    errors = validate_desired(topic_name_error(p["name"]), p["partitions"], p["replication_factor"])
    if errors:
        module.fail_json(msg="topic '%s': %s" % (p["name"], "; ".join(errors)))

    client = KafkaModuleClient(module)
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
    except KafkaError as exc:
        client.fail("topic '%s'" % p["name"], exc)
    finally:
        client.close()

    result = dict(changed=bool(actions), actions=actions, topic=after)
    if module._diff:
        result["diff"] = dict(before=summary(current), after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
