"""Helpers for tests that run the producer and scorer against the real local broker."""
import json
import os
import signal
import subprocess
import time

import requests
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from conftest import BOOTSTRAP, FRAUDSTREAM, ROOT, SUPERVISORCTL, run

LOGS = ROOT / "out/logs"


def topic_flags(topics):
    return [f"--{k}={v}" for k, v in topics.items()] + [f"--bootstrap-servers={BOOTSTRAP}"]


def produce(topics, n, port, rate=0, extra=()):
    return subprocess.Popen([FRAUDSTREAM, "produce", *topic_flags(topics), f"--rate={rate}", f"--max-messages={n}",
                             f"--metrics-port={port}", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def scorer(topics, model, port, group, max_poll_records=200, extra=()):
    """A scorer process; its log goes to out/logs/scorer-<port>.log (a pipe nobody reads could fill up)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"scorer-{port}.log", "ab") as log:
        return subprocess.Popen([FRAUDSTREAM, "score", *topic_flags(topics), f"--model-dir={model}",
                                 f"--group-id={group}", f"--metrics-port={port}",
                                 f"--max-poll-records={max_poll_records}", *extra],
                                stdout=subprocess.DEVNULL, stderr=log)


def scored_ids(topics, n, timeout=180):
    """tx ids of every record in the scores topic, once n distinct ones have arrived (or timeout)."""
    return [json.loads(r.value)["tx_id"] for r in read_all(topics["scores"], expect=n, timeout=timeout)]


def read_all(topic, expect=None, timeout=120, headers=False):
    """Every record of a topic; waits until `expect` distinct tx ids (or records) have arrived."""
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    records, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
        if expect is not None and len({r.value for r in records} if headers else
                                       {json.loads(r.value)["tx_id"] for r in records}) >= expect:
            break
        if expect is None and time.monotonic() > deadline - timeout + 5:
            break
    consumer.close()
    return records


def read_to_end(topic, timeout=60):
    """Every record of a topic as of now: read until each partition's end offset."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends, records, deadline = consumer.end_offsets(tps), [], time.monotonic() + timeout
    while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    return records


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=60)
    return proc.returncode


def metric(port, name, *where):
    """A metric's value (summed over the series whose line contains every `where` text), or -1
    while the endpoint is not up yet."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return -1
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name) and all(w in line for w in where))




def supervisorctl(*args):
    """Drive the platform's own supervisord (roles/local_services)."""
    home = os.environ.get("FRAUDSTREAM_HOME", os.path.expanduser("~/.local/share/fraudstream"))
    return run([SUPERVISORCTL, "-c", f"{home}/supervisor/supervisord.conf", *args])


def source_positions(topic, n):
    """{tx_id: (partition, offset)} of the n transactions in a topic."""
    return {json.loads(r.value)["tx_id"]: (r.partition, r.offset) for r in read_all(topic, expect=n)}


def scored_past_commits(scores_topic, group, source):
    """tx ids scored so far whose transaction lies at or past the group's committed offset: what
    at-least-once may score again if the scorer dies now (read after it died)."""
    committed = group_offsets(group)
    scored = {json.loads(r.value)["tx_id"] for r in read_to_end(scores_topic)}
    return {tx for tx in scored if source[tx][1] >= committed.get(source[tx][0], 0)}


def group_offsets(group, timeout=120):
    """{transactions partition: committed offset} of a group, once the broker answers again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
            offsets = admin.list_group_offsets({group: None})[group]
            admin.close()
            return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic.endswith("-transactions")}
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
