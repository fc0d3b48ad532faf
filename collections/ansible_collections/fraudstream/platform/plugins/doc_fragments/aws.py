# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region of the cluster, for example V(eu-west-1).
      - If not set, the environment variable E(AWS_REGION), else E(AWS_DEFAULT_REGION).
      - The module fails, naming the fix, when neither is set or the name is not a region name.
    type: str
    required: true
  endpoint_url:
    description:
      - URL that every AWS API call goes to instead of AWS's public endpoints, for tests (moto)
        and private endpoints. If not set, the environment variable E(AWS_ENDPOINT_URL).
    type: str
  profile:
    description:
      - Named profile from C(~/.aws/config) to take credentials from. If not set,
        E(AWS_PROFILE); else boto3's usual chain (environment keys, shared files, SSO,
        container or instance role).
    type: str
  connect_timeout:
    description:
      - Seconds to wait for an AWS endpoint to accept a connection, per attempt.
    type: int
    default: 10
  read_timeout:
    description:
      - Seconds to wait for an AWS endpoint to answer a request, per attempt. An endpoint that
        accepts the connection but never answers fails the module after about
        O(max_attempts) times this, with a message naming the endpoint.
    type: int
    default: 30
  max_attempts:
    description:
      - How many times one AWS call is tried in all (the first try included) when it times
        out, is throttled or meets a transient error; V(1) means no retries.
      - If not set, the environment variable E(AWS_MAX_ATTEMPTS).
    type: int
    default: 3
notes:
  - Credentials come from boto3's usual chain; a missing, rejected or expired credential, or a
    missing permission, fails the module with a message that names the cause and the fix
    (for a denied call, the IAM action it needs).
requirements:
  - boto3
"""
