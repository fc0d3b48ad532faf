"""Decoding and validation of the input records: fraud-transactions and fraud-labels.

The JSON Schema files in apps/schema/ state the same rules (a test checks that they agree).
Every failure has a reason (a label for metrics and the DLQ) and a message naming the field.

Rules for schema-valid but extreme values (README, "What happens to a bad record"):
- ids (tx_id, customer_id, terminal_id) are integers in [0, 2^63 - 1], the scorer's int64 state;
  larger ones, floats and booleans are refused, never wrapped or rounded;
- amount is a number in [0, 1,000,000] (0 for a zero-amount authorisation); a tiny amount
  counts as 0.00, a huge one is refused, so no amount can overflow the scorer's cent sums;
- tx_datetime is on or after 2018-04-01 (the simulator's epoch) and at most
  max_future_seconds ahead of the scorer's wall clock (a producer with a wrong clock, not a
  transaction: the broker would refuse the changelog record that carries it);
- labels carry fraud 0 or 1, nothing else; a label for a transaction this scorer never saw is
  valid (it still feeds the terminal's and card's risk);
- a repeated tx_id is scored again, like any record: dedup belongs to the producer.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from .simulator import START

SCHEMA_VERSION = 1
START_UTC = START.replace(tzinfo=UTC)
EPOCH = int(START_UTC.timestamp())
INT_MAX = 2**63 - 1  # the scorer keeps ids in int64 arrays
AMOUNT_MAX = 1_000_000
MAX_FUTURE_SECONDS = 300  # default tolerance for a producer clock ahead of ours
# JSON Schema's "date-time" format: RFC 3339, with a time zone (Z or an offset).
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
INT_FIELDS = ("tx_id", "customer_id", "terminal_id")
REASONS = ("oversize", "not_utf8", "not_json", "not_object", "missing_field", "wrong_type", "out_of_range",
           "future_time", "unsupported_version")


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


@dataclass(frozen=True, slots=True)
class Label:
    tx_id: int
    tx_time: int
    customer_id: int
    terminal_id: int
    fraud: int


def encode(tx_id: int, tx_time: int, customer_id: int, terminal_id: int, amount: float) -> bytes:
    return json.dumps({
        "schema_version": SCHEMA_VERSION, "tx_id": tx_id, "tx_datetime": iso(tx_time),
        "customer_id": customer_id, "terminal_id": terminal_id, "amount": amount,
    }, separators=(",", ":")).encode()


def iso(tx_time: int) -> str:
    return datetime.fromtimestamp(EPOCH + tx_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(value: bytes | None, max_bytes: int = 16384, max_future: int = MAX_FUTURE_SECONDS,
           now: float | None = None) -> Transaction:
    doc = _object(value, max_bytes, ("tx_id", "customer_id", "terminal_id", "tx_datetime", "amount"))
    amount = doc["amount"]
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        raise InvalidRecord("wrong_type", f"field 'amount' must be a number, got {type(amount).__name__}")
    if not 0 <= amount <= AMOUNT_MAX:  # zero-amount authorisations exist (and the simulator makes them)
        raise InvalidRecord("out_of_range", f"field 'amount' must be in [0, {AMOUNT_MAX}], got {amount}")
    return Transaction(doc["tx_id"], _time(doc["tx_datetime"], max_future, now), doc["customer_id"],
                       doc["terminal_id"], float(amount))


def decode_label(value: bytes | None, max_bytes: int = 16384, max_future: int = MAX_FUTURE_SECONDS,
                 now: float | None = None) -> Label:
    doc = _object(value, max_bytes, ("tx_id", "customer_id", "terminal_id", "tx_datetime", "fraud"))
    fraud = integer(doc, "fraud")
    if fraud not in (0, 1):
        raise InvalidRecord("out_of_range", f"field 'fraud' must be 0 or 1, got {fraud}")
    return Label(doc["tx_id"], _time(doc["tx_datetime"], max_future, now), doc["customer_id"],
                 doc["terminal_id"], fraud)


def _object(value: bytes | None, max_bytes: int, required: tuple) -> dict:
    """A JSON object with the required fields present and every id an int64 >= 0."""
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
    version = doc.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise InvalidRecord("unsupported_version", f"field 'schema_version' must be {SCHEMA_VERSION}, got {version!r}")
    for name in required:
        if name not in doc:
            raise InvalidRecord("missing_field", f"field '{name}' is missing")
    for name in INT_FIELDS:
        doc[name] = integer(doc, name)
        if not 0 <= doc[name] <= INT_MAX:
            raise InvalidRecord("out_of_range", f"field '{name}' must be in [0, 2^63-1], got {doc[name]}")
    return doc


def integer(doc: dict, name: str) -> int:
    """An integer field; 7.0 counts as 7, as JSON Schema's "integer" says (7.5 and true do not)."""
    value = doc[name]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRecord("wrong_type", f"field '{name}' must be an integer, got {type(value).__name__}")
    return value


def _time(value, max_future: int, now: float | None) -> int:
    seconds = parse_time(value)
    limit = (time.time() if now is None else now) + max_future - EPOCH
    if seconds > limit:
        raise InvalidRecord("future_time", f"field 'tx_datetime' {value!r} is more than {max_future}s ahead of "
                                           "this scorer's clock: fix the producer's clock")
    return seconds


def parse_time(value) -> int:
    """An RFC 3339 tx_datetime (JSON Schema's date-time) as seconds since the simulator's epoch."""
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise InvalidRecord("wrong_type", f"field 'tx_datetime' must be an RFC 3339 date-time such as "
                                          f"'2018-04-01T12:00:00Z', got {value!r}"[:300])
    try:
        when = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRecord("wrong_type", f"field 'tx_datetime' is not ISO 8601: {value!r}") from None
    try:
        seconds = int((when - START_UTC).total_seconds())
    except OverflowError:  # a date and offset beyond what datetime arithmetic holds
        raise InvalidRecord("out_of_range", f"field 'tx_datetime' is out of range: {value!r}") from None
    if seconds < 0:
        raise InvalidRecord("out_of_range", f"field 'tx_datetime' is before {START_UTC.isoformat()}")
    return seconds
