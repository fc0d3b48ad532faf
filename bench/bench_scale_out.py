"""Scale-out benchmark on the local broker, side by side in one run. Needs `make up` first.

One recorded stream (6 partitions; labels one simulated day late so terminal risk is in play)
is scored by fresh consumer groups:
1. one scorer, state in memory only (the design before shared state; right with one scorer only);
2. one scorer with the changelog (state.py);
3. three scorers with the changelog, on this 2-core machine;
4. three scorers in memory only: as fast, but their scores differ.
Then a fresh scorer restores the History from run 3's changelog (restore time and events).

Throughput counts from the first to the last score record (broker timestamps), so process start
is left out. Writes bench/results/scale_out.json and bench/results/scale_out.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import scoring

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/results"
DELAY = ["--label-delay-days=1"]


def metric(port: int, name: str) -> float | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return None
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values) if values else None


def restore(run: dict, model_dir: str, port: int = 18590) -> dict:
    """A scorer joining run's (finished) group restores the History from its changelog."""
    proc = subprocess.Popen([*scoring.CLI, "score", *scoring.flags(run), f"--model-dir={model_dir}",
                             f"--group-id=g-{run['scores']}", f"--metrics-port={port}", *DELAY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            events = metric(port, 'fraudstream_scorer_restored_records_total{store="history"}')
            if events:
                return {"events": events,
                        "seconds": metric(port, 'fraudstream_scorer_restore_seconds{store="history"}')}
            time.sleep(0.2)
        raise RuntimeError("no restore reported")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=60000)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    model_dir = tempfile.mkdtemp(prefix="fraudstream-bench-model-")
    subprocess.run([*scoring.CLI, "train", "--days", "21", *DELAY, "--out", model_dir], check=True, capture_output=True)

    stream = scoring.record(args.messages, args.partitions, DELAY)
    runs, made = {}, []
    try:
        for name, n, changelog in [("memory_1", 1, False), ("changelog_1", 1, True), ("changelog_3", 3, True),
                                   ("memory_3", 3, False)]:
            runs[name] = scoring.score(stream, model_dir, args.messages, n, changelog, DELAY)
            made.append(runs[name].pop("topics"))
        restored = restore(made[2], model_dir)
    finally:
        scoring.delete(stream)
        for run in made:
            scoring.delete({k: run[k] for k in ("scores", "alerts", "changelog")})

    reference = runs["changelog_1"]["scores"]
    for run in runs.values():
        scores = run.pop("scores")
        run["scores_differing_from_one_scorer"] = sum(abs(scores[t] - reference[t]) > 1e-9 for t in reference)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {"cores": 2}, "messages": args.messages,
        "partitions": args.partitions, "runs": runs, "history_restore": restored,
        "three_vs_one_scorer": runs["changelog_3"]["tx_per_s"] / runs["changelog_1"]["tx_per_s"],
        "changelog_vs_memory_one_scorer": runs["changelog_1"]["tx_per_s"] / runs["memory_1"]["tx_per_s"],
    }
    (OUT / "scale_out.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result)
    print(json.dumps(result, indent=2))
    return 0


def plot(result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    labels = ["1 scorer\nmemory", "1 scorer\nchangelog", "3 scorers\nchangelog", "3 scorers\nmemory (wrong)"]
    keys = ["memory_1", "changelog_1", "changelog_3", "memory_3"]
    values = [runs[k]["tx_per_s"] for k in keys]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(labels, values, color=["#999999", "#1f77b4", "#2ca02c", "#d62728"])
    for i, k in enumerate(keys):
        ax.text(i, values[i], f"{values[i]:,.0f} tx/s\n{runs[k]['scores_differing_from_one_scorer']:,} differ",
                ha="center", va="bottom")
    ax.set_ylabel("transactions / s")
    ax.set_ylim(0, max(values) * 1.3)
    ax.set_title(f"Same stream ({result['messages']:,} tx, {result['partitions']} partitions), 2 cores")
    fig.tight_layout()
    fig.savefig(OUT / "scale_out.png", dpi=110)


if __name__ == "__main__":
    sys.exit(main())
