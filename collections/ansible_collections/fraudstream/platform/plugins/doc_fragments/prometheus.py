# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Prometheus server, for example V(http://127.0.0.1:9090).
    type: str
    default: http://127.0.0.1:9090
  url_username:
    description:
      - Username for HTTP basic authentication.
    type: str
  url_password:
    description:
      - Password for HTTP basic authentication. Never logged.
    type: str
  bearer_token:
    description:
      - "Bearer token, sent as the C(Authorization: Bearer) header. Never logged."
      - Mutually exclusive with O(url_username).
    type: str
  validate_certs:
    description:
      - Verify TLS certificates.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle used to verify the server certificate.
    type: path
  request_timeout:
    description:
      - Timeout of each HTTP request, in seconds. (Named so that a module's own O(ignore:timeout),
        such as the wait of M(fraudstream.platform.prometheus_alert), keeps its plain name.)
    type: int
    default: 10
"""
