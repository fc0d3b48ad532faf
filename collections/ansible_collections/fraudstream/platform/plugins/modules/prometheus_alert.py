#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_alert
short_description: Check or wait for a Prometheus alert's state, and its arrival at Alertmanager
version_added: 0.1.0
description:
  - Reads alerting rules and their active alerts from the Prometheus HTTP API and checks that the
    alert O(name) (optionally only the instances matching O(labels)) is in O(state), polling every
    O(interval) seconds for up to O(timeout) seconds.
  - Fails when no alerting rule of that name is loaded, listing the known names, so a typo can
    never pass as V(inactive).
  - With O(alertmanager_url), also requires Alertmanager to hold the alert (V(firing)) or not to
    hold it (V(inactive), V(pending)).
  - On timeout, fails with the state it saw and for how long, and the timeline of states.
author: fraudstream developers (@fraudstream)
options:
  name:
    description: The alert name (the rule's C(alert:) field, label C(alertname)).
    type: str
    required: true
  labels:
    description: Label matchers (equality) that the alert's labels must carry.
    type: dict
    default: {}
  state:
    description: The state to check for or wait for.
    type: str
    choices: [inactive, pending, firing]
    default: firing
  timeout:
    description: Seconds to wait for O(state). V(0) checks once.
    type: int
    default: 0
  interval:
    description: Seconds between polls.
    type: int
    default: 5
  alertmanager_url:
    description: Base URL of Alertmanager, for example V(http://127.0.0.1:9093). Uses the same credentials.
    type: str
extends_documentation_fragment:
  - fraudstream.platform.prometheus
  - fraudstream.platform.attributes.info_module
"""

EXAMPLES = r"""
- name: Wait for FraudConsumerDown to fire and reach Alertmanager
  fraudstream.platform.prometheus_alert:
    name: FraudConsumerDown
    state: firing
    timeout: 300
    url: http://127.0.0.1:9090
    alertmanager_url: http://127.0.0.1:9093

- name: Assert the broker alert is quiet
  fraudstream.platform.prometheus_alert:
    name: KafkaBrokerDown
    state: inactive
"""

RETURN = r"""
state:
  description: The state observed last.
  returned: always
  type: str
  sample: firing
labels:
  description: Labels of the matching alert (empty when inactive).
  returned: always
  type: dict
  sample: {alertname: KafkaBrokerDown, severity: critical, job: kafka}
annotations:
  description: Annotations of the matching alert (the rule's, when inactive).
  returned: always
  type: dict
  sample: {summary: Kafka broker is down}
value:
  description: The alert expression's value when it last evaluated, as Prometheus reports it.
  returned: when the alert is pending or firing
  type: str
  sample: "0e+00"
active_at:
  description: When the alert became active (pending), from Prometheus.
  returned: when the alert is pending or firing
  type: str
  sample: "2026-11-29T06:40:10Z"
alertmanager:
  description: Whether Alertmanager holds the alert; null without O(alertmanager_url).
  returned: always
  type: bool
  sample: true
timeline:
  description: Each change of state (and of Alertmanager's view) seen while polling.
  returned: always
  type: list
  elements: dict
  contains:
    state:
      description: The state seen.
      returned: always
      type: str
      sample: pending
    since:
      description: When it was first seen, ISO 8601 in UTC.
      returned: always
      type: str
      sample: "2026-11-29T06:40:12+00:00"
    after_seconds:
      description: Seconds after the module started watching.
      returned: always
      type: float
      sample: 12.1
    alertmanager:
      description: Whether Alertmanager held the alert.
      returned: with O(alertmanager_url)
      type: bool
      sample: false
  sample: [{state: inactive, since: "2026-11-29T06:40:00+00:00", after_seconds: 0.0},
           {state: pending, since: "2026-11-29T06:40:12+00:00", after_seconds: 12.1}]
elapsed:
  description: Seconds spent polling.
  returned: always
  type: float
  sample: 42.3
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.alert_state import (
    Timeline,
    alertmanager_holds,
    observe,
    reached,
    rules_named,
    unknown_alert_message,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.prometheus import (
    PROMETHEUS_MUTUALLY_EXCLUSIVE,
    PROMETHEUS_REQUIRED_BY,
    PROMETHEUS_REQUIRED_TOGETHER,
    Alertmanager,
    ApiError,
    Prometheus,
    prometheus_argument_spec,
    prometheus_problems,
)


def watch(module, prometheus, alertmanager):
    p = module.params
    start = time.time()
    timeline = Timeline()
    while True:
        now = time.time()
        rules = prometheus.alerting_rules()
        named = rules_named(rules, p["name"])
        if not named:
            return dict(failed=True, msg=unknown_alert_message(p["name"], rules))
        state, alert = observe(named, p["labels"])
        am_holds = None
        if alertmanager is not None:
            am_holds = alertmanager_holds(alertmanager.active_alerts(p["name"]), p["labels"])
        timeline.record(state, now, alertmanager=am_holds)
        done = reached(p["state"], state, am_holds)
        if done or now - start >= p["timeout"]:
            break
        time.sleep(min(p["interval"], max(p["timeout"] - (now - start), 0.1)))

    result = dict(
        state=state, timeline=timeline.as_result(start), elapsed=round(time.time() - start, 1),
        labels=(alert or {}).get("labels", {}),
        annotations=(alert or {}).get("annotations") or named[0].get("annotations", {}),
        alertmanager=am_holds,
    )
    if alert:
        result.update(value=alert.get("value"), active_at=alert.get("activeAt"))
    if not done:
        seen_for = round(timeline.current_for(time.time()), 1)
        where = "" if state != p["state"] else (
            " Prometheus agrees, but Alertmanager %s it." % ("does not hold" if state == "firing" else "still holds"))
        result.update(failed=True, msg="alert %s%s is '%s' (for %ss), wanted '%s' within %ss.%s" % (
            p["name"], " %s" % p["labels"] if p["labels"] else "", state, seen_for, p["state"], p["timeout"], where))
    return result


def main():
    argument_spec = prometheus_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        labels=dict(type="dict", default={}),
        state=dict(type="str", default="firing", choices=["inactive", "pending", "firing"]),
        timeout=dict(type="int", default=0),
        interval=dict(type="int", default=5),
        alertmanager_url=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=PROMETHEUS_MUTUALLY_EXCLUSIVE,
                           required_together=PROMETHEUS_REQUIRED_TOGETHER, required_by=PROMETHEUS_REQUIRED_BY)
    p = module.params
    errors = prometheus_problems(p)
    if p["timeout"] < 0 or p["interval"] < 1:
        errors.append("timeout must be >= 0 and interval >= 1 (seconds); got timeout=%s, interval=%s"
                      % (p["timeout"], p["interval"]))
    if errors:
        module.fail_json(msg="; ".join(errors))
    try:
        prometheus = Prometheus(p["url"], p)
        alertmanager = Alertmanager(p["alertmanager_url"], p) if p["alertmanager_url"] else None
        result = watch(module, prometheus, alertmanager)
    except ApiError as exc:
        result = dict(failed=True, msg="alert %s: %s" % (p["name"], exc))
    if result.pop("failed", False):
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
