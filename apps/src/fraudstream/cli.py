"""fraudstream {simulate,train,evaluate,produce,score,lag-exporter}."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import time

import numpy as np

from . import config as cfg
from .simulator import Simulator, SimulatorParams, save

BOOK_SIMULATION = {"transactions": 1_754_155, "fraud_rate": 0.0084}


def cmd_simulate(args) -> int:
    tx = Simulator(SimulatorParams(seed=args.seed)).dataset(args.days)
    if args.out:
        save(args.out, tx, SimulatorParams(seed=args.seed))
    stats = {"days": args.days, "transactions": int(tx.size), "fraud_rate": round(float(tx["fraud"].mean()), 5),
             "frauds_by_scenario": {str(s): int(n) for s, n in enumerate(np.bincount(tx["scenario"])[1:], 1)},
             "book_183_days": BOOK_SIMULATION}
    print(json.dumps(stats, indent=2))
    return 0


def cmd_train(args) -> int:
    from .features import FEATURES, FeatureState, featurize
    from .metrics import quality
    from .model import Artifact, fit, pick_threshold

    started = time.perf_counter()
    tx = Simulator(SimulatorParams(seed=args.seed)).dataset(args.days)
    X = featurize(FeatureState(args.label_delay_days), tx, with_labels=True)
    days = tx["tx_time"] // 86400
    val_start = args.days - args.validation_days
    train = (days >= val_start - args.train_days) & (days < val_start)
    val = days >= val_start
    booster = fit(X[train], tx["fraud"][train])
    val_scores = booster.inplace_predict(X[val])
    threshold, rule = pick_threshold(val_scores, tx["fraud"][val], args.alerts_per_day, args.validation_days)
    metrics = quality(days[val], tx["customer_id"][val], tx["fraud"][val], val_scores)
    artifact = Artifact(booster, list(FEATURES), threshold, rule, metrics, {
        "simulator_seed": args.seed, "train_days": [int(val_start - args.train_days), int(val_start)],
        "validation_days": [int(val_start), int(args.days)], "label_delay_days": args.label_delay_days,
        "train_transactions": int(train.sum())}, label_delay_days=args.label_delay_days)
    artifact.save(args.out)
    print(json.dumps({"artifact": args.out, "version": artifact.version, "threshold": round(threshold, 6),
                      "threshold_rule": rule, "validation": metrics,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .protocol import build_history, evaluate, table

    history = build_history(args.days, args.seed)
    print(f"features: {history.transactions.size} transactions in {history.featurize_seconds:.1f}s "
          f"({history.transactions.size / history.featurize_seconds:,.0f} tx/s, streaming code)")
    for folds in sorted({1, args.folds}):
        result = evaluate(history, args.first_test_day, folds)
        title = ("the book's protocol: train 07-25..07-31, 7-day delay, test 08-08..08-14" if folds == 1 else
                 f"mean over {folds} weekly test folds from {args.first_test_day} (prequential)")
        print(f"\n{title}\n{table(result)}")
        oracle = result["mean"]["oracle"]["card_precision_at_100"]
        ours = next(v for k, v in result["mean"].items() if k.startswith("fraudstream"))
        print(f"CP@100 / oracle CP@100 = {ours['card_precision_at_100'] / oracle:.2f}")
        if args.json:
            with open(args.json.replace(".json", f"-{folds}fold.json"), "w") as out:
                json.dump(result, out, indent=2)
    return 0


def cmd_produce(args) -> int:
    from .producer import run
    return run(cfg.build(cfg.KafkaConfig, args), cfg.build(cfg.Topics, args), cfg.build(cfg.ProducerConfig, args))


def cmd_score(args) -> int:
    from .scorer import run
    return run(cfg.build(cfg.KafkaConfig, args), cfg.build(cfg.Topics, args), cfg.build(cfg.ScorerConfig, args))


def cmd_lag_exporter(args) -> int:
    from .lag_exporter import LagExporterConfig, run
    return run(cfg.build(cfg.KafkaConfig, args), cfg.build(LagExporterConfig, args))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fraudstream", description="Real-time card-fraud detection on Kafka.")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="simulate transactions (Fraud Detection Handbook procedure)")
    p.add_argument("--days", type=int, default=183)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the dataset to this .npz file")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("train", help="train the model and write an artifact directory")
    p.add_argument("--out", required=True, help="artifact directory")
    p.add_argument("--days", type=int, default=35, help="simulated days of history")
    p.add_argument("--train-days", type=int, default=7)
    p.add_argument("--validation-days", type=int, default=7)
    p.add_argument("--label-delay-days", type=int, default=7)
    p.add_argument("--alerts-per-day", type=float, default=100, help="alert budget for the threshold")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="the book's protocol, next to its published baselines")
    p.add_argument("--days", type=int, default=183)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-test-day", default="2018-08-08")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--json", help="write results to this path (-1fold/-Nfold suffixes)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("produce", help="stream simulated transactions and delayed labels to Kafka")
    cfg.add_arguments(p, cfg.KafkaConfig, cfg.Topics, cfg.ProducerConfig)
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("score", help="score fraud-transactions (the fraud-consumer)")
    cfg.add_arguments(p, cfg.KafkaConfig, cfg.Topics, cfg.ScorerConfig)
    p.set_defaults(func=cmd_score)

    from .lag_exporter import LagExporterConfig
    p = sub.add_parser("lag-exporter", help="consumer lag from the broker's side, as kafka_exporter's metrics")
    cfg.add_arguments(p, cfg.KafkaConfig, LagExporterConfig)
    p.set_defaults(func=cmd_lag_exporter)
    return top


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("fraudstream").setLevel(os.environ.get("FRAUDSTREAM_LOG_LEVEL", "INFO"))
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack to the log
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"fraudstream {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
