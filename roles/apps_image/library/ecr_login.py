#!/usr/bin/python
# Copyright: fraudstream contributors
# Apache License 2.0
"""Log a container tool in to Amazon ECR with a token from GetAuthorizationToken (boto3)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_login
short_description: Log skopeo, podman or docker in to Amazon ECR
description:
  - Asks ECR for an authorization token with boto3 (C(GetAuthorizationToken)) and hands it to
    C(<cli> login --username AWS --password-stdin <registry>) on standard input.
  - The token never appears in the module's arguments, its result or a process list, and is
    masked in any output (no_log). It is valid for 12 hours; the registry's credential stays in
    the tool's auth file.
  - Reports C(changed=false) - only a local session credential is refreshed, nothing in AWS.
options:
  region:
    description: AWS region of the registry.
    type: str
    required: true
  registry_id:
    description: AWS account id of the registry; default the caller's account.
    type: str
  endpoint_url:
    description: ECR endpoint to call instead of AWS's (tests use moto).
    type: str
  profile:
    description: AWS profile; default the environment's credentials.
    type: str
  cli:
    description: The tool to log in.
    type: str
    default: skopeo
    choices: [skopeo, podman, docker]
  login:
    description: Run the login. C(false) only checks that a token can be had (and returns the registry).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: In check mode the token is fetched (a read) but no login runs.
  diff_mode:
    support: none
requirements: [boto3]
author: fraudstream
"""

EXAMPLES = r"""
- name: Log skopeo in to the account's ECR registry
  ecr_login:
    region: eu-west-2
"""

RETURN = r"""
registry:
  description: Host of the registry logged in to (the token's proxy endpoint without scheme).
  returned: success
  type: str
  sample: 123456789012.dkr.ecr.eu-west-2.amazonaws.com
expires_at:
  description: When the token expires (ISO 8601).
  returned: success
  type: str
  sample: "2026-12-03T10:00:00+00:00"
logged_in:
  description: Whether the login ran.
  returned: success
  type: bool
  sample: true
"""

# Ansible modules import after DOCUMENTATION/EXAMPLES/RETURN.
import base64

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_BOTO3 = False


def get_token(params):
    """(username, password, registry host, expiry) from ECR."""
    session = boto3.session.Session(profile_name=params["profile"] or None, region_name=params["region"])
    client = session.client("ecr", endpoint_url=params["endpoint_url"] or None)
    kwargs = {"registryIds": [params["registry_id"]]} if params["registry_id"] else {}
    data = client.get_authorization_token(**kwargs)["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    registry = data["proxyEndpoint"].split("://", 1)[-1].rstrip("/")
    return username, password, registry, data["expiresAt"].isoformat()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            region=dict(type="str", required=True),
            registry_id=dict(type="str"),
            endpoint_url=dict(type="str"),
            profile=dict(type="str"),
            cli=dict(type="str", default="skopeo", choices=["skopeo", "podman", "docker"]),
            login=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    result = dict(changed=False, logged_in=False)
    try:
        username, password, registry, expires_at = get_token(module.params)
        module.no_log_values.add(password)
        result.update(registry=registry, expires_at=expires_at)
        if module.params["login"] and not module.check_mode:
            rc, _out, err = module.run_command(
                [module.get_bin_path(module.params["cli"], required=True), "login", "--username", username,
                 "--password-stdin", registry], data=password, binary_data=False)
            if rc != 0:
                module.fail_json(msg=f"{module.params['cli']} login {registry} failed: {err.strip()}", **result)
            result["logged_in"] = True
    except (BotoCoreError, ClientError) as err:
        module.fail_json(msg=f"ECR GetAuthorizationToken in {module.params['region']} failed: {err}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
