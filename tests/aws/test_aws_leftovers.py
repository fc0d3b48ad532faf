"""fraudstream.platform.aws_leftovers, run as Ansible runs it, against moto (tests/aws/conftest.py):
every kind of leftover is found and named with the command that removes it; other clusters',
shared and untagged resources are not."""
import json

import boto3

from .test_eks_cluster_info import REGION, make_cluster, run_module

NAME = "fs-left"
OTHER = "fs-other"
USER_TAG = {"fraudstream.io/cluster": NAME}
WAIT_TEMPLATE = json.dumps({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


def tags(**pairs):
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def spec(kind, pairs):
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}]


def clients(endpoint):
    return {s: boto3.client(s, region_name=REGION, endpoint_url=endpoint)
            for s in ("ec2", "elbv2", "elb", "cloudformation", "ecr", "logs", "sqs")}


def network(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in enumerate("ab")]
    return vpc, subnets


def seed_leftovers(endpoint):
    """One or more of each kind, each marked for NAME the way its creator marks it. {kind: [ids]}"""
    c = clients(endpoint)
    ec2 = c["ec2"]
    vpc, subnets = network(ec2)
    owned = {f"kubernetes.io/cluster/{NAME}": "owned"}
    left = {}
    # EBS CSI driver with k8s-tag-cluster-id, and the PVC it was made for.
    left["ebs_volume"] = [ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=20, VolumeType="gp3",
        TagSpecifications=spec("volume", {**owned, "ebs.csi.aws.com/cluster": "true", "CSIVolumeName": "pvc-1",
                                          "kubernetes.io/created-for/pvc/name": "data-kafka-0",
                                          "kubernetes.io/created-for/pvc/namespace": "kafka"}))["VolumeId"],
        # the legacy in-tree tag
        ec2.create_volume(AvailabilityZone=f"{REGION}b", Size=5,
                          TagSpecifications=spec("volume", {"KubernetesCluster": NAME}))["VolumeId"]]
    # AWS Load Balancer Controller: NLB, target group and its security group.
    lbc = {"elbv2.k8s.aws/cluster": NAME, "service.k8s.aws/stack": "monitoring/grafana",
           "service.k8s.aws/resource": "LoadBalancer"}
    left["load_balancer"] = [c["elbv2"].create_load_balancer(
        Name="k8s-monitori-grafana-1", Subnets=subnets, Type="network", Tags=tags(**lbc))["LoadBalancers"][0]["LoadBalancerArn"]]
    left["target_group"] = [c["elbv2"].create_target_group(
        Name="k8s-monitori-grafana-2", Protocol="TCP", Port=3000, VpcId=vpc,
        Tags=tags(**lbc))["TargetGroups"][0]["TargetGroupArn"]]
    # The in-tree cloud provider / CCM: a classic ELB and its security group.
    c["elb"].create_load_balancer(LoadBalancerName="a1b2c3d4e5", AvailabilityZones=[f"{REGION}a"],
                                  Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
                                  Tags=tags(**owned, **{"kubernetes.io/service-name": "apps/api"}))
    left["classic_load_balancer"] = ["a1b2c3d4e5"]
    elb_sg = ec2.create_security_group(GroupName="k8s-elb-a1b2c3d4e5", Description="ccm", VpcId=vpc,
                                       TagSpecifications=spec("security-group", owned))["GroupId"]
    lbc_sg = ec2.create_security_group(GroupName="k8s-traffic-fsleft", Description="lbc", VpcId=vpc,
                                       TagSpecifications=spec("security-group", {"elbv2.k8s.aws/cluster": NAME}))["GroupId"]
    # The EKS cluster security group, found by its name alone here.
    eks_sg = ec2.create_security_group(GroupName=f"eks-cluster-sg-{NAME}-123456", Description="EKS", VpcId=vpc)["GroupId"]
    left["security_group"] = [elb_sg, lbc_sg, eks_sg]
    # ENIs: EKS's control-plane ENI (untagged, by description), one on a cluster security group, a VPC CNI one.
    left["network_interface"] = [
        ec2.create_network_interface(SubnetId=subnets[0],
                                     Description=f"Amazon EKS {NAME}")["NetworkInterface"]["NetworkInterfaceId"],
        ec2.create_network_interface(SubnetId=subnets[1], Groups=[lbc_sg],
                                     Description="ELB net/k8s-monitori-grafana-1/abc")["NetworkInterface"]["NetworkInterfaceId"],
        ec2.create_network_interface(SubnetId=subnets[0], Description="aws-K8S-i-0abc", TagSpecifications=spec(
            "network-interface", {"cluster.k8s.amazonaws.com/name": NAME}))["NetworkInterface"]["NetworkInterfaceId"]]
    # eksctl: its stacks (one by name only, one by tag only) and the NAT gateway and EIP of its VPC.
    cfn = c["cloudformation"]
    by_name = cfn.create_stack(StackName=f"eksctl-{NAME}-nodegroup-workers", TemplateBody=WAIT_TEMPLATE)["StackId"]
    by_tag = cfn.create_stack(StackName="fraudstream-extras", TemplateBody=WAIT_TEMPLATE,
                              Tags=tags(**{"alpha.eksctl.io/cluster-name": NAME}))["StackId"]
    left["cloudformation_stack"] = [by_name, by_tag]
    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=spec("elastic-ip", {"alpha.eksctl.io/cluster-name": NAME}))
    left["elastic_ip"] = [eip["AllocationId"]]
    left["nat_gateway"] = [ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=eip["AllocationId"], TagSpecifications=spec(
        "natgateway", {"eksctl.cluster.k8s.io/v1alpha1/cluster-name": NAME}))["NatGateway"]["NatGatewayId"]]
    # EKS control plane logs.
    c["logs"].create_log_group(logGroupName=f"/aws/eks/{NAME}/cluster")
    left["log_group"] = [f"/aws/eks/{NAME}/cluster"]
    # The project's images.
    c["ecr"].create_repository(repositoryName="fraudstream/apps")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "1" * 64, "size": 1,
                                      "mediaType": "application/vnd.docker.container.image.v1+json"}, "layers": []})
    image = c["ecr"].put_image(repositoryName="fraudstream/apps", imageManifest=manifest, imageTag="0.1.0")["image"]
    left["ecr_image"] = [image["imageId"]["imageDigest"]]
    # Something of another kind, marked with the user's tag: found through the Tagging API.
    queue = c["sqs"].create_queue(QueueName="fs-left-dlq", tags=USER_TAG)["QueueUrl"]
    arn = c["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    left["other"] = [arn]
    return left


def seed_decoys(endpoint):
    """Resources that are not NAME's: untagged, another cluster's, shared. Their ids."""
    c = clients(endpoint)
    ec2 = c["ec2"]
    vpc, subnets = network(ec2)
    decoys = [
        ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"],
        ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec(
            "volume", {f"kubernetes.io/cluster/{OTHER}": "owned", "ebs.csi.aws.com/cluster": "true"}))["VolumeId"],
        ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec(
            "volume", {"KubernetesCluster": f"{NAME}-2"}))["VolumeId"],
        ec2.create_security_group(GroupName="plain", Description="untagged", VpcId=vpc)["GroupId"],
        ec2.create_security_group(GroupName=f"eks-cluster-sg-{OTHER}-1", Description="other", VpcId=vpc)["GroupId"],
        c["elbv2"].create_load_balancer(Name="k8s-other-lb", Subnets=subnets, Type="network",
                                        Tags=tags(**{"elbv2.k8s.aws/cluster": OTHER}))["LoadBalancers"][0]["LoadBalancerArn"],
        c["elbv2"].create_target_group(Name="plain-tg", Protocol="TCP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"],
        ec2.create_network_interface(SubnetId=subnets[0],
                                     Description=f"Amazon EKS {OTHER}")["NetworkInterface"]["NetworkInterfaceId"],
        c["cloudformation"].create_stack(StackName=f"eksctl-{NAME}-x-cluster", TemplateBody=WAIT_TEMPLATE)["StackId"],
        c["cloudformation"].create_stack(StackName=f"eksctl-{NAME}-addon-vpc-cni", TemplateBody=WAIT_TEMPLATE,
                                         Tags=tags(**{"alpha.eksctl.io/cluster-name": f"{NAME}-renamed"}))["StackId"],
    ]
    c["elb"].create_load_balancer(LoadBalancerName="plain-elb", AvailabilityZones=[f"{REGION}a"],
                                  Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 80}])
    c["logs"].create_log_group(logGroupName=f"/aws/eks/{OTHER}/cluster")
    shared = ec2.create_security_group(GroupName="shared-nodes", Description="shared", VpcId=vpc, TagSpecifications=spec(
        "security-group", {f"kubernetes.io/cluster/{NAME}": "shared"}))["GroupId"]
    return decoys + ["plain-elb", f"/aws/eks/{OTHER}/cluster"], shared


def leftovers(env, **args):
    return run_module("aws_leftovers", {"cluster_name": NAME, "region": REGION, **args}, env)


def test_each_leftover_is_named_with_its_removal_and_nothing_else_is(aws_env):
    left = seed_leftovers(aws_env["AWS_ENDPOINT_URL"])
    decoys, shared = seed_decoys(aws_env["AWS_ENDPOINT_URL"])
    code, result = leftovers(aws_env, tags=USER_TAG, include_ecr=True, ecr_repository="fraudstream/apps")
    assert code != 0 and result["failed"] is True
    msg = result["msg"]
    found = {kind: sorted(e["id"] for e in entries) for kind, entries in result["leftovers"].items() if entries}
    assert found == {kind: sorted(ids) for kind, ids in left.items()}, msg
    assert result["count"] == sum(len(ids) for ids in left.values()) == len(result["commands"])
    for kind, ids in left.items():
        for ident in ids:
            assert f"- {kind} {ident}" in msg, f"{kind} {ident} not named:\n{msg}"
    for decoy in decoys + [shared]:
        assert decoy not in msg, f"{decoy} is not {NAME}'s, but the message names it:\n{msg}"
    assert result["shared"] == {"security_group": [{"id": shared, "name": "shared-nodes", "reason":
                                                    f"tag kubernetes.io/cluster/{NAME}=shared",
                                                    "tags": {f"kubernetes.io/cluster/{NAME}": "shared"}}]}
    # Each line says why and how to remove it.
    lines = {ln.split(":", 1)[0]: ln for ln in msg.splitlines() if ln.startswith("- ")}
    volume = lines[f"- ebs_volume {left['ebs_volume'][0]} (kafka/data-kafka-0)"]
    assert f"tag kubernetes.io/cluster/{NAME}=owned" in volume
    assert f"aws ec2 delete-volume --endpoint-url {aws_env['AWS_ENDPOINT_URL']} --region {REGION} --volume-id" in volume
    lb = next(ln for ln in msg.splitlines() if left["load_balancer"][0] in ln)
    assert "k8s-monitori-grafana-1" in lb and "for monitoring/grafana" in lb and "aws elbv2 delete-load-balancer" in lb
    assert "aws elb delete-load-balancer" in lines["- classic_load_balancer a1b2c3d4e5"]
    assert "eksctl's stack name" in next(ln for ln in msg.splitlines() if "nodegroup-workers" in ln)
    assert f"description 'Amazon EKS {NAME}'" in msg and "attached to the cluster's security group" in msg
    assert "aws ecr batch-delete-image" in msg and "fraudstream/apps:0.1.0" in msg
    assert "aws logs delete-log-group" in msg and "aws ec2 release-address" in msg and "aws ec2 delete-nat-gateway" in msg
    assert "aws cloudformation delete-stack" in msg and "aws ec2 delete-security-group" in msg
    # Load balancers come before the security groups they hold.
    assert msg.index("- load_balancer ") < msg.index("- network_interface ") < msg.index("- security_group ")


def test_fail_on_leftovers_false_reports_and_succeeds(aws_env):
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec("volume", USER_TAG))["VolumeId"]
    code, result = leftovers(aws_env, tags=USER_TAG, fail_on_leftovers=False)
    assert code == 0 and result["count"] == 1, result
    assert result["leftovers"]["ebs_volume"][0]["id"] == volume
    assert result["leftovers"]["ebs_volume"][0]["reason"].startswith("tag fraudstream.io/cluster=fs-left")
    assert set(result["leftovers"]) >= {"ebs_volume", "load_balancer", "classic_load_balancer", "target_group",
                                        "security_group", "network_interface", "cloudformation_stack", "ecr_image"}


def test_csi_volume_without_a_cluster_tag_counts_only_when_no_other_cluster_could_own_it(aws_env):
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec(
        "volume", {"ebs.csi.aws.com/cluster": "true", "kubernetes.io/created-for/pvc/name": "data"}))["VolumeId"]
    code, result = leftovers(aws_env, fail_on_leftovers=False)
    assert code == 0 and [v["id"] for v in result["leftovers"]["ebs_volume"]] == [volume], result
    assert "no other EKS cluster in eu-west-1" in result["leftovers"]["ebs_volume"][0]["reason"]
    make_cluster(OTHER, aws_env["AWS_ENDPOINT_URL"])
    code, result = leftovers(aws_env, fail_on_leftovers=False)
    assert code == 0 and result["count"] == 0, result
    assert any(volume in w and OTHER in w for w in result.get("warnings", [])), result


def test_the_cluster_itself_is_a_leftover_until_deleted(aws_env):
    make_cluster(NAME, aws_env["AWS_ENDPOINT_URL"])
    code, result = leftovers(aws_env)
    assert code != 0 and [c["id"] for c in result["leftovers"]["eks_cluster"]] == [NAME], result
    assert f"eksctl delete cluster --region {REGION} --name {NAME}" in result["msg"]
    assert result["leftovers"]["other"] == [], "the cluster's node groups and add-ons go with it"


def test_clean_account_passes_with_count_zero(aws_env):
    seed_decoys(aws_env["AWS_ENDPOINT_URL"])
    code, result = run_module("aws_leftovers", {"cluster_name": NAME, "region": REGION, "tags": USER_TAG,
                                                "include_ecr": True, "ecr_repository": "absent/repo"}, aws_env, check_mode=True)
    assert code == 0, result
    assert result["count"] == 0 and result["changed"] is False and result["commands"] == []
    assert all(v == [] for v in result["leftovers"].values())


def test_include_ecr_without_a_repository_is_refused(aws_env):
    code, result = leftovers(aws_env, include_ecr=True)
    assert code != 0 and "ecr_repository" in result["msg"], result
