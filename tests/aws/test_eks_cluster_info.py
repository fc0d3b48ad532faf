"""fraudstream.platform.eks_cluster_info, run as Ansible runs it, against moto (tests/aws/conftest.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"


def run_module(module, args, env, check_mode=False):
    """(return code, result) of one module run through `ansible localhost -m` with the project's collection."""
    cmd = [str(ROOT / ".venv/bin/ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", "-m", f"fraudstream.platform.{module}",
           "-a", json.dumps(args)]
    if check_mode:
        cmd.append("--check")
    full_env = {**os.environ, **env, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, LookupError) as exc:
        raise AssertionError(f"no module result ({exc}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}") from exc
    return proc.returncode, result


def make_cluster(name, endpoint, tags=None):
    """A cluster as eksctl leaves it: a VPC with two subnets, the cluster, one node group, two add-ons."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    eks = boto3.client("eks", region_name=REGION, endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in enumerate("ab")]
    eks.create_cluster(name=name, version="1.33", roleArn="arn:aws:iam::123456789012:role/eks",
                       resourcesVpcConfig={"subnetIds": subnets},
                       tags=tags or {"alpha.eksctl.io/cluster-name": name})
    eks.create_nodegroup(clusterName=name, nodegroupName="workers", subnets=subnets,
                         nodeRole="arn:aws:iam::123456789012:role/node", instanceTypes=["m6i.large"],
                         capacityType="ON_DEMAND", diskSize=50, version="1.33",
                         scalingConfig={"minSize": 2, "maxSize": 4, "desiredSize": 3})
    eks.create_addon(clusterName=name, addonName="aws-ebs-csi-driver", addonVersion="v1.45.0-eksbuild.1",
                     serviceAccountRoleArn="arn:aws:iam::123456789012:role/ebs-csi")
    eks.create_addon(clusterName=name, addonName="eks-pod-identity-agent", addonVersion="v1.3.8-eksbuild.2",
                     podIdentityAssociations=[{"serviceAccount": "s", "roleArn": "arn:aws:iam::123456789012:role/p"}])
    return eks


def test_absent_cluster_is_a_result_not_an_error(aws_env):
    code, result = run_module("eks_cluster_info", {"name": "nope", "region": REGION}, aws_env)
    assert code == 0, result
    assert result["exists"] is False and result["changed"] is False
    assert result["cluster"] == {} and result["addons"] == [] and result["nodegroups"] == []


def test_cluster_node_group_and_add_ons_are_reported(aws_env):
    make_cluster("fs-info", aws_env["AWS_ENDPOINT_URL"])
    # endpoint_url and region given as options this time (the env has them too).
    code, result = run_module("eks_cluster_info", {"name": "fs-info", "region": REGION,
                                                   "endpoint_url": aws_env["AWS_ENDPOINT_URL"]}, aws_env, check_mode=True)
    assert code == 0, result
    assert result["exists"] is True and result["changed"] is False
    cluster = result["cluster"]
    assert cluster["name"] == "fs-info" and cluster["status"] == "ACTIVE" and cluster["version"] == "1.33"
    assert cluster["arn"].endswith(":cluster/fs-info") and cluster["endpoint"].startswith("https://")
    assert cluster["tags"] == {"alpha.eksctl.io/cluster-name": "fs-info"}
    assert cluster["created_at"][:2] == "20"
    assert [a["name"] for a in result["addons"]] == ["aws-ebs-csi-driver", "eks-pod-identity-agent"]
    ebs, agent = result["addons"]
    assert ebs == {"name": "aws-ebs-csi-driver", "version": "v1.45.0-eksbuild.1", "status": "ACTIVE",
                   "service_account_role_arn": "arn:aws:iam::123456789012:role/ebs-csi", "pod_identity_associations": []}
    assert agent["service_account_role_arn"] is None
    (association,) = agent["pod_identity_associations"]
    assert ":podidentityassociation/fs-info/" in association
    (workers,) = result["nodegroups"]
    assert workers == {"name": "workers", "status": "ACTIVE", "instance_types": ["m6i.large"], "capacity_type": "ON_DEMAND",
                       "scaling": {"min": 2, "max": 4, "desired": 3}, "disk_size": 50, "version": "1.33"}


def test_missing_credentials_name_the_fix(aws_env):
    env = {k: v for k, v in aws_env.items() if not k.startswith("AWS_ACCESS_KEY") and not k.startswith("AWS_SECRET")}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.pop(name, None)  # aws_env's monkeypatch restores them
    code, result = run_module("eks_cluster_info", {"name": "fs-info", "region": REGION}, env)
    assert code != 0
    assert "no AWS credentials found" in result["msg"] and "AWS_PROFILE" in result["msg"]
    assert "describing EKS cluster 'fs-info' in eu-west-1" in result["msg"]


def test_unknown_profile_names_the_fix(aws_env):
    code, result = run_module("eks_cluster_info", {"name": "x", "region": REGION, "profile": "no-such"}, aws_env)
    assert code != 0 and "AWS profile 'no-such' is not in ~/.aws/config" in result["msg"], result


def test_missing_region_falls_back_to_the_environment_then_fails(aws_env):
    code, result = run_module("eks_cluster_info", {"name": "nope"}, aws_env)
    assert code == 0 and result["exists"] is False, result
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        os.environ.pop(name, None)
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    code, result = run_module("eks_cluster_info", {"name": "nope"}, env)
    assert code != 0 and "missing required arguments: region" in result["msg"], result
