# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alert-state decisions of prometheus_alert, free of I/O."""
from __future__ import annotations

import difflib
from datetime import datetime, timezone

STATES = ("inactive", "pending", "firing")


def matches(labels, matchers):
    return all(labels.get(key) == str(value) for key, value in (matchers or {}).items())


def rules_named(rules, name):
    return [rule for rule in rules if rule.get("name") == name]


def unknown_alert_message(name, rules):
    known = sorted({rule["name"] for rule in rules})
    close = difflib.get_close_matches(name, known, n=3)
    hint = " Did you mean %s?" % " or ".join(close) if close else ""
    return ("no alerting rule named '%s' is loaded in Prometheus, so its state cannot be checked.%s "
            "Known alerts: %s" % (name, hint, ", ".join(known) or "none"))


def observe(rules, matchers):
    """(state, alert) for the matching alerts of the named rules: firing beats pending beats inactive."""
    alerts = [a for rule in rules for a in rule.get("alerts", []) if matches(a.get("labels", {}), matchers)]
    for state in ("firing", "pending"):
        for alert in alerts:
            if alert.get("state") == state:
                return state, alert
    return "inactive", None


def alertmanager_holds(am_alerts, matchers):
    """Whether Alertmanager holds an alert with the matching labels."""
    return any(matches(a.get("labels", {}), matchers) for a in am_alerts)


def reached(wanted, state, am_holds):
    """The wanted state is seen, and Alertmanager (if asked) holds the alert exactly when it fires."""
    return state == wanted and (am_holds is None or am_holds == (wanted == "firing"))


class Timeline:
    """States observed over time: [{state, since, seconds}] with one entry per change."""

    def __init__(self):
        self.entries = []

    def record(self, state, now, alertmanager=None):
        if not self.entries or self.entries[-1]["state"] != state or self.entries[-1].get("alertmanager") != alertmanager:
            entry = {"state": state, "since": now}
            if alertmanager is not None:
                entry["alertmanager"] = alertmanager
            self.entries.append(entry)

    def current_for(self, now):
        return now - self.entries[-1]["since"] if self.entries else 0.0

    def as_result(self, start):
        """Entries with an ISO timestamp and the seconds since the module started watching."""
        return [dict(entry, since=datetime.fromtimestamp(entry["since"], timezone.utc).isoformat(timespec="seconds"),
                     after_seconds=round(entry["since"] - start, 1)) for entry in self.entries]
