"""Kafka with fraudstream_kafka_security on, as the roles set it up on the local target.

supervisord and a broker of their own (a temporary FRAUDSTREAM_HOME, free ports) run
tests/e2e/secured_kafka.yml with -vvv: the kafka role (SASL_SSL, SCRAM-SHA-512, a CA made here,
mutual TLS between broker and controller, the StandardAuthorizer) and the fraud_workloads role's
topics, users and ACLs. The whole pipeline with security on runs in molecule/default.
"""
import json
import os
import stat
import subprocess
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from conftest import ROOT, free_port, recap, run

pytestmark = pytest.mark.e2e
SUPERVISORCTL = os.path.expanduser("~/.cache/fraudstream/supervisor-venv/bin/supervisorctl")


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    home = tmp_path_factory.mktemp("secured-home")
    port, controller, jmx = free_port(), free_port(), free_port()
    env = {"FRAUDSTREAM_HOME": str(home)}
    extra = ["-e", "fraudstream_kafka_security=true", "-e", f"kafka_port={port}",
             "-e", f"kafka_controller_port={controller}", "-e", f"kafka_jmx_exporter_port={jmx}"]
    cmd = ["ansible-playbook", "-i", "inventories/local", "tests/e2e/secured_kafka.yml", *extra]
    try:
        first = run([*cmd, "-vvv", "--diff"], env_extra=env, timeout=900)
        yield {"home": home, "bootstrap": f"127.0.0.1:{port}", "controller": f"127.0.0.1:{controller}",
               "ca": str(home / "kafka/tls/ca.crt"), "first": first, "cmd": cmd, "env": env,
               "passwords": {p.name.removeprefix("kafka-"): p.read_text().strip()
                             for p in (home / "secrets").iterdir()}}
    finally:
        conf = home / "supervisor/supervisord.conf"
        if conf.exists():  # the supervisord this test started (its own socket), with its broker
            subprocess.run([SUPERVISORCTL, "-c", str(conf), "shutdown"], capture_output=True, timeout=120)


def login(secured, user, password=None):
    return dict(bootstrap_servers=secured["bootstrap"], security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=user, ssl_cafile=secured["ca"], request_timeout_ms=10000,
                sasl_plain_password=secured["passwords"][user] if password is None else password)


def produce(settings, topic):
    producer = KafkaProducer(max_block_ms=10000, **settings)
    try:
        return producer.send(topic, uuid.uuid4().bytes, partition=0).get(timeout=15)
    finally:
        producer.close(timeout=5)


def consume(settings, topic):
    consumer = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=3000, **settings)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return list(consumer)
    finally:
        consumer.close()


def refused(action, *args):
    with pytest.raises(KafkaError) as err:
        action(*args)
    return type(err.value).__name__


def module(secured, name, args):
    proc = run(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e",
                f"ansible_python_interpreter={ROOT / '.venv/bin/python'}", "-m", f"fraudstream.platform.{name}",
                "-a", json.dumps(args)], check=False, env_extra={"ANSIBLE_STDOUT_CALLBACK": "json",
                                                                 "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], proc.stdout + proc.stderr


def test_the_second_run_changes_nothing(secured):
    again = run([*secured["cmd"]], env_extra=secured["env"], timeout=600)
    assert recap(again.stdout)["localhost"]["changed"] == 0, again.stdout[-3000:]


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
    assert "Authorization" in refused(consume, producer, "fraud-scores")
    assert "Authorization" in refused(produce, scorer, "fraud-transactions")
    assert "Authorization" in refused(produce, login(secured, "monitoring"), "fraud-labels")


def test_no_secret_shows_anywhere(secured):
    """-vvv --diff output, the logs, and every file other users can read: no password in any of them."""
    home, secrets = secured["home"], [p for p in secured["passwords"].values() if p]
    assert len(secrets) >= 4, secured["passwords"].keys()
    output = secured["first"].stdout + secured["first"].stderr
    assert "fraudstream.platform.kafka_user" in output and "<ESTABLISH LOCAL CONNECTION" in output, "-vvv output"
    texts = {"ansible-playbook -vvv --diff": output}
    for path in home.rglob("*"):
        if path.is_file():
            mode = path.stat().st_mode
            if "log" in path.parts or mode & stat.S_IROTH:
                texts[str(path)] = path.read_bytes().decode(errors="replace")
            if path.parent.name in ("secrets", "tls", "keystore.d") and path.suffix in ("", ".key", ".pem"):
                assert not mode & (stat.S_IRWXG | stat.S_IRWXO), f"{path} is {oct(mode)}, not 0600"
    leaks = [where for where, text in texts.items() for secret in secrets if secret in text]
    assert not leaks, f"a password appears in {leaks}"
    assert not (home / "kafka/server.properties").stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
