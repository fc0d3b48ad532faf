# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Kafka connection handling for the fraudstream.platform modules.

The connection options (doc fragment fraudstream.platform.kafka) are checked before any connection
(connection_problems), handed to kafka-python (client_config), and every library error is turned
into a message that names the cause and the fix (explain); none of them ever holds the password.
"""
from __future__ import annotations

import logging
import os
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.fraudstream.platform.plugins.module_utils.tls_files import is_readable, tls_file_problems

try:
    from kafka import KafkaConsumer
    from kafka import errors as kafka_errors
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError
except ImportError:
    HAS_KAFKA = False
    KAFKA_IMPORT_ERROR = traceback.format_exc()
    KafkaError = Exception
    kafka_errors = None
else:
    HAS_KAFKA = True
    KAFKA_IMPORT_ERROR = None

# A topic name as Kafka accepts it (kafka.common.internals.Topic).
TOPIC_NAME_CHARS = "ASCII letters, digits, '.', '_' and '-'"
TOPIC_NAME_MAX = 249

ENV_PREFIX = "FRAUDSTREAM_KAFKA_"
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
DEFAULT_SASL_MECHANISM = "SCRAM-SHA-512"
SASL_OPTIONS = ("sasl_mechanism", "sasl_username", "sasl_password")
TLS_FILES = (("ssl_cafile", "the PEM CA bundle that signed the brokers' certificates"),
             ("ssl_certfile", "the client certificate (PEM)"),
             ("ssl_keyfile", "the private key (PEM) of ssl_certfile"))


def env_name(option):
    """The environment variable an option falls back to (for AWX credential injection)."""
    return ENV_PREFIX + option.upper()


def kafka_argument_spec():
    """Connection options shared by every Kafka module (doc fragment fraudstream.platform.kafka)."""
    def env(option):
        return (env_fallback, [env_name(option)])

    return dict(
        bootstrap_servers=dict(type="list", elements="str", default=["localhost:9092"],
                               fallback=env("bootstrap_servers")),
        security_protocol=dict(type="str", default="PLAINTEXT", fallback=env("security_protocol"),
                               choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        sasl_mechanism=dict(type="str", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
                            fallback=env("sasl_mechanism")),
        sasl_username=dict(type="str", aliases=["sasl_plain_username"], fallback=env("sasl_username")),
        sasl_password=dict(type="str", no_log=True, aliases=["sasl_plain_password"], fallback=env("sasl_password")),
        ssl_cafile=dict(type="path", fallback=env("ssl_cafile")),
        ssl_certfile=dict(type="path", fallback=env("ssl_certfile")),
        ssl_keyfile=dict(type="path", no_log=False, fallback=env("ssl_keyfile")),
        ssl_check_hostname=dict(type="bool", default=True, fallback=env("ssl_check_hostname")),
        request_timeout_ms=dict(type="int", default=30000),
        api_version=dict(type="str"),
    )


def topic_name_error(name):
    """Why a topic name is invalid, or None."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name) > TOPIC_NAME_MAX:
        return "is %d characters long; the maximum is %d" % (len(name), TOPIC_NAME_MAX)
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
    if bad:
        return "contains %s; use only %s" % (", ".join(repr(c) for c in bad), TOPIC_NAME_CHARS)
    return None


def _options(names):
    return " and ".join("%s (%s)" % (name, env_name(name)) for name in names)


def connection_problems(params, isfile=os.path.isfile, readable=is_readable):
    """(errors, warnings) of the connection options, found before connecting.

    A SASL or TLS option that the chosen security_protocol would ignore is an error, not a warning:
    it means the connection is not secured the way the playbook (or the AWX credential) asked.
    """
    errors, warnings = [], []
    protocol = params["security_protocol"]
    if protocol in SASL_PROTOCOLS:
        mechanism = params.get("sasl_mechanism") or DEFAULT_SASL_MECHANISM
        missing = [key for key in ("sasl_username", "sasl_password") if not params.get(key)]
        if missing:
            errors.append("security_protocol %s logs in with SASL %s, which needs a user name and a password: "
                          "set %s" % (protocol, mechanism, _options(missing)))
        if mechanism == "PLAIN" and protocol == "SASL_PLAINTEXT":
            warnings.append("sasl_mechanism PLAIN over security_protocol SASL_PLAINTEXT sends the password "
                            "unencrypted; use SASL_SSL, or a SCRAM mechanism")
    else:
        given = [key for key in SASL_OPTIONS if params.get(key)]
        if given:
            errors.append("%s %s set, but security_protocol %s does not log in, so the connection would not be "
                          "authenticated: set security_protocol to SASL_SSL (or SASL_PLAINTEXT), or remove %s"
                          % (", ".join(given), "is" if len(given) == 1 else "are", protocol, ", ".join(given)))
    if protocol in TLS_PROTOCOLS:
        errors.extend(tls_file_problems(params, TLS_FILES, env_name, isfile, readable))
        if params.get("ssl_keyfile") and not params.get("ssl_certfile"):
            errors.append("ssl_keyfile is set without ssl_certfile: set ssl_certfile to the client certificate "
                          "of that key, or remove ssl_keyfile")
    else:
        given = [key for key, dummy in TLS_FILES if params.get(key)]
        if given:
            verb = "is" if len(given) == 1 else "are"
            errors.append("%s %s set, but security_protocol %s does not use TLS: set security_protocol to SSL "
                          "(or SASL_SSL), or remove %s" % (", ".join(given), verb, protocol, ", ".join(given)))
    return errors, warnings


def client_config(params):
    """kafka-python client settings from the module parameters (only those the protocol uses)."""
    protocol = params["security_protocol"]
    config = dict(
        bootstrap_servers=params["bootstrap_servers"],
        security_protocol=protocol,
        request_timeout_ms=params["request_timeout_ms"],
        # Fail fast on an unreachable cluster instead of retrying for a minute.
        bootstrap_timeout_ms=params["request_timeout_ms"],
    )
    if protocol in SASL_PROTOCOLS:
        config.update(sasl_mechanism=params.get("sasl_mechanism") or DEFAULT_SASL_MECHANISM,
                      sasl_plain_username=params.get("sasl_username"),
                      sasl_plain_password=params.get("sasl_password"))
    if protocol in TLS_PROTOCOLS:
        config["ssl_check_hostname"] = params.get("ssl_check_hostname", True) is not False
        for key in (name for name, description in TLS_FILES):
            if params.get(key):
                config[key] = params[key]
    if params.get("api_version"):
        config["api_version"] = tuple(int(part) for part in params["api_version"].split("."))
    return config


# -- why a connection failed ------------------------------------------------------------------------------
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


class KafkaModuleClient:
    """Admin (and, on demand, consumer) clients for one module run; close() releases both.

    acls: what the module needs on the topic, the group and the cluster, and names: the topic's or
    group's name (both named in authorization failures). Fails the module, before connecting, on
    connection options that cannot work.
    """

    def __init__(self, module, acls=None, names=None):
        self.module = module
        self.acls = acls or {}
        self.names = names or {}
        if not HAS_KAFKA:
            module.fail_json(msg=missing_required_lib("kafka-python"), exception=KAFKA_IMPORT_ERROR)
        version = module.params.get("api_version")
        if version and not all(part.isdigit() for part in version.split(".")):
            module.fail_json(msg="api_version '%s' is not a version like 4.1 or 3.9.0; "
                                 "omit it to negotiate with the broker" % version)
        errors, warnings = connection_problems(module.params)
        if errors:
            module.fail_json(msg="; ".join(errors))
        for warning in warnings:
            module.warn(warning)
        self.config = client_config(module.params)
        self._admin = None
        self._consumer = None

    def _connect(self, make):
        seen = ConnectionLog()
        with seen:
            try:
                return make(client_id="ansible-fraudstream", **self.config)
            except (KafkaError, OSError, ValueError) as exc:  # OSError, ValueError: a file kafka-python cannot load
                failure = exc
        self.close()
        self.module.fail_json(msg=self.message("", failure, seen))

    @property
    def admin(self):
        if self._admin is None:
            self._admin = self._connect(KafkaAdminClient)
        return self._admin

    @property
    def consumer(self):
        """A group-less consumer, used only to read begin/end offsets."""
        if self._consumer is None:
            self._consumer = self._connect(lambda **kw: KafkaConsumer(enable_auto_commit=False, **kw))
        return self._consumer

    def offsets(self, partitions):
        """{TopicPartition: (begin, end)} for the given partitions."""
        if not partitions:
            return {}
        begin = self.consumer.beginning_offsets(partitions)
        end = self.consumer.end_offsets(partitions)
        return {tp: (begin[tp], end[tp]) for tp in partitions}

    def message(self, what, exc, seen=None):
        text = explain(exc, self.config, seen, self.acls, self.names)
        return scrub("%s: %s" % (what, text) if what else text, self.config.get("sasl_plain_password"))

    def fail(self, what, exc, **result):
        self.close()
        self.module.fail_json(msg=self.message(what, exc), **result)

    def close(self):
        for client in (self._consumer, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # pylint: disable=broad-except
                    pass
        self._admin = self._consumer = None
