"""Policy: checkov over every rendered object, and no failed check that is not a documented skip.

The objects of tests/k8s/render.yml (both sizes) are written one file per object and checked with
`checkov --framework kubernetes` (tools/checkov.sh: checkov in a venv of its own under
${FRAUDSTREAM_CACHE:-~/.cache/fraudstream}, created on first use, about a minute). A check that
fails is fixed in the role, or listed in tests/k8s/checkov-skips.yml with its object and the reason,
and explained in docs/k8s-policy.md. A listed skip that no longer fails is an error too, so the
list says what is true today. A deliberately insecure Deployment goes through the same run: it
must fail, or the run proved nothing.
"""
import fnmatch
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from test_manifests import ROOT, SIZES, objects_of, rendered

HERE = Path(__file__).resolve().parent
CHECKOV = ROOT / "tools" / "checkov.sh"
SKIPS_FILE = HERE / "checkov-skips.yml"
POLICY_DOC = ROOT / "docs" / "k8s-policy.md"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
# The canary: what checkov must flag, or the run is not checking anything.
CANARY = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "canary", "namespace": "policy-canary"},
    "spec": {"selector": {"matchLabels": {"app": "canary"}}, "template": {
        "metadata": {"labels": {"app": "canary"}},
        "spec": {"hostNetwork": True, "containers": [
            {"name": "c", "image": "registry.example.com/canary:latest", "securityContext": {"privileged": True}}]}}},
}
CANARY_MUST_FAIL = {"CKV_K8S_16", "CKV_K8S_19", "CKV_K8S_14", "CKV_K8S_13"}  # privileged, hostNetwork, :latest, no memory limit


def load_skips() -> list[dict]:
    data = yaml.safe_load(SKIPS_FILE.read_text()) or {}
    return data.get("skips") or []


def skip_for(finding: dict, skips: list[dict]) -> dict | None:
    return next((s for s in skips if s["check"] == finding["check_id"]
                 and fnmatch.fnmatchcase(finding["resource"], s["resource"])), None)


@pytest.fixture(scope="module")
def checkov(tmp_path_factory):
    """checkov's findings: {"failed": [...], "passed": [...]}, each with size and role of its file."""
    for size in SIZES:
        if "error" in rendered()[size]:
            pytest.fail(f"rendering failed (see test_manifests.py::test_render[{size}])")
    root = tmp_path_factory.mktemp("checkov")
    origin = {}
    for size in SIZES:
        for i, (role, obj) in enumerate(objects_of(size)):
            meta = obj["metadata"]
            rel = f"{size}/{role}/{i:03d}-{obj['kind']}-{meta.get('namespace', '_')}-{meta['name']}.yaml".lower()
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(yaml.safe_dump(obj, sort_keys=False))
            origin[f"/{rel}"] = (size, role)
    (root / "canary").mkdir()
    (root / "canary" / "canary.yaml").write_text(yaml.safe_dump(CANARY, sort_keys=False))
    origin["/canary/canary.yaml"] = ("canary", "canary")
    # The venv is made on first use (tools/checkov.sh); give that the time it takes cold.
    proc = subprocess.run([str(CHECKOV), "-d", str(root), "--framework", "kubernetes", "--output", "json",
                           "--skip-download", "--compact"],
                          cwd=root, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "LOG_LEVEL": "WARNING"})
    # checkov exits 1 when a check failed; anything else, or no JSON, is a broken run.
    assert proc.returncode in (0, 1), f"checkov exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    findings = {"failed": [], "passed": []}
    for rep in reports:
        if rep.get("check_type") != "kubernetes":
            continue
        results = rep.get("results") or {}
        # Checks skipped by a checkov.io/skip annotation in an object count as failures: the only
        # accepted skips are the documented ones.
        for key, bucket in (("failed_checks", "failed"), ("skipped_checks", "failed"), ("passed_checks", "passed")):
            for item in results.get(key) or []:
                size, role = origin.get(item["file_path"], ("?", "?"))
                findings[bucket].append({"check_id": item["check_id"], "check_name": item.get("check_name"),
                                         "resource": item["resource"], "file": item["file_path"],
                                         "size": size, "role": role,
                                         "annotation_skip": key == "skipped_checks"})
    return findings


def test_canary_fails(checkov):
    """The insecure Deployment is caught: checkov read the files and ran its Kubernetes checks."""
    failed = {f["check_id"] for f in checkov["failed"] if f["size"] == "canary"}
    assert CANARY_MUST_FAIL <= failed, f"checkov did not flag the canary: missing {sorted(CANARY_MUST_FAIL - failed)}"


def test_every_workload_checked(checkov):
    """Every rendered workload appears in checkov's results (none was left unparsed)."""
    seen = {(f["size"], f["resource"]) for bucket in checkov.values() for f in bucket}
    missing = [f"{size}: {obj['kind']}.{obj['metadata'].get('namespace')}.{obj['metadata']['name']}"
               for size in SIZES for _, obj in objects_of(size) if obj["kind"] in WORKLOAD_KINDS
               and (size, f"{obj['kind']}.{obj['metadata'].get('namespace', 'default')}.{obj['metadata']['name']}") not in seen]
    assert not missing, "checkov reported nothing for:\n" + "\n".join(missing)


@pytest.mark.parametrize("size", SIZES)
def test_no_undocumented_failures(checkov, size):
    skips = load_skips()
    failures = sorted({(f["check_id"], f["resource"], f["role"], f["check_name"], f["annotation_skip"])
                       for f in checkov["failed"] if f["size"] == size and not skip_for(f, skips)})
    lines = [f"{check} {resource} ({role}): {name}" + (" [skipped by an annotation in the object]" if ann else "")
             for check, resource, role, name, ann in failures]
    assert not lines, (f"{len(lines)} checkov checks fail on the {size} manifests; fix them in the role, or list "
                       f"them in {SKIPS_FILE.relative_to(ROOT)} and {POLICY_DOC.relative_to(ROOT)} with the reason:\n"
                       + "\n".join(lines))


def test_skips_still_fail(checkov):
    """A skip that matches no failure any more is stale: remove it (and its line in the doc)."""
    failing = [f for f in checkov["failed"] if f["size"] in SIZES]
    stale = [f"{s['check']} {s['resource']}" for s in load_skips()
             if not any(skip_for(f, [s]) for f in failing)]
    assert not stale, "skips that no longer fail:\n" + "\n".join(stale)


def test_skips_documented():
    """Each skip names a check, an object and a reason, and docs/k8s-policy.md explains it."""
    doc = POLICY_DOC.read_text()
    problems = []
    for skip in load_skips():
        if not {"check", "resource", "reason"} <= skip.keys() or not str(skip.get("reason", "")).strip():
            problems.append(f"{skip}: needs check, resource and reason")
            continue
        if not skip["check"].startswith("CKV"):
            problems.append(f"{skip['check']}: not a checkov check id")
        if f"`{skip['check']}`" not in doc or f"`{skip['resource']}`" not in doc:
            problems.append(f"{skip['check']} {skip['resource']}: not in {POLICY_DOC.name} "
                            f"(as `{skip['check']}` and `{skip['resource']}`)")
    assert not problems, "\n".join(problems)
