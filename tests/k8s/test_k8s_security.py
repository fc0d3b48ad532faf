"""Kafka security on the kubernetes target (fraudstream_kafka_security, on in inventories/k8s and
eks), as rendered by tests/k8s/render.yml: a TLS listener with SCRAM-SHA-512, a login on every
listener, Strimzi's simple authorizer, KafkaUsers with the local target's least-privilege ACLs, and
apps that read their own password and the cluster CA from a Secret mounted as files. The objects
also pass the CRD schemas (test_manifests) and the API server (molecule/k8s)."""
import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDER_YML = ROOT / "tests/k8s/render.yml"
# render.yml's stand-ins for the passwords that roles/kafka/tasks/kubernetes/passwords.yml chooses.
PASSWORDS = yaml.safe_load(RENDER_YML.read_text())[0]["vars"]["fraudstream_kafka_passwords"]
APPS = {"fraud-producer": "producer", "fraud-consumer": "scorer"}


def render(tmp_path_factory, *extra):
    out = tmp_path_factory.mktemp("render") / "objects.json"
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["ansible-playbook", "-i", "inventories/k8s", str(RENDER_YML), "-e", f"render_out={out}",
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return [obj for objs in json.loads(out.read_text()).values() for obj in objs]


@pytest.fixture(scope="module", params=["dev", "prod"])
def secured(request, tmp_path_factory):
    return render(tmp_path_factory, "-e", f"fraudstream_size={request.param}")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return render(tmp_path_factory, "-e", "fraudstream_kafka_security=false")


def one(objs, kind, name=None, namespace=None):
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])
             and namespace in (None, o["metadata"].get("namespace"))]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def allows(user, operation, resource_type, name):
    """Strimzi's simple authorization for one KafkaUser: an allow ACL matches literally or by prefix."""
    for acl in user["spec"].get("authorization", {}).get("acls", []):
        res = acl["resource"]
        matches = res["name"] == name if res.get("patternType", "literal") == "literal" else name.startswith(res["name"])
        if acl.get("type", "allow") == "allow" and res["type"] == resource_type and matches \
                and (operation in acl["operations"] or "All" in acl["operations"]):
            return True
    return False


def test_every_listener_asks_for_a_login_and_only_acls_allow(secured):
    kafka = one(secured, "Kafka")
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(lst.get("authentication", {}).get("type") == "scram-sha-512" for lst in listeners), listeners
    in_cluster = [lst for lst in listeners if lst["name"] != "admin"]
    assert in_cluster and all(lst["tls"] for lst in in_cluster), "in-cluster clients speak TLS"
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple", "superUsers": ["admin"]}
    assert "userOperator" in kafka["spec"]["entityOperator"], "the User Operator turns KafkaUsers into logins"
    admin = one(secured, "KafkaUser", "admin")
    assert "authorization" not in admin["spec"], "the admin is a super user, not an ACL holder"


def test_the_apps_users_have_only_their_acls(secured):
    producer, scorer = one(secured, "KafkaUser", "producer"), one(secured, "KafkaUser", "scorer")
    for topic in ("fraud-transactions", "fraud-labels"):
        assert allows(producer, "Write", "topic", topic) and allows(scorer, "Read", "topic", topic)
    for topic in ("fraud-scores", "fraud-alerts", "fraud-transactions-dlq"):
        assert allows(scorer, "Write", "topic", topic)
        assert not allows(producer, "Read", "topic", topic) and not allows(producer, "Write", "topic", topic)
    assert not allows(scorer, "Write", "topic", "fraud-transactions"), "the scorer's user can't write transactions"
    assert not allows(producer, "Read", "group", "fraud-consumer"), "the producer joins no group"
    assert allows(scorer, "Read", "group", "fraud-consumer") and not allows(scorer, "Read", "group", "other")
    for user in (producer, scorer):
        assert not allows(user, "Alter", "cluster", "kafka-cluster") and not allows(user, "Create", "topic", "x")


def test_each_app_reads_its_own_login_from_a_mounted_secret(secured):
    kafka = one(secured, "Kafka")
    tls_port = next(lst["port"] for lst in kafka["spec"]["kafka"]["listeners"] if lst["tls"])
    text_outside_secrets = json.dumps([o for o in secured if o["kind"] != "Secret"])
    for app, user in APPS.items():
        assert PASSWORDS[user] not in text_outside_secrets, f"{user}'s password outside a Secret"
        env = one(secured, "ConfigMap", app, "fraud")["data"]
        assert env["FRAUDSTREAM_SECURITY_PROTOCOL"] == "SASL_SSL" and env["FRAUDSTREAM_SASL_USERNAME"] == user
        assert env["FRAUDSTREAM_BOOTSTRAP_SERVERS"].endswith(f".svc:{tls_port}")
        pod = one(secured, "Deployment", app)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = pod["containers"][0]["volumeMounts"]
        assert [m["readOnly"] for m in mounts] == [True]
        secret_name = volumes[mounts[0]["name"]]["secret"]["secretName"]
        assert secret_name == f"{app}-kafka", "each app mounts only its own Secret"
        assert volumes[mounts[0]["name"]]["secret"]["defaultMode"] & 0o077 in (0, 0o040), "not world-readable"
        for key, path in (("password", "FRAUDSTREAM_SASL_PASSWORD_FILE"), ("ca.crt", "FRAUDSTREAM_SSL_CAFILE")):
            assert env[path] == f"{mounts[0]['mountPath']}/{key}"
        data = one(secured, "Secret", secret_name, "fraud")["data"]
        assert base64.b64decode(data["password"]).decode() == PASSWORDS[user]
        assert b"BEGIN CERTIFICATE" in base64.b64decode(data["ca.crt"])
        # The password the KafkaUser names is the one the app reads.
        ref = one(secured, "KafkaUser", user)["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        held = one(secured, "Secret", ref["name"], "kafka")["data"][ref["key"]]
        assert base64.b64decode(held).decode() == PASSWORDS[user]
    egress = one(secured, "NetworkPolicy", "fraud-workloads-egress")["spec"]["egress"][0]["ports"]
    assert [p["port"] for p in egress] == [tls_port]


def test_security_off_is_the_plain_listener_without_users(plain):
    listeners = one(plain, "Kafka")["spec"]["kafka"]["listeners"]
    assert [(lst["name"], lst["port"], lst["tls"], "authentication" in lst) for lst in listeners][0] == \
        ("plain", 9092, False, False)
    assert "authorization" not in one(plain, "Kafka")["spec"]["kafka"]
    assert not [o for o in plain if o["kind"] == "KafkaUser"]
    assert not [o for o in plain if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-kafka")]
    assert all("volumes" not in o["spec"]["template"]["spec"] for o in plain if o["kind"] == "Deployment")
