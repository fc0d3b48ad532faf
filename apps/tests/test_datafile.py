"""Your own transactions (`--data`): files round-trip, give the built-in figures, and bad ones are named.

The simulator is made smaller here (500 customers) so that the six featurizations stay quick;
`simulate --out`, `train` and `evaluate` run through cli.main as a user runs them.
"""
import builtins
import functools
import json
import re

import numpy as np
import pytest

from fraudstream import cli, datafile
from fraudstream.datafile import DataError, load, parse_mapping, write
from fraudstream.simulator import Simulator, SimulatorParams

SEED, DAYS = 11, 21
SMALL = functools.partial(SimulatorParams, n_customers=500, n_terminals=1000)
HEADER = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD"
GOOD = [HEADER, "0,2018-04-01 00:00:31,1,10,12.5,0", "1,2018-04-01 00:01:00,2,11,20.0,1",
        "2,2018-04-01 00:02:00,1,12,7.25,0"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """cli.main on a smaller simulator, and `simulate --out` as CSV and Parquet."""
    patch = pytest.MonkeyPatch()
    patch.setattr(cli, "SimulatorParams", SMALL)
    out = tmp_path_factory.mktemp("data")
    for name in ("sim.csv", "sim.parquet"):
        assert cli.main(["simulate", "--days", str(DAYS), "--seed", str(SEED), "--out", str(out / name)]) == 0
    yield out
    patch.undo()


def test_simulate_out_round_trips_exactly(small):
    tx = Simulator(SMALL(seed=SEED)).dataset(DAYS)
    for name in ("sim.csv", "sim.parquet"):
        data = load(small / name)
        assert data.has_labels and data.has_scenarios and not data.warnings
        for field in tx.dtype.names:
            assert np.array_equal(data.transactions[field], tx[field]), (name, field)
    header, first = (small / "sim.csv").read_text().splitlines()[:2]
    assert header == ",".join(datafile.WRITTEN)  # the Handbook's columns, in its order
    assert re.fullmatch(r"0,2018-04-01 \d\d:\d\d:\d\d,\d+,\d+,[\d.]+,\d+,0,[01],[0-3]", first)


def run_cli(capfd, *argv):
    assert cli.main(list(argv)) == 0, capfd.readouterr().err
    return capfd.readouterr().out


def test_train_on_a_file_gives_the_built_in_model(small, tmp_path, capfd):
    def figures(out):
        report = json.loads(out)
        return {k: report[k] for k in ("version", "threshold", "validation", "validation_by_scenario")}

    built_in = figures(run_cli(capfd, "train", "--days", str(DAYS), "--seed", str(SEED), "--out", str(tmp_path / "a")))
    assert built_in["validation_by_scenario"].keys() <= {"1", "2", "3"}
    for name in ("sim.csv", "sim.parquet"):
        assert figures(run_cli(capfd, "train", "--data", str(small / name), "--out", str(tmp_path / name))) == built_in
    window = json.loads((tmp_path / "sim.csv/artifact.json").read_text())["data_window"]
    assert window["data_file"].endswith("sim.csv") and window["validation_days"] == [DAYS - 7, DAYS]


def test_evaluate_on_a_file_gives_the_built_in_figures(small, tmp_path, capfd):
    common = ["--folds", "1", "--first-test-day", "2018-04-15"]
    out = run_cli(capfd, "evaluate", "--days", str(DAYS), "--seed", str(SEED), *common,
                  "--json", str(tmp_path / "sim.json"))
    assert "per fraud scenario" in out
    built_in = json.loads((tmp_path / "sim-1fold.json").read_text())
    assert built_in["mean"]["oracle"]["card_precision_at_100"] > 0
    for name in ("sim.csv", "sim.parquet"):
        # Without --first-test-day the last whole week of the file is the test week: the same one here.
        out = run_cli(capfd, "evaluate", "--data", str(small / name), "--folds", "1",
                      "--json", str(tmp_path / f"{name}.json"))
        assert "test 2018-04-15 .. 2018-04-21" in out
        assert json.loads((tmp_path / f"{name}-1fold.json").read_text()) == built_in


def test_data_and_simulator_flags_do_not_mix(small, tmp_path, capfd):
    assert cli.main(["train", "--data", str(small / "sim.csv"), "--days", "21", "--out", str(tmp_path)]) == 2
    assert "--days is for simulated transactions" in capfd.readouterr().err
    assert cli.main(["evaluate", "--data", str(small / "sim.csv"), "--folds", "3"]) == 2
    assert "3 weekly folds" in capfd.readouterr().err


# -- bad files: each error names the row and the column -------------------------------------------------
def csv_with(row2=None, header=HEADER, rows=None):
    lines = list(rows or GOOD)
    lines[0] = header
    if row2 is not None:
        lines[2] = row2
    return "\n".join(lines) + "\n"


BAD_CSV = {
    "missing column": (csv_with(header=HEADER.replace("TX_AMOUNT", "AMOUNT")),
                       r"header: no TX_AMOUNT column .*--columns TX_AMOUNT=NAME"),
    "unparsable date": (csv_with("1,01/04/2018 00:01,2,11,20.0,1"),
                        r"row 2 \(line 3\), column TX_DATETIME: not an ISO 8601 date-time.*'01/04/2018 00:01'"),
    "negative amount": (csv_with("1,2018-04-01 00:01:00,2,11,-20.0,1"),
                        r"row 2 \(line 3\), column TX_AMOUNT: must not be negative, got -20.0"),
    "duplicate id": (csv_with("0,2018-04-01 00:01:00,2,11,20.0,1"),
                     r"row 2, column TRANSACTION_ID: id 0 is also row 1's"),
    "non-numeric amount": (csv_with("1,2018-04-01 00:01:00,2,11,12.50 EUR,1"),
                           r"row 2 \(line 3\), column TX_AMOUNT: not a number, got '12.50 EUR'"),
    "NaN amount": (csv_with("1,2018-04-01 00:01:00,2,11,NaN,1"),
                   r"row 2 \(line 3\), column TX_AMOUNT: must be a finite number, got nan"),
    "infinite amount": (csv_with("1,2018-04-01 00:01:00,2,11,inf,1"),
                        r"row 2 \(line 3\), column TX_AMOUNT: must be a finite number, got inf"),
    "amount too large": (csv_with("1,2018-04-01 00:01:00,2,11,2000000,1"),
                         r"row 2 \(line 3\), column TX_AMOUNT: must be at most 1,000,000"),
    "TX_FRAUD not 0/1": (csv_with("1,2018-04-01 00:01:00,2,11,20.0,2"),
                         r"row 2 \(line 3\), column TX_FRAUD: must be 0 or 1, got 2"),
    "TX_FRAUD a word": (csv_with("1,2018-04-01 00:01:00,2,11,20.0,yes"),
                        r"row 2 \(line 3\), column TX_FRAUD: must be 0 or 1, got 'yes'"),
    "missing value": (csv_with("1,2018-04-01 00:01:00,,11,20.0,1"),
                      r"row 2 \(line 3\), column CUSTOMER_ID: missing value"),
    "fractional id": (csv_with("1,2018-04-01 00:01:00,2,11.5,20.0,1"),
                      r"row 2 \(line 3\), column TERMINAL_ID: must be an integer in \[0, 9223372036854775807\]"),
    "id beyond int64": (csv_with("1,2018-04-01 00:01:00,9223372036854775808,11,20.0,1"),
                        r"row 2 \(line 3\), column CUSTOMER_ID: must be an integer in \[0, 9223372036854775807\]"),
    "negative id": (csv_with("-1,2018-04-01 00:01:00,2,11,20.0,1"),
                    r"row 2 \(line 3\), column TRANSACTION_ID: must be an integer in \[0, "),
    "too few fields": (csv_with("1,2018-04-01 00:01:00,2,11"),
                       r"row 2 \(line 3\): 4 fields where the header has 6: no value for column TX_AMOUNT"),
    "scenario on a genuine one": (csv_with("1,2018-04-01 00:01:00,2,11,20.0,0,3", header=HEADER + ",TX_FRAUD_SCENARIO",
                                           rows=[g + ",0" for g in GOOD]),
                                  r"row 2, column TX_FRAUD_SCENARIO: scenario 3 on a transaction whose TX_FRAUD is 0"),
    "empty file": ("", r"sim\.csv is empty: no header row"),
    "header only": (HEADER + "\n", r"has no transactions: a header and no rows"),
    "no labels for training": (csv_with(header=HEADER.replace(",TX_FRAUD", ",OTHER")), r"header: no TX_FRAUD column"),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_a_bad_csv_is_refused_naming_row_and_column(tmp_path, case):
    content, message = BAD_CSV[case]
    path = tmp_path / "sim.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load(path)


def test_not_utf8_unknown_type_and_a_bad_mapping_are_refused(tmp_path):
    path = tmp_path / "sim.csv"
    path.write_bytes(csv_with().encode() + b"3,2018-04-01 00:03:00,1,1\xff,1.0,0\n")
    with pytest.raises(DataError, match="sim.csv.*UTF-8"):
        load(path)
    (tmp_path / "sim.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unknown file type '\.xlsx': use \.csv, \.csv\.gz or \.parquet"):
        load(tmp_path / "sim.xlsx")
    path.write_text(csv_with())
    with pytest.raises(DataError, match=r"header: --columns maps TX_AMOUNT to 'amount', which is not a column"):
        load(path, "TX_AMOUNT=amount")
    with pytest.raises(DataError, match=r"--columns maps 'TX_AMNT', which is none of ours"):
        load(path, "TX_AMNT=amount")
    with pytest.raises(DataError, match=r"'TX_AMOUNT' is not NAME=COLUMN"):
        load(path, "TX_AMOUNT,TX_DATETIME=ts")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.csv")
    (tmp_path / "sim.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"sim\.csv\.gz: not readable"):
        load(tmp_path / "sim.csv.gz")


def parquet(path, **columns):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    base = {"TRANSACTION_ID": [0, 1, 2], "TX_DATETIME": pa.array([1522540831, 1522540860, 1522540920],
                                                                  type=pa.timestamp("s")),
            "CUSTOMER_ID": [1, 2, 1], "TERMINAL_ID": [10, 11, 12], "TX_AMOUNT": [12.5, 20.0, 7.25], "TX_FRAUD": [0, 1, 0]}
    pq.write_table(pa.table({**base, **columns}), path)
    return path


def test_parquet_files_are_checked_alike(tmp_path):
    pa = pytest.importorskip("pyarrow")
    good = load(parquet(tmp_path / "good.parquet"))
    assert good.transactions["tx_time"].tolist() == [31, 60, 120]
    zoned = load(parquet(tmp_path / "tz.parquet", TX_DATETIME=pa.array(
        [1522540831000, 1522540860000, 1522540920500], type=pa.timestamp("ms", tz="Europe/Brussels"))))
    assert zoned.transactions["tx_time"].tolist() == [31, 60, 120]
    with pytest.raises(DataError, match=r"row 2, column TX_AMOUNT: missing value"):
        load(parquet(tmp_path / "null.parquet", TX_AMOUNT=[1.0, None, 2.0]))
    with pytest.raises(DataError, match=r"row 3, column TX_AMOUNT: must not be negative"):
        load(parquet(tmp_path / "neg.parquet", TX_AMOUNT=[1.0, 2.0, -2.0]))
    with pytest.raises(DataError, match=r"row 1, column TX_DATETIME: a Parquet column of type int64 is not a date"):
        load(parquet(tmp_path / "int.parquet", TX_DATETIME=[1, 2, 3]))
    with pytest.raises(DataError, match=r"row 2, column TX_DATETIME: not an ISO 8601 date-time"):
        load(parquet(tmp_path / "str.parquet", TX_DATETIME=["2018-04-01 00:00:31", "yesterday", "2018-04-01"]))
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"junk\.parquet is not a readable Parquet file"):
        load(tmp_path / "junk.parquet")


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(DataError, match=r"x\.parquet: Parquet needs pyarrow: pip install pyarrow"):
        load(tmp_path / "x.parquet")


def test_a_misordered_file_is_sorted_and_reported(tmp_path):
    rows = [HEADER, "0,2018-04-01 10:00:00,1,10,1.0,0", "1,2018-04-01 09:00:00,2,11,2.0,0",
            "2,2018-04-01 08:00:00,3,12,3.0,1", "3,2018-04-01 11:00:00,4,13,4.0,0", "4,2018-04-01 08:00:00,5,14,5.0,0"]
    (tmp_path / "sim.csv").write_text("\n".join(rows) + "\n")
    data = load(tmp_path / "sim.csv")
    assert data.reordered == 3
    assert data.transactions["tx_id"].tolist() == [2, 4, 1, 0, 3]  # stable among equal times
    assert len(data.warnings) == 1
    assert re.search(r"3 rows are out of time order \(the first: row 2, TX_DATETIME 2018-04-01 09:00:00 comes after "
                     r"row 1's 2018-04-01 10:00:00\); sorted", data.warnings[0])


def test_columns_are_mapped_from_a_flag_or_a_file(tmp_path):
    (tmp_path / "mine.csv").write_text("id;when;card;pos;eur;is_fraud;note\n"
                                       "7;2018-04-02T00:00:00Z;1;2;3.5;1;x\n8;2018-04-02T02:00:01+02:00;1;2;4;0;y\n")
    spec = {"TRANSACTION_ID": "id", "TX_DATETIME": "when", "CUSTOMER_ID": "card", "TERMINAL_ID": "pos",
            "TX_AMOUNT": "eur", "TX_FRAUD": "is_fraud"}
    (tmp_path / "map.json").write_text(json.dumps(spec))
    (tmp_path / "map.yaml").write_text("".join(f"{k}: {v}\n" for k, v in spec.items()))
    flag = ",".join(f"{k}={v}" for k, v in spec.items())
    for columns in (flag, str(tmp_path / "map.json"), str(tmp_path / "map.yaml")):
        assert parse_mapping(columns) == spec
        tx = load(tmp_path / "mine.csv", columns).transactions
        assert tx["tx_id"].tolist() == [7, 8] and tx["tx_time"].tolist() == [86400, 86401]
        assert tx["amount"].tolist() == [3.5, 4.0] and tx["fraud"].tolist() == [1, 0]


def test_replay_refuses_times_the_scorer_refuses(tmp_path):
    (tmp_path / "old.csv").write_text(csv_with("1,2018-03-31 23:59:59,2,11,20.0,1"))
    assert load(tmp_path / "old.csv").transactions["tx_time"].min() == -1  # training can use it
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column TX_DATETIME: 2018-03-31 23:59:59: the scorer "
                                        r"refuses times before 2018-04-01"):
        load(tmp_path / "old.csv", for_replay=True)
    (tmp_path / "future.csv").write_text(csv_with("1,2031-01-01 00:00:00,2,11,20.0,1"))
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column TX_DATETIME: .*more than 300 s ahead"):
        load(tmp_path / "future.csv", for_replay=True, now=1.9e9)


def test_a_bad_file_ends_the_command_with_its_message(tmp_path, capfd):
    (tmp_path / "bad.csv").write_text(csv_with("1,2018-04-01 00:01:00,2,11,-1,1"))
    assert cli.main(["train", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "m")]) == 2
    assert "fraudstream train: " in capfd.readouterr().err


def test_write_and_load_csv_gz_in_chunks(tmp_path):
    tx = Simulator(SMALL(seed=3)).dataset(2)
    write(tmp_path / "s.csv.gz", tx, chunk_rows=1000)
    data = load(tmp_path / "s.csv.gz", chunk_rows=777)
    assert all(np.array_equal(data.transactions[f], tx[f]) for f in tx.dtype.names)
