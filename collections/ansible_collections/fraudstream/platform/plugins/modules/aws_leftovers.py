#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: aws_leftovers
short_description: Find AWS resources an EKS cluster left behind after its teardown
version_added: 0.3.0
description:
  - "Looks in one region for everything that belongs to an EKS cluster and still exists: the
    cluster itself, eksctl's CloudFormation stacks, EBS volumes, load balancers (ALB/NLB and
    classic), target groups, NAT gateways, Elastic IPs, security groups, network interfaces, the
    cluster's CloudWatch log group, other tagged resources, and optionally the images of an ECR
    repository."
  - "By default it fails when anything is left, with one line per resource giving its kind, id,
    why it belongs to the cluster, and the AWS CLI command that removes it. Read-only: it deletes
    nothing."
  - "A resource belongs to cluster C(<name>) when it carries one of these tags:
    C(kubernetes.io/cluster/<name>=owned) (Kubernetes' AWS cloud provider, the EKS cluster
    security group, EBS CSI with C(k8s-tag-cluster-id)); C(alpha.eksctl.io/cluster-name=<name>) or
    the older C(eksctl.cluster.k8s.io/v1alpha1/cluster-name=<name>) (eksctl's stacks and what they
    create); C(elbv2.k8s.aws/cluster=<name>) (AWS Load Balancer Controller: load balancers, target
    groups, security groups, with C(service.k8s.aws/stack) or C(ingress.k8s.aws/stack));
    C(KubernetesCluster=<name>) (legacy in-tree tag); C(aws:eks:cluster-name=<name>) or
    C(eks:cluster-name=<name>) (EKS); C(cluster.k8s.amazonaws.com/name=<name>) (VPC CNI's ENIs);
    or any key/value pair of O(tags)."
  - "Also by name or relation: stacks named C(eksctl-<name>-cluster), C(eksctl-<name>-nodegroup-*),
    C(eksctl-<name>-addon-*) and eksctl's other C(eksctl-<name>-*) stacks (unless tagged for another
    cluster); the security group C(eks-cluster-sg-<name>-*); ENIs described C(Amazon EKS <name>) or
    attached to one of the cluster's security groups; the log group C(/aws/eks/<name>/cluster)."
  - "EBS CSI volumes that carry only C(ebs.csi.aws.com/cluster=true) (the driver names no cluster
    unless its C(k8s-tag-cluster-id) is set) count when no other EKS cluster exists in the region;
    otherwise they are reported in a warning only. Tag the StorageClass (C(tagSpecification_1))
    with a pair from O(tags) to attribute them for certain."
  - "C(kubernetes.io/cluster/<name>=shared) means the resource is shared and must not be destroyed
    with the cluster (the Kubernetes cloud provider's convention, e.g. subnets of an existing VPC):
    such resources are returned in RV(shared) and do not count."
author: fraudstream developers (@fraudstream)
options:
  cluster_name:
    description: Name of the EKS cluster whose leftovers to find.
    type: str
    required: true
  tags:
    description:
      - Extra tags that mark a resource as the cluster's, as key/value pairs; a resource with any
        one of them counts. For example C(fraudstream.io/cluster=fraudstream), given as a dict.
    type: dict
    default: {}
  include_ecr:
    description: Also report the images left in the ECR repository O(ecr_repository).
    type: bool
    default: false
  ecr_repository:
    description:
      - Name of the ECR repository whose images count as leftovers with O(include_ecr). A
        repository that does not exist has no images.
    type: str
  fail_on_leftovers:
    description:
      - Fail when anything is left, listing each resource and the command that removes it.
      - With V(false), report the same in the result and succeed.
    type: bool
    default: true
extends_documentation_fragment:
  - fraudstream.platform.aws
  - fraudstream.platform.attributes.info_module
"""

EXAMPLES = r"""
- name: Nothing of the cluster is left that costs money
  fraudstream.platform.aws_leftovers:
    cluster_name: fraudstream
    region: eu-west-1
    tags:
      fraudstream.io/cluster: fraudstream
    include_ecr: true
    ecr_repository: fraudstream/scorer

- name: Report leftovers without failing
  fraudstream.platform.aws_leftovers:
    cluster_name: fraudstream
    region: eu-west-1
    fail_on_leftovers: false
  register: leftovers

- name: Show the commands that remove them
  ansible.builtin.debug:
    var: leftovers.commands
  when: leftovers.count > 0
"""

RETURN = r"""
leftovers:
  description:
    - Kind to the resources of that kind still there. Every kind is present, with an empty list
      when nothing of it is left.
    - "Kinds: C(eks_cluster), C(cloudformation_stack), C(load_balancer) (ALB/NLB),
      C(classic_load_balancer), C(target_group), C(nat_gateway), C(elastic_ip), C(network_interface),
      C(ebs_volume), C(security_group), C(log_group), C(ecr_image), C(other) (found through the
      Resource Groups Tagging API, by ARN)."
    - Each resource has C(id), C(name) (null when it has none), C(tags) and C(reason) (why it
      belongs to the cluster).
  returned: always
  type: dict
  sample:
    ebs_volume:
      - id: vol-0abc
        name: kafka/data-kafka-0
        tags: {kubernetes.io/cluster/fraudstream: owned, kubernetes.io/created-for/pvc/name: data-kafka-0}
        reason: tag kubernetes.io/cluster/fraudstream=owned
    security_group: []
count:
  description: How many resources are left, all kinds together.
  returned: always
  type: int
  sample: 1
commands:
  description: One AWS CLI command per leftover that removes it, in a workable order (load balancers
    before their security groups, ENIs before volumes and groups).
  returned: always
  type: list
  elements: str
  sample: ["aws ec2 delete-volume --region eu-west-1 --volume-id vol-0abc"]
shared:
  description:
    - Resources tagged C(kubernetes.io/cluster/<name>=shared), by kind as in RV(leftovers). They
      are used by the cluster but not owned by it, so they do not count.
  returned: always
  type: dict
  sample: {security_group: [{id: sg-0abc, name: shared-lb, tags: {kubernetes.io/cluster/fraudstream: shared},
                             reason: tag kubernetes.io/cluster/fraudstream=shared}]}
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.aws import (
    AwsModuleClients,
    BotoCoreError,
    ClientError,
    aws_argument_spec,
    describe_error,
    error_code,
    is_not_found,
    tag_dict,
)

# Deletion order: what holds others first (stacks own most; LBs hold ENIs and groups).
KINDS = ("eks_cluster", "cloudformation_stack", "load_balancer", "classic_load_balancer", "target_group",
         "nat_gateway", "elastic_ip", "network_interface", "ebs_volume", "security_group", "log_group",
         "ecr_image", "other")
COMMANDS = {
    "eks_cluster": "eksctl delete cluster --region {region} --name {id} --wait"
                   "  # or: aws eks delete-cluster --region {region} --name {id}",
    "cloudformation_stack": "aws cloudformation delete-stack --region {region} --stack-name {name}",
    "load_balancer": "aws elbv2 delete-load-balancer --region {region} --load-balancer-arn {id}",
    "classic_load_balancer": "aws elb delete-load-balancer --region {region} --load-balancer-name {id}",
    "target_group": "aws elbv2 delete-target-group --region {region} --target-group-arn {id}",
    "nat_gateway": "aws ec2 delete-nat-gateway --region {region} --nat-gateway-id {id}",
    "elastic_ip": "aws ec2 release-address --region {region} --allocation-id {id}",
    "network_interface": "aws ec2 delete-network-interface --region {region} --network-interface-id {id}",
    "ebs_volume": "aws ec2 delete-volume --region {region} --volume-id {id}",
    "security_group": "aws ec2 delete-security-group --region {region} --group-id {id}",
    "log_group": "aws logs delete-log-group --region {region} --log-group-name {id}",
    "ecr_image": "aws ecr batch-delete-image --region {region} --repository-name {repository} "
                 "--image-ids imageDigest={id}",
    "other": "aws resourcegroupstaggingapi get-resources --region {region} --resource-arn-list {id}"
             "  # then delete it with its own service's CLI",
}
# Resource types the Tagging API returns that a dedicated scan above already covers.
COVERED_ARN = re.compile(r"^arn:[^:]+:(ec2:[^:]*:[^:]*:(volume|security-group|network-interface|natgateway|"
                         r"elastic-ip)/|elasticloadbalancing:|cloudformation:|logs:|ecr:)")
EKSCTL_STACK = "^eksctl-%s-(cluster|nodegroup-.+|addon-.+|podidentityrole-.+|iamserviceaccount-.+|fargate|karpenter)$"


def tag_rules(cluster, user_tags):
    """(key, value) pairs that each make a resource the cluster's; value None matches any value."""
    rules = [("kubernetes.io/cluster/%s" % cluster, "owned"),
             ("alpha.eksctl.io/cluster-name", cluster),
             ("eksctl.cluster.k8s.io/v1alpha1/cluster-name", cluster),
             ("elbv2.k8s.aws/cluster", cluster),
             ("KubernetesCluster", cluster),
             ("aws:eks:cluster-name", cluster),
             ("eks:cluster-name", cluster),
             ("cluster.k8s.amazonaws.com/name", cluster)]
    rules += [(str(k), None if v is None else str(v)) for k, v in sorted((user_tags or {}).items())]
    return rules


def match_tags(tags, cluster, user_tags):
    """('owned', reason), ('shared', reason) or (None, None) for a resource's tags."""
    reasons = ["tag %s=%s" % (key, tags[key]) for key, value in tag_rules(cluster, user_tags)
               if key in tags and (value is None or tags[key] == value)]
    stack = tags.get("service.k8s.aws/stack") or tags.get("ingress.k8s.aws/stack")
    if reasons and stack and tags.get("elbv2.k8s.aws/cluster") == cluster:
        reasons.append("for %s" % stack)
    if reasons:
        return "owned", "; ".join(reasons)
    if tags.get("kubernetes.io/cluster/%s" % cluster) == "shared":
        return "shared", "tag kubernetes.io/cluster/%s=shared" % cluster
    return None, None


def names_another_cluster(tags, cluster):
    """Whether the tags say the resource is some other cluster's."""
    for key, value in tags.items():
        if key.startswith("kubernetes.io/cluster/") and key != "kubernetes.io/cluster/" + cluster:
            return True
        if key in ("alpha.eksctl.io/cluster-name", "eksctl.cluster.k8s.io/v1alpha1/cluster-name",
                   "KubernetesCluster", "elbv2.k8s.aws/cluster", "aws:eks:cluster-name",
                   "eks:cluster-name") and value != cluster:
            return True
    return False


def entry(resource_id, name, tags, reason):
    return dict(id=resource_id, name=name or None, tags=tags, reason=reason)


def pvc_name(tags):
    pvc = tags.get("kubernetes.io/created-for/pvc/name")
    if pvc:
        namespace = tags.get("kubernetes.io/created-for/pvc/namespace")
        return "%s/%s" % (namespace, pvc) if namespace else pvc
    return tags.get("Name") or tags.get("CSIVolumeName")


class Finder:
    def __init__(self, module, aws):
        self.module = module
        self.aws = aws
        self.cluster = module.params["cluster_name"]
        self.user_tags = module.params["tags"] or {}
        self.leftovers = {kind: [] for kind in KINDS}
        self.shared = {}
        self.warnings = []

    def add(self, kind, resource_id, name, tags, extra=None, reason=None):
        """Record a resource if its tags (or the given reason) make it the cluster's."""
        ownership, tag_reason = match_tags(tags, self.cluster, self.user_tags)
        if ownership == "owned" or (reason and ownership != "shared"):
            why = "; ".join(r for r in (tag_reason, reason, extra) if r)
            self.leftovers[kind].append(entry(resource_id, name, tags, why))
            return True
        if ownership == "shared":
            self.shared.setdefault(kind, []).append(entry(resource_id, name, tags, tag_reason))
        return False

    # -- one scan per kind ----------------------------------------------------------------------
    def eks_cluster(self):
        try:
            cluster = self.aws.client("eks").describe_cluster(name=self.cluster)["cluster"]
        except ClientError as exc:
            if is_not_found(exc):
                return
            raise
        self.leftovers["eks_cluster"].append(entry(
            self.cluster, self.cluster, cluster.get("tags") or {},
            "the cluster still exists (status %s)" % cluster.get("status")))

    def cloudformation_stack(self):
        by_name = re.compile(EKSCTL_STACK % re.escape(self.cluster))
        for stack in self.aws.paginate("cloudformation", "describe_stacks", "Stacks"):
            if stack.get("StackStatus") == "DELETE_COMPLETE":
                continue
            tags = tag_dict(stack.get("Tags"))
            status = "status %s" % stack.get("StackStatus")
            if by_name.match(stack["StackName"]) and not names_another_cluster(tags, self.cluster):
                self.add("cloudformation_stack", stack["StackId"], stack["StackName"], tags,
                         reason="eksctl's stack name", extra=status)
            else:
                self.add("cloudformation_stack", stack["StackId"], stack["StackName"], tags, extra=status)

    def elbv2_tags(self, arns):
        tags = {}
        for start in range(0, len(arns), 20):
            answer = self.aws.client("elbv2").describe_tags(ResourceArns=arns[start:start + 20])
            for description in answer.get("TagDescriptions", []):
                tags[description["ResourceArn"]] = tag_dict(description.get("Tags"))
        return tags

    def load_balancer(self):
        balancers = self.aws.paginate("elbv2", "describe_load_balancers", "LoadBalancers")
        tags = self.elbv2_tags([b["LoadBalancerArn"] for b in balancers])
        for balancer in balancers:
            arn = balancer["LoadBalancerArn"]
            self.add("load_balancer", arn, balancer.get("LoadBalancerName"), tags.get(arn, {}),
                     extra="type %s" % balancer.get("Type", "application"))

    def target_group(self):
        groups = self.aws.paginate("elbv2", "describe_target_groups", "TargetGroups")
        tags = self.elbv2_tags([g["TargetGroupArn"] for g in groups])
        for group in groups:
            arn = group["TargetGroupArn"]
            self.add("target_group", arn, group.get("TargetGroupName"), tags.get(arn, {}))

    def classic_load_balancer(self):
        balancers = self.aws.paginate("elb", "describe_load_balancers", "LoadBalancerDescriptions")
        names = [b["LoadBalancerName"] for b in balancers]
        tags = {}
        for start in range(0, len(names), 20):
            answer = self.aws.client("elb").describe_tags(LoadBalancerNames=names[start:start + 20])
            for description in answer.get("TagDescriptions", []):
                tags[description["LoadBalancerName"]] = tag_dict(description.get("Tags"))
        for name in names:
            self.add("classic_load_balancer", name, name, tags.get(name, {}))

    def nat_gateway(self):
        for gateway in self.aws.paginate("ec2", "describe_nat_gateways", "NatGateways"):
            if gateway.get("State") in ("deleted", "failed"):
                continue
            tags = tag_dict(gateway.get("Tags"))
            self.add("nat_gateway", gateway["NatGatewayId"], tags.get("Name"), tags,
                     extra="state %s" % gateway.get("State"))

    def elastic_ip(self):
        for address in self.aws.client("ec2").describe_addresses().get("Addresses", []):
            tags = tag_dict(address.get("Tags"))
            self.add("elastic_ip", address.get("AllocationId") or address.get("PublicIp"),
                     address.get("PublicIp"), tags)

    def security_group(self):
        by_name = "eks-cluster-sg-%s-" % self.cluster
        for group in self.aws.paginate("ec2", "describe_security_groups", "SecurityGroups"):
            if group.get("GroupName") == "default":
                continue  # every VPC has one; it goes with the VPC
            tags = tag_dict(group.get("Tags"))
            reason = "the EKS cluster security group's name" if group.get("GroupName", "").startswith(by_name) \
                and not names_another_cluster(tags, self.cluster) else None
            self.add("security_group", group["GroupId"], group.get("GroupName"), tags, reason=reason)

    def network_interface(self):
        groups = {g["id"] for g in self.leftovers["security_group"]}
        description = "Amazon EKS %s" % self.cluster
        for interface in self.aws.paginate("ec2", "describe_network_interfaces", "NetworkInterfaces"):
            tags = tag_dict(interface.get("TagSet"))
            attached = sorted(groups & {g["GroupId"] for g in interface.get("Groups", [])})
            reason = None
            if interface.get("Description") == description:
                reason = "description '%s'" % description
            elif attached:
                reason = "attached to the cluster's security group %s" % ", ".join(attached)
            attachment = interface.get("Attachment") or {}
            extra = "status %s" % interface.get("Status")
            if attachment.get("InstanceId"):
                extra += ", attached to %s" % attachment["InstanceId"]
            self.add("network_interface", interface["NetworkInterfaceId"], interface.get("Description"), tags,
                     extra=extra, reason=reason)

    def ebs_volume(self):
        unnamed = []
        for volume in self.aws.paginate("ec2", "describe_volumes", "Volumes"):
            tags = tag_dict(volume.get("Tags"))
            attached = ", ".join(a["InstanceId"] for a in volume.get("Attachments", []) if a.get("InstanceId"))
            extra = "%s GiB %s, %s" % (volume.get("Size"), volume.get("VolumeType"), volume.get("State"))
            if attached:
                extra += " on %s (detach it first)" % attached
            if not self.add("ebs_volume", volume["VolumeId"], pvc_name(tags), tags, extra=extra) \
                    and tags.get("ebs.csi.aws.com/cluster") == "true" and not names_another_cluster(tags, self.cluster):
                unnamed.append((volume, tags, extra))
        if not unnamed:
            return
        others = [c for c in self.aws.paginate("eks", "list_clusters", "clusters") if c != self.cluster]
        for volume, tags, extra in unnamed:
            if others:
                self.warnings.append(
                    "EBS volume %s (%s) was made by the EBS CSI driver, whose tags name no cluster, and other EKS "
                    "clusters exist in %s (%s), so it is not counted; tag the StorageClass with a pair from the tags "
                    "option to attribute such volumes" % (volume["VolumeId"], pvc_name(tags) or "no PVC tag",
                                                          self.aws.region, ", ".join(sorted(others))))
            else:
                self.add("ebs_volume", volume["VolumeId"], pvc_name(tags), tags, extra=extra,
                         reason="tag ebs.csi.aws.com/cluster=true and no other EKS cluster in %s" % self.aws.region)

    def log_group(self):
        prefix = "/aws/eks/%s/" % self.cluster
        for group in self.aws.paginate("logs", "describe_log_groups", "logGroups", logGroupNamePrefix=prefix):
            self.leftovers["log_group"].append(entry(
                group["logGroupName"], group["logGroupName"], {},
                "EKS control plane log group (%s bytes stored)" % group.get("storedBytes", 0)))

    def ecr_image(self):
        repository = self.module.params["ecr_repository"]
        try:
            images = self.aws.paginate("ecr", "describe_images", "imageDetails", repositoryName=repository)
        except ClientError as exc:
            if error_code(exc) == "RepositoryNotFoundException":
                return
            raise
        for image in images:
            tags = image.get("imageTags") or []
            name = "%s:%s" % (repository, ",".join(tags)) if tags else "%s (untagged)" % repository
            self.leftovers["ecr_image"].append(entry(
                image["imageDigest"], name, {},
                "image in ECR repository %s (%s bytes)" % (repository, image.get("imageSizeInBytes", 0))))

    def other(self):
        """Tagged resources of the other kinds, through the Resource Groups Tagging API."""
        seen = {e["id"] for kind in KINDS for e in self.leftovers[kind]}
        found = {}
        try:
            for key, value in tag_rules(self.cluster, self.user_tags):
                tag_filter = {"Key": key, "Values": [value]} if value is not None else {"Key": key}
                for resource in self.aws.paginate("resourcegroupstaggingapi", "get_resources",
                                                  "ResourceTagMappingList", TagFilters=[tag_filter]):
                    found.setdefault(resource["ResourceARN"], tag_dict(resource.get("Tags")))
        except (BotoCoreError, ClientError) as exc:
            self.warnings.append(describe_error(
                "other tagged resources were not checked", exc, client=self.aws.client("resourcegroupstaggingapi")))
            return
        cluster_arn = ":cluster/%s" % self.cluster
        for arn, tags in sorted(found.items()):
            if COVERED_ARN.match(arn) or any(arn == i or arn.endswith("/" + i) for i in seen):
                continue
            if self.leftovers["eks_cluster"] and ":eks:" in arn and (
                    arn.endswith(cluster_arn) or "/%s/" % self.cluster in arn):
                continue  # the cluster's own node groups and add-ons go with it
            self.add("other", arn, tags.get("Name"), tags)

    def run(self):
        scans = [k for k in KINDS if k != "ecr_image" or self.module.params["include_ecr"]]
        services = {"eks_cluster": "eks", "cloudformation_stack": "cloudformation", "load_balancer": "elbv2",
                    "classic_load_balancer": "elb", "target_group": "elbv2", "log_group": "logs", "ecr_image": "ecr",
                    "other": "resourcegroupstaggingapi"}
        # Security groups before ENIs: an ENI counts when it is attached to one of them.
        scans.remove("security_group")
        scans.insert(scans.index("network_interface"), "security_group")
        for kind in scans:
            try:
                getattr(self, kind)()
            except (BotoCoreError, ClientError) as exc:
                self.aws.fail("looking for %s leftovers of EKS cluster '%s' in %s" % (
                    kind.replace("_", " "), self.cluster, self.aws.region), exc, service=services.get(kind, "ec2"))
        for kind in KINDS:
            self.leftovers[kind].sort(key=lambda e: e["id"])


def commands(leftovers, region, endpoint_url, repository):
    lines = []
    for kind in KINDS:
        for item in leftovers[kind]:
            line = COMMANDS[kind].format(region=region, id=item["id"], name=item["name"], repository=repository)
            if endpoint_url and line.startswith("aws "):
                line = line.replace(" --region ", " --endpoint-url %s --region " % endpoint_url, 1)
            lines.append(line)
    return lines


def failure_message(cluster, region, leftovers, command_lines):
    count = sum(len(v) for v in leftovers.values())
    lines = ["%d AWS resource%s of EKS cluster '%s' in %s remain%s after teardown and may still cost money:"
             % (count, "" if count == 1 else "s", cluster, region, "s" if count == 1 else "")]
    index = 0
    for kind in KINDS:
        for item in leftovers[kind]:
            label = "%s %s" % (kind, item["id"])
            if item["name"] and item["name"] != item["id"]:
                label += " (%s)" % item["name"]
            lines.append("- %s: %s. Remove: %s" % (label, item["reason"], command_lines[index]))
            index += 1
    lines.append("Delete them (in this order), then run this check again; or set fail_on_leftovers: false "
                 "to only report them.")
    return "\n".join(lines)


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        cluster_name=dict(type="str", required=True),
        tags=dict(type="dict", default={}),
        include_ecr=dict(type="bool", default=False),
        ecr_repository=dict(type="str"),
        fail_on_leftovers=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("include_ecr", True, ["ecr_repository"])])
    p = module.params
    p["cluster_name"] = (p["cluster_name"] or "").strip()
    if not p["cluster_name"]:
        module.fail_json(msg="cluster_name is empty: give the EKS cluster's name, as eksctl and the tags use it")
    bad = sorted(k for k, v in (p["tags"] or {}).items() if not k or isinstance(v, (dict, list)))
    if bad:
        module.fail_json(msg="tags must map tag keys to plain values, e.g. {fraudstream.io/cluster: %s}; "
                             "check %s" % (p["cluster_name"], ", ".join(repr(k) for k in bad)))
    aws = AwsModuleClients(module)
    finder = Finder(module, aws)
    finder.run()
    count = sum(len(v) for v in finder.leftovers.values())
    command_lines = commands(finder.leftovers, aws.region, aws.endpoint_url, p["ecr_repository"])
    result = dict(changed=False, leftovers=finder.leftovers, count=count, commands=command_lines,
                  shared=finder.shared)
    for warning in finder.warnings:
        module.warn(warning)
    if count and p["fail_on_leftovers"]:
        module.fail_json(msg=failure_message(p["cluster_name"], aws.region, finder.leftovers, command_lines), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
