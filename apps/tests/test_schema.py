"""Schema validation: every bad record gets a reason and a message that names the field."""
import json

import pytest

from fraudstream.schema import InvalidRecord, decode, encode
from fraudstream.simulator import Simulator

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
