# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kafka connection options (doc fragment fraudstream.platform.kafka): their argument spec, the
checks made before any connection (connection_problems), and the kafka-python settings made of
them (client_config). Also the topic name rule, which needs no connection either.
"""
from __future__ import annotations

import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.fraudstream.platform.plugins.module_utils.tls_files import is_readable, tls_file_problems

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
