"""Every Kubernetes object the roles apply, rendered without a cluster and checked against schemas.

tests/k8s/render.yml includes each role's pure tasks/kubernetes/manifests.yml and writes the
objects to JSON, once per size (dev, prod), when this module is collected. Then, per object:
core kinds against kubernetes-validate's strict schemas (unknown fields fail, as kubectl's
server-side strict validation does), Strimzi and prometheus-operator kinds against the
openAPIV3Schema of the served version in the CRDs of ../shared/crds (FRAUDSTREAM_CRDS_DIR
overrides; skipped, saying why, when absent), and the contract's labels and namespaces. Then,
per size, what a schema cannot see: selectors that select nothing, storage on another class,
a Kafka of the wrong size. The API server checks the schemas once more when the lead's molecule
scenario applies the same objects.
"""
import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDER_YML = Path(__file__).resolve().parent / "render.yml"
# The newest Kubernetes minor kubernetes-validate knows (requirements.txt pins the package).
K8S_VERSION = "1.37.0"
SIZES = ("dev", "prod")
ROLES = ("kafka", "monitoring", "fraud_workloads")
# What render.yml stands in for: roles/storage's fact, the image, the vault's password.
STORAGE_CLASS = "standard"
APPS_IMAGE = "registry.example.com/fraudstream/apps:1.0.0"
# The contract's project-wide variables (inventories/k8s/group_vars/all.yml), for a clone that
# has no inventories/k8s yet; the checks below read the values of the inventory actually used.
CONTRACT_VARS = {
    "fraudstream_target": "kubernetes",
    "fraudstream_kubeconfig": "/nonexistent/kubeconfig",
    "fraudstream_kube_context": "",
    "fraudstream_namespaces": {"kafka": "kafka", "monitoring": "monitoring", "fraud": "fraud"},
    "fraudstream_size": "dev",
    "fraudstream_kafka_cluster": "fraudstream",
    "fraudstream_monitoring_release": "kube-prometheus-stack",
    "fraudstream_operators_install": True,
    "fraudstream_crds_dir": "",
    "fraudstream_wait_ready": True,
    "fraudstream_apps_image": APPS_IMAGE,
}
PART_OF = ("app.kubernetes.io/part-of", "fraudstream")
MANAGED_BY = ("app.kubernetes.io/managed-by", "fraudstream-ansible")
# Core kinds without a namespace (CRD kinds say so in their spec.scope).
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "PriorityClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "CSIDriver", "IngressClass", "RuntimeClass",
    "VolumeAttachment", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
MONITORING_KINDS = {"PrometheusRule", "ServiceMonitor", "PodMonitor", "Probe", "ScrapeConfig"}
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Broker defaults of what the size decides, when the Kafka CR leaves them out.
KAFKA_DEFAULTS = {"default.replication.factor": 1, "min.insync.replicas": 1, "offsets.topic.replication.factor": 3,
                  "transaction.state.log.replication.factor": 3, "transaction.state.log.min.isr": 2}
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# -- rendering -----------------------------------------------------------------------------------
def _ansible_playbook() -> str:
    venv = ROOT / ".venv" / "bin" / "ansible-playbook"
    return str(venv) if venv.exists() else (shutil.which("ansible-playbook") or "ansible-playbook")


def _inventory(workdir: Path) -> Path:
    """inventories/k8s, or (a clone without it yet) one written from the contract's variables."""
    if (ROOT / "inventories" / "k8s" / "hosts.yml").exists():
        return ROOT / "inventories" / "k8s"
    inv = workdir / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"fraudstream": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(CONTRACT_VARS))
    return inv


def _render_one(inventory: Path, workdir: Path, size: str) -> dict:
    out = workdir / f"{size}.json"
    extra = workdir / f"{size}-vars.json"
    extra.write_text(json.dumps({"fraudstream_size": size, "render_out": str(out),
                                 "fraudstream_storage_class": STORAGE_CLASS, "fraudstream_apps_image": APPS_IMAGE}))
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [_ansible_playbook(), "-i", str(inventory), str(RENDER_YML), "-e", f"@{extra}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not out.exists():
        return {"error": f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"}
    return {"roles": json.loads(out.read_text()), "vars": _inventory_vars(inventory)}


def _inventory_vars(inventory: Path) -> dict:
    """The project-wide variables the checks compare with (plain values only; templated ones are
    not needed here)."""
    path = inventory / "group_vars" / "all.yml"
    values = yaml.safe_load(path.read_text()) if path.exists() else {}
    return {**CONTRACT_VARS, **{k: v for k, v in (values or {}).items() if k in CONTRACT_VARS
                                and not (isinstance(v, str) and "{{" in v)}}


@functools.cache
def rendered() -> dict:
    """{size: {"roles": {role: [objects]}, "vars": {...}} or {"error": text}}, rendered once per
    session (both sizes at once: two ansible-playbook runs side by side)."""
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-render-"))
    try:
        inventory = _inventory(workdir)
        with ThreadPoolExecutor(len(SIZES)) as pool:
            results = dict(zip(SIZES, pool.map(lambda s: _render_one(inventory, workdir, s), SIZES), strict=True))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def objects_of(size: str) -> list[tuple[str, dict]]:
    """(role, object) for every object rendered at this size; empty when rendering failed."""
    result = rendered()[size]
    return [(role, obj) for role, objs in result.get("roles", {}).items() for obj in (objs or [])]


def object_id(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return "/".join(str(p) for p in (obj.get("kind"), meta.get("namespace", "-"), meta.get("name")))


def pytest_generate_tests(metafunc):
    """One test per rendered object (rendering happens here, at collection, once per session)."""
    if "rendered_object" in metafunc.fixturenames:
        params = [pytest.param((size, role, obj), id=f"{size}-{role}-{object_id(obj)}")
                  for size in SIZES for role, obj in objects_of(size)]
        metafunc.parametrize("rendered_object", params)


# -- schemas -------------------------------------------------------------------------------------
def crds_dir() -> Path:
    for env in ("FRAUDSTREAM_CRDS_DIR", "FRAUDSTREAM_CRDS"):
        if os.environ.get(env):
            return Path(os.environ[env])
    return ROOT.parent / "shared" / "crds"


def _strict(schema: dict) -> dict:
    """The structural part of a CRD schema with unknown fields forbidden, as the API server does
    (it prunes them, or rejects them under strict field validation): every object level that lists
    its properties, has no additionalProperties and does not preserve unknown fields. anyOf, allOf,
    oneOf and not are left alone: in a structural schema they only constrain, never add fields."""
    schema = dict(schema)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if ("additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields")
                and not schema.get("x-kubernetes-embedded-resource")):
            schema["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        schema["items"] = _strict(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _strict(schema["additionalProperties"])
    return schema


def _type(validator, types, instance, schema):
    """OpenAPI's `nullable` and Kubernetes' int-or-string on top of JSON Schema's `type`."""
    if instance is None and schema.get("nullable"):
        return
    if schema.get("x-kubernetes-int-or-string"):
        return  # checked by the keyword below
    yield from jsonschema.Draft202012Validator.VALIDATORS["type"](validator, types, instance, schema)


def _int_or_string(validator, value, instance, schema):
    if value and not (isinstance(instance, str) or (isinstance(instance, int) and not isinstance(instance, bool))):
        yield jsonschema.ValidationError(f"{instance!r} is neither an integer nor a string")


# Draft 2020-12 with the Kubernetes extensions above; other x-kubernetes-* keywords (CEL rules,
# list types) are ignored here and checked by the API server.
CRDValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"type": _type, "x-kubernetes-int-or-string": _int_or_string})


class _CRDLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML 1.1's `=` (the "value" type) occurs as a plain enum value in prometheus-operator's CRDs."""


_CRDLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@functools.cache
def crd_index() -> dict:
    """{(apiVersion, kind): {"validator", "scope"}} for every served version, and {group: [versions]}."""
    served, groups = {}, {}
    for path in sorted(crds_dir().rglob("*.y*ml")):
        for doc in yaml.load_all(path.read_text(), Loader=_CRDLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served"):
                    continue
                api_version = f"{spec['group']}/{version['name']}"
                groups.setdefault(spec["group"], []).append(version["name"])
                served[(api_version, spec["names"]["kind"])] = {
                    "validator": CRDValidator(_strict(version["schema"]["openAPIV3Schema"])),
                    "scope": spec["scope"], "file": path.name}
    return {"served": served, "groups": groups}


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def is_custom(obj: dict) -> bool:
    """Strimzi and prometheus-operator kinds (by API group), validated against ../shared/crds."""
    group = _group(obj.get("apiVersion", ""))
    return group.endswith("strimzi.io") or group == "monitoring.coreos.com"


def _error_text(err: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{where}: {err.message[:400]}"


def schema_errors(obj: dict) -> list[str]:
    """Every schema error of one object (empty: valid)."""
    if not is_custom(obj):
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            return [_error_text(err)]
        except kubernetes_validate.SchemaNotFoundError as err:
            return [err.message]
        return []
    index = crd_index()
    entry = index["served"].get((obj.get("apiVersion"), obj.get("kind")))
    if entry is None:
        group = _group(obj.get("apiVersion", ""))
        return [f"{obj.get('apiVersion')} {obj.get('kind')} is not served by the CRDs in {crds_dir()} "
                f"(served versions of {group}: {sorted(set(index['groups'].get(group, [])))})"]
    errors = [_error_text(e) for e in sorted(entry["validator"].iter_errors(obj), key=lambda e: list(e.absolute_path))]
    # The CRD schema leaves metadata to the API server: check it as core ObjectMeta.
    try:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata")},
                                     K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        errors.append(_error_text(err))
    return errors


def namespaced(obj: dict) -> bool:
    if is_custom(obj) and crds_dir().is_dir():
        entry = crd_index()["served"].get((obj.get("apiVersion"), obj.get("kind")))
        return entry is None or entry["scope"] == "Namespaced"
    return obj.get("kind") not in CLUSTER_SCOPED


# -- per object ----------------------------------------------------------------------------------
def test_kubernetes_version_supported():
    assert K8S_VERSION in kubernetes_validate.utils.all_versions(), kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("size", SIZES)
def test_render(size):
    """render.yml ran, and every role gave objects (an empty list would pass everything below)."""
    result = rendered()[size]
    assert "error" not in result, result.get("error")
    for role in ROLES:
        objs = result["roles"].get(role)
        assert isinstance(objs, list) and objs, f"__{role}_manifests is empty or not a list: {objs!r}"
        for obj in objs:
            assert isinstance(obj, dict) and {"apiVersion", "kind", "metadata"} <= obj.keys(), \
                f"{role}: not a Kubernetes object: {str(obj)[:300]}"


def test_schema(rendered_object):
    _, _, obj = rendered_object
    if is_custom(obj) and not crds_dir().is_dir():
        pytest.skip(f"no CRD schemas at {crds_dir()} (../shared/crds beside the clone, or FRAUDSTREAM_CRDS_DIR): "
                    f"{obj.get('apiVersion')} {obj.get('kind')} is checked by the API server only")
    errors = schema_errors(obj)
    assert not errors, f"{object_id(obj)} ({obj.get('apiVersion')}):\n" + "\n".join(errors)


def test_contract_metadata(rendered_object):
    """The contract: the two fraudstream labels, an explicit namespace among fraudstream_namespaces,
    names and label values the API server accepts, the chart's `release` label on monitoring CRs."""
    size, role, obj = rendered_object
    variables = rendered()[size]["vars"]
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    problems = []
    for key, value in (PART_OF, MANAGED_BY):
        if labels.get(key) != value:
            problems.append(f"label {key}={value} missing (has {labels.get(key)!r})")
    name = meta.get("name") or ""
    if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        problems.append(f"name {name!r} is not a DNS-1123 subdomain")
    for key, value in labels.items():
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            problems.append(f"label {key}: {value!r} is not a valid label value")
    if namespaced(obj):
        allowed = set(variables["fraudstream_namespaces"].values())
        if meta.get("namespace") not in allowed:
            problems.append(f"metadata.namespace {meta.get('namespace')!r} is not one of "
                            f"fraudstream_namespaces {sorted(allowed)}")
    elif "namespace" in meta:
        problems.append(f"cluster-scoped {obj['kind']} has metadata.namespace")
    if obj["kind"] in MONITORING_KINDS and labels.get("release") != variables["fraudstream_monitoring_release"]:
        problems.append(f"label release={variables['fraudstream_monitoring_release']} missing (the chart selects on it)")
    assert not problems, f"{role}: {object_id(obj)}:\n" + "\n".join(problems)


def _without_forwarded_listeners(obj: dict) -> dict:
    """The object less the advertised addresses of Kafka listeners reached by `kubectl port-forward`
    (the kafka role's admin listener advertises the forwarding end, a loopback address, on purpose)."""
    if obj.get("kind") != "Kafka":
        return obj
    obj = copy.deepcopy(obj)
    for listener in ((obj.get("spec") or {}).get("kafka") or {}).get("listeners") or []:
        for broker in (listener.get("configuration") or {}).get("brokers") or []:
            broker.pop("advertisedHost", None)
    return obj


def test_nothing_local(rendered_object):
    """Nothing of the local target leaks in: no loopback address, no supervisorctl, no local paths."""
    _, role, obj = rendered_object
    text = json.dumps(_without_forwarded_listeners(obj))
    for local in ("127.0.0.1", "supervisorctl", ".local/share/fraudstream"):
        assert local not in text, f"{role}: {object_id(obj)} mentions {local}"


# -- per size: what one object alone cannot show ---------------------------------------------------
def _all(size) -> list[dict]:
    result = rendered()[size]
    if "error" in result:
        pytest.fail(f"rendering failed (see test_render[{size}])")
    return [obj for _, obj in objects_of(size)]


def _walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _selects(selector: dict | None, labels: dict | None) -> bool:
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) over a label set."""
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _pod_templates(objs):
    """(object, pod template) of every workload."""
    for obj in objs:
        spec = obj.get("spec") or {}
        if obj["kind"] in POD_TEMPLATE_KINDS and "template" in spec:
            yield obj, spec["template"]
        elif obj["kind"] == "CronJob":
            yield obj, spec["jobTemplate"]["spec"]["template"]
        elif obj["kind"] == "Pod":
            yield obj, obj


def _container_ports(template) -> list[dict]:
    spec = template.get("spec") or {}
    return [p for c in spec.get("containers") or [] for p in c.get("ports") or []]


@pytest.mark.parametrize("size", SIZES)
def test_unique_objects(size):
    seen, dups = set(), []
    for obj in _all(size):
        key = (_group(obj["apiVersion"]), obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        (dups.append(key) if key in seen else seen.add(key))
    assert not dups, f"objects rendered twice (one would overwrite the other): {dups}"


@pytest.mark.parametrize("size", SIZES)
def test_workload_selectors_match_their_pods(size):
    problems = []
    for obj, template in _pod_templates(_all(size)):
        selector = (obj.get("spec") or {}).get("selector")
        if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"} \
                and not _selects(selector, (template.get("metadata") or {}).get("labels")):
            problems.append(f"{object_id(obj)}: selector {selector} does not select its own pod template")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_services_select_pods(size):
    """A Service of ours that selects no pod of ours (same namespace), or targets a port name no
    selected container has, is an outage the schemas cannot see. Strimzi's pods are made by the
    operator, so Services in the Kafka namespace are only reported when they select nothing at all
    and do not use strimzi.io labels."""
    objs = _all(size)
    pods = [(obj["metadata"].get("namespace"), (t.get("metadata") or {}).get("labels") or {}, _container_ports(t))
            for obj, t in _pod_templates(objs)]
    problems = []
    for svc in (o for o in objs if o["kind"] == "Service"):
        selector = (svc.get("spec") or {}).get("selector")
        if not selector or any(k.startswith("strimzi.io/") for k in selector):
            continue  # headless/external-name Services and operator-made pods
        ns = svc["metadata"].get("namespace")
        selected = [ports for pns, labels, ports in pods if pns == ns and _selects({"matchLabels": selector}, labels)]
        if not selected:
            problems.append(f"{object_id(svc)}: selector {selector} selects no pod template in {ns}")
            continue
        names = {p.get("name") for ports in selected for p in ports}
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in names:
                problems.append(f"{object_id(svc)}: targetPort {target!r} is no container port name "
                                f"of the selected pods {sorted(n for n in names if n)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_monitors_select_targets(size):
    """ServiceMonitors select one of our Services and name one of its ports; PodMonitors select
    pods with the named container port. A monitor that selects nothing scrapes nothing, silently."""
    objs = _all(size)
    problems = []
    services = [o for o in objs if o["kind"] == "Service"]
    pods = [(obj["metadata"].get("namespace"), (t.get("metadata") or {}).get("labels") or {}, _container_ports(t))
            for obj, t in _pod_templates(objs)]
    for mon in (o for o in objs if o["kind"] in {"ServiceMonitor", "PodMonitor"}):
        spec = mon.get("spec") or {}
        ns_sel = spec.get("namespaceSelector") or {}
        namespaces = set(ns_sel.get("matchNames") or [mon["metadata"].get("namespace")])
        if ns_sel.get("any"):
            namespaces = None
        if any(k.startswith("strimzi.io/") for k in (spec.get("selector") or {}).get("matchLabels") or {}):
            continue  # Strimzi's pods and Services are the operator's, not rendered here
        if mon["kind"] == "ServiceMonitor":
            targets = [s for s in services if (namespaces is None or s["metadata"].get("namespace") in namespaces)
                       and _selects(spec.get("selector"), s["metadata"].get("labels"))]
            ports = {p.get("name") for s in targets for p in s["spec"].get("ports") or []}
            wanted = [e.get("port") for e in spec.get("endpoints") or []]
        else:
            targets = [p for p in pods if (namespaces is None or p[0] in namespaces) and _selects(spec.get("selector"), p[1])]
            ports = {p.get("name") for t in targets for p in t[2]}
            wanted = [e.get("port") for e in spec.get("podMetricsEndpoints") or []]
        if not targets:
            problems.append(f"{object_id(mon)}: selector {spec.get('selector')} selects nothing "
                            f"in {namespaces or 'any namespace'}")
        for port in wanted:
            if port is not None and port not in ports:
                problems.append(f"{object_id(mon)}: port {port!r} is not a port name of what it selects "
                                f"{sorted(n for n in ports if n)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_storage_class(size):
    """Every PVC and every Strimzi persistent-claim volume uses fraudstream_storage_class."""
    problems = []
    for obj in _all(size):
        for node in _walk(obj):
            if not isinstance(node, dict):
                continue
            if "storageClassName" in node and node["storageClassName"] != STORAGE_CLASS:
                problems.append(f"{object_id(obj)}: storageClassName {node['storageClassName']!r}")
            if node.get("type") == "persistent-claim" and node.get("class") != STORAGE_CLASS:
                problems.append(f"{object_id(obj)}: persistent-claim class {node.get('class')!r}")
        if obj["kind"] == "PersistentVolumeClaim" and "storageClassName" not in obj.get("spec", {}):
            problems.append(f"{object_id(obj)}: no storageClassName (would take whatever the cluster defaults to)")
    assert not problems, f"expected class {STORAGE_CLASS!r}:\n" + "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_kafka_size(size):
    """dev: one Kafka node, replication 1. prod: three nodes, replication 3, min ISR 2 (the contract)."""
    objs = _all(size)
    variables = rendered()[size]["vars"]
    cluster, kafka_ns = variables["fraudstream_kafka_cluster"], variables["fraudstream_namespaces"]["kafka"]
    kafkas = [o for o in objs if o["kind"] == "Kafka"]
    assert [(k["metadata"]["name"], k["metadata"].get("namespace")) for k in kafkas] == [(cluster, kafka_ns)]
    pools = [o for o in objs if o["kind"] == "KafkaNodePool"]
    for obj in pools + [o for o in objs if o["kind"] in {"KafkaTopic", "KafkaUser"}]:
        assert (obj["metadata"].get("labels") or {}).get("strimzi.io/cluster") == cluster, \
            f"{object_id(obj)} is not labelled strimzi.io/cluster={cluster}"
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"].get("roles", []))
    expected = {"dev": (1, 1, 1), "prod": (3, 3, 2)}[size]
    assert brokers == expected[0], f"{size}: {brokers} broker nodes, expected {expected[0]}"
    config = {**KAFKA_DEFAULTS, **(kafkas[0]["spec"]["kafka"].get("config") or {})}
    for key, want in (("default.replication.factor", expected[1]), ("offsets.topic.replication.factor", expected[1]),
                      ("transaction.state.log.replication.factor", expected[1]),
                      ("min.insync.replicas", expected[2]), ("transaction.state.log.min.isr", expected[2])):
        assert int(config[key]) == want, f"{size}: Kafka config {key}={config[key]!r}, expected {want}"
    for topic in (o for o in objs if o["kind"] == "KafkaTopic"):
        replicas = topic["spec"].get("replicas", expected[1])
        assert replicas <= brokers, f"{object_id(topic)}: {replicas} replicas on {brokers} brokers"


@pytest.mark.parametrize("size", SIZES)
def test_apps_reach_kafka_and_use_the_image(size):
    """The workloads use fraudstream_apps_image and reach Kafka by the bootstrap Service's name."""
    _all(size)
    objs = [obj for role, obj in objects_of(size) if role == "fraud_workloads"]
    variables = rendered()[size]["vars"]
    bootstrap = f"{variables['fraudstream_kafka_cluster']}-kafka-bootstrap.{variables['fraudstream_namespaces']['kafka']}.svc"
    images = {c.get("image") for _, t in _pod_templates(objs)
              for c in (t.get("spec") or {}).get("containers", []) + (t.get("spec") or {}).get("initContainers", [])}
    assert APPS_IMAGE in images, f"no workload runs fraudstream_apps_image {APPS_IMAGE}: {sorted(map(str, images))}"
    mentions = {m for node in _walk(objs) if isinstance(node, str) for m in re.findall(r"[\w.-]*kafka-bootstrap[\w.-]*", node)}
    assert mentions, "no fraud_workloads object names the Kafka bootstrap Service"
    assert mentions <= {bootstrap, f"{bootstrap}.cluster.local"}, f"expected only {bootstrap}, found {sorted(mentions)}"


if __name__ == "__main__":  # python tests/k8s/test_manifests.py: print what the roles render
    json.dump({s: rendered()[s] for s in SIZES}, sys.stdout, indent=1)


# -- the PrometheusRules as Prometheus loads them --------------------------------------------------
K8S_RULE_TESTS = ROOT / "roles/monitoring/files/rules/tests/kubernetes"


@pytest.mark.parametrize("size", SIZES)
def test_prometheus_rules_pass_promtool_and_the_kubernetes_rule_tests(size, tmp_path):
    """The rendered PrometheusRules' groups are plain rule files: promtool checks them, and the
    kubernetes unit tests (FraudConsumerDown on kube-state-metrics) run against them."""
    rules = [obj for _, obj in objects_of(size) if obj.get("kind") == "PrometheusRule"]
    assert rules, "the monitoring role renders no PrometheusRule"
    for obj in rules:
        path = tmp_path / f"{obj['metadata']['name']}.yml"
        path.write_text(yaml.safe_dump(obj["spec"]))
        subprocess.run(["promtool", "check", "rules", str(path)], check=True, capture_output=True)
    tests = sorted(K8S_RULE_TESTS.glob("*_test.yml"))
    assert tests, f"no kubernetes rule tests in {K8S_RULE_TESTS}"
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
        proc = subprocess.run(["promtool", "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
