"""Schema validation: every bad record gets a reason and a message that names the field."""
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import rfc3339_validator

from fraudstream.schema import REASONS, InvalidRecord, decode, decode_label, encode
from fraudstream.simulator import Simulator
from fraudstream.state import EVENT

GOOD = {"schema_version": 1, "tx_id": 7, "tx_datetime": "2018-04-02T01:00:00Z", "customer_id": 3,
        "terminal_id": 9, "amount": 12.5}


def test_round_trip():
    tx = decode(encode(7, 86400 + 3600, 3, 9, 12.5))
    assert (tx.tx_id, tx.tx_time, tx.customer_id, tx.terminal_id, tx.amount) == (7, 90000, 3, 9, 12.5)
    assert decode(json.dumps(GOOD).encode()).tx_time == 90000


def test_every_simulated_transaction_is_valid():
    """The producer's own records never land in the DLQ: a 0.00 amount (it happens) is a transaction."""
    sim = Simulator().dataset(20)
    assert (sim["amount"] == 0).any(), "the sample holds a zero amount"
    for row in sim:
        decode(encode(int(row["tx_id"]), int(row["tx_time"]), int(row["customer_id"]), int(row["terminal_id"]),
                      float(row["amount"])))


@pytest.mark.parametrize("value, reason, field", [
    (None, "not_json", "tombstone"),
    (b"\xff\xfe", "not_utf8", "UTF-8"),
    (json.dumps(GOOD).encode()[:-7], "not_json", "truncated"),
    (b"[1, 2]", "not_object", "list"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "amount"}).encode(), "missing_field", "'amount'"),
    (json.dumps({**GOOD, "customer_id": "3"}).encode(), "wrong_type", "'customer_id'"),
    (json.dumps({**GOOD, "amount": True}).encode(), "wrong_type", "'amount'"),
    (json.dumps({**GOOD, "amount": -4}).encode(), "out_of_range", "'amount'"),
    (json.dumps({**GOOD, "amount": float("nan")}).encode(), "not_json", "not JSON"),
    (json.dumps({**GOOD, "tx_datetime": "yesterday"}).encode(), "wrong_type", "'tx_datetime'"),
    (json.dumps({**GOOD, "tx_datetime": "2017-01-01T00:00:00Z"}).encode(), "out_of_range", "'tx_datetime'"),
    (json.dumps({**GOOD, "pad": "x" * 20000}).encode(), "oversize", "limit"),
])
def test_bad_records(value, reason, field):
    with pytest.raises(InvalidRecord) as err:
        decode(value)
    assert err.value.reason == reason
    assert field in str(err.value)


# -- the JSON Schema files and the code agree ---------------------------------------------------
SCHEMAS = Path(__file__).resolve().parents[1] / "schema"
NOW = 1_800_000_000.0  # a fixed clock (2027-01-15) for the future-time rule


def validator(name):
    """Draft 2020-12 with the format checker, plus our one extension keyword, formatMinimum
    (as ajv spells it): a date-time on or after a bound."""
    def format_minimum(_, bound, instance, __):
        if isinstance(instance, str) and rfc3339_validator.validate_rfc3339(instance):
            if datetime.fromisoformat(instance.upper().replace("Z", "+00:00")) < datetime.fromisoformat(
                    bound.replace("Z", "+00:00")):
                yield jsonschema.ValidationError(f"{instance!r} is before {bound}")
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"formatMinimum": format_minimum})
    schema = json.loads((SCHEMAS / name).read_text())
    cls.check_schema(schema)
    return cls(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


BIG = 2**63
VARIANTS = [  # (field, value): extremes and wrong types, every one applied to each record kind
    *[(f, v) for f in ("tx_id", "customer_id", "terminal_id")
      for v in (0, BIG - 1, BIG, 2**64, 10**30, -1, -BIG, 7.0, 7.5, 1e300, True, None, "7", [7], {"v": 7})],
    *[("tx_datetime", v) for v in ("2018-04-01T00:00:00Z", "2018-03-31T23:59:59Z", "2018-04-01T02:00:00+02:00",
                                   "2018-04-02T01:00:00.123456Z", "2018-04-02t01:00:00z", "2018-04-02T01:00:00",
                                   "2018-04-02", "2018-04-02 01:00:00Z", "0001-01-01T00:00:00Z", "yesterday", "",
                                   "9999-12-31T23:59:59Z", "2018-13-01T00:00:00Z", 1522540800, None)],
    ("schema_version", 1), ("schema_version", 2), ("schema_version", "1"), ("schema_version", True),
]
TX_VARIANTS = VARIANTS + [("amount", v) for v in (0, 0.0, -0.0, 1e-300, 5e-324, 0.004, 1_000_000, 1_000_000.01,
                                                  1e308, -0.01, 2**64, "12.5", True, None)]
LABEL = {"tx_id": 7, "tx_datetime": "2018-04-02T01:00:00Z", "customer_id": 3, "terminal_id": 9, "fraud": 1}
LABEL_VARIANTS = VARIANTS + [("fraud", v) for v in (0, 1, 1.0, 2, -1, 0.5, True, "1", None, BIG)]


def agree(schema, decoder, good, variants):
    for name, value in variants:
        doc = {**good, name: value}
        raw = json.dumps(doc).encode()
        schema_ok = schema.is_valid(doc)
        try:
            decoder(raw, now=NOW)
            code_ok, why = True, ""
        except InvalidRecord as exc:
            code_ok, why = False, f"{exc.reason}: {exc}"
            assert exc.reason in REASONS and (name in str(exc) or exc.reason == "oversize")
            if exc.reason == "future_time":  # the schema's description states it; the next test checks it
                assert schema_ok, why
                continue
        assert schema_ok == code_ok, f"{name}={value!r}: schema says {schema_ok}, code says {code_ok} {why}"


def test_transaction_schema_file_and_code_agree():
    agree(validator("transaction.schema.json"), decode, GOOD, TX_VARIANTS)


def test_label_schema_file_and_code_agree():
    agree(validator("label.schema.json"), decode_label, LABEL, LABEL_VARIANTS)


def test_missing_fields_agree():
    for good, schema, decoder in ((GOOD, validator("transaction.schema.json"), decode),
                                  (LABEL, validator("label.schema.json"), decode_label)):
        for name in good:
            doc = {k: v for k, v in good.items() if k != name}
            required = name != "schema_version"
            assert schema.is_valid(doc) is not required
            if required:
                with pytest.raises(InvalidRecord, match=f"'{name}'"):
                    decoder(json.dumps(doc).encode(), now=NOW)


def test_the_future_rule_uses_the_scorers_clock():
    """The one rule JSON Schema cannot say: at most max_future seconds ahead of the wall clock."""
    at = datetime.fromtimestamp(NOW, UTC)
    ahead = (at + timedelta(seconds=299)).strftime("%Y-%m-%dT%H:%M:%SZ")
    too_far = (at + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert decode(json.dumps({**GOOD, "tx_datetime": ahead}).encode(), now=NOW).tx_time > 0
    for decoder, good in ((decode, GOOD), (decode_label, LABEL)):
        with pytest.raises(InvalidRecord) as err:
            decoder(json.dumps({**good, "tx_datetime": too_far}).encode(), now=NOW)
        assert err.value.reason == "future_time" and "tx_datetime" in str(err.value)
    assert decode(json.dumps({**GOOD, "tx_datetime": too_far}).encode(), now=NOW, max_future=4 * 3600)


def test_extreme_but_valid_values_fit_the_scorers_int64_state():
    tx = decode(json.dumps({**GOOD, "tx_id": BIG - 1, "customer_id": BIG - 1, "terminal_id": 0,
                            "amount": 5e-324}).encode(), now=NOW)
    assert tx.tx_id == BIG - 1 and round(tx.amount * 100) == 0
    events = np.zeros(1, EVENT)
    events[0] = (BIG - 1, tx.tx_id, tx.tx_time, tx.customer_id, tx.terminal_id, round(1_000_000 * 100), 1)
    assert int(events["tx_id"][0]) == BIG - 1
