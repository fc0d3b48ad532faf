# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""eks_cluster_info and aws_leftovers in-process: EKS answers from botocore's Stubber (checked
against the service model), the other services from moto's in-process mock; and the pure parts
(tag rules, region names, error messages). tests/aws runs both modules through Ansible against a
moto server."""
from __future__ import annotations

import contextlib
import datetime
import os
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, NoCredentialsError, ProfileNotFound, ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws

from ansible_collections.fraudstream.platform.plugins.module_utils import aws as aws_utils
from ansible_collections.fraudstream.platform.plugins.modules import aws_leftovers
from ansible_collections.fraudstream.platform.tests.unit.plugins.modules.fakes import run_module

REGION = "eu-west-1"
CLEAN_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
             "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@contextlib.contextmanager
def aws_environment():
    """Dummy credentials and no endpoint override, whatever the caller's environment holds."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with mock.patch.dict(os.environ, {**kept, **CLEAN_ENV}, clear=True):
        yield


# -- eks_cluster_info with a stubbed EKS client ----------------------------------------------------
CLUSTER = {"name": "fs", "arn": "arn:aws:eks:eu-west-1:123456789012:cluster/fs", "status": "ACTIVE", "version": "1.33",
           "endpoint": "https://x.eks.amazonaws.com", "platformVersion": "eks.5", "tags": {"a": "b"},
           "createdAt": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
           "resourcesVpcConfig": {"vpcId": "vpc-1", "clusterSecurityGroupId": "sg-1"}}
NODEGROUP = {"nodegroupName": "workers", "status": "ACTIVE", "instanceTypes": ["m6i.large"], "capacityType": "SPOT",
             "scalingConfig": {"minSize": 1, "maxSize": 3, "desiredSize": 2}, "version": "1.33"}
ADDON = {"addonName": "aws-ebs-csi-driver", "addonVersion": "v1.45.0-eksbuild.1", "status": "ACTIVE",
         "serviceAccountRoleArn": "arn:aws:iam::123456789012:role/ebs", "podIdentityAssociations": []}


def stubbed_eks(answers):
    """An EKS client whose calls get `answers` in order: (method, response dict) or (method, error code)."""
    client = boto3.client("eks", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    stubber = Stubber(client)
    for method, answer in answers:
        if isinstance(answer, str):
            stubber.add_client_error(method, service_error_code=answer, service_message="stubbed %s" % answer,
                                     http_status_code=404 if answer == "ResourceNotFoundException" else 403)
        else:
            stubber.add_response(method, answer)
    stubber.activate()
    return client, stubber


def run_info(args, answers, check_mode=False):
    client, stubber = stubbed_eks(answers)
    with aws_environment(), mock.patch.object(aws_utils.AwsModuleClients, "client", lambda self, service: client):
        result = run_module("eks_cluster_info", dict({"region": REGION}, **args), check_mode=check_mode)
    if result[1] == 0:
        stubber.assert_no_pending_responses()
    return result


def eks_cluster_info_runs():
    full = [("describe_cluster", {"cluster": CLUSTER}),
            ("list_addons", {"addons": ["aws-ebs-csi-driver"]}), ("describe_addon", {"addon": ADDON}),
            ("list_nodegroups", {"nodegroups": ["workers"]}), ("describe_nodegroup", {"nodegroup": NODEGROUP})]
    return [
        run_info({"name": "fs"}, full),
        run_info({"name": "fs"}, full, check_mode=True),
        run_info({"name": "gone"}, [("describe_cluster", "ResourceNotFoundException")]),
        run_info({"name": "fs"}, [("describe_cluster", "AccessDeniedException")]),
        run_info({"name": "fs", "region": "europe"}, []),
        run_info({"name": " "}, []),
    ]


def test_a_cluster_is_described():
    (result, code), (checked, check_code) = eks_cluster_info_runs()[:2]
    assert code == 0 and check_code == 0 and result == checked
    assert result["changed"] is False and result["exists"] is True
    assert result["cluster"] == {"name": "fs", "status": "ACTIVE", "version": "1.33", "platform_version": "eks.5",
                                 "endpoint": "https://x.eks.amazonaws.com", "arn": CLUSTER["arn"], "tags": {"a": "b"},
                                 "created_at": "2026-01-01T00:00:00+00:00", "vpc_id": "vpc-1",
                                 "cluster_security_group_id": "sg-1"}
    assert result["addons"] == [{"name": "aws-ebs-csi-driver", "version": "v1.45.0-eksbuild.1", "status": "ACTIVE",
                                 "service_account_role_arn": "arn:aws:iam::123456789012:role/ebs",
                                 "pod_identity_associations": []}]
    assert result["nodegroups"] == [{"name": "workers", "status": "ACTIVE", "instance_types": ["m6i.large"],
                                     "capacity_type": "SPOT", "scaling": {"min": 1, "max": 3, "desired": 2},
                                     "disk_size": None, "version": "1.33"}]


def test_an_absent_cluster_is_not_an_error():
    result, code = run_info({"name": "gone"}, [("describe_cluster", "ResourceNotFoundException")])
    assert code == 0 and result["exists"] is False
    assert (result["cluster"], result["addons"], result["nodegroups"]) == ({}, [], [])


def test_a_denied_call_names_the_permission_it_needs():
    result, code = run_info({"name": "fs"}, [("describe_cluster", "AccessDeniedException")])
    assert code == 1
    assert result["msg"].startswith("describing EKS cluster 'fs' in eu-west-1: permission denied (AccessDeniedException")
    assert "the identity needs eks:DescribeCluster" in result["msg"]


# -- aws_leftovers against moto in-process -----------------------------------------------------------
def run_leftovers(args, seed=None, check_mode=False):
    with aws_environment(), mock_aws():
        if seed:
            seed(boto3.client("ec2", region_name=REGION))
        return run_module("aws_leftovers", dict({"region": REGION, "cluster_name": "fs"}, **args), check_mode=check_mode)


def owned_volume(ec2):
    ec2.create_volume(AvailabilityZone=REGION + "a", Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": [
        {"Key": "kubernetes.io/cluster/fs", "Value": "owned"}, {"Key": "kubernetes.io/created-for/pvc/name", "Value": "d"}]}])


def shared_group(ec2):
    ec2.create_security_group(GroupName="shared", Description="s", TagSpecifications=[{
        "ResourceType": "security-group", "Tags": [{"Key": "kubernetes.io/cluster/fs", "Value": "shared"}]}])


def aws_leftovers_runs():
    return [
        run_leftovers({}),
        run_leftovers({"tags": {"team": "fraud"}}, seed=shared_group, check_mode=True),
        run_leftovers({}, seed=owned_volume),
        run_leftovers({"fail_on_leftovers": False}, seed=owned_volume),
        run_leftovers({"include_ecr": True}),
        run_leftovers({"cluster_name": ""}),
    ]


def test_leftovers_fail_with_each_one_and_its_command():
    (clean, clean_code), (shared, shared_code), (failed, failed_code), (reported, reported_code) = aws_leftovers_runs()[:4]
    assert clean_code == 0 and clean["count"] == 0 and clean["commands"] == [] and clean["shared"] == {}
    assert shared_code == 0 and shared["count"] == 0 and [g["name"] for g in shared["shared"]["security_group"]] == ["shared"]
    assert failed_code == 1 and failed["count"] == 1
    (volume,) = failed["leftovers"]["ebs_volume"]
    assert failed["msg"].splitlines()[0] == "1 AWS resource of EKS cluster 'fs' in eu-west-1 remains after teardown " \
                                            "and may still cost money:"
    assert "- ebs_volume %s (d): tag kubernetes.io/cluster/fs=owned" % volume["id"] in failed["msg"]
    assert "Remove: aws ec2 delete-volume --region eu-west-1 --volume-id %s" % volume["id"] in failed["msg"]
    assert reported_code == 0 and reported["count"] == 1
    assert [dict(v, id=None) for v in reported["leftovers"]["ebs_volume"]] == [dict(volume, id=None)]


# -- the pure parts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tags, expected", [
    ({"kubernetes.io/cluster/fs": "owned"}, ("owned", "tag kubernetes.io/cluster/fs=owned")),
    ({"kubernetes.io/cluster/fs": "shared"}, ("shared", "tag kubernetes.io/cluster/fs=shared")),
    ({"kubernetes.io/cluster/fs2": "owned"}, (None, None)),
    ({"alpha.eksctl.io/cluster-name": "fs"}, ("owned", "tag alpha.eksctl.io/cluster-name=fs")),
    ({"eksctl.cluster.k8s.io/v1alpha1/cluster-name": "fs"}, ("owned", "tag eksctl.cluster.k8s.io/v1alpha1/cluster-name=fs")),
    ({"elbv2.k8s.aws/cluster": "fs", "ingress.k8s.aws/stack": "apps/web"},
     ("owned", "tag elbv2.k8s.aws/cluster=fs; for apps/web")),
    ({"elbv2.k8s.aws/cluster": "other", "service.k8s.aws/stack": "a/b"}, (None, None)),
    ({"service.k8s.aws/stack": "a/b"}, (None, None)),
    ({"KubernetesCluster": "fs"}, ("owned", "tag KubernetesCluster=fs")),
    ({"cluster.k8s.amazonaws.com/name": "fs"}, ("owned", "tag cluster.k8s.amazonaws.com/name=fs")),
    ({"aws:eks:cluster-name": "fs"}, ("owned", "tag aws:eks:cluster-name=fs")),
    ({"ebs.csi.aws.com/cluster": "true"}, (None, None)),
    ({"fraudstream.io/cluster": "fs"}, ("owned", "tag fraudstream.io/cluster=fs")),
    ({"fraudstream.io/cluster": "other"}, (None, None)),
])
def test_tag_rules(tags, expected):
    assert aws_leftovers.match_tags(tags, "fs", {"fraudstream.io/cluster": "fs"}) == expected


def test_another_clusters_tags_are_recognised():
    assert aws_leftovers.names_another_cluster({"alpha.eksctl.io/cluster-name": "fs-x"}, "fs")
    assert aws_leftovers.names_another_cluster({"kubernetes.io/cluster/fs-x": "owned"}, "fs")
    assert not aws_leftovers.names_another_cluster({"kubernetes.io/cluster/fs": "owned", "Name": "x"}, "fs")


@pytest.mark.parametrize("region, problem", [
    ("eu-west-1", None), ("us-gov-west-1", None), ("ap-southeast-3", None), ("il-central-1", None),
    ("eu-west", "region 'eu-west' is not an AWS region name"), ("EU-WEST-1", "is not an AWS region name"),
    ("eu_west_1", "is not an AWS region name"), ("", "region is empty"),
])
def test_region_names(region, problem):
    found = aws_utils.region_error(region)
    assert (found is None) if problem is None else (problem in found)


def client_error(code, operation="DescribeVolumes"):
    return ClientError({"Error": {"Code": code, "Message": "m"}}, operation)


@pytest.mark.parametrize("exc, says", [
    (NoCredentialsError(), "no AWS credentials found: set AWS_PROFILE"),
    (ProfileNotFound(profile="p"), "AWS profile 'p' is not in ~/.aws/config"),
    (client_error("UnauthorizedOperation"),
     "permission denied (UnauthorizedOperation: m): the identity needs ec2:DescribeVolumes"),
    (client_error("AuthFailure"), "AWS rejected the credentials (AuthFailure: m)"),
    (client_error("ExpiredToken"),
     "the AWS credentials have expired (ExpiredToken): refresh them, e.g. aws sso login --profile p"),
    (client_error("Throttling"), "x: Throttling: m"),
])
def test_error_messages_name_cause_and_fix(exc, says):
    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    assert says in aws_utils.describe_error("x", exc, client=client, profile="p")


def test_elb_permissions_use_the_iam_prefix():
    client = boto3.client("elbv2", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    message = aws_utils.describe_error("x", client_error("AccessDenied", "DescribeLoadBalancers"), client=client)
    assert "needs elasticloadbalancing:DescribeLoadBalancers" in message


def test_a_silent_endpoint_is_named_with_the_time_it_had_and_what_to_check():
    message = aws_utils.describe_error("x", ReadTimeoutError(endpoint_url="http://10.1.2.3:5000/"),
                                       endpoint_url="http://10.1.2.3:5000",
                                       limits={"connect_timeout": 10, "read_timeout": 5, "max_attempts": 2})
    assert message.startswith("x: the AWS endpoint http://10.1.2.3:5000/ accepted the connection but did not answer "
                              "within 5 s (read_timeout, 2 attempts): check that it is an AWS API endpoint "
                              "(endpoint_url is 'http://10.1.2.3:5000')")
    assert "raise read_timeout or max_attempts" in message
    message = aws_utils.describe_error("x", ConnectTimeoutError(endpoint_url="https://eks.eu-west-1.amazonaws.com/"))
    assert message.startswith("x: the AWS endpoint https://eks.eu-west-1.amazonaws.com/ did not accept a connection "
                              "within 10 s (connect_timeout, 3 attempts): check region, endpoint_url (not set)")


class Module:
    """Just what AwsModuleClients reads of an AnsibleModule."""

    def __init__(self, **params):
        self.params = dict(dict(region=REGION, endpoint_url=None, profile=None), **params)

    def fail_json(self, msg, **kwargs):
        raise AssertionError(msg)


@pytest.mark.parametrize("params, connect, read, attempts", [
    ({}, 10, 30, 3),
    ({"connect_timeout": 2, "read_timeout": 5, "max_attempts": 1}, 2, 5, 1),
])
def test_every_client_has_timeouts_and_a_retry_limit(params, connect, read, attempts):
    with aws_environment():
        aws = aws_utils.AwsModuleClients(Module(**params))
        config = aws.client("eks").meta.config
    assert (config.connect_timeout, config.read_timeout) == (connect, read)
    assert config.retries["total_max_attempts"] == attempts and config.retries["mode"] == "standard"


def test_a_timeout_below_one_second_is_refused():
    refused = r"read_timeout=0, max_attempts=0: the timeouts \(seconds\) and max_attempts must be at least 1"
    with aws_environment(), pytest.raises(AssertionError, match=refused):
        aws_utils.AwsModuleClients(Module(read_timeout=0, max_attempts=0))
