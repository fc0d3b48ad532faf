#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kafka_topic_info
short_description: Describe Kafka topics, their partitions, configs and offsets
version_added: 0.1.0
description:
  - Lists topics, optionally filtered by a name pattern, with per-partition leader, replicas,
    ISR and begin/end offsets, and every config value (with the topic's own overrides apart).
author: fraudstream developers (@fraudstream)
options:
  name:
    description: Exact topic names to describe. Mutually exclusive with O(pattern).
    type: list
    elements: str
  pattern:
    description: Python regular expression that topic names must match (C(re.search)).
    type: str
  include_internal:
    description: Include internal topics such as C(__consumer_offsets).
    type: bool
    default: false
  offsets:
    description: Read begin and end offsets of every partition.
    type: bool
    default: true
extends_documentation_fragment:
  - fraudstream.platform.kafka
  - fraudstream.platform.attributes.info_module
notes:
  - With an authorizer, the principal needs C(Describe) and C(DescribeConfigs) on the topics. With
    O(pattern), topics it may not describe are not listed; a topic named in O(name) that it may not
    describe fails the module naming the missing ACL.
"""

EXAMPLES = r"""
- name: Describe every fraud topic
  fraudstream.platform.kafka_topic_info:
    pattern: "^fraud-"
    bootstrap_servers: [127.0.0.1:9092]
  register: fraud_topics

- name: Show how many messages the transactions topic holds
  ansible.builtin.debug:
    msg: "{{ fraud_topics.topics['fraud-transactions'].messages }}"
"""

RETURN = r"""
topics:
  description:
    - Topic name to description, with the keys of the sample.
    - C(messages), and C(begin_offset) and C(end_offset) of each partition, only with O(offsets).
  returned: always
  type: dict
  sample:
    fraud-transactions:
      name: fraud-transactions
      topic_id: 0c2f5bde-6d0e-4d3b-9a8e-2c1f7e0b9a11
      partitions: 6
      replication_factor: 1
      internal: false
      overrides: {retention.ms: "604800000"}
      config: {cleanup.policy: delete, retention.ms: "604800000"}
      messages: 1200
      partition_details:
        - {partition: 0, leader: 1, replicas: [1], isr: [1], offline_replicas: [], begin_offset: 0, end_offset: 200}
names:
  description: Sorted names of the topics returned.
  returned: always
  type: list
  elements: str
  sample: [fraud-alerts, fraud-transactions]
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka import (
    KafkaError,
    KafkaModuleClient,
    kafka_argument_spec,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_topics import describe_topics

ACLS = {"topic": ["Describe", "DescribeConfigs"]}


def main():
    argument_spec = kafka_argument_spec()
    argument_spec.update(
        name=dict(type="list", elements="str"),
        pattern=dict(type="str"),
        include_internal=dict(type="bool", default=False),
        offsets=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("name", "pattern")])
    p = module.params
    try:
        pattern = re.compile(p["pattern"]) if p["pattern"] else None
    except re.error as exc:
        module.fail_json(msg="pattern '%s' is not a valid regular expression: %s" % (p["pattern"], exc))

    client = KafkaModuleClient(module, acls=ACLS)
    try:
        names = p["name"] or [n for n in client.admin.list_topics() if pattern is None or pattern.search(n)]
        topics = describe_topics(client, names, with_offsets=p["offsets"])
    except (KafkaError, RuntimeError) as exc:
        client.fail("describing topics", exc)
    finally:
        client.close()
    if not p["include_internal"]:
        topics = {n: t for n, t in topics.items() if not t["internal"] and not n.startswith("__")}
    module.exit_json(changed=False, topics=topics, names=sorted(topics))


if __name__ == "__main__":
    main()
