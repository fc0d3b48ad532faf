# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka connection options: what is refused before connecting, what kafka-python is given, and
how each library error is explained (cause and fix, never the password)."""
from __future__ import annotations

import logging

import pytest
from kafka import errors as kafka_errors

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_explain import (
    ConnectionLog,
    connection_failure,
    explain,
)
from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_options import (
    client_config,
    connection_problems,
)

EXISTS = {"/etc/kafka/ca.pem", "/etc/kafka/client.pem", "/etc/kafka/client.key", "/etc/kafka/secret-ca.pem"}


def params(**kw):
    base = dict(bootstrap_servers=["kafka:9093"], security_protocol="PLAINTEXT", sasl_mechanism=None,
                sasl_username=None, sasl_password=None, ssl_cafile=None, ssl_certfile=None, ssl_keyfile=None,
                ssl_check_hostname=True, request_timeout_ms=5000, api_version=None)
    base.update(kw)
    return base


def problems(**kw):
    return connection_problems(params(**kw), isfile=EXISTS.__contains__,
                               readable=lambda path: path != "/etc/kafka/secret-ca.pem")


SASL_SSL = dict(security_protocol="SASL_SSL", sasl_username="app", sasl_password="s3cret", ssl_cafile="/etc/kafka/ca.pem")


@pytest.mark.parametrize("kw", [
    {},
    SASL_SSL,
    dict(SASL_SSL, sasl_mechanism="SCRAM-SHA-256"),
    dict(security_protocol="SSL", ssl_cafile="/etc/kafka/ca.pem", ssl_certfile="/etc/kafka/client.pem",
         ssl_keyfile="/etc/kafka/client.key"),
    dict(security_protocol="SSL"),  # the system trust store
    dict(security_protocol="SASL_PLAINTEXT", sasl_username="app", sasl_password="s3cret"),
])
def test_working_settings_pass(kw):
    assert problems(**kw) == ([], [])


@pytest.mark.parametrize("kw, fragments", [
    (dict(security_protocol="SASL_SSL"),
     ["SASL_SSL logs in with SASL SCRAM-SHA-512", "set sasl_username (FRAUDSTREAM_KAFKA_SASL_USERNAME) and "
      "sasl_password (FRAUDSTREAM_KAFKA_SASL_PASSWORD)"]),
    (dict(SASL_SSL, sasl_password=""), ["set sasl_password (FRAUDSTREAM_KAFKA_SASL_PASSWORD)"]),
    (dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="app"),
     ["SASL_PLAINTEXT logs in with SASL PLAIN", "set sasl_password"]),
    (dict(sasl_mechanism="SCRAM-SHA-512"),
     ["sasl_mechanism is set, but security_protocol PLAINTEXT does not log in",
      "set security_protocol to SASL_SSL (or SASL_PLAINTEXT), or remove sasl_mechanism"]),
    (dict(security_protocol="SSL", sasl_username="app", sasl_password="s3cret"),
     ["sasl_username, sasl_password are set, but security_protocol SSL does not log in"]),
    (dict(SASL_SSL, ssl_cafile="/nowhere/ca.pem"),
     ["ssl_cafile '/nowhere/ca.pem' does not exist or is not a file",
      "set ssl_cafile (FRAUDSTREAM_KAFKA_SSL_CAFILE) to the path of the PEM CA bundle"]),
    (dict(SASL_SSL, ssl_cafile="/etc/kafka/secret-ca.pem"),
     ["ssl_cafile '/etc/kafka/secret-ca.pem' is not readable by the user the module runs as"]),
    (dict(security_protocol="SSL", ssl_keyfile="/etc/kafka/client.key"), ["ssl_keyfile is set without ssl_certfile"]),
    (dict(security_protocol="SASL_PLAINTEXT", sasl_username="app", sasl_password="s3cret",
          ssl_cafile="/etc/kafka/ca.pem"),
     ["ssl_cafile is set, but security_protocol SASL_PLAINTEXT does not use TLS",
      "set security_protocol to SSL (or SASL_SSL), or remove ssl_cafile"]),
])
def test_settings_that_cannot_work_are_errors_naming_the_option_and_the_fix(kw, fragments):
    errors, dummy = problems(**kw)
    text = "; ".join(errors)
    for fragment in fragments:
        assert fragment in text
    assert "s3cret" not in text


def test_plain_over_an_unencrypted_listener_warns():
    errors, warnings = problems(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="app",
                                sasl_password="s3cret")
    assert errors == [] and "sends the password unencrypted; use SASL_SSL" in warnings[0]


def test_client_config_gives_kafka_python_only_what_the_protocol_uses():
    assert client_config(params()) == dict(bootstrap_servers=["kafka:9093"], security_protocol="PLAINTEXT",
                                           request_timeout_ms=5000, bootstrap_timeout_ms=5000)
    config = client_config(params(**SASL_SSL, ssl_check_hostname=False))
    assert config == dict(bootstrap_servers=["kafka:9093"], security_protocol="SASL_SSL", request_timeout_ms=5000,
                          bootstrap_timeout_ms=5000, sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="app",
                          sasl_plain_password="s3cret", ssl_check_hostname=False, ssl_cafile="/etc/kafka/ca.pem")
    assert client_config(params(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="a",
                                sasl_password="b"))["sasl_mechanism"] == "PLAIN"


CONFIG = client_config(params(**SASL_SSL))


def seen(versions=False, authenticated=False, error=None):
    log = ConnectionLog()
    log.versions, log.authenticated, log.error = versions, authenticated, error
    return log


BOOTSTRAP_TIMEOUT = kafka_errors.KafkaTimeoutError("Unable to bootstrap from ['kafka:9093']")
CLOSED = kafka_errors.KafkaConnectionError("socket disconnected")


@pytest.mark.parametrize("config, log, fragments", [
    (CONFIG, seen(error=kafka_errors.KafkaConnectionError(
        "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
        "certificate chain (_ssl.c:1006)")),
     ["is not signed by a CA in the CA bundle ssl_cafile /etc/kafka/ca.pem", "set ssl_cafile"]),
    (CONFIG, seen(error=kafka_errors.KafkaConnectionError(
        "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, "
        "certificate is not valid for '10.0.0.5'. (_ssl.c:1006)")),
     ["is not valid for the name it was reached by", "subjectAltName", "ssl_check_hostname: false"]),
    (CONFIG, seen(error=kafka_errors.KafkaConnectionError(
        "Handshake failed: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")),
     ["TLS handshake with kafka:9093 failed", "connected with SASL_SSL to a PLAINTEXT or SASL_PLAINTEXT listener?"]),
    (CONFIG, seen(error=kafka_errors.KafkaConnectionError(
        "Handshake failed: [X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found (_ssl.c:4149)")),
     ["cannot load the TLS files", "must be PEM files"]),
    (CONFIG, seen(versions=True, error=CLOSED),
     ["authentication failed", "SASL SCRAM-SHA-512 login of user 'app'", "wrong sasl_username or sasl_password",
      "no SCRAM-SHA-512 credential"]),
    (client_config(params()), seen(error=CLOSED),
     ["closed the connection before it answered", "connected with PLAINTEXT to a TLS listener (SSL or SASL_SSL)?"]),
    (client_config(params(security_protocol="SSL")), seen(versions=True, error=CLOSED),
     ["the listener probably requires a SASL login", "set security_protocol to SASL_SSL"]),
    (client_config(params()), seen(error=kafka_errors.KafkaConnectionError("111 ECONNREFUSED")),
     ["nothing listens at kafka:9093 (connection refused)", "check bootstrap_servers"]),
    (client_config(params()), seen(error=kafka_errors.KafkaConnectionError("DNS Resolution failure")),
     ["cannot resolve the host of kafka:9093"]),
    (CONFIG, seen(), ["no broker at kafka:9093 answered within request_timeout_ms=5000"]),
])
def test_a_failed_bootstrap_is_explained_by_what_kafka_python_logged(config, log, fragments):
    text = explain(BOOTSTRAP_TIMEOUT, config, log)
    assert text.startswith("cannot connect to Kafka: ")
    for fragment in fragments:
        assert fragment in text, text
    assert "s3cret" not in text


def test_the_connection_log_keeps_how_far_the_connection_got_and_the_last_error():
    log = ConnectionLog()
    with log:
        logging.getLogger("kafka.net.connection").info("%s: Broker version identified as %s", "<conn>", "4.1")
        logging.getLogger("kafka.net.manager").warning("Bootstrap connection to %s failed: %s (backoff %.2f secs)",
                                                       "bootstrap-0", CLOSED, 0.05)
        logging.getLogger("kafka.net.manager").error("Bootstrap failed: %s", BOOTSTRAP_TIMEOUT)
    assert log.versions and not log.authenticated and log.error is CLOSED
    assert log not in logging.getLogger("kafka").handlers
    with log:
        logging.getLogger("kafka.net.connection").info("%s: %s", "<conn>", "Authenticated as app via SASL / SCRAM")
    assert log.authenticated


@pytest.mark.parametrize("error, acls, names, fragments", [
    (kafka_errors.TopicAuthorizationFailedError("describing topic 'tx'"),
     {"topic": ["Describe", "Create"]}, {"topic": "tx"},
     ["User:app is not authorized on the topic", "(Describe, Create)",
      "kafka-acls --add --allow-principal User:app --operation Describe --operation Create --topic tx"]),
    (kafka_errors.GroupAuthorizationFailedError("FindCoordinatorResponse error for GROUP/g"),
     {"group": ["Describe"]}, {"group": "g"}, ["not authorized on the group", "--operation Describe --group g"]),
    (kafka_errors.ClusterAuthorizationFailedError("no config for broker 1"), {"cluster": ["DescribeConfigs"]}, {},
     ["not authorized on the cluster", "--operation DescribeConfigs --cluster"]),
    (kafka_errors.TransactionalIdAuthorizationFailedError(), {}, {}, ["User:app is not authorized"]),
    (kafka_errors.SaslAuthenticationFailedError("Authentication failed: Invalid username or password"), {}, {},
     ["authentication failed", "Invalid username or password", "wrong sasl_username or sasl_password"]),
    (kafka_errors.UnsupportedSaslMechanismError("Enabled mechanisms: ['PLAIN']"), {}, {},
     ["does not enable sasl_mechanism SCRAM-SHA-512", "['PLAIN']"]),
    (kafka_errors.RequestTimedOutError("Request timed out after 5000 ms"), {}, {},
     ["did not answer within request_timeout_ms=5000", "raise request_timeout_ms"]),
    (kafka_errors.InvalidReplicationFactorError("Replication factor: 3 larger than available brokers: 1."), {}, {},
     ["InvalidReplicationFactorError", "larger than available brokers"]),
])
def test_library_errors_name_the_cause_and_the_fix(error, acls, names, fragments):
    text = explain(error, CONFIG, None, acls, names)  # a request failed, on a working connection
    for fragment in fragments:
        assert fragment in text, text


def test_without_sasl_the_principal_is_named_as_kafka_sees_it():
    text = explain(kafka_errors.TopicAuthorizationFailedError("x"), client_config(params()), None, {}, {"topic": "t"})
    assert "User:ANONYMOUS" in text and "--allow-principal User:NAME" in text


def test_connection_failure_without_any_detail_still_names_the_protocol():
    text = connection_failure(CONFIG)
    assert "no broker at kafka:9093 answered" in text and "security_protocol SASL_SSL" in text
