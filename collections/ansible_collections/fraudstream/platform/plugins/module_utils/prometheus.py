# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Prometheus/Alertmanager HTTP API client for the fraudstream.platform modules.

Basic auth (or a bearer token) and TLS through ansible's open_url; every failure is an ApiError
whose message names the URL (without credentials), the cause and the fix, never a secret.
"""
from __future__ import annotations

import json
import os

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.parse import urlencode, urlsplit, urlunsplit
from ansible.module_utils.urls import open_url

from ansible_collections.fraudstream.platform.plugins.module_utils.tls_files import is_readable, tls_file_problems

ENV_PREFIX = "FRAUDSTREAM_PROMETHEUS_"
# Option -> environment variable it falls back to (for AWX credential injection).
ENV = {"url": "URL", "url_username": "USERNAME", "url_password": "PASSWORD", "bearer_token": "BEARER_TOKEN",
       "validate_certs": "VALIDATE_CERTS", "ca_path": "CA_PATH", "client_cert": "CLIENT_CERT",
       "client_key": "CLIENT_KEY"}


def env_name(option):
    return ENV_PREFIX + ENV[option]


def prometheus_argument_spec():
    """Connection options shared by Prometheus modules (doc fragment fraudstream.platform.prometheus)."""
    def env(option):
        return (env_fallback, [env_name(option)])

    return dict(
        url=dict(type="str", default="http://127.0.0.1:9090", fallback=env("url")),
        url_username=dict(type="str", fallback=env("url_username")),
        url_password=dict(type="str", no_log=True, fallback=env("url_password")),
        bearer_token=dict(type="str", no_log=True, fallback=env("bearer_token")),
        validate_certs=dict(type="bool", default=True, fallback=env("validate_certs")),
        ca_path=dict(type="path", aliases=["ca_file"], fallback=env("ca_path")),
        client_cert=dict(type="path", fallback=env("client_cert")),
        client_key=dict(type="path", no_log=False, fallback=env("client_key")),
        request_timeout=dict(type="int", default=10),
    )


PROMETHEUS_MUTUALLY_EXCLUSIVE = [("url_username", "bearer_token")]
PROMETHEUS_REQUIRED_TOGETHER = [("url_username", "url_password")]
PROMETHEUS_REQUIRED_BY = {"client_key": "client_cert"}
TLS_FILES = (("ca_path", "the PEM CA bundle that signed the server's certificate"),
             ("client_cert", "the client certificate (PEM)"),
             ("client_key", "the private key (PEM) of client_cert"))


def prometheus_problems(params, isfile=os.path.isfile, readable=is_readable):
    """Errors of the connection options found before any request: [messages]."""
    return tls_file_problems(params, TLS_FILES, env_name, isfile, readable)


def without_credentials(url):
    """The URL as a message may show it: user and password of http://user:pass@host left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class ApiError(Exception):
    """An HTTP API call that failed; the message names the URL and the cause."""


def http_error_message(kind, url, exc, params):
    """What an HTTP API failure means and what to change. kind: Prometheus or Alertmanager."""
    status = getattr(exc, "code", None)
    where = without_credentials(url)
    if status in (401, 403):
        sent = ("the bearer token" if params.get("bearer_token") else
                "the credentials of user '%s'" % params["url_username"] if params.get("url_username") else
                "no credentials")
        if status == 401 or sent == "no credentials":
            fix = ("set url_username and url_password (%s, %s), or bearer_token (%s), to credentials it accepts"
                   % (env_name("url_username"), env_name("url_password"), env_name("bearer_token")))
        else:
            fix = "the credentials are valid but not allowed this API: use (or grant) ones that are"
        return "%s at %s refused the request (%d %s) with %s: %s" % (
            kind, where, status, "Unauthorized" if status == 401 else "Forbidden", sent, fix)
    if status is not None:
        return "GET %s failed: HTTP %s %s" % (where, status, getattr(exc, "reason", ""))
    reason = getattr(exc, "reason", exc)
    text = str(reason)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        if "mismatch" in text or "match" in text:
            return ("the TLS certificate of %s is not valid for its host name (%s): use a host name the certificate "
                    "lists, or set validate_certs: false (not recommended)" % (where, text))
        return ("the TLS certificate of %s is not trusted (%s): set ca_path (%s) to the PEM CA bundle that signed "
                "it, or validate_certs: false (not recommended)" % (where, text, env_name("ca_path")))
    if "SSL" in text or "TLS" in text:
        return ("the TLS handshake with %s failed (%s): is it an https:// server? Does it require a client "
                "certificate (client_cert, client_key)?" % (where, text))
    if "refused" in text.lower():
        return "nothing listens at %s (connection refused): check the URL and that the server runs" % where
    if "timed out" in text.lower():
        return "%s did not answer within request_timeout=%ss: raise request_timeout, or check the server" % (
            where, params.get("request_timeout"))
    return "GET %s failed: %s" % (where, text)


def scrub(text, params):
    for key in ("url_password", "bearer_token"):
        if params.get(key):
            text = text.replace(params[key], "********")
    return text


class HttpApi:
    kind = "the server"

    def __init__(self, base_url, params):
        if not base_url.startswith(("http://", "https://")):
            raise ApiError("'%s' is not an http:// or https:// URL" % without_credentials(base_url))
        self.base_url = base_url.rstrip("/")
        self.params = params

    def get(self, path, query=None):
        url = self.base_url + path + ("?" + urlencode(query, doseq=True) if query else "")
        headers = {"Accept": "application/json"}
        p = self.params
        if p.get("bearer_token"):
            headers["Authorization"] = "Bearer %s" % p["bearer_token"]
        try:
            response = open_url(
                url, headers=headers, timeout=p["request_timeout"],
                validate_certs=p["validate_certs"], ca_path=p.get("ca_path"),
                client_cert=p.get("client_cert"), client_key=p.get("client_key"),
                url_username=p.get("url_username"), url_password=p.get("url_password"),
                force_basic_auth=bool(p.get("url_username")))
            body = response.read()
        except Exception as exc:  # urllib raises many types; all mean "unreachable or refused"
            raise ApiError(scrub(http_error_message(self.kind, url, exc, p), p)) from None
        try:
            return json.loads(body)
        except ValueError:
            raise ApiError("GET %s did not return JSON (is this a Prometheus/Alertmanager URL?)"
                           % without_credentials(url)) from None

    @property
    def where(self):
        return without_credentials(self.base_url)


class Prometheus(HttpApi):
    kind = "Prometheus"

    def data(self, path, query=None):
        body = self.get(path, query)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ApiError("%s%s answered %s" % (self.where, path, body))
        return body["data"]

    def alerting_rules(self):
        """Every alerting rule, each with its active alerts, from /api/v1/rules."""
        groups = self.data("/api/v1/rules", {"type": "alert"})["groups"]
        return [rule for group in groups for rule in group["rules"] if rule.get("type") == "alerting"]


class Alertmanager(HttpApi):
    kind = "Alertmanager"

    def active_alerts(self, name):
        """Alerts Alertmanager holds (active, not silenced or inhibited filtered out) for an alertname."""
        alerts = self.get("/api/v2/alerts", {"filter": 'alertname="%s"' % name})
        if not isinstance(alerts, list):
            raise ApiError("%s/api/v2/alerts did not return a list" % self.where)
        return alerts
