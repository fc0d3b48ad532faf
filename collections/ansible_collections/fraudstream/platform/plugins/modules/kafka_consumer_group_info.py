#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kafka_consumer_group_info
short_description: Describe a Kafka consumer group and its lag
version_added: 0.1.0
description:
  - Returns a consumer group's state and members, and per partition the committed offset, the
    log-end offset and the lag, with totals per topic and overall.
  - Fit for C(until:) loops, for example waiting for a consumer to catch up.
author: fraudstream developers (@fraudstream)
options:
  group:
    description: Consumer group id.
    type: str
    required: true
  topics:
    description:
      - Topics to report lag for. By default, every topic the group has committed offsets for
        or is assigned.
      - A listed topic the group never committed to counts its whole retained log as lag.
    type: list
    elements: str
extends_documentation_fragment:
  - fraudstream.platform.kafka
  - fraudstream.platform.attributes.info_module
notes:
  - With an authorizer, the principal needs C(Describe) on the group and on its topics. A refusal
    fails the module naming the missing ACL.
"""

EXAMPLES = r"""
- name: Wait until the scorer has caught up
  fraudstream.platform.kafka_consumer_group_info:
    group: fraud-consumer
    topics: [fraud-transactions]
    bootstrap_servers: [127.0.0.1:9092]
  register: scorer
  until: scorer.total_lag < 100
  retries: 60
  delay: 5
"""

RETURN = r"""
group:
  description: The consumer group id, as given in O(group).
  returned: always
  type: str
  sample: fraud-consumer
exists:
  description: Whether the broker knows the group (it has members or committed offsets).
  returned: always
  type: bool
  sample: true
state:
  description: Group state as the coordinator reports it (Stable, PreparingRebalance, Empty, Dead, ...).
  returned: always
  type: str
  sample: Stable
members:
  description: Group members and the partitions assigned to each.
  returned: always
  type: list
  elements: dict
  contains:
    member_id:
      description: Member id the coordinator gave the consumer.
      returned: always
      type: str
      sample: fraud-consumer-1-0f3c
    client_id:
      description: The consumer's C(client.id).
      returned: always
      type: str
      sample: fraud-consumer-1
    host:
      description: Host the member connected from.
      returned: always
      type: str
      sample: /127.0.0.1
    assignment:
      description: Topic name to the sorted partitions assigned to the member.
      returned: always
      type: dict
      sample: {fraud-transactions: [0, 1, 2]}
  sample: [{member_id: "fraud-consumer-1-0f3c", client_id: fraud-consumer-1, host: /127.0.0.1,
            assignment: {fraud-transactions: [0, 1, 2]}}]
partitions:
  description: Per partition, the committed offset (null if none), the log-end offset and the lag.
  returned: always
  type: list
  elements: dict
  contains:
    topic:
      description: Topic name.
      returned: always
      type: str
      sample: fraud-transactions
    partition:
      description: Partition number.
      returned: always
      type: int
      sample: 0
    committed_offset:
      description: The group's committed offset, null if none.
      returned: always
      type: int
      sample: 1200
    end_offset:
      description: The partition's log-end offset.
      returned: always
      type: int
      sample: 1250
    lag:
      description: Records not yet consumed; without a commit, counted from the partition's begin offset.
      returned: always
      type: int
      sample: 50
  sample: [{topic: fraud-transactions, partition: 0, committed_offset: 1200, end_offset: 1250, lag: 50}]
lag_per_topic:
  description: Lag summed per topic.
  returned: always
  type: dict
  sample: {fraud-transactions: 50}
total_lag:
  description: Lag summed over every reported partition.
  returned: always
  type: int
  sample: 50
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka import (
    KafkaError,
    KafkaModuleClient,
    kafka_argument_spec,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.lag import lag_report

try:
    from kafka import TopicPartition
    from kafka.errors import for_code
except ImportError:
    pass  # reported by KafkaModuleClient

UNKNOWN_TOPIC_OR_PARTITION = 3
ACLS = {"group": ["Describe"], "topic": ["Describe"]}


def member_summary(member):
    assignment = {}
    decoded = member.get("member_assignment")
    for topic, partitions in getattr(decoded, "assignment", None) or []:
        assignment[topic] = sorted(partitions)
    return {"member_id": member.get("member_id"), "client_id": member.get("client_id"),
            "host": member.get("client_host"), "assignment": assignment}


def group_lag(client, group, topics):
    description = client.admin.describe_groups([group])[group]
    members = [member_summary(m) for m in description.get("members", [])]
    committed = client.admin.list_group_offsets(group).get(group, {})
    wanted = set(topics or [])
    if not topics:
        wanted = {tp.topic for tp in committed} | {t for m in members for t in m["assignment"]}
    partitions = []
    if wanted:
        metadata = client.admin.describe_topics(sorted(wanted))
        refused = [t for t in metadata if t["error_code"] not in (0, UNKNOWN_TOPIC_OR_PARTITION)]
        if refused:  # TopicAuthorizationFailed above all: the library's error, for the caller to explain
            raise for_code(refused[0]["error_code"])("describing topic '%s'" % refused[0]["name"])
        missing = sorted(t["name"] for t in metadata if t["error_code"])
        if missing:
            raise ValueError("topic(s) %s do not exist" % ", ".join(missing))
        partitions = [TopicPartition(t["name"], p["partition_index"]) for t in metadata for p in t["partitions"]]
    offsets = client.offsets(partitions)
    rows, per_topic, total = lag_report(
        {(tp.topic, tp.partition): committed[tp].offset for tp in committed if tp.topic in wanted},
        {(tp.topic, tp.partition): span[1] for tp, span in offsets.items()},
        {(tp.topic, tp.partition): span[0] for tp, span in offsets.items()})
    state = description.get("group_state") or "Unknown"
    return dict(exists=bool(members or committed) and state != "Dead", state=state, members=members,
                partitions=rows, lag_per_topic=per_topic, total_lag=total)


def main():
    argument_spec = kafka_argument_spec()
    argument_spec.update(
        group=dict(type="str", required=True),
        topics=dict(type="list", elements="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.params["group"].strip():
        module.fail_json(msg="group must be a non-empty consumer group id")
    client = KafkaModuleClient(module, acls=ACLS, names={"group": module.params["group"]})
    try:
        result = group_lag(client, module.params["group"], module.params["topics"])
    except ValueError as exc:
        client.fail("consumer group '%s'" % module.params["group"], exc)
    except KafkaError as exc:
        client.fail("consumer group '%s'" % module.params["group"], exc)
    finally:
        client.close()
    module.exit_json(changed=False, group=module.params["group"], **result)


if __name__ == "__main__":
    main()
