# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared AWS client handling for the fraudstream.platform modules: boto3 sessions from the usual
credential chain, and errors turned into messages that name the cause and the fix."""
from __future__ import annotations

import re
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()
    BotoCoreError = ClientError = Exception
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None

# eu-west-1, us-gov-west-1, ap-southeast-3, il-central-1, cn-north-1 ...
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")

# The IAM service prefix of each boto3 client, to name the permission a denied call needs.
IAM_PREFIX = {"elb": "elasticloadbalancing", "elbv2": "elasticloadbalancing",
              "resourcegroupstaggingapi": "tag"}

CREDENTIALS_FIX = ("set AWS_PROFILE (or the module's profile option) to a profile in ~/.aws/config, "
                   "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance, "
                   "pod or task role applies")
REJECTED_CODES = {"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure",
                  "SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature",
                  "InvalidAccessKeyId"}
EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException",
                "Forbidden"}
NOT_FOUND_CODES = {"ResourceNotFoundException", "NotFoundException", "NoSuchEntity"}

# How long one call may take, and how often it is tried (botocore's connect_timeout, read_timeout
# and total_max_attempts): an endpoint that accepts the connection but never answers fails the
# module after about max_attempts * read_timeout seconds, not after botocore's minutes.
LIMITS = {"connect_timeout": 10, "read_timeout": 30, "max_attempts": 3}


def aws_argument_spec():
    """Connection options shared by the AWS modules (doc fragment fraudstream.platform.aws)."""
    return dict(
        region=dict(type="str", required=True, fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
        endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL"])),
        profile=dict(type="str", fallback=(env_fallback, ["AWS_PROFILE"])),
        connect_timeout=dict(type="int", default=LIMITS["connect_timeout"]),
        read_timeout=dict(type="int", default=LIMITS["read_timeout"]),
        max_attempts=dict(type="int", default=LIMITS["max_attempts"], fallback=(env_fallback, ["AWS_MAX_ATTEMPTS"])),
    )


def region_error(region):
    """Why a region name is not usable, or None."""
    if not region or not region.strip():
        return "region is empty; set region (e.g. eu-west-1) or AWS_REGION"
    if not REGION_RE.match(region):
        return ("region '%s' is not an AWS region name such as eu-west-1 or us-east-1; "
                "set region to the cluster's region (aws eks list-clusters --region <region> shows it)" % region)
    return None


def error_code(exc):
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_not_found(exc):
    return error_code(exc) in NOT_FOUND_CODES


def iam_action(client, exc, service=None):
    """The IAM action a failed call needs, e.g. eks:DescribeCluster."""
    model = getattr(getattr(client, "meta", None), "service_model", None)
    prefix = model.service_name if model is not None else (service or "?")
    operation = getattr(exc, "operation_name", None) or "?"
    return "%s:%s" % (IAM_PREFIX.get(prefix, prefix), operation)


def limits_error(params):
    """Why connect_timeout, read_timeout or max_attempts is not usable, or None."""
    bad = ["%s=%s" % (name, params[name]) for name in LIMITS if params.get(name) is not None and params[name] < 1]
    if bad:
        return "%s: the timeouts (seconds) and max_attempts must be at least 1" % ", ".join(bad)
    return None


def describe_error(what, exc, client=None, profile=None, endpoint_url=None, service=None, limits=None):
    """A message for a failed AWS call: what was being done, why it failed, and what to do.

    limits: the connect_timeout, read_timeout and max_attempts the client used, to name them when
    an endpoint did not answer in time.
    """
    limits = dict(LIMITS, **(limits or {}))
    tries = ", %d attempts" % limits["max_attempts"] if limits["max_attempts"] > 1 else ""
    endpoint_now = "'%s'" % endpoint_url if endpoint_url else "not set"
    if isinstance(exc, NoCredentialsError):
        return "%s: no AWS credentials found: %s" % (what, CREDENTIALS_FIX)
    if isinstance(exc, PartialCredentialsError):
        return "%s: incomplete AWS credentials (%s): %s" % (what, exc, CREDENTIALS_FIX)
    if isinstance(exc, ProfileNotFound):
        return ("%s: AWS profile '%s' is not in ~/.aws/config or ~/.aws/credentials: create it "
                "(aws configure --profile %s) or set profile/AWS_PROFILE to an existing one"
                % (what, profile, profile))
    if isinstance(exc, NoRegionError):
        return "%s: no AWS region: set region (e.g. eu-west-1) or AWS_REGION" % what
    if isinstance(exc, ReadTimeoutError):
        where = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return ("%s: the AWS endpoint %s accepted the connection but did not answer within %s s (read_timeout%s): "
                "check that it is an AWS API endpoint (endpoint_url is %s) and that no proxy or firewall holds the "
                "requests; if the service is only slow, raise read_timeout or max_attempts"
                % (what, where, limits["read_timeout"], tries, endpoint_now))
    if isinstance(exc, ConnectTimeoutError):
        where = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return ("%s: the AWS endpoint %s did not accept a connection within %s s (connect_timeout%s): check region, "
                "endpoint_url (%s) and the network, proxy or firewall between this host and the endpoint"
                % (what, where, limits["connect_timeout"], tries, endpoint_now))
    if isinstance(exc, EndpointConnectionError):
        where = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return ("%s: cannot reach the AWS endpoint %s: check region, endpoint_url (now %s) and the "
                "network or proxy" % (what, where, endpoint_url or "the default"))
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in REJECTED_CODES:
            return ("%s: AWS rejected the credentials (%s: %s): check AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY or the profile's keys, and that the clock is right"
                    % (what, code, message))
        if code in EXPIRED_CODES:
            return ("%s: the AWS credentials have expired (%s): refresh them, e.g. aws sso login%s, "
                    "or get a new session token" % (what, code, " --profile %s" % profile if profile else ""))
        if code in DENIED_CODES:
            return ("%s: permission denied (%s: %s): the identity needs %s; add it to its IAM policy, "
                    "or use a profile that has it" % (what, code, message, iam_action(client, exc, service)))
        return "%s: %s: %s" % (what, code or type(exc).__name__, message)
    return "%s: %s: %s" % (what, type(exc).__name__, exc)


class AwsModuleClients:
    """boto3 clients for one module run, from one session; fail() ends the module with a clear message."""

    def __init__(self, module):
        self.module = module
        if not HAS_BOTO3:
            module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)
        params = module.params
        problem = region_error(params["region"]) or limits_error(params)
        if problem:
            module.fail_json(msg=problem)
        self.region = params["region"]
        self.profile = params.get("profile") or None
        self.endpoint_url = params.get("endpoint_url") or None
        if self.endpoint_url and not re.match(r"^https?://", self.endpoint_url):
            module.fail_json(msg="endpoint_url '%s' is not a URL: give it with its scheme, e.g. "
                                 "http://127.0.0.1:5000, or leave it unset for AWS" % self.endpoint_url)
        try:
            self.session = boto3.Session(profile_name=self.profile, region_name=self.region)
        except BotoCoreError as exc:
            self.fail("starting an AWS session", exc)
        self.limits = {name: params.get(name) or default for name, default in LIMITS.items()}
        self.config = Config(retries={"total_max_attempts": self.limits["max_attempts"], "mode": "standard"},
                             connect_timeout=self.limits["connect_timeout"],
                             read_timeout=self.limits["read_timeout"], user_agent_extra="fraudstream.platform")
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(
                    service, endpoint_url=self.endpoint_url, config=self.config)
            except (BotoCoreError, ValueError) as exc:
                self.fail("creating the %s client" % service, exc)
        return self._clients[service]

    def paginate(self, service, operation, key, **kwargs):
        """Every item under `key` of every page of one list/describe call."""
        client = self.client(service)
        items = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
        return items

    def fail(self, what, exc, service=None, **result):
        client = self._clients.get(service) if service else None
        self.module.fail_json(msg=describe_error(what, exc, client=client, profile=self.profile,
                                                 endpoint_url=getattr(self, "endpoint_url", None), service=service,
                                                 limits=getattr(self, "limits", None)),
                              **result)


def tag_dict(tags):
    """AWS tag lists ([{'Key': k, 'Value': v}], lower-case keys too) as a dict; dicts pass through."""
    if isinstance(tags, dict):
        return dict(tags)
    result = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            result[key] = tag.get("Value", tag.get("value", ""))
    return result
