"""A stall pages someone: FraudScoringStalled goes pending, then firing, whatever wedged the scorer.

Two wedges on the live platform (the supervisord scorer, group fraud-consumer, 50 tx/s):
- the scorer is frozen (SIGSTOP): its own metrics are gone, the broker's view is all there is;
- a hung member joins the group and holds half the partitions without ever committing, while the
  real scorer stays healthy, ready and scraped.
The alert is read with the collection's prometheus_alert module, as an operator's playbook would.
"""
import json
import os
import signal
import threading
import time

import pytest
from confluent_kafka import Consumer
from kafka_helpers import BOOTSTRAP, supervisorctl

from conftest import run

pytestmark = pytest.mark.e2e
ALERT = "FraudScoringStalled"


def alert(state, timeout):
    """Wait for the alert's state with fraudstream.platform.prometheus_alert; its result."""
    args = {"name": ALERT, "state": state, "timeout": timeout, "url": "http://127.0.0.1:9090",
            "alertmanager_url": "http://127.0.0.1:9093"}
    proc = run(["ansible", "localhost", "-m", "fraudstream.platform.prometheus_alert", "-a", json.dumps(args)],
               env_extra={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
               check=False, timeout=timeout + 120)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert proc.returncode == 0, f"{ALERT} never became {state}: {result.get('msg')} {result.get('timeline')}"
    return result


def pages_then_recovers(wedge, unwedge):
    started = time.monotonic()
    wedge()
    try:
        pending = alert("pending", timeout=300)
        firing = alert("firing", timeout=300)
        fired_after = time.monotonic() - started
    finally:
        unwedge()
    assert firing["alertmanager"] is True, "the page must reach Alertmanager"
    assert fired_after < 300, f"{ALERT} fired {fired_after:.0f}s after the wedge: more than 5 minutes"
    assert int(float(firing["value"])) >= 1
    alert("inactive", timeout=300)  # and it clears once scoring moves again
    return pending, fired_after


def test_a_frozen_scorer_pages_someone(platform):
    pid = int(supervisorctl("pid", "fraud-consumer:fraud-consumer-0").stdout.strip())
    _, fired_after = pages_then_recovers(lambda: os.kill(pid, signal.SIGSTOP), lambda: os.kill(pid, signal.SIGCONT))
    print(f"frozen scorer: {ALERT} firing after {fired_after:.0f}s")


def test_a_member_that_holds_partitions_without_committing_pages_someone(platform):
    """The healthy scorer keeps scoring its half; the stalled half is seen only from the broker."""
    zombie = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "fraud-consumer", "client.id": "hung-member",
                       "partition.assignment.strategy": "range", "enable.auto.commit": False})
    stop = threading.Event()

    def hold():  # polls (so it stays a member) and never commits
        zombie.subscribe(["fraud-transactions", "fraud-labels"])
        while not stop.is_set():
            zombie.poll(0.5)
        zombie.close()

    thread = threading.Thread(target=hold)

    def unwedge():
        stop.set()
        thread.join(timeout=60)

    pending, fired_after = pages_then_recovers(thread.start, unwedge)
    print(f"hung member: {ALERT} firing after {fired_after:.0f}s ({pending['value']} partitions pending)")
