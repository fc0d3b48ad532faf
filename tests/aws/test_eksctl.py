"""eksctl, built from the Go module proxy, validates fraudstream's EKS ClusterConfig offline.

The sample config (tests/aws/eksctl/testdata/cluster.yaml) has the shape the eks_cluster role's
template must have; eksctl's dry run must accept it and keep EKS Auto Mode off, the add-ons,
the EBS CSI driver's pod identity and the tags in its normalized config. Broken variants must be
rejected with eksctl's own message. Nothing is skipped: if eksctl does not build, these fail.
"""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eksctl_validate  # noqa: E402
from eksctl_validate import EksctlError, schema_errors, validate  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "eksctl" / "testdata" / "cluster.yaml"
CORE_ADDONS = {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"}


def eksctl_module_version() -> str:
    for line in (HERE / "eksctl" / "go.mod").read_text().splitlines():
        parts = line.split()
        if parts[:2] == ["require", "github.com/weaveworks/eksctl"]:
            return parts[2]
    raise AssertionError("no eksctl version in tests/aws/eksctl/go.mod")


def variant(tmp_path, name, change) -> Path:
    """The sample config with one change applied (change mutates the loaded dict)."""
    config = yaml.safe_load(SAMPLE.read_text())
    change(config)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def normalized():
    return validate(SAMPLE)


def test_eksctl_builds_into_the_versioned_cache_and_rebuilds_nothing_warm():
    binary = eksctl_validate.eksctl_bin()  # builds if cold
    module_version = eksctl_module_version()
    assert binary.parent.parent.name == f"eksctl-{module_version}", binary
    assert HERE.parents[1] not in binary.parents, "the binary must live outside the clone"
    assert eksctl_validate.version() == module_version.lstrip("v")

    start = time.monotonic()
    proc = subprocess.run([str(eksctl_validate.BUILD_SH)], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(binary.parent)
    assert proc.stderr == "", f"a warm run should build nothing:\n{proc.stderr}"
    assert elapsed < 20, f"a warm run took {elapsed:.1f} s"


def test_sample_config_validates_and_keeps_auto_mode_off(normalized):
    assert normalized["apiVersion"] == "eksctl.io/v1alpha5"
    assert normalized["metadata"]["name"] == "fraudstream-test"
    assert normalized["metadata"]["version"] == "1.33"
    assert normalized["autoModeConfig"]["enabled"] is False


def test_normalized_config_keeps_the_addons_and_ebs_pod_identity(normalized):
    addons = {a["name"]: a for a in normalized["addons"]}
    assert CORE_ADDONS <= set(addons), sorted(addons)
    assert addons["aws-ebs-csi-driver"]["useDefaultPodIdentityAssociations"] is True
    assert normalized["addonsConfig"]["autoApplyPodIdentityAssociations"] is True


def test_normalized_config_keeps_the_tags_and_the_managed_nodegroup(normalized):
    assert normalized["metadata"]["tags"] == {
        "project": "fraudstream", "environment": "test", "managed-by": "ansible"}
    [ng] = normalized["managedNodeGroups"]
    assert (ng["name"], ng["instanceType"]) == ("fraud-workers", "m6i.large")
    assert (ng["minSize"], ng["desiredCapacity"], ng["maxSize"]) == (2, 3, 5)
    assert ng["volumeType"] == "gp3" and ng["privateNetworking"] is True
    assert ng["tags"]["project"] == "fraudstream"
    assert not normalized.get("nodeGroups"), "only managed node groups"


def test_sample_config_matches_eksctls_json_schema():
    assert schema_errors(yaml.safe_load(SAMPLE.read_text())) == []


def test_unknown_field_is_rejected_by_eksctl(tmp_path):
    path = variant(tmp_path, "unknown-field",
                   lambda c: c["managedNodeGroups"][0].update(spotInstances=True))
    with pytest.raises(EksctlError) as err:
        validate(path)
    assert 'json: unknown field "spotInstances"' in err.value.stderr, err.value.stderr


def test_unknown_field_breaks_the_json_schema_too(tmp_path):
    config = yaml.safe_load(SAMPLE.read_text())
    config["managedNodeGroups"][0]["spotInstances"] = True
    errors = schema_errors(config)
    assert any(e.startswith("managedNodeGroups.0:") and "spotInstances" in e for e in errors), errors


def test_invalid_nodegroup_is_rejected_by_eksctl(tmp_path):
    def min_above_max(config):
        ng = config["managedNodeGroups"][0]
        del ng["desiredCapacity"]
        ng["minSize"] = 6  # maxSize is 5

    with pytest.raises(EksctlError) as err:
        validate(variant(tmp_path, "bad-nodegroup", min_above_max))
    # eksctl names the sizes by their command-line flags, also for a config file
    assert "cannot use --nodes-min=6 and --nodes-max=5" in err.value.stderr, err.value.stderr


def test_auto_mode_with_managed_nodegroups_is_rejected(tmp_path):
    path = variant(tmp_path, "auto-mode", lambda c: c["autoModeConfig"].update(enabled=True))
    with pytest.raises(EksctlError) as err:
        validate(path)
    assert "not supported during cluster creation when Auto Mode is enabled" in err.value.stderr, \
        err.value.stderr


def test_pod_identity_and_irsa_settings_on_one_addon_are_rejected(tmp_path):
    def both(config):
        ebs = next(a for a in config["addons"] if a["name"] == "aws-ebs-csi-driver")
        ebs["wellKnownPolicies"] = {"ebsCSIController": True}

    with pytest.raises(EksctlError) as err:
        validate(variant(tmp_path, "both-identities", both))
    assert "useDefaultPodIdentityAssociations is set" in err.value.stderr, err.value.stderr


def test_unsupported_kubernetes_version_is_rejected(tmp_path):
    path = variant(tmp_path, "old-version", lambda c: c["metadata"].update(version="1.22"))
    with pytest.raises(EksctlError) as err:
        validate(path)
    assert "no longer supported" in err.value.stderr, err.value.stderr


def explicit_ebs_pod_identity(config, **extra):
    """The EBS CSI driver's pod identity written out instead of taken from the EKS API."""
    ebs = next(a for a in config["addons"] if a["name"] == "aws-ebs-csi-driver")
    del ebs["useDefaultPodIdentityAssociations"]
    ebs["podIdentityAssociations"] = [{
        "namespace": "kube-system",
        "serviceAccountName": "ebs-csi-controller-sa",
        "permissionPolicyARNs": ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
        **extra,
    }]
    config["addonsConfig"]["autoApplyPodIdentityAssociations"] = False


def test_explicit_ebs_pod_identity_validates_and_is_kept(tmp_path):
    normalized = validate(variant(tmp_path, "explicit-pia", explicit_ebs_pod_identity))
    ebs = next(a for a in normalized["addons"] if a["name"] == "aws-ebs-csi-driver")
    [pia] = ebs["podIdentityAssociations"]
    assert (pia["namespace"], pia["serviceAccountName"]) == ("kube-system", "ebs-csi-controller-sa")
    assert pia["permissionPolicyARNs"] == [
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]


def test_tags_on_an_addon_pod_identity_are_rejected(tmp_path):
    path = variant(tmp_path, "pia-tags",
                   lambda c: explicit_ebs_pod_identity(c, tags={"project": "fraudstream"}))
    with pytest.raises(EksctlError) as err:
        validate(path)
    assert "tags is not supported for addon.podIdentityAssociations" in err.value.stderr, \
        err.value.stderr
