# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every Kafka module and prometheus_alert run in-process with credentials: the options reach the
client, come from the environment (AWX credentials), are refused before connecting when they
cannot work, and every failure is a message with the cause and the fix -- never the password."""
from __future__ import annotations

import json
import logging
import types
import urllib.error

import pytest
from kafka import errors as kafka_errors

from ansible_collections.fraudstream.platform.tests.unit.plugins.modules.fakes import (
    FakeApi,
    FakeCluster,
    run_module,
    warning_texts,
)

SECRET = "pa55-Wd-never-shown"
KAFKA_MODULES = {"kafka_topic": {"name": "tx"}, "kafka_topic_info": {"name": ["tx"]},
                 "kafka_consumer_group_info": {"group": "g", "topics": ["tx"]}}


@pytest.fixture()
def ca(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def sasl_ssl(ca, **kw):
    return dict(bootstrap_servers=["kafka:9093"], security_protocol="SASL_SSL", sasl_username="app",
                sasl_password=SECRET, ssl_cafile=ca, request_timeout_ms=5000, **kw)


def cluster_with_tx():
    cluster = FakeCluster()
    cluster.add_topic("tx", partitions=1)
    cluster.groups["g"] = {"state": "Empty", "members": [], "committed": {("tx", 0): 0}}
    return cluster


def assert_secret_absent(result):
    assert SECRET not in json.dumps(result)
    assert "Traceback" not in json.dumps(result)


@pytest.mark.parametrize("name", sorted(KAFKA_MODULES))
def test_the_credentials_reach_kafka_python(name, ca):
    cluster = cluster_with_tx()
    result, code = run_module(name, dict(KAFKA_MODULES[name], **sasl_ssl(ca)), cluster=cluster)
    assert code == 0, result
    config = cluster.client_configs[0]
    assert {k: config[k] for k in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                                   "sasl_plain_password", "ssl_cafile", "ssl_check_hostname")} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "app",
        "sasl_plain_password": SECRET, "ssl_cafile": ca, "ssl_check_hostname": True}
    assert result["invocation"]["module_args"]["sasl_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert_secret_absent(result)


def test_the_old_option_names_still_work(ca):
    cluster = cluster_with_tx()
    args = sasl_ssl(ca)
    args["sasl_plain_username"], args["sasl_plain_password"] = args.pop("sasl_username"), args.pop("sasl_password")
    result, code = run_module("kafka_topic_info", dict(args, name=["tx"]), cluster=cluster)
    assert code == 0 and cluster.client_configs[0]["sasl_plain_password"] == SECRET


def test_the_connection_comes_from_the_environment_as_an_awx_credential_injects_it(ca, monkeypatch):
    for key, value in {"BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093", "SECURITY_PROTOCOL": "SASL_SSL",
                       "SASL_MECHANISM": "SCRAM-SHA-256", "SASL_USERNAME": "awx", "SASL_PASSWORD": SECRET,
                       "SSL_CAFILE": ca, "SSL_CHECK_HOSTNAME": "false"}.items():
        monkeypatch.setenv("FRAUDSTREAM_KAFKA_" + key, value)
    cluster = cluster_with_tx()
    result, code = run_module("kafka_topic_info", {"name": ["tx"]}, cluster=cluster)
    assert code == 0, result
    config = cluster.client_configs[0]
    assert config["bootstrap_servers"] == ["kafka-1:9093", "kafka-2:9093"]
    assert (config["security_protocol"], config["sasl_mechanism"], config["sasl_plain_username"],
            config["sasl_plain_password"], config["ssl_check_hostname"]) == ("SASL_SSL", "SCRAM-SHA-256", "awx",
                                                                             SECRET, False)
    assert_secret_absent(result)


def test_a_task_argument_beats_the_environment(ca, monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SASL_USERNAME", "from-env")
    cluster = cluster_with_tx()
    run_module("kafka_topic_info", dict(sasl_ssl(ca), name=["tx"]), cluster=cluster)
    assert cluster.client_configs[0]["sasl_plain_username"] == "app"


@pytest.mark.parametrize("name", sorted(KAFKA_MODULES))
@pytest.mark.parametrize("change, fragment", [
    ({"sasl_username": None}, "SASL_SSL logs in with SASL SCRAM-SHA-512, which needs a user name and a password"),
    ({"ssl_cafile": "/nowhere/ca.pem"}, "ssl_cafile '/nowhere/ca.pem' does not exist"),
    ({"security_protocol": "PLAINTEXT", "ssl_cafile": None},
     "sasl_username, sasl_password are set, but security_protocol PLAINTEXT does not log in"),
])
def test_options_that_cannot_work_fail_before_connecting(name, change, fragment, ca):
    cluster = cluster_with_tx()
    args = {k: v for k, v in dict(sasl_ssl(ca), **change).items() if v is not None}
    result, code = run_module(name, dict(KAFKA_MODULES[name], **args), cluster=cluster)
    assert code == 1 and fragment in result["msg"], result["msg"]
    assert cluster.client_configs == []
    assert_secret_absent(result)


def test_plain_over_sasl_plaintext_warns(ca):
    args = dict(sasl_ssl(ca), security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN")
    del args["ssl_cafile"]
    result, code = run_module("kafka_topic_info", dict(args, name=["tx"]), cluster=cluster_with_tx())
    assert code == 0 and any("sends the password unencrypted" in w for w in warning_texts(result))


# -- failures of the cluster, as kafka-python reports them -------------------------------------------------
def refused_login(cluster):
    """What kafka-python 3.0 does when the broker ends a SCRAM login: logs the closed connection after
    ApiVersions worked, retries, then raises only "Unable to bootstrap"."""
    cluster.connect_logs = [
        ("kafka.net.connection", logging.INFO, "%s: Broker version identified as %s", ("<conn>", "4.1")),
        ("kafka.net.manager", logging.WARNING, "Bootstrap connection to %s failed: %s (backoff %.2f secs)",
         ("bootstrap-0", kafka_errors.KafkaConnectionError("socket disconnected (%s)" % SECRET), 0.05))]
    cluster.connect_error = kafka_errors.KafkaTimeoutError("Unable to bootstrap from ['kafka:9093']")


def untrusted_certificate(cluster):
    cluster.connect_logs = [("kafka.net.manager", logging.WARNING, "Bootstrap connection to %s failed: %s", (
        "bootstrap-0", kafka_errors.KafkaConnectionError(
            "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
            "certificate in certificate chain (_ssl.c:1006)")))]
    cluster.connect_error = kafka_errors.KafkaTimeoutError("Unable to bootstrap from ['kafka:9093']")


def refused_topic(cluster):
    cluster.refused_topics.add("tx")


def refused_group(cluster):
    error = kafka_errors.GroupAuthorizationFailedError("FindCoordinatorResponse error for GROUP/g: ")
    cluster.fail_on.update(describe_groups=error, list_group_offsets=error)


def request_timeout(cluster):
    cluster.fail_on.update({m: kafka_errors.KafkaTimeoutError("Timeout after 5000 ms") for m in (
        "describe_topics", "describe_groups")})


@pytest.mark.parametrize("name", sorted(KAFKA_MODULES))
@pytest.mark.parametrize("breaks, fragments", [
    (refused_login, ["authentication failed", "SASL SCRAM-SHA-512 login of user 'app'",
                     "wrong sasl_username or sasl_password"]),
    (untrusted_certificate, ["is not signed by a CA in the CA bundle ssl_cafile", "set ssl_cafile"]),
    (request_timeout, ["did not answer within request_timeout_ms=5000"]),
])
def test_every_kafka_module_explains_connection_failures(name, breaks, fragments, ca):
    cluster = cluster_with_tx()
    breaks(cluster)
    result, code = run_module(name, dict(KAFKA_MODULES[name], **sasl_ssl(ca)), cluster=cluster)
    assert code == 1
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert_secret_absent(result)


@pytest.mark.parametrize("name, breaks, fragment", [
    ("kafka_topic", refused_topic, "User:app is not authorized on the topic"),
    ("kafka_topic_info", refused_topic, "User:app is not authorized on the topic"),
    ("kafka_consumer_group_info", refused_topic, "User:app is not authorized on the topic"),
    ("kafka_consumer_group_info", refused_group, "User:app is not authorized on the group"),
])
def test_every_kafka_module_names_the_missing_acl(name, breaks, fragment, ca):
    cluster = cluster_with_tx()
    breaks(cluster)
    result, code = run_module(name, dict(KAFKA_MODULES[name], **sasl_ssl(ca)), cluster=cluster)
    assert code == 1 and fragment in result["msg"], result["msg"]
    assert "kafka-acls --add --allow-principal User:app" in result["msg"]
    assert_secret_absent(result)


def test_kafka_topic_names_its_acls_and_the_topic():
    cluster = cluster_with_tx()
    refused_topic(cluster)
    result, code = run_module("kafka_topic", {"name": "tx", "bootstrap_servers": ["kafka:9092"]}, cluster=cluster)
    assert code == 1
    assert "(Describe, DescribeConfigs, Create, Alter, AlterConfigs, Delete)" in result["msg"]
    assert result["msg"].endswith("--operation Delete --topic tx")


def test_a_refused_create_is_explained_not_raised():
    cluster = FakeCluster()
    cluster.refused_topics.add("new")  # Describe is answered "unknown" by the fake; Create is refused
    cluster.metadata = types.MethodType(lambda self, topic, error_code=0: FakeCluster.metadata(self, topic), cluster)
    result, code = run_module("kafka_topic", {"name": "new", "partitions": 1, "replication_factor": 1}, cluster=cluster)
    assert code == 1 and "not authorized on the topic" in result["msg"], result["msg"]


def test_a_refused_describe_configs_is_not_mistaken_for_unknown_keys():
    cluster = cluster_with_tx()
    cluster.topics["tx"].name = "tx"

    def describe_configs(self, resources, **kw):
        return {"topic": {r.name: {} for r in resources}}
    from ansible_collections.fraudstream.platform.tests.unit.plugins.modules import fakes
    original = fakes.FakeAdmin.describe_configs
    fakes.FakeAdmin.describe_configs = describe_configs
    try:
        result, code = run_module("kafka_topic", {"name": "tx", "config": {"retention.ms": 1}}, cluster=cluster)
    finally:
        fakes.FakeAdmin.describe_configs = original
    assert code == 1 and "unknown key" not in result["msg"]
    assert "DescribeConfigs not allowed?" in result["msg"] and "not authorized on the topic" in result["msg"]


# -- prometheus_alert ------------------------------------------------------------------------------------------
RULES = [{"type": "alerting", "name": "Up", "annotations": {}, "alerts": []}]


def http_error(status):
    return urllib.error.HTTPError("https://prom:9090/api/v1/rules", status, "x", {}, None)


def test_basic_auth_and_tls_reach_open_url(tmp_path):
    cert, key, ca_file = (tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem")
    for path in (cert, key, ca_file):
        path.write_text("pem")
    api = FakeApi(RULES)
    result, code = run_module("prometheus_alert", {
        "name": "Up", "state": "inactive", "url": "https://prom:9090", "url_username": "ansible",
        "url_password": SECRET, "ca_file": str(ca_file), "client_cert": str(cert), "client_key": str(key)}, api=api)
    assert code == 0, result
    dummy, kwargs = api.requests[0]
    assert {k: kwargs[k] for k in ("url_username", "url_password", "force_basic_auth", "validate_certs", "ca_path",
                                   "client_cert", "client_key")} == {
        "url_username": "ansible", "url_password": SECRET, "force_basic_auth": True, "validate_certs": True,
        "ca_path": str(ca_file), "client_cert": str(cert), "client_key": str(key)}
    assert_secret_absent(result)


def test_prometheus_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_PROMETHEUS_URL", "https://prom.example:9090")
    monkeypatch.setenv("FRAUDSTREAM_PROMETHEUS_USERNAME", "awx")
    monkeypatch.setenv("FRAUDSTREAM_PROMETHEUS_PASSWORD", SECRET)
    monkeypatch.setenv("FRAUDSTREAM_PROMETHEUS_VALIDATE_CERTS", "false")
    api = FakeApi(RULES)
    result, code = run_module("prometheus_alert", {"name": "Up", "state": "inactive"}, api=api)
    url, kwargs = api.requests[0]
    assert code == 0 and url.startswith("https://prom.example:9090/api/v1/rules")
    assert (kwargs["url_username"], kwargs["url_password"], kwargs["validate_certs"]) == ("awx", SECRET, False)
    assert_secret_absent(result)


@pytest.mark.parametrize("args, error, fragments", [
    ({"url_username": "ansible", "url_password": SECRET}, http_error(401),
     ["Prometheus at https://prom:9090/api/v1/rules", "refused the request (401 Unauthorized)",
      "with the credentials of user 'ansible'", "set url_username and url_password "
      "(FRAUDSTREAM_PROMETHEUS_USERNAME, FRAUDSTREAM_PROMETHEUS_PASSWORD)"]),
    ({}, http_error(401), ["refused the request (401 Unauthorized) with no credentials", "set url_username"]),
    ({"bearer_token": SECRET}, http_error(403), ["(403 Forbidden) with the bearer token", "not allowed this API"]),
    ({}, urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
     ["nothing listens at https://prom:9090", "connection refused"]),
    ({}, urllib.error.URLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
                               "issuer certificate (_ssl.c:1006)"),
     ["TLS certificate of https://prom:9090", "is not trusted", "set ca_path (FRAUDSTREAM_PROMETHEUS_CA_PATH)"]),
    ({}, urllib.error.URLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
                               "certificate is not valid for 'prom'. (_ssl.c:1006)"),
     ["is not valid for its host name"]),
    ({}, TimeoutError("timed out"), ["did not answer within request_timeout=10s"]),
])
def test_prometheus_failures_name_the_cause_and_the_fix(args, error, fragments):
    result, code = run_module("prometheus_alert", dict({"name": "Up", "url": "https://prom:9090"}, **args),
                              api=FakeApi(RULES, error=error))
    assert code == 1
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert_secret_absent(result)


def test_credentials_in_the_url_are_not_shown():
    result, code = run_module("prometheus_alert", {"name": "Up", "url": "https://admin:%s@prom:9090" % SECRET},
                              api=FakeApi(RULES, error=http_error(401)))
    assert code == 1 and "https://prom:9090" in result["msg"]
    assert SECRET not in result["msg"]


@pytest.mark.parametrize("args, fragment", [
    ({"ca_path": "/nowhere/ca.pem"}, "ca_path '/nowhere/ca.pem' does not exist"),
    ({"client_key": "/etc/k.pem"}, "missing parameter(s) required by 'client_key': client_cert"),
    ({"url_username": "ansible"}, "parameters are required together: url_username, url_password"),
])
def test_prometheus_options_that_cannot_work_fail_before_any_request(args, fragment):
    api = FakeApi(RULES)
    result, code = run_module("prometheus_alert", dict({"name": "Up"}, **args), api=api)
    assert code == 1 and fragment in result["msg"] and api.requests == []
