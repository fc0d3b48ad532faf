"""The scorer when quiet: CPU share and event-to-score latency at 50 and 500 tx/s. Needs `make up`.

For each rate, side by side in one run: the scorer as configured (--batch-wait-ms 5, asynchronous
commits) and the same scorer with --batch-wait-ms 0. Each scores a live stream from `fraudstream
produce --rate R` on fresh 6-partition topics. After a warm-up, for --seconds:
- CPU: the scorer process's user + system time (all threads, librdkafka's included) / wall time;
- batches: transactions per scored batch (fraudstream_scorer_batch_size);
- latency: per transaction, the score record's timestamp minus the transaction record's (both
  stamped by their producers on this machine's clock), p50 and p99.
The issue's figures before this work (45 % of a core at 50 tx/s, 1.07 transactions per batch) are
printed next to them. Writes bench/results/quiet.json and bench/results/quiet.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import scoring
from kafka import KafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/results"
BEFORE = {"rate": 50, "cpu_share": 0.45, "tx_per_batch": 64408 / 60273}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the scorer did not become ready")


def stamps(topic: str, key: str) -> dict:
    """{tx_id: record timestamp in ms} of every record of a topic, read to its end."""
    consumer = KafkaConsumer(bootstrap_servers=scoring.BOOTSTRAP, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends, out = consumer.end_offsets(tps), {}
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                out[json.loads(r.value)[key]] = r.timestamp
    consumer.close()
    return out


def run(rate: int, batch_wait_ms: float, model: str, seconds: float, warmup: float, port: int) -> dict:
    topics = scoring.names("transactions", "labels", "scores", "alerts", "dlq", "changelog")
    scoring.create(topics, 6)
    scorer = subprocess.Popen([*scoring.CLI, "score", *scoring.flags(topics), f"--model-dir={model}",
                               f"--group-id=g-{topics['scores']}", f"--metrics-port={port}",
                               f"--batch-wait-ms={batch_wait_ms}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    producer = None
    try:
        ready(port)
        producer = subprocess.Popen([*scoring.CLI, "produce", *scoring.flags(topics), f"--rate={rate}",
                                     f"--metrics-port={port + 1}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(warmup)
        cpu0, wall0, tx0 = cpu_seconds(scorer.pid), time.monotonic(), metric(port, "fraudstream_scorer_transactions_total")
        batches0, start_ms = metric(port, "fraudstream_scorer_batch_size_count"), time.time() * 1000
        time.sleep(seconds)
        cpu1, wall1, tx1 = cpu_seconds(scorer.pid), time.monotonic(), metric(port, "fraudstream_scorer_transactions_total")
        batches1, end_ms = metric(port, "fraudstream_scorer_batch_size_count"), time.time() * 1000
    finally:
        if producer:
            producer.terminate()
            producer.wait(timeout=60)
        scorer.terminate()
        scorer.wait(timeout=60)
    sent, scored = stamps(topics["transactions"], "tx_id"), stamps(topics["scores"], "tx_id")
    latency = np.array([scored[t] - sent[t] for t in scored if t in sent and start_ms <= sent[t] <= end_ms])
    scoring.delete(topics)
    return {"rate": rate, "batch_wait_ms": batch_wait_ms, "seconds": wall1 - wall0,
            "cpu_share": (cpu1 - cpu0) / (wall1 - wall0), "tx_per_s": (tx1 - tx0) / (wall1 - wall0),
            "tx_per_batch": (tx1 - tx0) / max(batches1 - batches0, 1), "latency_n": int(latency.size),
            "p50_ms": float(np.percentile(latency, 50)), "p99_ms": float(np.percentile(latency, 99))}


def plot(results: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (cpu, lat) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{r['rate']} tx/s\nwait {r['batch_wait_ms']:g} ms" for r in results]
    cpu.bar(["before\n50 tx/s", *labels], [BEFORE["cpu_share"] * 100, *[r["cpu_share"] * 100 for r in results]],
            color=["grey"] + ["tab:blue"] * len(results))
    cpu.axhline(5, color="red", linestyle="--", label="goal at 50 tx/s: 5 %")
    cpu.set_ylabel("scorer CPU, % of one core")
    cpu.legend()
    x = np.arange(len(results))
    lat.bar(x - 0.2, [r["p50_ms"] for r in results], 0.4, label="p50")
    lat.bar(x + 0.2, [r["p99_ms"] for r in results], 0.4, label="p99")
    lat.axhline(50, color="red", linestyle="--", label="goal p99: 50 ms")
    lat.set_xticks(x, labels)
    lat.set_ylabel("event to score, ms")
    lat.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path.home() / ".local/share/fraudstream/model"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=15)
    args = parser.parse_args()
    results = [run(rate, wait, args.model, args.seconds, args.warmup, 18700 + 10 * i)
               for i, (rate, wait) in enumerate([(50, 5), (50, 0), (50, 20), (500, 5), (500, 0)])]
    OUT.mkdir(exist_ok=True)
    (OUT / "quiet.json").write_text(json.dumps({"before": BEFORE, "results": results}, indent=2) + "\n")
    plot(results, OUT / "quiet.png")
    print(f"before: 50 tx/s, CPU {BEFORE['cpu_share']:.0%}, {BEFORE['tx_per_batch']:.2f} tx/batch")
    for r in results:
        print(f"{r['rate']:4d} tx/s wait {r['batch_wait_ms']:g} ms: CPU {r['cpu_share']:.1%}, {r['tx_per_s']:.0f} tx/s, "
              f"{r['tx_per_batch']:.2f} tx/batch, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms "
              f"({r['latency_n']} transactions)")


if __name__ == "__main__":
    main()
