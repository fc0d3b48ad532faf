# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  bootstrap_servers:
    description:
      - Kafka bootstrap servers, as C(host:port) strings.
      - Read from the environment variable E(FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS) (comma-separated)
        when not set.
    type: list
    elements: str
    default: [localhost:9092]
  security_protocol:
    description:
      - Protocol used to talk to the brokers; it must be the protocol of the listener that
        O(bootstrap_servers) points at.
      - V(SASL_PLAINTEXT) and V(SASL_SSL) log in with O(sasl_username) and O(sasl_password);
        V(SSL) and V(SASL_SSL) encrypt with TLS and verify the brokers' certificates.
      - Read from E(FRAUDSTREAM_KAFKA_SECURITY_PROTOCOL) when not set.
    type: str
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
    default: PLAINTEXT
  sasl_mechanism:
    description:
      - SASL mechanism of a V(SASL_PLAINTEXT) or V(SASL_SSL) O(security_protocol). Unset, V(SCRAM-SHA-512).
      - Setting it (or O(sasl_username), O(sasl_password)) with a protocol that does not log in is an
        error, not a warning, so that a connection is never silently left unauthenticated.
      - Read from E(FRAUDSTREAM_KAFKA_SASL_MECHANISM) when not set.
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_username:
    description:
      - SASL user name. Required with a V(SASL_PLAINTEXT) or V(SASL_SSL) O(security_protocol).
      - Read from E(FRAUDSTREAM_KAFKA_SASL_USERNAME) when not set.
    type: str
    aliases: [sasl_plain_username]
  sasl_password:
    description:
      - SASL password. Required with a V(SASL_PLAINTEXT) or V(SASL_SSL) O(security_protocol).
      - Never logged, and never part of a message or a result.
      - Read from E(FRAUDSTREAM_KAFKA_SASL_PASSWORD) when not set (for example injected by an AWX credential).
    type: str
    aliases: [sasl_plain_password]
  ssl_cafile:
    description:
      - PEM CA bundle used to verify the brokers' certificates, on the host the module runs on.
        Unset, the system's trust store.
      - Only with a V(SSL) or V(SASL_SSL) O(security_protocol); the file must exist and be readable.
      - Read from E(FRAUDSTREAM_KAFKA_SSL_CAFILE) when not set.
    type: path
  ssl_certfile:
    description:
      - Client certificate (PEM) for mutual TLS. Only with a V(SSL) or V(SASL_SSL) O(security_protocol).
      - Read from E(FRAUDSTREAM_KAFKA_SSL_CERTFILE) when not set.
    type: path
  ssl_keyfile:
    description:
      - Unencrypted private key (PEM) of O(ssl_certfile).
      - Read from E(FRAUDSTREAM_KAFKA_SSL_KEYFILE) when not set.
    type: path
  ssl_check_hostname:
    description:
      - Check that a broker's certificate is valid for the host name (or IP address) it is reached by.
      - Read from E(FRAUDSTREAM_KAFKA_SSL_CHECK_HOSTNAME) when not set.
    type: bool
    default: true
  request_timeout_ms:
    description:
      - Timeout of each request to the cluster, and of the initial connection, in milliseconds.
      - A connection that cannot succeed (wrong O(security_protocol), untrusted certificate) is
        retried until this timeout, then reported with its cause.
    type: int
    default: 30000
  api_version:
    description:
      - Broker API version as C(major.minor[.patch]), for example C(4.1). Skips version probing.
      - By default the client negotiates versions with the broker (ApiVersions), which is right
        for KRaft clusters of Kafka 4.x.
    type: str
notes:
  - Connection options are checked before connecting; a SASL protocol without O(sasl_username) and
    O(sasl_password), a TLS file that does not exist, or a SASL or TLS option that
    O(security_protocol) would ignore fails the module with a message naming the option.
  - A failed connection or a refused request fails the module with its cause and the fix (an
    untrusted certificate, a refused login, a listener of another protocol, a missing ACL),
    never with a traceback and never with the password.
requirements:
  - kafka-python >= 3.0 (SCRAM-SHA-256 and SCRAM-SHA-512 since 2.0.2)
"""
