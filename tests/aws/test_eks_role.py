"""The EKS path without an AWS account: the eksctl ClusterConfig rendered for dev and prod, the gp3
StorageClass, the ECR steps and the teardown's guard and leftover check against moto on 127.0.0.1,
the cluster role's create-or-reconcile decisions with a stand-in eksctl, and the playbooks' syntax
with inventories/eks. Fixtures moto_server and aws_env come from tests/aws/conftest.py."""
import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import eksctl_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EKS = ["-i", "inventories/eks"]
REQUIRED_ADDONS = {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
EBS_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def run(cmd, env=None, check=True, timeout=600):
    """A command from the project root with the venv first on PATH; on failure, its tail."""
    full_env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
                "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc


def playbook(*args, env=None, check=True):
    return run(["ansible-playbook", *args], env=env, check=check)


def recap(output):
    line = next(ln for ln in reversed(output.splitlines()) if ln.startswith("localhost") and "ok=" in ln)
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split(":", 1)[1].split())}


def cluster_name():
    return f"fs-{uuid.uuid4().hex[:8]}"


# -- the ClusterConfig -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The ClusterConfig of each size, as inventories/eks renders it (no AWS access)."""
    out = {}
    for size in ("dev", "prod"):
        path = tmp_path_factory.mktemp("render") / f"{size}.yaml"
        playbook(*EKS, "tests/aws/playbooks/render_cluster_config.yml", "-e", f"fraudstream_size={size}",
                 "-e", f"eks_cluster_config_file={path}", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
        out[size] = yaml.safe_load(path.read_text())
        out[size + "_path"] = path
    return out


@pytest.mark.parametrize("size", ["dev", "prod"])
def test_eksctl_itself_accepts_the_rendered_config(rendered, size):
    """eksctl create cluster --dry-run (against moto) normalises it; its JSON schema agrees."""
    normalized = eksctl_validate.validate(rendered[size + "_path"])
    assert normalized["autoModeConfig"]["enabled"] is False
    assert {a["name"] for a in normalized["addons"]} >= {
        "vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    assert eksctl_validate.schema_errors(rendered[size]) == []


@pytest.mark.parametrize("size", ["dev", "prod"])
def test_cluster_config_is_an_eksctl_cluster(rendered, size):
    config = rendered[size]
    assert config["apiVersion"] == "eksctl.io/v1alpha5" and config["kind"] == "ClusterConfig"
    assert config["metadata"]["name"] == "fraudstream" and config["metadata"]["region"] == "eu-west-2"
    assert config["metadata"]["version"] == "1.34", "a string: 1.30 as a float would be 1.3"


@pytest.mark.parametrize("size", ["dev", "prod"])
def test_auto_mode_is_off_explicitly(rendered, size):
    assert "autoModeConfig" in rendered[size] and rendered[size]["autoModeConfig"] == {"enabled": False}


@pytest.mark.parametrize("size", ["dev", "prod"])
def test_addons_and_the_csi_drivers_pod_identity(rendered, size):
    config = rendered[size]
    addons = {a["name"]: a for a in config["addons"]}
    assert set(addons) == REQUIRED_ADDONS
    csi = addons["aws-ebs-csi-driver"]
    (association,) = csi["podIdentityAssociations"]
    assert association["namespace"] == "kube-system" and association["serviceAccountName"] == "ebs-csi-controller-sa"
    assert association["permissionPolicyARNs"] == [EBS_POLICY]
    # Pod identity, not IRSA: no OIDC provider, no service-account role fields on any add-on.
    assert config["iam"]["withOIDC"] is False
    irsa = {"serviceAccountRoleARN", "attachPolicyARNs", "attachPolicy", "wellKnownPolicies"}
    assert not any(irsa & set(a) for a in config["addons"])
    assert config["addonsConfig"]["autoApplyPodIdentityAssociations"] is False, "every association is explicit"
    assert all("podIdentityAssociations" not in a for n, a in addons.items() if n != "aws-ebs-csi-driver")


@pytest.mark.parametrize("size", ["dev", "prod"])
def test_tags_on_every_resource(rendered, size):
    config = rendered[size]
    tags = config["metadata"]["tags"]
    assert tags["fraudstream.io/cluster"] == "fraudstream" and tags["project"] == "fraudstream"
    for addon in config["addons"]:
        assert addon["tags"] == tags, addon["name"]  # eksctl refuses tags on podIdentityAssociations
    for group in config["managedNodeGroups"]:
        assert group["tags"] == tags and group["propagateASGTags"] is True


def test_dev_and_prod_sizes(rendered):
    (dev,) = rendered["dev"]["managedNodeGroups"]
    (prod,) = rendered["prod"]["managedNodeGroups"]
    assert (dev["instanceTypes"], dev["desiredCapacity"], dev["spot"]) == (["t3.large"], 2, False)
    assert (prod["instanceTypes"], prod["desiredCapacity"], prod["minSize"]) == (["m6i.xlarge"], 3, 3)
    assert len(prod["availabilityZones"]) == 3, "prod spreads its three brokers over three zones"
    for group in (dev, prod):
        assert group["minSize"] <= group["desiredCapacity"] <= group["maxSize"]
        assert group["volumeType"] == "gp3" and group["volumeEncrypted"] is True and group["volumeSize"] >= 20
    assert rendered["dev"]["cloudWatch"]["clusterLogging"]["enableTypes"] == [], "no billed control-plane logs"


def test_node_count_from_the_survey_widens_the_bounds(tmp_path):
    path = tmp_path / "c.yaml"
    playbook(*EKS, "tests/aws/playbooks/render_cluster_config.yml", "-e", "eks_cluster_node_count=7",
             "-e", f"eks_cluster_config_file={path}", "-e", "eks_cluster_region=us-east-1")
    config = yaml.safe_load(path.read_text())
    (group,) = config["managedNodeGroups"]
    assert (group["minSize"], group["desiredCapacity"], group["maxSize"]) == (2, 7, 7)
    assert config["availabilityZones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_spot_node_groups_render(tmp_path):
    path = tmp_path / "c.yaml"
    groups = [{"name": "spot", "instance_types": ["t3.large", "t3a.large"], "spot": True, "min": 1, "desired": 2,
               "max": 4, "volume_size": 30, "volume_type": "gp3"}]
    playbook(*EKS, "tests/aws/playbooks/render_cluster_config.yml", "-e", json.dumps({"eks_cluster_node_groups": groups}),
             "-e", f"eks_cluster_config_file={path}")
    (group,) = yaml.safe_load(path.read_text())["managedNodeGroups"]
    assert group["spot"] is True and group["instanceTypes"] == ["t3.large", "t3a.large"]


# -- storage -----------------------------------------------------------------------------------------
def test_gp3_default_class_on_eks_only(tmp_path):
    """inventories/eks: a default gp3 class of the EBS CSI driver; inventories/k8s: nothing new."""
    eks, k8s = tmp_path / "eks.json", tmp_path / "k8s.json"
    playbook(*EKS, "tests/aws/playbooks/render_storage.yml", "-e", f"render_out={eks}")
    playbook("-i", "inventories/k8s", "tests/aws/playbooks/render_storage.yml", "-e", f"render_out={k8s}")
    assert json.loads(k8s.read_text()) == [], "the k8s path creates no StorageClass"
    (sc,) = json.loads(eks.read_text())
    assert sc["kind"] == "StorageClass" and sc["metadata"]["name"] == "gp3"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["parameters"]["type"] == "gp3" and sc["parameters"]["encrypted"] == "true"
    assert sc["parameters"]["tagSpecification_1"] == "fraudstream.io/cluster=fraudstream"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["allowVolumeExpansion"] is True
    assert sc["reclaimPolicy"] == "Delete"
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(sc, "1.34", strict=True)
    tasks = yaml.safe_load((ROOT / "roles/storage/tasks/kubernetes/eks.yml").read_text())
    demote = next(t for t in tasks if "demote" in t.get("loop", ""))
    assert demote["kubernetes.core.k8s"]["state"] == "patched", "gp2 loses the annotation only if it exists"
    assert demote["kubernetes.core.k8s"]["definition"]["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "false"}


# -- ECR ---------------------------------------------------------------------------------------------
def test_ecr_repository_is_created_once(aws_env):
    """The ECR tasks twice against moto: created, then nothing to change; scan on push and the
    lifecycle policy as the role's defaults say."""
    name = cluster_name()
    args = [*EKS, "tests/aws/playbooks/ecr.yml", "-e", f"fraudstream_cluster_name={name}", "-e", "apps_image_ecr_login=false"]
    first = playbook(*args, env=aws_env)
    assert recap(first.stdout)["changed"] >= 1
    second = playbook(*args, env=aws_env)
    assert recap(second.stdout)["changed"] == 0, second.stdout[-3000:]
    ecr = boto3.client("ecr", region_name="eu-west-2", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    (repo,) = ecr.describe_repositories(repositoryNames=[f"{name}/apps"])["repositories"]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName=f"{name}/apps")["lifecyclePolicyText"])
    defaults = yaml.safe_load((ROOT / "roles/apps_image/defaults/main/main.yml").read_text())
    assert policy == defaults["apps_image_ecr_lifecycle_policy"]
    assert {r["selection"]["tagStatus"] for r in policy["rules"]} == {"untagged", "any"}
    assert f"{repo['repositoryUri']}: scan on push" in second.stdout, "the push goes to the repository's URI"


def test_ecr_login_hands_the_token_on_stdin_only(aws_env, tmp_path):
    """With a stand-in skopeo: the login gets user AWS and the token on standard input; the token
    is in no argument and nowhere in ansible-playbook's output, even at -vvv."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "skopeo.json"
    (bindir / "skopeo").write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'stdin': sys.stdin.read()}}, open({str(log)!r}, 'w'))\n")
    (bindir / "skopeo").chmod(0o755)
    name = cluster_name()
    proc = playbook(*EKS, "tests/aws/playbooks/ecr.yml", "-vvv", "-e", f"fraudstream_cluster_name={name}",
                    env={**aws_env, "PATH": f"{bindir}{os.pathsep}{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"})
    ecr = boto3.client("ecr", region_name="eu-west-2", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, token = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    called = json.loads(log.read_text())
    registry = data["proxyEndpoint"].split("://", 1)[-1]
    assert called["argv"] == ["login", "--username", user, "--password-stdin", registry]
    assert called["stdin"].strip() == token
    assert token not in proc.stdout and token not in proc.stderr
    assert "skopeo logged in to" in proc.stdout


# -- teardown ----------------------------------------------------------------------------------------
def _started_tasks(output):
    return [ln for ln in output.splitlines() if ln.startswith("TASK [")]


@pytest.mark.parametrize("confirm", [None, "fraudstream-typo"])
def test_teardown_refuses_without_the_cluster_name(confirm, tmp_path):
    """inventories/eks requires -e confirm_teardown=<cluster name>: without it, or with another
    name, the guard fails before any task reads or deletes anything. AWS points nowhere here."""
    extra = ["-e", f"confirm_teardown={confirm}"] if confirm else []
    proc = playbook(*EKS, "teardown.yml", *extra, check=False,
                    env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "FRAUDSTREAM_HOME": str(tmp_path)})
    assert proc.returncode != 0
    assert "confirm with -e confirm_teardown=fraudstream" in proc.stdout
    (only,) = _started_tasks(proc.stdout)
    assert only.startswith("TASK [Refuse unless confirm_teardown names this cluster]")
    assert "Delete the cluster" not in proc.stdout and recap(proc.stdout)["failed"] == 1


def _seed_leftovers(endpoint, name):
    """What a careless teardown leaves in AWS, each tagged as EKS, eksctl and the CSI driver tag them."""
    region = "eu-west-2"
    owned = [{"Key": f"kubernetes.io/cluster/{name}", "Value": "owned"},
             {"Key": "fraudstream.io/cluster", "Value": name}]
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint)
    elbv2 = boto3.client("elbv2", region_name=region, endpoint_url=endpoint)
    cfn = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint)
    ecr = boto3.client("ecr", region_name=region, endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"{region}{z}")["Subnet"]["SubnetId"]
               for i, z in enumerate("ab")]
    left = {}
    left["volume"] = ec2.create_volume(AvailabilityZone=f"{region}a", Size=10, VolumeType="gp3", TagSpecifications=[
        {"ResourceType": "volume", "Tags": owned + [{"Key": "CSIVolumeName", "Value": "pvc-1234"}]}])["VolumeId"]
    left["security_group"] = ec2.create_security_group(
        GroupName=f"k8s-elb-{name}", Description="lb", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": owned}])["GroupId"]
    left["eni"] = ec2.create_network_interface(SubnetId=subnets[0], TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": owned}])["NetworkInterface"]["NetworkInterfaceId"]
    lb = elbv2.create_load_balancer(Name=f"k8s-{name}", Subnets=subnets, Type="network", Tags=owned)["LoadBalancers"][0]
    left["load_balancer"] = lb["LoadBalancerName"]
    tg = elbv2.create_target_group(Name=f"k8s-tg-{name}", Protocol="TCP", Port=9094, VpcId=vpc, Tags=owned)
    left["target_group"] = tg["TargetGroups"][0]["TargetGroupName"]
    stack = f"eksctl-{name}-cluster"
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
                     Tags=[{"Key": "alpha.eksctl.io/cluster-name", "Value": name},
                           {"Key": "fraudstream.io/cluster", "Value": name}])
    left["stack"] = stack
    ecr.create_repository(repositoryName=f"{name}/apps")
    docker = "application/vnd.docker"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": f"{docker}.distribution.manifest.v2+json", "layers": [],
                           "config": {"digest": "sha256:" + "1" * 64, "size": 1,
                                      "mediaType": f"{docker}.container.image.v1+json"}})
    ecr.put_image(repositoryName=f"{name}/apps", imageManifest=manifest, imageTag="0.1.0")
    left["ecr_repository"] = f"{name}/apps"
    return left


def _leftover_check(name, env, *extra):
    return playbook(*EKS, "teardown.yml", "--tags", "eks_leftovers", "-e", f"fraudstream_cluster_name={name}",
                    "-e", f"confirm_teardown={name}", *extra, env=env, check=False)


def test_leftover_check_names_each_leftover_and_fails(aws_env, tmp_path):
    name = cluster_name()
    left = _seed_leftovers(aws_env["AWS_ENDPOINT_URL"], name)
    proc = _leftover_check(name, {**aws_env, "FRAUDSTREAM_HOME": str(tmp_path)}, "-e", "eks_cluster_teardown_ecr=true")
    assert proc.returncode != 0, proc.stdout[-3000:]
    missing = {kind: ident for kind, ident in left.items() if ident not in proc.stdout}
    assert not missing, f"not named: {missing}\n{proc.stdout[-4000:]}"
    tasks = _started_tasks(proc.stdout)
    assert not any("Delete" in t for t in tasks), f"--tags eks_leftovers only checks: {tasks}"


def test_leftover_check_passes_when_nothing_is_left(aws_env, tmp_path):
    name = cluster_name()
    proc = _leftover_check(name, {**aws_env, "FRAUDSTREAM_HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert f"nothing tagged for {name} is left in eu-west-2" in proc.stdout


# -- the cluster role, with a stand-in eksctl --------------------------------------------------------
STUB_EKSCTL = """#!{python}
# Stands in for eksctl: records its arguments and does to moto what eksctl would do to AWS:
# create cluster (with its node groups and add-ons), create addon, create nodegroup, scale
# nodegroup; utils write-kubeconfig writes a file.
import json, sys
import boto3, yaml
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args == ["version"]:
    sys.exit(print("0.0.0-stand-in"))
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
config = yaml.safe_load(open(opts["config-file"])) if "config-file" in opts else None
region = opts.get("region") or (config["metadata"]["region"] if config else "eu-west-2")
eks = boto3.client("eks", region_name=region)
name = config["metadata"]["name"] if config else opts.get("cluster")


def node_groups():
    for ng in config["managedNodeGroups"]:
        eks.create_nodegroup(clusterName=name, nodegroupName=ng["name"], nodeRole="arn:aws:iam::123456789012:role/n",
                             subnets=["subnet-1"], instanceTypes=ng["instanceTypes"], scalingConfig={{
                                 "minSize": ng["minSize"], "maxSize": ng["maxSize"], "desiredSize": ng["desiredCapacity"]}})


def addons():
    for addon in config["addons"]:
        eks.create_addon(clusterName=name, addonName=addon["name"], tags=addon.get("tags", {{}}))


if args[:2] == ["scale", "nodegroup"]:
    eks.update_nodegroup_config(clusterName=opts["cluster"], nodegroupName=opts["name"], scalingConfig={{
        "minSize": int(opts["nodes-min"]), "maxSize": int(opts["nodes-max"]), "desiredSize": int(opts["nodes"])}})
elif args[:2] == ["utils", "write-kubeconfig"]:
    open(opts["kubeconfig"], "w").write("apiVersion: v1\\nkind: Config\\n")
elif args[:2] == ["create", "cluster"]:
    eks.create_cluster(name=name, version=config["metadata"]["version"], roleArn="arn:aws:iam::123456789012:role/eks",
                       resourcesVpcConfig={{}}, tags=config["metadata"]["tags"])
    node_groups()
    addons()
elif args[:2] == ["create", "nodegroup"]:
    node_groups()
elif args[:2] == ["create", "addon"]:
    addons()
"""


@pytest.fixture
def stub_tools(tmp_path):
    """eksctl (above), helm and aws stand-ins on PATH; kubectl too unless the machine has one."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "eksctl.log"
    (bindir / "eksctl").write_text(STUB_EKSCTL.format(python=sys.executable, log=str(log)))
    for tool in ("helm", "aws", "kubectl"):
        (bindir / tool).write_text("#!/bin/sh\necho stand-in\n")
    for path in bindir.iterdir():
        path.chmod(0o755)
    return {"bindir": bindir, "log": log,
            # Every eksctl command but the preflight's `eksctl version`.
            "calls": lambda: [c for c in map(json.loads, log.read_text().splitlines()) if c != ["version"]]
            if log.exists() else []}


def _cluster_play(name, env, stub_tools, tmp_path, *extra):
    return playbook(*EKS, "playbooks/cluster.yml", "-e", f"fraudstream_cluster_name={name}", *extra, check=False, env={
        **env, "FRAUDSTREAM_HOME": str(tmp_path / "home"),
        "PATH": f"{stub_tools['bindir']}{os.pathsep}{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"})


def test_absent_cluster_is_created_then_left_alone(aws_env, stub_tools, tmp_path):
    name = cluster_name()
    first = _cluster_play(name, aws_env, stub_tools, tmp_path)
    assert first.returncode == 0, first.stdout[-5000:]
    calls = stub_tools["calls"]()
    assert calls[0][:2] == ["create", "cluster"] and calls[0][2].endswith(f"/eks/{name}.eksctl.yaml")
    assert ["utils", "write-kubeconfig"] == calls[-1][:2]
    assert (tmp_path / f"home/eks/{name}.kubeconfig").stat().st_mode & 0o777 == 0o600
    stub_tools["log"].unlink()
    second = _cluster_play(name, aws_env, stub_tools, tmp_path)
    assert second.returncode == 0, second.stdout[-5000:]
    calls = stub_tools["calls"]()
    assert [c[:2] for c in calls] == [["utils", "write-kubeconfig"]], f"an existing cluster is left alone: {calls}"


def test_existing_cluster_is_scaled_and_completed_with_eksctl_commands(aws_env, stub_tools, tmp_path):
    """A cluster made elsewhere, without add-ons, its node group at another size and a second group
    missing: eksctl create addon, scale nodegroup and create nodegroup --include, each with only
    what is missing; no create cluster; a second run does nothing."""
    name = cluster_name()
    eks = boto3.client("eks", region_name="eu-west-2", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    eks.create_cluster(name=name, version="1.34", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={})
    eks.create_nodegroup(clusterName=name, nodegroupName="general", nodeRole="arn:aws:iam::123456789012:role/n",
                         subnets=["subnet-1"], instanceTypes=["t3.large"],
                         scalingConfig={"minSize": 1, "maxSize": 2, "desiredSize": 1})
    groups = [{"name": "general", "instance_types": ["t3.large"], "spot": False, "min": 2, "desired": 2, "max": 3,
               "volume_size": 40, "volume_type": "gp3"},
              {"name": "extra", "instance_types": ["m6i.large"], "spot": False, "min": 1, "desired": 1, "max": 2,
               "volume_size": 40, "volume_type": "gp3"}]
    extra = ["-e", json.dumps({"eks_cluster_node_groups": groups})]
    proc = _cluster_play(name, aws_env, stub_tools, tmp_path, *extra)
    assert proc.returncode == 0, proc.stdout[-5000:]
    calls = stub_tools["calls"]()
    assert not any(c[:2] == ["create", "cluster"] for c in calls)
    assert ["scale", "nodegroup", f"--cluster={name}", "--region=eu-west-2", "--name=general", "--nodes=2",
            "--nodes-min=2", "--nodes-max=3", "--wait"] in calls
    (create_ng,) = [c for c in calls if c[:2] == ["create", "nodegroup"]]
    assert "--include=extra" in create_ng
    subset = yaml.safe_load(Path(create_ng[2].split("=", 1)[1]).read_text())
    assert [g["name"] for g in subset["managedNodeGroups"]] == ["extra"] and subset["addons"] == []
    (create_addon,) = [c for c in calls if c[:2] == ["create", "addon"]]
    subset = yaml.safe_load(Path(create_addon[2].split("=", 1)[1]).read_text())
    assert {a["name"] for a in subset["addons"]} == REQUIRED_ADDONS and subset["managedNodeGroups"] == []
    ng = eks.describe_nodegroup(clusterName=name, nodegroupName="general")["nodegroup"]["scalingConfig"]
    assert (ng["minSize"], ng["desiredSize"], ng["maxSize"]) == (2, 2, 3)
    stub_tools["log"].unlink()
    again = _cluster_play(name, aws_env, stub_tools, tmp_path, *extra)
    assert again.returncode == 0, again.stdout[-5000:]
    calls = stub_tools["calls"]()
    assert [c[:2] for c in calls] == [["utils", "write-kubeconfig"]], f"nothing left to reconcile: {calls}"


def test_preflight_names_a_missing_tool(aws_env, tmp_path):
    proc = playbook(*EKS, "playbooks/cluster.yml", "-e", "eks_cluster_eksctl=/nonexistent/eksctl", check=False,
                    env={**aws_env, "FRAUDSTREAM_HOME": str(tmp_path)})
    assert proc.returncode != 0
    assert "Install eksctl on the controller" in proc.stdout


def test_preflight_explains_missing_credentials(tmp_path, stub_tools, moto_server):
    """No credentials at all: the STS check fails with how to give them."""
    env = {k: "" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    env.update({"AWS_ENDPOINT_URL": moto_server, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"})
    proc = _cluster_play(cluster_name(), env, stub_tools, tmp_path)
    assert proc.returncode != 0
    assert "no usable AWS credentials" in proc.stdout and "AWS_PROFILE" in proc.stdout, proc.stdout[-3000:]


# -- playbooks and inventory ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["site.yml", "teardown.yml", "playbooks/cluster.yml", "playbooks/build_images.yml"])
def test_syntax_with_the_eks_inventory(name):
    run(["ansible-playbook", *EKS, name, "--syntax-check"])


def test_eks_inventory_is_the_k8s_inventory_plus_eks():
    """group_vars/all.yml of inventories/eks is inventories/k8s's (a link: one source); eks.yml
    overrides only what EKS changes."""
    link = ROOT / "inventories/eks/group_vars/all.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "inventories/k8s/group_vars/all.yml").resolve()
    out = json.loads(run(["ansible-inventory", *EKS, "--host", "localhost"]).stdout)
    k8s = yaml.safe_load((ROOT / "inventories/k8s/group_vars/all.yml").read_text())
    eks = yaml.safe_load((ROOT / "inventories/eks/group_vars/eks.yml").read_text())
    for key, value in k8s.items():
        assert out[key] == eks.get(key, value), key
    assert out["fraudstream_target"] == "kubernetes"
    assert out["fraudstream_teardown_require_confirm"] is True
    assert out["fraudstream_kubeconfig"] == "{{ eks_cluster_kubeconfig }}"
    hosts = yaml.safe_load((ROOT / "inventories/eks/hosts.yml").read_text())["all"]["children"]
    assert "localhost" in hosts["fraudstream"]["hosts"] and "localhost" in hosts["eks"]["hosts"]
