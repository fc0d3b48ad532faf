"""fraudstream {simulate,train,evaluate,replay,produce,score,lag-exporter}."""

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
from .features import DAY
from .simulator import Simulator, SimulatorParams, day_of, save

BOOK_SIMULATION = {"transactions": 1_754_155, "fraud_rate": 0.0084}
DEFAULT_DAYS = {"train": 35, "evaluate": 183}
BOOK_FIRST_TEST_DAY = "2018-08-08"


def cmd_simulate(args) -> int:
    tx = Simulator(SimulatorParams(seed=args.seed)).dataset(args.days)
    if args.out and args.out.lower().endswith(".npz"):
        save(args.out, tx, SimulatorParams(seed=args.seed))
    elif args.out:
        from .datafile import write
        write(args.out, tx)
    stats = {"days": args.days, "transactions": int(tx.size), "fraud_rate": round(float(tx["fraud"].mean()), 5),
             "frauds_by_scenario": {str(s): int(n) for s, n in enumerate(np.bincount(tx["scenario"])[1:], 1)},
             "book_183_days": BOOK_SIMULATION}
    print(json.dumps(stats, indent=2))
    return 0


def load_data(args):
    """The transactions of --data (checked, in event-time order; warnings to stderr), or None
    without it: then the simulator's, from --days and --seed."""
    if not args.data:
        if args.columns:
            raise ValueError("--columns goes with --data")
        return None
    for flag in ("days", "seed"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag} is for simulated transactions; it does not go with --data")
    from .datafile import Progress, load
    data = load(args.data, args.columns, require_labels=True, progress=Progress(f"reading {args.data}: rows"))
    for warning in data.warnings:
        print(f"fraudstream {args.command}: warning: {warning}", file=sys.stderr)
    print(f"fraudstream {args.command}: {data.describe()}", file=sys.stderr)
    return data


def simulated(args) -> np.ndarray:
    days = DEFAULT_DAYS[args.command] if args.days is None else args.days
    return Simulator(SimulatorParams(seed=args.seed or 0)).dataset(days)


def features_progress():
    from .datafile import Progress
    return Progress("features (streaming code): transactions")


def both_classes(y: np.ndarray, what: str) -> None:
    if y.size == 0 or y.min() == y.max():
        found = "no transaction" if y.size == 0 else ("no fraud" if y.max() == 0 else "only frauds")
        raise ValueError(f"{what} has {found}: it needs frauds and genuine transactions")


def cmd_train(args) -> int:
    from .datafile import iso_day
    from .features import FEATURES, FeatureState, featurize
    from .metrics import quality, quality_by_scenario
    from .model import Artifact, fit, pick_threshold

    started = time.perf_counter()
    data = load_data(args)
    tx = simulated(args) if data is None else data.transactions
    days = tx["tx_time"] // DAY
    first, end = (0, DEFAULT_DAYS["train"] if args.days is None else args.days) if data is None else \
        (int(days[0]), int(days[-1]) + 1)
    if end - first < args.train_days + args.validation_days:
        raise ValueError(f"{args.data or 'the simulation'} covers {end - first} days; training needs --train-days "
                         f"{args.train_days} + --validation-days {args.validation_days}")
    val_start = end - args.validation_days
    train = (days >= val_start - args.train_days) & (days < val_start)
    val = days >= val_start
    window = f"{iso_day((val_start - args.train_days) * DAY)} .. {iso_day((val_start - 1) * DAY)}"
    both_classes(tx["fraud"][train], f"the training window ({window})")
    both_classes(tx["fraud"][val], f"the validation window ({iso_day(val_start * DAY)} .. {iso_day((end - 1) * DAY)})")
    X = featurize(FeatureState(args.label_delay_days), tx, with_labels=True, progress=features_progress())
    booster = fit(X[train], tx["fraud"][train])
    val_scores = booster.inplace_predict(X[val])
    threshold, rule = pick_threshold(val_scores, tx["fraud"][val], args.alerts_per_day, args.validation_days)
    metrics = quality(days[val], tx["customer_id"][val], tx["fraud"][val], val_scores)
    source = {"simulator_seed": args.seed or 0} if data is None else {"data_file": args.data}
    artifact = Artifact(booster, list(FEATURES), threshold, rule, metrics, {
        **source, "train_days": [int(val_start - args.train_days), int(val_start)],
        "validation_days": [int(val_start), int(end)], "label_delay_days": args.label_delay_days,
        "train_transactions": int(train.sum())}, label_delay_days=args.label_delay_days)
    artifact.save(args.out)
    report = {"artifact": args.out, "version": artifact.version, "threshold": round(threshold, 6),
              "threshold_rule": rule, "validation": metrics}
    if data is None or data.has_scenarios:
        report["validation_by_scenario"] = quality_by_scenario(tx["fraud"][val], val_scores, tx["scenario"][val],
                                                               threshold)
    print(json.dumps({**report, "seconds": round(time.perf_counter() - started, 1)}, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .datafile import iso_day
    from .protocol import evaluate, fold, history_of, scenario_table, table

    data = load_data(args)
    tx = simulated(args) if data is None else data.transactions
    first, end = int(tx["tx_time"][0] // DAY), int(tx["tx_time"][-1] // DAY) + 1
    if args.first_test_day is not None:
        first_test_day = args.first_test_day
    elif data is None:
        first_test_day = BOOK_FIRST_TEST_DAY
    else:  # the last args.folds whole weeks of the file
        first_test_day = iso_day((end - 7 * args.folds) * DAY)
    start = day_of(first_test_day)
    if start - 14 < first or start + 7 * args.folds > end:
        raise ValueError(f"{args.data or 'the simulation'} covers {iso_day(first * DAY)} .. {iso_day((end - 1) * DAY)}"
                         f" ({end - first} days); {args.folds} weekly folds from {first_test_day} need "
                         f"{iso_day((start - 14) * DAY)} .. {iso_day((start + 7 * args.folds - 1) * DAY)} (a training "
                         "week, the 7-day label delay, then a test week per fold): change --folds or --first-test-day")
    history = history_of(tx, has_scenarios=data is None or data.has_scenarios, progress=features_progress())
    print(f"features: {history.transactions.size} transactions in {history.featurize_seconds:.1f}s "
          f"({history.transactions.size / history.featurize_seconds:,.0f} tx/s, streaming code)")
    for k in range(args.folds):
        train, test = fold(history, start + 7 * k)
        week = f"{iso_day((start + 7 * k) * DAY)} .. {iso_day((start + 7 * k + 6) * DAY)}"
        both_classes(tx["fraud"][train], f"the training week of the fold that tests {week}")
        both_classes(tx["fraud"][test], f"the test week {week} (cards already known as compromised left out)")
    for folds in sorted({1, args.folds}):
        curves = {}
        result = evaluate(history, first_test_day, folds, curves=curves)
        if folds > 1:
            title = f"mean over {folds} weekly test folds from {first_test_day} (prequential)"
        elif data is None and first_test_day == BOOK_FIRST_TEST_DAY:
            title = "the book's protocol: train 07-25..07-31, 7-day delay, test 08-08..08-14"
        else:
            title = (f"train {iso_day((start - 14) * DAY)} .. {iso_day((start - 8) * DAY)}, 7-day delay, "
                     f"test {iso_day(start * DAY)} .. {iso_day((start + 6) * DAY)}")
        print(f"\n{title}\n{table(result)}")
        by_scenario = scenario_table(result)
        if by_scenario:
            print(f"\nper fraud scenario (its frauds against every genuine transaction)\n{by_scenario}")
        oracle = result["mean"]["oracle"]["card_precision_at_100"]
        ours = next(v for k, v in result["mean"].items() if k.startswith("fraudstream"))
        print(f"CP@100 / oracle CP@100 = {ours['card_precision_at_100'] / oracle:.2f}")
        if args.json:
            from .report import write_png
            base = args.json.removesuffix(".json") + f"-{folds}fold"
            with open(base + ".json", "w") as out:
                json.dump(result, out, indent=2)
            write_png(base + ".png", result, curves)
            print(f"wrote {base}.json and {base}.png")
    return 0


def cmd_replay(args) -> int:
    from .replay import ReplayConfig, run
    return run(cfg.build(cfg.KafkaConfig, args), cfg.build(cfg.Topics, args), cfg.build(ReplayConfig, args),
               args.data, args.columns)


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
    p.add_argument("--out", help="write the dataset to this file: .csv, .csv.gz or .parquet (the Handbook's "
                                 "columns, for --data), or .npz")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("train", help="train the model and write an artifact directory")
    p.add_argument("--out", required=True, help="artifact directory")
    add_data_arguments(p)
    p.add_argument("--days", type=int, help="simulated days of history (default 35)")
    p.add_argument("--train-days", type=int, default=7)
    p.add_argument("--validation-days", type=int, default=7)
    p.add_argument("--label-delay-days", type=int, default=7)
    p.add_argument("--alerts-per-day", type=float, default=100, help="alert budget for the threshold")
    p.add_argument("--seed", type=int, help="simulator seed (default 0)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="the book's protocol, next to its published baselines")
    add_data_arguments(p)
    p.add_argument("--days", type=int, help="simulated days (default 183)")
    p.add_argument("--seed", type=int, help="simulator seed (default 0)")
    p.add_argument("--first-test-day", help=f"default {BOOK_FIRST_TEST_DAY}; with --data, the last --folds weeks")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--json", help="write results to this path (-1fold/-Nfold suffixes), and next to each a .png: "
                                  "precision-recall curves and daily card precision@100 against the oracle")
    p.set_defaults(func=cmd_evaluate)

    from .replay import ReplayConfig
    p = sub.add_parser("replay", help="send a file's transactions and delayed labels to Kafka, as `produce` does")
    add_data_arguments(p, required=True)
    cfg.add_arguments(p, cfg.KafkaConfig, cfg.Topics, ReplayConfig)
    p.set_defaults(func=cmd_replay)

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


def add_data_arguments(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--data", required=required,
                   help="your transactions: .csv, .csv.gz or .parquet with the Handbook's columns (TRANSACTION_ID, "
                        "TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD[, TX_FRAUD_SCENARIO])")
    p.add_argument("--columns", help="the file's names for our columns: TX_AMOUNT=amount,TX_DATETIME=ts,... "
                                     "or a .json/.yaml file of that mapping")


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
