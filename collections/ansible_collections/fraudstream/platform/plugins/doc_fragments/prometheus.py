# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Prometheus server, for example V(http://127.0.0.1:9090) or
        V(https://prometheus.example:9090).
      - Read from E(FRAUDSTREAM_PROMETHEUS_URL) when not set.
    type: str
    default: http://127.0.0.1:9090
  url_username:
    description:
      - Username for HTTP basic authentication (sent with every request). Requires O(url_password).
      - Read from E(FRAUDSTREAM_PROMETHEUS_USERNAME) when not set.
    type: str
  url_password:
    description:
      - Password for HTTP basic authentication. Never logged, and never part of a message or a result.
      - Read from E(FRAUDSTREAM_PROMETHEUS_PASSWORD) when not set (for example injected by an AWX credential).
    type: str
  bearer_token:
    description:
      - "Bearer token, sent as the C(Authorization: Bearer) header. Never logged."
      - Mutually exclusive with O(url_username).
      - Read from E(FRAUDSTREAM_PROMETHEUS_BEARER_TOKEN) when not set.
    type: str
  validate_certs:
    description:
      - Verify TLS certificates (the chain against O(ca_path) or the system's trust store, and the host name).
      - Read from E(FRAUDSTREAM_PROMETHEUS_VALIDATE_CERTS) when not set.
    type: bool
    default: true
  ca_path:
    description:
      - PEM CA bundle used to verify the server certificate, on the host the module runs on.
        Unset, the system's trust store.
      - Read from E(FRAUDSTREAM_PROMETHEUS_CA_PATH) when not set.
    type: path
    aliases: [ca_file]
  client_cert:
    description:
      - Client certificate (PEM) for mutual TLS. It may hold the private key too.
      - Read from E(FRAUDSTREAM_PROMETHEUS_CLIENT_CERT) when not set.
    type: path
  client_key:
    description:
      - Private key (PEM) of O(client_cert), when that file does not hold it. Requires O(client_cert).
      - Read from E(FRAUDSTREAM_PROMETHEUS_CLIENT_KEY) when not set.
    type: path
  request_timeout:
    description:
      - Timeout of each HTTP request, in seconds. (Named so that a module's own O(ignore:timeout),
        such as the wait of M(fraudstream.platform.prometheus_alert), keeps its plain name.)
    type: int
    default: 10
notes:
  - A refused request (HTTP 401 or 403), an untrusted or mismatched certificate, or a server that
    does not answer fails the module with the URL (without credentials), the cause and the fix.
"""
