"""Decoding and validation of fraud-transactions records (schema: apps/schema/transaction.schema.json).

Every failure has a reason (a label for metrics and the DLQ) and a message naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from .simulator import START

SCHEMA_VERSION = 1
START_UTC = START.replace(tzinfo=UTC)
INT_FIELDS = ("tx_id", "customer_id", "terminal_id")
REASONS = ("oversize", "not_utf8", "not_json", "not_object", "missing_field", "wrong_type", "out_of_range")


class InvalidRecord(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Transaction:
    tx_id: int
    tx_time: int  # seconds since 2018-04-01T00:00:00Z, the simulator's epoch
    customer_id: int
    terminal_id: int
    amount: float


def encode(tx_id: int, tx_time: int, customer_id: int, terminal_id: int, amount: float) -> bytes:
    return json.dumps({
        "schema_version": SCHEMA_VERSION, "tx_id": tx_id, "tx_datetime": iso(tx_time),
        "customer_id": customer_id, "terminal_id": terminal_id, "amount": amount,
    }, separators=(",", ":")).encode()


def iso(tx_time: int) -> str:
    return datetime.fromtimestamp(START_UTC.timestamp() + tx_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(value: bytes | None, max_bytes: int = 16384) -> Transaction:
    if value is None:
        raise InvalidRecord("not_json", "record has no value (tombstone)")
    if len(value) > max_bytes:
        raise InvalidRecord("oversize", f"record is {len(value)} bytes; the limit is {max_bytes}")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as not_utf8:
            raise InvalidRecord("not_utf8", f"record is not UTF-8: {not_utf8}") from None
        raise InvalidRecord("not_json", f"record is not JSON (truncated?): {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRecord("not_object", f"record is a JSON {type(doc).__name__}, not an object")
    for name in (*INT_FIELDS, "tx_datetime", "amount"):
        if name not in doc:
            raise InvalidRecord("missing_field", f"field '{name}' is missing")
    for name in INT_FIELDS:
        if not isinstance(doc[name], int) or isinstance(doc[name], bool):
            raise InvalidRecord("wrong_type", f"field '{name}' must be an integer, got {type(doc[name]).__name__}")
        if doc[name] < 0:
            raise InvalidRecord("out_of_range", f"field '{name}' must be >= 0, got {doc[name]}")
    amount = doc["amount"]
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        raise InvalidRecord("wrong_type", f"field 'amount' must be a number, got {type(amount).__name__}")
    if not 0 <= amount <= 1_000_000:  # zero-amount authorisations exist (and the simulator makes them)
        raise InvalidRecord("out_of_range", f"field 'amount' must be in [0, 1000000], got {amount}")
    return Transaction(doc["tx_id"], parse_time(doc["tx_datetime"]), doc["customer_id"], doc["terminal_id"],
                       float(amount))


def parse_time(value) -> int:
    """An ISO 8601 tx_datetime as seconds since the simulator's epoch."""
    if not isinstance(value, str):
        raise InvalidRecord("wrong_type", "field 'tx_datetime' must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRecord("wrong_type", f"field 'tx_datetime' is not ISO 8601: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((when - START_UTC).total_seconds())
    if seconds < 0:
        raise InvalidRecord("out_of_range", f"field 'tx_datetime' is before {START_UTC.isoformat()}")
    return seconds
