"""One typed configuration, built once from environment variables and CLI flags (flags win).

Every setting has an environment variable FRAUDSTREAM_<NAME> (upper case), listed by
`fraudstream <command> --help`. Kafka security settings pass to librdkafka (the scorer's group reads, source.py; every write,
sink.py) and kafka-python (the other reads).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

# Every blocking Kafka call gets a deadline: without one, a kafka-python call made during a
# rebalance could wait forever (seen: a scorer silent for minutes). A timeout is an error: rewind, retry.
KAFKA_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    # A file that holds the password (a Secret mounted as a file; supervisord's 0600 file): it keeps the
    # password out of the environment and the command line. Read once, at start.
    sasl_password_file: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def __post_init__(self):
        if self.sasl_password_file and not self.sasl_password:
            try:
                password = Path(self.sasl_password_file).read_text().strip()
            except OSError as exc:
                raise ValueError(f"sasl_password_file {self.sasl_password_file} (FRAUDSTREAM_SASL_PASSWORD_FILE) cannot "
                                 f"be read: {exc.strerror}; point it at the file that holds the password") from None
            if not password:
                raise ValueError(f"sasl_password_file {self.sasl_password_file} (FRAUDSTREAM_SASL_PASSWORD_FILE) is "
                                 "empty; write the user's password into it")
            object.__setattr__(self, "sasl_password", password)

    def client_options(self) -> dict:
        """kafka-python keyword arguments (empty settings left out)."""
        return {"bootstrap_servers": self.bootstrap_servers.split(","), "security_protocol": self.security_protocol,
                **self.renamed({"sasl_mechanism": "sasl_mechanism", "sasl_username": "sasl_plain_username",
                                "sasl_password": "sasl_plain_password", "ssl_cafile": "ssl_cafile",
                                "ssl_certfile": "ssl_certfile", "ssl_keyfile": "ssl_keyfile"})}

    def renamed(self, names: dict) -> dict:
        """The optional settings that are set, under another client's names ({ours: theirs})."""
        return {theirs: getattr(self, ours) for ours, theirs in names.items() if getattr(self, ours)}


@dataclass(frozen=True)
class Topics:
    transactions: str = "fraud-transactions"
    labels: str = "fraud-labels"
    scores: str = "fraud-scores"
    alerts: str = "fraud-alerts"
    dlq: str = "fraud-transactions-dlq"
    # The scorers' shared feature state (state.py); "" keeps it in one scorer's memory only.
    changelog: str = "fraud-consumer-changelog"


@dataclass(frozen=True)
class ProducerConfig:
    rate: float = 50.0  # transactions per second; 0 = as fast as possible
    speedup: float = 0.0  # > 0: pace by the simulated clock, this many times faster than real time
    label_delay_days: float = 7.0  # simulated time before a transaction's label is published
    seed: int = 0
    start_day: int = 0
    resume: int = 1  # 1: continue after the newest transaction already in the topic (restarts, redeploys)
    max_messages: int = 0  # 0 = endless
    # With resume: how long to wait for a broker that cannot say where to resume, then exit.
    startup_patience_seconds: float = 300.0
    metrics_port: int = 8000
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True)
class ScorerConfig:
    group_id: str = "fraud-consumer"
    model_dir: str = "model"
    max_poll_records: int = 1000
    # After the first record of a batch, wait this long for more (a quiet stream scores in
    # batches, not one record per predict, flush and commit).
    batch_wait_ms: float = 5.0
    # Commit (asynchronously) at most this often, or once max_poll_records were scored since the
    # last commit: a crash re-scores at most that much.
    commit_interval_ms: float = 100.0
    max_record_bytes: int = 16384
    # Event times further ahead of this scorer's clock go to the DLQ (reason future_time).
    max_future_seconds: int = 300
    # /healthz fails when the loop made no progress for this long (a liveness probe restarts it).
    stall_seconds: float = 120.0
    label_delay_days: int = 7  # must match the model's training protocol
    precision_window: int = 5000  # labelled transactions in the online precision/recall window
    # Longest wait for the other partitions' state before scoring anyway (counted as incomplete).
    state_wait_seconds: float = 60.0
    # Start-up waits this long for a broker that cannot answer (down, restarting, hung), unready
    # and saying why, then exits for its supervisor to restart it.
    startup_patience_seconds: float = 300.0
    metrics_port: int = 8001
    metrics_host: str = "127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser, *sections) -> None:
    """A --flag per field of the given dataclasses, defaulting to FRAUDSTREAM_<FIELD> or the field default."""
    for cls in sections:
        group = parser.add_argument_group(cls.__name__)
        for f in fields(cls):
            env = f"FRAUDSTREAM_{f.name.upper()}"
            default = os.environ.get(env, f.default)
            kind = type(f.default)
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=kind(default),
                               help=f"(env {env}, default {f.default!r})")


def build(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
