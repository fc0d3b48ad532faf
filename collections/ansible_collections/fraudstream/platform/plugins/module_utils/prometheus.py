# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Prometheus/Alertmanager HTTP API client for the fraudstream.platform modules."""
from __future__ import annotations

import json

from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import open_url


def prometheus_argument_spec():
    """Connection options shared by Prometheus modules (doc fragment fraudstream.platform.prometheus)."""
    return dict(
        url=dict(type="str", default="http://127.0.0.1:9090"),
        url_username=dict(type="str"),
        url_password=dict(type="str", no_log=True),
        bearer_token=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        request_timeout=dict(type="int", default=10),
    )


PROMETHEUS_MUTUALLY_EXCLUSIVE = [("url_username", "bearer_token")]


class ApiError(Exception):
    """An HTTP API call that failed; the message names the URL and the cause."""


class HttpApi:
    def __init__(self, base_url, params):
        if not base_url.startswith(("http://", "https://")):
            raise ApiError("'%s' is not an http:// or https:// URL" % base_url)
        self.base_url = base_url.rstrip("/")
        self.params = params

    def get(self, path, query=None):
        url = self.base_url + path + ("?" + urlencode(query, doseq=True) if query else "")
        headers = {"Accept": "application/json"}
        if self.params.get("bearer_token"):
            headers["Authorization"] = "Bearer %s" % self.params["bearer_token"]
        try:
            response = open_url(
                url, headers=headers, timeout=self.params["request_timeout"],
                validate_certs=self.params["validate_certs"], ca_path=self.params.get("ca_path"),
                url_username=self.params.get("url_username"), url_password=self.params.get("url_password"),
                force_basic_auth=bool(self.params.get("url_username")))
            body = response.read()
        except Exception as exc:  # urllib raises many types; all mean "unreachable or refused"
            raise ApiError("GET %s failed: %s" % (url, exc)) from None
        try:
            return json.loads(body)
        except ValueError:
            raise ApiError("GET %s did not return JSON (is this a Prometheus/Alertmanager URL?)" % url) from None


class Prometheus(HttpApi):
    def data(self, path, query=None):
        body = self.get(path, query)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ApiError("%s%s answered %s" % (self.base_url, path, body))
        return body["data"]

    def alerting_rules(self):
        """Every alerting rule, each with its active alerts, from /api/v1/rules."""
        groups = self.data("/api/v1/rules", {"type": "alert"})["groups"]
        return [rule for group in groups for rule in group["rules"] if rule.get("type") == "alerting"]


class Alertmanager(HttpApi):
    def active_alerts(self, name):
        """Alerts Alertmanager holds (active, not silenced or inhibited filtered out) for an alertname."""
        alerts = self.get("/api/v2/alerts", {"filter": 'alertname="%s"' % name})
        if not isinstance(alerts, list):
            raise ApiError("%s/api/v2/alerts did not return a list" % self.base_url)
        return alerts
