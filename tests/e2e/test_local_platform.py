"""The embedded default end to end: `make up`, idempotence, live checks, reload, `make down`.

Tests run in file order against one platform; the last one tears it down and brings it back.
"""
import os
import re
import time
import uuid
from pathlib import Path

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import CACHE, SUPERVISORCTL, playbook, port_open, recap, run

pytestmark = pytest.mark.e2e

BOOTSTRAP = "127.0.0.1:9092"
PROMETHEUS = "http://127.0.0.1:9090"
ALERTMANAGER = "http://127.0.0.1:9093"
PORTS = {"kafka": 9092, "kafka controller": 9095, "kafka jmx exporter": 7071,
         "prometheus": 9090, "alertmanager": 9093, "fraud-producer": 8000, "fraud-consumer": 8001,
         "fraud-lag-exporter": 8010}
PROGRAMS = ("kafka", "prometheus", "alertmanager", "fraud-producer", "fraud-consumer:fraud-consumer-0",
            "fraud-lag-exporter")
HOME = Path(os.environ.get("FRAUDSTREAM_HOME", Path.home() / ".local/share/fraudstream"))


@pytest.fixture(scope="module")
def first_up(platform):
    return platform


def prom_query(expr):
    body = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def program_pid(name):
    return run([SUPERVISORCTL, "-c", str(HOME / "supervisor/supervisord.conf"), "pid", name]).stdout.strip()


def test_make_up_converges_and_verifies(first_up):
    assert recap(first_up.stdout)["localhost"]["failed"] == 0
    out = " ".join(first_up.stdout.split())  # the YAML callback wraps long lines
    assert "round trip at fraudstream-healthcheck" in out
    assert "targets up: alertmanager, fraud-consumer, fraud-producer, kafka, kafka-exporter, prometheus" in out
    assert re.search(r"Scorer: +\d+ transactions scored", out)
    assert "alerts loaded, none firing" in out
    # verify.yml ran every dashboard panel's PromQL against the live Prometheus; each returned data.
    assert re.search(r"Dashboards: +\d+ panel queries return data", out)


def test_second_make_up_changes_nothing(first_up):
    again = run(["make", "up"])
    for host, counters in recap(again.stdout).items():
        assert counters["changed"] == 0, f"{host} changed on the second run:\n{again.stdout[-5000:]}"
        assert counters["failed"] == 0


def test_kafka_produce_and_consume(first_up):
    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    try:
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        sent = {f"m{i}".encode() for i in range(200)}
        for value in sent:
            producer.send(topic, value, key=value[-1:])
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                                 group_id=f"{topic}-group", consumer_timeout_ms=10000)
        received = {record.value for record in consumer}
        consumer.close()
        assert received == sent
    finally:
        admin.delete_topics([topic])
        admin.close()


def test_prometheus_scrapes_all_targets(first_up):
    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    health = {t["labels"]["job"]: t["health"] for t in targets}
    assert health == {job: "up" for job in ("prometheus", "alertmanager", "kafka", "kafka-exporter",
                                            "fraud-producer", "fraud-consumer")}
    partitions = prom_query("kafka_server_replicamanager_partitioncount")
    assert partitions and float(partitions[0]["value"][1]) >= 1
    assert [r["metric"]["__name__"] for r in prom_query('{__name__=~"jvm_memory_used_bytes", job="kafka"}')]


def test_rules_loaded_and_alertmanager_connected(first_up):
    groups = requests.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert "KafkaBrokerDown" in names
    ams = requests.get(f"{PROMETHEUS}/api/v1/alertmanagers", timeout=10).json()["data"]["activeAlertmanagers"]
    assert [a["url"] for a in ams] == [f"{ALERTMANAGER}/api/v2/alerts"]
    assert requests.get(f"{ALERTMANAGER}/-/healthy", timeout=10).status_code == 200


def test_config_change_reloads_prometheus_without_restart(first_up):
    # site.yml's platform play alone (the workloads and verification are site.yml's other plays).
    pid = program_pid("prometheus")
    changed = playbook("playbooks/platform.yml", "-e", "monitoring_prometheus_scrape_interval=7s")
    assert recap(changed.stdout)["localhost"]["changed"] >= 1
    assert "RUNNING HANDLER [monitoring : Reload prometheus]" in changed.stdout
    config = requests.get(f"{PROMETHEUS}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
    assert "scrape_interval: 7s" in config
    assert program_pid("prometheus") == pid, "prometheus was restarted instead of reloaded"
    restored = playbook("playbooks/platform.yml")
    assert "scrape_interval: 10s" in requests.get(f"{PROMETHEUS}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
    assert recap(restored.stdout)["localhost"]["failed"] == 0


def test_bad_inventory_value_fails_with_a_clear_message(first_up):
    proc = playbook("site.yml", "-e", "kafka_controller_port=9092", check=False)
    assert proc.returncode != 0
    assert "must all differ" in proc.stdout
    assert port_open(9092), "a refused run must leave the running broker alone"


def test_make_down_leaves_nothing_and_up_works_again(first_up):
    pids = [program_pid(p) for p in PROGRAMS]
    run(["make", "down"])
    listening = [name for name, port in PORTS.items() if port_open(port)]
    assert listening == [], f"still listening after make down: {listening}"
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"processes left after make down: {alive}"
    assert not HOME.exists(), f"{HOME} left behind"
    assert (CACHE / "kafka-4.1.1/libs").is_dir(), "make down must keep the download cache"
    start = time.monotonic()
    again = run(["make", "up"])
    assert recap(again.stdout)["localhost"]["failed"] == 0
    assert all(port_open(port) for port in PORTS.values())
    print(f"make up after make down took {time.monotonic() - start:.0f}s")
