# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why a Kafka connection or request failed, and what to change.

kafka-python reports a failed bootstrap only as a timeout; ConnectionLog keeps what it logged on
the way (how far the connection got, the last error), connection_failure turns that into the cause
(TLS files, certificates, a wrong listener, a refused login) and explain does the same for any
library error, with the ACLs a module needs when it is not authorized. No message carries the
password: scrub removes it.
"""
from __future__ import annotations

import logging

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_options import (
    SASL_PROTOCOLS,
    TLS_PROTOCOLS,
    env_name,
)

try:
    from kafka import errors as kafka_errors
except ImportError:
    kafka_errors = None


class ConnectionLog(logging.Handler):
    """What kafka-python logs while it connects: how far a connection got and the last error.

    kafka-python retries a failed bootstrap until its timeout and then raises only "Unable to
    bootstrap"; the cause (a TLS error, a closed connection, a refused login) is in its log.
    Only flags and exceptions are kept, never a formatted record.
    """

    def __init__(self):
        super().__init__(logging.INFO)
        self.versions = False  # a broker answered ApiVersions: the transport (TCP, TLS) works
        self.authenticated = False
        self.error = None

    def emit(self, record):
        template = record.msg if isinstance(record.msg, str) else ""
        args = record.args if isinstance(record.args, tuple) else ()
        if "Broker version identified" in template:
            self.versions = True
        elif any(isinstance(arg, str) and arg.startswith("Authenticated") for arg in args):
            self.authenticated = True
        elif record.levelno >= logging.WARNING:
            errors = [arg for arg in args if isinstance(arg, BaseException)]
            if errors and not is_bootstrap_timeout(errors[-1]):
                self.error = errors[-1]
            elif "DNS lookup failed" in template:
                self.error = OSError(template)

    def __enter__(self):
        self.logger = logging.getLogger("kafka")
        self.level = self.logger.level
        self.logger.addHandler(self)
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)


def is_bootstrap_timeout(exc):
    return type(exc).__name__ in ("KafkaTimeoutError", "NoBrokersAvailable") and (
        "bootstrap" in str(exc).lower() or type(exc).__name__ == "NoBrokersAvailable")


def principal(config):
    if config.get("security_protocol") in SASL_PROTOCOLS:
        return "User:%s" % config.get("sasl_plain_username")
    return "the client's principal (User:ANONYMOUS without SASL or a client certificate)"


TLS_FILE_ERRORS = ("X509", "PEM", "NO_START_LINE", "KEY_VALUES_MISMATCH", "No such file", "Permission denied")


def connection_failure(config, cause=None, versions=False, authenticated=False):
    """Why no connection to the brokers could be made, and what to change.

    cause: the last error seen; versions: whether a broker answered ApiVersions (the transport
    works); authenticated: whether a SASL login succeeded.
    """
    servers = ",".join(config["bootstrap_servers"])
    protocol = config["security_protocol"]
    text = str(cause or "")
    detail = " (%s)" % text if type(cause).__name__ in text else " (%s: %s)" % (type(cause).__name__, text)
    detail = detail if text else ""
    if any(marker in text for marker in TLS_FILE_ERRORS):
        return ("cannot load the TLS files%s: ssl_cafile, ssl_certfile and ssl_keyfile must be PEM files (the key "
                "unencrypted, and matching the certificate)" % detail)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        if "mismatch" in text or "match" in text:
            return ("the certificate of the broker at %s is not valid for the name it was reached by%s: use in "
                    "bootstrap_servers (and the brokers' advertised.listeners) a name the certificate lists in its "
                    "subjectAltName, or set ssl_check_hostname: false (not recommended)" % (servers, detail))
        if "expired" in text:
            return "the certificate of the broker at %s has expired%s: renew it" % (servers, detail)
        trusted = ("the CA bundle ssl_cafile %s" % config["ssl_cafile"] if config.get("ssl_cafile")
                   else "the system's trust store (ssl_cafile is not set)")
        cafile_env = env_name("ssl_cafile")
        return ("TLS: the certificate of the broker at %s is not signed by a CA in %s%s: set ssl_cafile (%s) to "
                "the PEM CA bundle that signed the brokers' certificates" % (servers, trusted, detail, cafile_env))
    if "Handshake failed" in text or "SSL" in text:
        return ("the TLS handshake with %s failed%s: does that listener speak TLS? security_protocol %s needs an "
                "SSL or SASL_SSL listener (connected with %s to a PLAINTEXT or SASL_PLAINTEXT listener?); or the "
                "broker requires a client certificate (ssl_certfile, ssl_keyfile)" % (servers, detail, protocol,
                                                                                      protocol))
    if "refused" in text.lower() or isinstance(cause, ConnectionRefusedError):
        return ("nothing listens at %s (connection refused)%s: check bootstrap_servers and that the brokers run"
                % (servers, detail))
    if "DNS" in text or "Name or service not known" in text:
        return "cannot resolve the host of %s%s: check bootstrap_servers" % (servers, detail)
    if versions and protocol in SASL_PROTOCOLS and not authenticated:
        mechanism = config.get("sasl_mechanism")
        return ("authentication failed: the broker at %s ended the SASL %s login of user '%s'%s: wrong sasl_username "
                "or sasl_password, the user has no %s credential on the cluster (kafka-configs --alter "
                "--entity-type users --entity-name %s --add-config '%s=[password=...]'), or the listener does not "
                "enable %s (sasl.enabled.mechanisms)" % (servers, mechanism, config.get("sasl_plain_username"),
                                                         detail, mechanism, config.get("sasl_plain_username"),
                                                         mechanism, mechanism))
    if versions and protocol not in SASL_PROTOCOLS:
        return ("the broker at %s closed the connection after its first answer%s: the listener probably requires a "
                "SASL login; set security_protocol to SASL_SSL (or SASL_PLAINTEXT) with sasl_username and "
                "sasl_password" % (servers, detail))
    if protocol not in TLS_PROTOCOLS and cause is not None:
        return ("the broker at %s closed the connection before it answered%s: connected with %s to a TLS listener "
                "(SSL or SASL_SSL)? Set security_protocol to the listener's protocol, and ssl_cafile"
                % (servers, detail, protocol))
    return ("no broker at %s answered within request_timeout_ms=%s%s: check bootstrap_servers, that the brokers "
            "run, and that security_protocol %s is the listener's protocol" % (
                servers, config.get("request_timeout_ms"), detail, protocol))


def explain(exc, config, seen=None, acls=None, names=None):
    """A message naming the cause of a kafka-python error and the fix.

    acls: {"topic"|"group"|"cluster": the operations the module needs there}, and names: {"topic"|"group":
    the resource's name}, for the ACL hint of an authorization error; seen: the ConnectionLog of a
    connection attempt that failed (None for a failed request).
    """
    acls, names = acls or {}, names or {}
    who = principal(config)
    name = type(exc).__name__
    errors = kafka_errors
    if errors is not None and isinstance(exc, errors.AuthorizationError):
        for kind, cls in (("topic", "TopicAuthorizationFailedError"), ("group", "GroupAuthorizationFailedError"),
                          ("cluster", "ClusterAuthorizationFailedError")):
            if name == cls:
                scope = "--cluster" if kind == "cluster" else "--%s %s" % (kind, names.get(kind) or "NAME")
                operations = acls.get(kind) or ["Describe"]
                return ("%s is not authorized on the %s (%s): grant it the ACLs this module needs there (%s), for "
                        "example kafka-acls --add --allow-principal %s %s %s" % (
                            who, kind, exc, ", ".join(operations),
                            who if who.startswith("User:") else "User:NAME",
                            " ".join("--operation %s" % op for op in operations), scope))
        return "%s is not authorized (%s): grant it the ACLs this module needs" % (who, exc)
    if name == "SaslAuthenticationFailedError":
        return connection_failure(config, exc, versions=True)
    if name == "UnsupportedSaslMechanismError":
        return ("the broker does not enable sasl_mechanism %s (%s): set sasl_mechanism to a mechanism the listener "
                "enables" % (config.get("sasl_mechanism"), exc))
    if is_bootstrap_timeout(exc) or seen is not None:
        cause = seen.error if seen is not None and seen.error is not None else (
            None if is_bootstrap_timeout(exc) else exc)
        return "cannot connect to Kafka: " + connection_failure(
            config, cause, seen is not None and seen.versions, seen is not None and seen.authenticated)
    if name in ("KafkaTimeoutError", "RequestTimedOutError"):
        return ("Kafka did not answer within request_timeout_ms=%s (%s): raise request_timeout_ms, or check the "
                "brokers' health" % (config.get("request_timeout_ms"), exc))
    return "%s: %s" % (name, exc) if name not in str(exc) else str(exc)


def scrub(text, secret):
    """The text without the secret (a message must never carry the password)."""
    return text.replace(secret, "********") if secret else text
