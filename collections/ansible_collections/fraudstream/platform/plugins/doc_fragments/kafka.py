# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  bootstrap_servers:
    description:
      - Kafka bootstrap servers, as C(host:port) strings.
    type: list
    elements: str
    default: [localhost:9092]
  security_protocol:
    description:
      - Protocol used to talk to the brokers.
    type: str
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
    default: PLAINTEXT
  sasl_mechanism:
    description:
      - SASL mechanism when O(security_protocol) is C(SASL_PLAINTEXT) or C(SASL_SSL).
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_plain_username:
    description:
      - SASL username.
    type: str
  sasl_plain_password:
    description:
      - SASL password. Never logged.
    type: str
  ssl_cafile:
    description:
      - CA bundle used to verify the brokers' certificates.
    type: path
  ssl_certfile:
    description:
      - Client certificate for mutual TLS.
    type: path
  ssl_keyfile:
    description:
      - Private key of O(ssl_certfile).
    type: path
  request_timeout_ms:
    description:
      - Timeout of each request to the cluster, and of the initial connection, in milliseconds.
    type: int
    default: 30000
  api_version:
    description:
      - Broker API version as C(major.minor[.patch]), for example C(4.1). Skips version probing.
      - By default the client negotiates versions with the broker (ApiVersions), which is right
        for KRaft clusters of Kafka 4.x.
    type: str
requirements:
  - kafka-python >= 3.0
"""
