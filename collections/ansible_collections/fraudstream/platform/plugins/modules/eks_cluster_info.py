#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: eks_cluster_info
short_description: Describe an EKS cluster, its add-ons and managed node groups
version_added: 0.3.0
description:
  - Reports whether an EKS cluster exists and, if it does, its status, Kubernetes version,
    endpoint and tags, every add-on (version, status, IAM role, Pod Identity associations) and
    every managed node group (instance types, capacity type, scaling, disk size).
  - A cluster that does not exist is a result (RV(exists=false)), not an error.
author: fraudstream developers (@fraudstream)
options:
  name:
    description: Name of the EKS cluster.
    type: str
    required: true
extends_documentation_fragment:
  - fraudstream.platform.aws
  - fraudstream.platform.attributes.info_module
"""

EXAMPLES = r"""
- name: Describe the fraudstream cluster
  fraudstream.platform.eks_cluster_info:
    name: fraudstream
    region: eu-west-1
  register: eks

- name: The EBS CSI add-on is active
  ansible.builtin.assert:
    that:
      - eks.exists
      - eks.addons | selectattr('name', 'eq', 'aws-ebs-csi-driver') | map(attribute='status') | list == ['ACTIVE']
    fail_msg: "add-ons: {{ eks.addons }}"

- name: Against moto on 127.0.0.1 (tests)
  fraudstream.platform.eks_cluster_info:
    name: fraudstream
    region: eu-west-1
    endpoint_url: http://127.0.0.1:5000
"""

RETURN = r"""
exists:
  description: Whether the cluster exists (in any status, C(DELETING) included).
  returned: always
  type: bool
  sample: true
cluster:
  description: The cluster; an empty dict when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Cluster name., returned: when exists, type: str, sample: fraudstream}
    status: {description: "C(CREATING), C(ACTIVE), C(UPDATING), C(DELETING) or C(FAILED).", returned: when exists,
             type: str, sample: ACTIVE}
    version: {description: Kubernetes version., returned: when exists, type: str, sample: "1.33"}
    platform_version: {description: EKS platform version., returned: when exists, type: str, sample: eks.5}
    endpoint: {description: "API server URL; null while the cluster is being created.", returned: when exists,
               type: str, sample: "https://ABC.gr7.eu-west-1.eks.amazonaws.com"}
    arn: {description: Cluster ARN., returned: when exists, type: str,
          sample: "arn:aws:eks:eu-west-1:123456789012:cluster/fraudstream"}
    tags: {description: The cluster's tags., returned: when exists, type: dict,
           sample: {alpha.eksctl.io/cluster-name: fraudstream}}
    created_at: {description: "Creation time, ISO 8601; null if AWS gives none.", returned: when exists,
                 type: str, sample: "2026-01-01T10:00:00+00:00"}
    vpc_id: {description: "VPC of the cluster; null if AWS gives none.", returned: when exists, type: str,
             sample: vpc-0abc}
    cluster_security_group_id: {description: "Security group EKS made for the cluster; null if none.",
                                returned: when exists, type: str, sample: sg-0abc}
  sample:
    name: fraudstream
    status: ACTIVE
    version: "1.33"
    platform_version: eks.5
    endpoint: "https://ABC.gr7.eu-west-1.eks.amazonaws.com"
    arn: "arn:aws:eks:eu-west-1:123456789012:cluster/fraudstream"
    tags: {alpha.eksctl.io/cluster-name: fraudstream}
    created_at: "2026-01-01T10:00:00+00:00"
    vpc_id: vpc-0abc
    cluster_security_group_id: sg-0abc
addons:
  description: The cluster's add-ons, sorted by name; empty when the cluster does not exist.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Add-on name., returned: always, type: str, sample: aws-ebs-csi-driver}
    version: {description: Add-on version., returned: always, type: str, sample: v1.45.0-eksbuild.1}
    status: {description: "C(CREATING), C(ACTIVE), C(DEGRADED), C(UPDATING), C(DELETING), ...", returned: always,
             type: str, sample: ACTIVE}
    service_account_role_arn: {description: "IAM role of the add-on's service account (IRSA); null if none.",
                               returned: always, type: str,
                               sample: "arn:aws:iam::123456789012:role/ebs-csi"}
    pod_identity_associations: {description: ARNs of the add-on's EKS Pod Identity associations., returned: always,
                                type: list, elements: str,
                                sample: ["arn:aws:eks:eu-west-1:123456789012:podidentityassociation/fraudstream/a-1"]}
  sample:
    - name: aws-ebs-csi-driver
      version: v1.45.0-eksbuild.1
      status: ACTIVE
      service_account_role_arn: "arn:aws:iam::123456789012:role/ebs-csi"
      pod_identity_associations: []
nodegroups:
  description: The cluster's managed node groups, sorted by name; empty when the cluster does not exist.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Node group name., returned: always, type: str, sample: workers}
    status: {description: "C(CREATING), C(ACTIVE), C(DEGRADED), C(DELETING), ...", returned: always, type: str,
             sample: ACTIVE}
    instance_types: {description: EC2 instance types., returned: always, type: list, elements: str,
                     sample: [m6i.large]}
    capacity_type: {description: "C(ON_DEMAND), C(SPOT) or C(CAPACITY_BLOCK); null if AWS gives none.",
                    returned: always, type: str, sample: ON_DEMAND}
    scaling:
      description: "Node counts: C(min), C(max), C(desired) (each null if AWS gives none)."
      returned: always
      type: dict
      sample: {min: 2, max: 4, desired: 3}
    disk_size: {description: "Root volume size in GiB; null when the node group uses a launch template.",
                returned: always, type: int, sample: 50}
    version: {description: Kubernetes version of the nodes., returned: always, type: str, sample: "1.33"}
  sample:
    - name: workers
      status: ACTIVE
      instance_types: [m6i.large]
      capacity_type: ON_DEMAND
      scaling: {min: 2, max: 4, desired: 3}
      disk_size: 50
      version: "1.33"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.aws import (
    AwsModuleClients,
    BotoCoreError,
    ClientError,
    aws_argument_spec,
    is_not_found,
)


def iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def cluster_view(cluster):
    vpc = cluster.get("resourcesVpcConfig") or {}
    return dict(
        name=cluster["name"],
        status=cluster.get("status"),
        version=cluster.get("version"),
        platform_version=cluster.get("platformVersion"),
        endpoint=cluster.get("endpoint"),
        arn=cluster.get("arn"),
        tags=cluster.get("tags") or {},
        created_at=iso(cluster.get("createdAt")),
        vpc_id=vpc.get("vpcId"),
        cluster_security_group_id=vpc.get("clusterSecurityGroupId"),
    )


def addon_view(addon):
    return dict(
        name=addon["addonName"],
        version=addon.get("addonVersion"),
        status=addon.get("status"),
        service_account_role_arn=addon.get("serviceAccountRoleArn"),
        pod_identity_associations=list(addon.get("podIdentityAssociations") or []),
    )


def nodegroup_view(nodegroup):
    scaling = nodegroup.get("scalingConfig") or {}
    return dict(
        name=nodegroup["nodegroupName"],
        status=nodegroup.get("status"),
        instance_types=list(nodegroup.get("instanceTypes") or []),
        capacity_type=nodegroup.get("capacityType"),
        scaling=dict(min=scaling.get("minSize"), max=scaling.get("maxSize"), desired=scaling.get("desiredSize")),
        disk_size=nodegroup.get("diskSize"),
        version=nodegroup.get("version"),
    )


def describe(aws, name):
    """(exists, cluster, addons, nodegroups); a resource gone between list and describe is skipped."""
    eks = aws.client("eks")
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except ClientError as exc:
        if is_not_found(exc):
            return False, {}, [], []
        raise
    addons, nodegroups = [], []
    for addon_name in aws.paginate("eks", "list_addons", "addons", clusterName=name):
        try:
            addons.append(addon_view(eks.describe_addon(clusterName=name, addonName=addon_name)["addon"]))
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    for nodegroup_name in aws.paginate("eks", "list_nodegroups", "nodegroups", clusterName=name):
        try:
            nodegroups.append(nodegroup_view(
                eks.describe_nodegroup(clusterName=name, nodegroupName=nodegroup_name)["nodegroup"]))
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    return True, cluster_view(cluster), sorted(addons, key=lambda a: a["name"]), \
        sorted(nodegroups, key=lambda n: n["name"])


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(name=dict(type="str", required=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    name = module.params["name"].strip()
    if not name:
        module.fail_json(msg="name is empty: give the EKS cluster's name (aws eks list-clusters lists them)")
    aws = AwsModuleClients(module)
    try:
        exists, cluster, addons, nodegroups = describe(aws, name)
    except (BotoCoreError, ClientError) as exc:
        aws.fail("describing EKS cluster '%s' in %s" % (name, aws.region), exc, service="eks")
    module.exit_json(changed=False, exists=exists, cluster=cluster, addons=addons, nodegroups=nodegroups)


if __name__ == "__main__":
    main()
