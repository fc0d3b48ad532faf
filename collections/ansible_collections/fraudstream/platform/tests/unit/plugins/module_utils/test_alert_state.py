from __future__ import annotations

from ansible_collections.fraudstream.platform.plugins.module_utils.alert_state import (
    Timeline,
    alertmanager_holds,
    observe,
    reached,
    unknown_alert_message,
)

RULES = [{"name": "KafkaBrokerDown", "alerts": [
    {"labels": {"instance": "a"}, "state": "pending"},
    {"labels": {"instance": "b"}, "state": "firing"}]},
    {"name": "FraudConsumerDown", "alerts": []}]


def test_firing_beats_pending():
    assert observe(RULES[:1], {})[0] == "firing"


def test_label_matchers_select_instances():
    assert observe(RULES[:1], {"instance": "a"})[0] == "pending"
    assert observe(RULES[:1], {"instance": "zzz"}) == ("inactive", None)


def test_unknown_alert_lists_known_names_and_suggests():
    msg = unknown_alert_message("FraudConsumerDwn", RULES)
    assert "Did you mean FraudConsumerDown?" in msg
    assert "Known alerts: FraudConsumerDown, KafkaBrokerDown" in msg


def test_alertmanager_must_hold_firing_and_drop_resolved():
    assert reached("firing", "firing", None)
    assert not reached("firing", "firing", False)
    assert reached("inactive", "inactive", False)
    assert not reached("inactive", "inactive", True)
    assert not reached("firing", "pending", True)


def test_alertmanager_holds_matches_labels():
    alerts = [{"labels": {"alertname": "X", "instance": "a"}}]
    assert alertmanager_holds(alerts, {"instance": "a"}) and not alertmanager_holds(alerts, {"instance": "b"})


def test_timeline_keeps_one_entry_per_change():
    timeline = Timeline()
    for t, state in [(0, "inactive"), (5, "inactive"), (10, "pending"), (20, "firing"), (25, "firing")]:
        timeline.record(state, 1000 + t)
    assert [e["state"] for e in timeline.entries] == ["inactive", "pending", "firing"]
    assert timeline.current_for(1030) == 10
    assert timeline.as_result(1000)[1]["after_seconds"] == 10
