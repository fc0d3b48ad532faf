"""Kafka and monitoring with fraudstream_kafka_security and fraudstream_monitoring_security on, as
the roles set them up on the local target.

supervisord, a broker, Prometheus and Alertmanager of their own (a temporary FRAUDSTREAM_HOME, free
ports) run tests/e2e/secured.yml with -vvv: the kafka role (SASL_SSL, SCRAM-SHA-512, a CA made here,
mutual TLS between broker and controller, the StandardAuthorizer), the fraud_workloads role's
topics, users and ACLs, and the monitoring role (HTTPS and basic auth, a webhook URL with a token).
The whole pipeline with both on (verify, the drill, and a second converge with changed=0) runs in
molecule/default.
"""
import json
import re
import stat
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from conftest import ROOT, free_port, run, shutdown_supervisord

pytestmark = pytest.mark.e2e
# A webhook receiver's token (nothing listens at 127.0.0.1:9: Alertmanager logs each failed delivery).
WEBHOOK_TOKEN = uuid.uuid4().hex


class ArgvWatch(threading.Thread):
    """Every command line seen on this machine while it runs (/proc/*/cmdline, every 20 ms): what any
    local user can read. A tool started with a password in its argv shows here."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen, self.done = set(), threading.Event()

    def run(self):
        while not self.done.wait(0.02):
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:  # the process ended
                    pass


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    home = tmp_path_factory.mktemp("secured-home")
    port, controller, jmx, prom, am = (free_port() for _ in range(5))
    env = {"FRAUDSTREAM_HOME": str(home)}
    # The token as a user passes a secret: in a vars file (vaulted in real life), not on the command line.
    secret_vars = tmp_path_factory.mktemp("secret-vars") / "webhook.yml"
    secret_vars.touch(mode=0o600)
    secret_vars.write_text(json.dumps({"monitoring_alertmanager_webhook_credentials": WEBHOOK_TOKEN}))
    extra = ["-e", "fraudstream_kafka_security=true", "-e", f"kafka_port={port}",
             "-e", f"kafka_controller_port={controller}", "-e", f"kafka_jmx_exporter_port={jmx}",
             "-e", "fraudstream_monitoring_security=true", "-e", f"monitoring_prometheus_port={prom}",
             "-e", f"monitoring_alertmanager_port={am}",
             "-e", "monitoring_alertmanager_webhook_url=http://127.0.0.1:9/hooks/fraud",
             "-e", f"@{secret_vars}"]
    cmd = ["ansible-playbook", "-i", "inventories/local", "tests/e2e/secured.yml", *extra]
    try:
        argv = ArgvWatch()
        argv.start()
        try:
            first = run([*cmd, "-vvv", "--diff"], env_extra=env, timeout=900)
        finally:
            argv.done.set()
        yield {"home": home, "bootstrap": f"127.0.0.1:{port}", "controller": f"127.0.0.1:{controller}",
               "ca": str(home / "kafka/tls/ca.crt"), "first": first, "argv": argv.seen,
               "prometheus": f"https://127.0.0.1:{prom}", "alertmanager": f"https://127.0.0.1:{am}",
               "monitoring_ca": str(home / "monitoring-tls/ca.crt"),
               "passwords": {p.name.removeprefix("kafka-"): p.read_text().strip()
                             for p in (home / "secrets").iterdir()}}
    finally:
        shutdown_supervisord(home)  # the supervisord this test started (its own socket), with its broker


def test_monitoring_takes_only_its_login_over_https(secured):
    """Prometheus and Alertmanager: no login or a wrong one gets 401, plain HTTP is answered 400, the
    right login over the monitoring CA gets in, and Prometheus itself logs in to both."""
    ca, password = secured["monitoring_ca"], secured["passwords"]["monitoring-web"]
    for url in (secured["prometheus"], secured["alertmanager"]):
        assert requests.get(f"{url}/-/healthy", verify=ca, timeout=10).status_code == 401, url
        wrong = requests.get(f"{url}/-/healthy", auth=("fraudstream", "not-" + password), verify=ca, timeout=10)
        assert wrong.status_code == 401, url
        plain = requests.get(url.replace("https://", "http://") + "/-/healthy", timeout=10)
        assert plain.status_code == 400 and "HTTPS" in plain.text, (url, plain.status_code, plain.text)
        assert requests.get(f"{url}/-/healthy", auth=("fraudstream", password), verify=ca, timeout=10).ok, url
    deadline = time.monotonic() + 90
    while True:
        targets = requests.get(f"{secured['prometheus']}/api/v1/targets", auth=("fraudstream", password),
                               verify=ca, timeout=10).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets if t["labels"]["job"] in ("prometheus", "alertmanager")}
        if health == {"prometheus": "up", "alertmanager": "up"} or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert health == {"prometheus": "up", "alertmanager": "up"}, targets


def test_prometheus_alert_module_logs_in(secured):
    args = {"url": secured["prometheus"], "name": "KafkaBrokerDown", "state": "inactive", "timeout": 30}
    anonymous, _ = module(secured, "prometheus_alert", {**args, "ca_path": secured["monitoring_ca"]})
    assert anonymous.get("failed") and "401" in anonymous["msg"] and "url_username" in anonymous["msg"], anonymous
    logged_in, out = module(secured, "prometheus_alert", {
        **args, "ca_path": secured["monitoring_ca"], "url_username": "fraudstream",
        "url_password": secured["passwords"]["monitoring-web"]})
    assert not logged_in.get("failed"), logged_in
    assert secured["passwords"]["monitoring-web"] not in out


def login(secured, user):
    """librdkafka settings (the apps' client) of a workload's user."""
    return {"bootstrap.servers": secured["bootstrap"], "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": secured["passwords"][user],
            "ssl.ca.location": secured["ca"]}


def produce(settings, topic):
    """One record to partition 0; raises KafkaException with the broker's error."""
    errors = []
    producer = Producer({**settings, "message.timeout.ms": 15000})
    producer.produce(topic, uuid.uuid4().bytes, partition=0, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(20)
    if not errors or errors[0] is not None:
        raise KafkaException(errors[0] if errors else "no delivery report within 20 s")


def consume(settings, topic):
    """Partition 0 from its beginning until 5 s pass without a record; raises on the broker's error."""
    consumer = Consumer({**settings, "group.id": "fraud-consumer-security-test", "enable.auto.commit": False})
    records = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while (msg := consumer.poll(5)) is not None:
            if msg.error():
                raise KafkaException(msg.error())
            records.append(msg.value())
        return records
    finally:
        consumer.close()


def refused(action, *args):
    with pytest.raises(KafkaException) as err:
        action(*args)
    return err.value.args[0].name()


def module(secured, name, args):
    proc = run(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e",
                f"ansible_python_interpreter={ROOT / '.venv/bin/python'}", "-m", f"fraudstream.platform.{name}",
                "-a", json.dumps(args)], check=False, env_extra={"ANSIBLE_STDOUT_CALLBACK": "json",
                                                                 "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], proc.stdout + proc.stderr


def test_only_the_right_login_gets_in(secured):
    fast = {"bootstrap_servers": [secured["bootstrap"]], "request_timeout_ms": 5000}
    anonymous, _ = module(secured, "kafka_topic_info", fast)
    assert anonymous.get("failed") and "connected with PLAINTEXT to a TLS listener" in anonymous["msg"], anonymous
    controller, _ = module(secured, "kafka_topic_info", {**fast, "bootstrap_servers": [secured["controller"]]})
    assert controller.get("failed"), "the controller listener takes no client without a certificate"
    wrong, out = module(secured, "kafka_topic_info", {
        **fast, "security_protocol": "SASL_SSL", "sasl_username": "producer", "sasl_password": "not-" + uuid.uuid4().hex,
        "ssl_cafile": secured["ca"]})
    assert wrong.get("failed") and "authentication failed" in wrong["msg"] and "wrong sasl_username or sasl_password" \
        in wrong["msg"], wrong
    assert "Traceback" not in out


def test_each_workload_can_do_its_job_and_nothing_else(secured):
    producer, scorer = login(secured, "producer"), login(secured, "scorer")
    produce(producer, "fraud-transactions")
    assert consume(scorer, "fraud-transactions"), "the scorer reads what the producer wrote"
    produce(scorer, "fraud-scores")
    # The producer has no ACL on fraud-scores, nor any group: librdkafka is refused at the group first.
    assert refused(consume, producer, "fraud-scores") in ("TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED")
    # Monitoring may describe fraud-transactions and the scorers' groups, not read the records.
    assert refused(consume, login(secured, "monitoring"), "fraud-transactions") == "TOPIC_AUTHORIZATION_FAILED"
    assert refused(produce, scorer, "fraud-transactions") == "TOPIC_AUTHORIZATION_FAILED"
    assert refused(produce, login(secured, "monitoring"), "fraud-labels") == "TOPIC_AUTHORIZATION_FAILED"


def test_no_secret_shows_anywhere(secured):
    """-vvv --diff output, the logs, every file and every process's command line other users can read:
    no password in any of them."""
    home, secrets = secured["home"], [p for p in secured["passwords"].values() if p]
    assert len(secrets) >= 5, secured["passwords"].keys()
    secrets.append(WEBHOOK_TOKEN)
    output = secured["first"].stdout + secured["first"].stderr
    assert "AnsiballZ_kafka_user.py" in output and "ESTABLISH LOCAL CONNECTION" in output, "-vvv output"
    # The broker's storage was formatted with the admin's SCRAM credential, from a file (java @file).
    assert any("format.args" in cmdline for cmdline in secured["argv"]), "the format's command line was seen"
    texts = {"ansible-playbook -vvv --diff": output, "a process's command line": "\n".join(secured["argv"])}
    for path in home.rglob("*"):
        if path.is_file():
            mode = path.stat().st_mode
            if "log" in path.parts or mode & stat.S_IROTH:
                texts[str(path)] = path.read_bytes().decode(errors="replace")
            if path.parent.name in ("secrets", "tls", "keystore.d", "monitoring-tls") and \
                    path.suffix in ("", ".key", ".pem") or path.name in ("alertmanager.yml", "web-config.yml"):
                assert not mode & (stat.S_IRWXG | stat.S_IRWXO), f"{path} is {oct(mode)}, not 0600"
    leaks = [where for where, text in texts.items() for secret in secrets if secret in text]
    mask = re.compile("|".join(map(re.escape, secrets)))
    leaky_argv = [mask.sub("<password>", cmdline[:300]) for cmdline in secured["argv"] if mask.search(cmdline)]
    assert not leaks, f"a password appears in {leaks}; command lines: {leaky_argv}"
    assert not (home / "kafka/server.properties").stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)


@pytest.mark.parametrize("extra, fragment", [
    (["-e", "fraudstream_bind_address=10.1.2.3"], "is not a loopback address, and Kafka security is off"),
    (["-e", "fraudstream_kafka_security=true", "-e", '{"fraudstream_kafka_passwords": {"admin": "pa,ss=word-1"}}'],
     "needs a password of 12 characters or more, without ','"),
])
def test_preflight_refuses_an_exposed_broker_and_an_unusable_admin_password(tmp_path, extra, fragment):
    proc = run(["ansible-playbook", "site.yml", "--check", "--tags", "kafka_preflight", *extra], check=False,
               env_extra={"FRAUDSTREAM_HOME": str(tmp_path)})
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and fragment in out, out[-2000:]
    assert "pa,ss=word-1" not in out
    assert not (tmp_path / "secrets").exists() or "security=true" in " ".join(extra)
