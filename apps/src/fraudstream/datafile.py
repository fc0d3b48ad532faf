"""Transaction files: a user's history as CSV or Parquet, read, checked and written.

The columns are the Fraud Detection Handbook's (chapter 3.2): TRANSACTION_ID, TX_DATETIME,
CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD, and optionally TX_FRAUD_SCENARIO (per-scenario
figures). Other names are mapped with `--columns TX_AMOUNT=amount,TX_DATETIME=ts` or a JSON/YAML
file of the same mapping; other columns are ignored. The rules are the scorer's own
(schema.py), so what loads here is what the live pipeline accepts:

- ids: integers in [0, 2^63-1]; TRANSACTION_ID unique;
- TX_DATETIME: ISO 8601 ('2018-04-01 00:00:31', 'T' separator, 'Z' or an offset; no zone = UTC),
  or a Parquet timestamp; fractions of a second are dropped;
- TX_AMOUNT: a finite number in [0, 1,000,000];
- TX_FRAUD: 0 or 1; TX_FRAUD_SCENARIO: an integer in [0, 127], 0 on genuine transactions (and on
  frauds of no known scenario);
- no missing value in a column that is read.

A bad file raises DataError naming the row (counted from 1 after the header; a CSV line number
too) and the column. Rows out of time order are not an error: they are counted, reported as a
warning and sorted (stable). CSV is read with the standard library, in chunks; Parquet needs
pyarrow (fraudstream's [evaluate] extra), read a record batch at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .schema import AMOUNT_MAX, EPOCH, INT_MAX

ID, TIME, CUSTOMER, TERMINAL, AMOUNT, FRAUD, SCENARIO = (
    "TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD", "TX_FRAUD_SCENARIO")
REQUIRED = (ID, TIME, CUSTOMER, TERMINAL, AMOUNT)
COLUMNS = (*REQUIRED, FRAUD, SCENARIO)
# The Handbook's own column order, as `simulate --out` writes it (TX_TIME_* are derived, ignored on reading).
WRITTEN = (ID, TIME, CUSTOMER, TERMINAL, AMOUNT, "TX_TIME_SECONDS", "TX_TIME_DAYS", FRAUD, SCENARIO)
# A loaded file: the simulator's fields (simulator.TX_DTYPE), with int64 ids (the scorer's range).
DATA_DTYPE = np.dtype([("tx_id", np.int64), ("tx_time", np.int64), ("customer_id", np.int64),
                       ("terminal_id", np.int64), ("amount", np.float64), ("fraud", np.int8), ("scenario", np.int8)])
FIELD = {ID: "tx_id", TIME: "tx_time", CUSTOMER: "customer_id", TERMINAL: "terminal_id", AMOUNT: "amount",
         FRAUD: "fraud", SCENARIO: "scenario"}
SCENARIO_MAX = 127
MISSING = ("", "na", "nan", "null", "none")  # lower-cased CSV cells that mean "no value" in a label or id
PARQUET_HINT = "Parquet needs pyarrow: pip install pyarrow (it comes with fraudstream's [evaluate] extra)"
CHUNK_ROWS = 100_000


class DataError(ValueError):
    """A file that cannot be used as it is; the message names the file, the row and the column."""


@dataclass
class Dataset:
    transactions: np.ndarray  # DATA_DTYPE, in event-time order
    path: str
    has_labels: bool
    has_scenarios: bool
    reordered: int = 0  # rows that were out of time order in the file (sorted here)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        tx = self.transactions
        return (f"{self.path}: {tx.size:,} transactions, {iso_day(int(tx['tx_time'][0]))} .. "
                f"{iso_day(int(tx['tx_time'][-1]))}" +
                (f", {tx['fraud'].mean():.2%} fraud" if self.has_labels else ", no labels"))


def iso_day(tx_time: int) -> str:
    return datetime.fromtimestamp(EPOCH + tx_time, UTC).strftime("%Y-%m-%d")


class Progress:
    """A line on stderr at most every `every` seconds (and once at the end) for long runs."""

    def __init__(self, what: str, every: float = 5.0, out=None):
        self.what, self.every, self.out = what, every, out or sys.stderr
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int | None = None, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last, elapsed = now, now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        line = f"{self.what}: {done:,}" + (f" / {total:,} ({done / total:.0%})" if total else "") + \
               f" in {elapsed:.0f}s ({rate:,.0f}/s)"
        if total and not final and rate > 0 and done < total:
            line += f", ~{(total - done) / rate:.0f}s to go"
        print(line, file=self.out, flush=True)


# -- the column mapping -------------------------------------------------------------------------------
def parse_mapping(spec: str | None) -> dict[str, str]:
    """{our column: the file's column} from 'TX_AMOUNT=amount,TX_DATETIME=ts' or a .json/.yaml file."""
    if not spec:
        return {}
    if "=" not in spec:
        path = Path(spec)
        if not path.is_file():
            raise DataError(f"--columns {spec!r}: neither NAME=COLUMN pairs nor a mapping file that exists")
        text, is_yaml = path.read_text(), path.suffix.lower() in (".yaml", ".yml")
        try:
            if is_yaml:
                import yaml
                mapping = yaml.safe_load(text)
            else:
                mapping = json.loads(text)
        except ImportError:
            raise DataError(f"--columns {spec}: reading YAML needs PyYAML (pip install pyyaml), or use JSON") from None
        except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
            raise DataError(f"--columns {spec}: not valid {'YAML' if is_yaml else 'JSON'}: {exc}") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) and v for v in mapping.values()):
            raise DataError(f"--columns {spec}: must map our column names to the file's, e.g. "
                            '{"TX_AMOUNT": "amount", "TX_DATETIME": "ts"}')
    else:
        mapping = {}
        for pair in spec.split(","):
            ours, eq, theirs = pair.partition("=")
            if not eq or not ours.strip() or not theirs.strip():
                raise DataError(f"--columns: {pair!r} is not NAME=COLUMN (e.g. TX_AMOUNT=amount)")
            mapping[ours.strip()] = theirs.strip()
    unknown = [k for k in mapping if k not in COLUMNS]
    if unknown:
        raise DataError(f"--columns maps {unknown[0]!r}, which is none of ours: {', '.join(COLUMNS)}")
    sources = list(mapping.values())
    twice = next((s for s in sources if sources.count(s) > 1), None)
    if twice:
        raise DataError(f"--columns maps two of our columns to the file's {twice!r}")
    return {k: str(v) for k, v in mapping.items()}


def file_kind(path: str) -> str:
    name = path.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise DataError(f"{path}: unknown file type {Path(path).suffix or '(no extension)'!r}: "
                    "use .csv, .csv.gz or .parquet")


def _resolve(path: str, header: list[str], mapping: dict[str, str], require_labels: bool) -> dict[str, str]:
    """{our column: the file's column} for every column to read; DataError for what is missing."""
    seen = set()
    for name in header:
        if name in seen and (name in COLUMNS or name in mapping.values()):
            raise DataError(f"{path}, header: the column {name!r} appears twice")
        seen.add(name)
    have = ", ".join(map(repr, header[:20])) + (" ..." if len(header) > 20 else "")
    chosen = {}
    for ours in COLUMNS:
        theirs = mapping.get(ours, ours)
        if theirs in seen:
            chosen[ours] = theirs
        elif ours in mapping:
            raise DataError(f"{path}, header: --columns maps {ours} to {theirs!r}, which is not a column of the "
                            f"file (its columns: {have})")
        elif ours in REQUIRED or (ours == FRAUD and require_labels):
            raise DataError(f"{path}, header: no {ours} column (its columns: {have}); "
                            f"name the file's column with --columns {ours}=NAME")
    return chosen


# -- one column of a chunk: strings (CSV, Parquet strings) or typed numpy arrays (Parquet) -------------
def _bad(where, i: int, column: str, message: str) -> DataError:
    return DataError(f"{where(i)}, column {column}: {message}")


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in MISSING)


def _first_failure(values, convert, column: str, where, expected: str) -> DataError:
    for i, v in enumerate(values):
        if _missing(v):
            return _bad(where, i, column, "missing value")
        try:
            convert(v)
        except (ValueError, TypeError, OverflowError):
            return _bad(where, i, column, f"{expected}, got {str(v)[:60]!r}")
    return _bad(where, 0, column, expected)  # not reached: convert failed on the whole list


def _convert(values, convert, column: str, where, expected: str) -> list:
    try:
        return list(map(convert, values))
    except (ValueError, TypeError, OverflowError):
        raise _first_failure(values, convert, column, where, expected) from None


def _check(mask: np.ndarray, values, column: str, where, message: str) -> None:
    """Raise for the first row where mask is true."""
    if mask.any():
        i = int(np.argmax(mask))
        value = values[i].item() if isinstance(values[i], np.generic) else values[i]
        raise _bad(where, i, column, f"{message}, got {value!r}")


def parse_seconds(value: str) -> int:
    """Seconds since 2018-04-01T00:00:00Z of an ISO 8601 date-time (no zone: UTC), fraction dropped."""
    when = datetime.fromisoformat(value.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return math.floor(when.timestamp()) - EPOCH


def _integers(values, column: str, where, expected: str) -> np.ndarray:
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values) | (values != np.floor(values)) | (np.abs(values) >= 2.0**63)
            _check(bad, values, column, where, expected)
        elif values.dtype.kind == "u":
            _check(values > INT_MAX, values, column, where, expected)
        return values.astype(np.int64)
    ints = _convert(values, int, column, where, expected)
    try:
        return np.array(ints, dtype=np.int64)
    except OverflowError:
        i = next(i for i, v in enumerate(ints) if not -INT_MAX - 1 <= v <= INT_MAX)
        raise _bad(where, i, column, f"{expected}, got {values[i]!r}") from None


def _ids(values, column: str, where) -> np.ndarray:
    expected = f"must be an integer in [0, {INT_MAX}] (the scorer's ids are int64)"
    out = _integers(values, column, where, expected)
    _check(out < 0, out, column, where, expected)
    return out


def _amounts(values, column: str, where) -> np.ndarray:
    out = values.astype(np.float64) if isinstance(values, np.ndarray) else \
        np.array(_convert(values, float, column, where, "not a number"), dtype=np.float64)
    _check(~np.isfinite(out), out, column, where, "must be a finite number")
    _check(out < 0, out, column, where, "must not be negative")
    _check(out > AMOUNT_MAX, out, column, where, f"must be at most {AMOUNT_MAX:,}")
    return out


def _label(values, column: str, where) -> np.ndarray:
    out = _integers(values, column, where, "must be 0 or 1")
    _check((out < 0) | (out > 1), out, column, where, "must be 0 or 1")
    return out.astype(np.int8)


def _scenario(values, column: str, where) -> np.ndarray:
    expected = f"must be an integer in [0, {SCENARIO_MAX}]"
    out = _integers(values, column, where, expected)
    _check((out < 0) | (out > SCENARIO_MAX), out, column, where, expected)
    return out.astype(np.int8)


def _times(values, column: str, where) -> np.ndarray:
    if isinstance(values, np.ndarray):  # seconds since the Unix epoch, from a Parquet timestamp or date
        return values.astype(np.int64) - EPOCH
    try:  # numpy parses zone-less ISO 8601 in C; a zone (a warning here), a bad or empty value: the slow path
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stamps = np.array(values, dtype="datetime64[s]")
        if not np.isnat(stamps).any():
            return stamps.astype(np.int64) - EPOCH
    except (ValueError, TypeError, UserWarning, DeprecationWarning):
        pass
    seconds = _convert(values, parse_seconds, column, where,
                       "not an ISO 8601 date-time such as '2018-04-01 00:00:31'")
    return np.array(seconds, dtype=np.int64)


CONVERT = {ID: _ids, CUSTOMER: _ids, TERMINAL: _ids, TIME: _times, AMOUNT: _amounts, FRAUD: _label,
           SCENARIO: _scenario}


def _chunk(columns: dict[str, object], where) -> np.ndarray:
    n = len(next(iter(columns.values())))
    out = np.zeros(n, dtype=DATA_DTYPE)
    for ours, values in columns.items():
        out[FIELD[ours]] = CONVERT[ours](values, ours, where)
    return out


# -- readers: each yields (columns of a chunk, where(i) naming its row i) ----------------------------
def _csv_chunks(path: str, mapping: dict, require_labels: bool, chunk_rows: int):
    raw = gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        try:
            first = text.readline()
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not readable as UTF-8 CSV text: {exc}") from None
        if not first.strip():
            raise DataError(f"{path} is empty: no header row")
        delimiter = max(",;\t|", key=first.count)
        header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
        chosen = _resolve(path, header, mapping, require_labels)
        ours = list(chosen)
        index = [header.index(chosen[c]) for c in ours]
        reader = csv.reader(text, delimiter=delimiter)
        rows, lines, row_no = [], [], 0

        def flush():
            base = row_no - len(rows)
            taken = lines[:]

            def where(i):
                return f"{path}, row {base + i + 1:,} (line {taken[i]:,})"
            columns = {c: [r[j] for r in rows] for c, j in zip(ours, index, strict=True)}
            return columns, where

        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                row_no += 1
                if len(row) != len(header):
                    what = (f"no value for column {header[len(row)]}" if len(row) < len(header) else
                            f"a field after the last column, {header[-1]}")
                    raise DataError(f"{path}, row {row_no:,} (line {reader.line_num + 1:,}): {len(row)} fields where "
                                    f"the header has {len(header)}: {what}")
                rows.append(row)
                lines.append(reader.line_num + 1)
                if len(rows) == chunk_rows:
                    yield flush()
                    rows.clear()
                    lines.clear()
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}, after row {row_no:,}: not UTF-8 text ({exc})") from None
        except csv.Error as exc:
            raise DataError(f"{path}, row {row_no + 1:,} (line {reader.line_num + 1:,}): not valid CSV: {exc}") from None
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
            raise DataError(f"{path}, after row {row_no:,}: unreadable: {exc}") from None
        if rows:
            yield flush()


def _parquet_chunks(path: str, mapping: dict, require_labels: bool, chunk_rows: int):
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: {PARQUET_HINT}") from None
    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file: {exc}") from None
    header = reader.schema_arrow.names
    chosen = _resolve(path, header, mapping, require_labels)
    ours = list(chosen)
    base = 0
    try:
        for batch in reader.iter_batches(batch_size=chunk_rows, columns=[chosen[c] for c in ours]):
            start = base

            def where(i, start=start):
                return f"{path}, row {start + i + 1:,}"
            columns = {}
            for c in ours:
                array = batch.column(chosen[c])
                kind = array.type
                if array.null_count:
                    raise _bad(where, array.to_pylist().index(None), c, "missing value")
                if c == TIME and pa.types.is_timestamp(kind):
                    per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
                    columns[c] = np.floor_divide(array.cast(pa.int64()).to_numpy(), per_second)
                elif c == TIME and pa.types.is_date(kind):
                    columns[c] = pc.cast(array, pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64) * 86400
                elif c == TIME and not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                    raise _bad(where, 0, c, f"a Parquet column of type {kind} is not a date-time")
                elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                    columns[c] = array.to_pylist()
                elif pa.types.is_boolean(kind) and c in (FRAUD,):
                    columns[c] = array.to_numpy(zero_copy_only=False).astype(np.int64)
                elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
                    columns[c] = (array.cast(pa.float64()) if pa.types.is_decimal(kind) else array).to_numpy()
                else:
                    raise _bad(where, 0, c, f"a Parquet column of type {kind} is not a number")
            base += batch.num_rows
            yield columns, where
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}, after row {base:,}: unreadable Parquet data: {exc}") from None


# -- loading -----------------------------------------------------------------------------------------
def load(path: str, columns: str | dict | None = None, require_labels: bool = True, for_replay: bool = False,
         progress: Progress | None = None, chunk_rows: int = CHUNK_ROWS, now: float | None = None) -> Dataset:
    """A transaction file as DATA_DTYPE rows in event-time order, checked (DataError) as the module says.

    for_replay: also refuse what the scorer would refuse at once (times before 2018-04-01, or
    more than 5 minutes ahead of this machine's clock)."""
    path = str(path)
    kind = file_kind(path)
    mapping = columns if isinstance(columns, dict) else parse_mapping(columns)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise DataError(f"{path} is empty: no header row")
    chunks, has, total = [], set(), 0
    limit = (time.time() if now is None else now) + 300 - EPOCH
    read = _csv_chunks if kind == "csv" else _parquet_chunks
    for cols, where in read(path, mapping, require_labels, chunk_rows):
        has = set(cols)
        part = _chunk(cols, where)
        if for_replay:
            for bad, why in ((part["tx_time"] < 0, "the scorer refuses times before 2018-04-01 00:00:00 UTC"),
                             (part["tx_time"] > limit, "the scorer refuses times more than 300 s ahead of its clock")):
                if bad.any():
                    i = int(np.argmax(bad))
                    raise _bad(where, i, TIME, f"{iso_time(int(part['tx_time'][i]))}: {why}")
        chunks.append(part)
        total += part.size
        if progress is not None:
            progress(total)
    if not total:
        raise DataError(f"{path} has no transactions: a header and no rows")
    tx = np.concatenate(chunks)
    del chunks
    if progress is not None:
        progress(total, final=True)
    has_labels, has_scenarios = FRAUD in has, SCENARIO in has
    if has_scenarios:
        if not has_labels:
            raise DataError(f"{path}, header: {SCENARIO} without {FRAUD}")
        wrong = (tx["scenario"] > 0) & (tx["fraud"] == 0)
        if wrong.any():
            i = int(np.argmax(wrong))
            raise DataError(f"{path}, row {i + 1:,}, column {SCENARIO}: scenario {int(tx['scenario'][i])} on a "
                            f"transaction whose {FRAUD} is 0 (only frauds have a scenario)")
    _refuse_duplicates(path, tx["tx_id"])
    warnings = []
    t = tx["tx_time"]
    behind = t[1:] < np.maximum.accumulate(t)[:-1]
    reordered = int(behind.sum())
    if reordered:
        i = int(np.argmax(behind)) + 1
        warnings.append(f"{path}: {reordered:,} rows are out of time order (the first: row {i + 1:,}, {TIME} "
                        f"{iso_time(int(t[i]))} comes after row {i:,}'s {iso_time(int(t[i - 1]))}); "
                        f"sorted by {TIME}, keeping the file's order among equal times")
        tx = tx[np.argsort(t, kind="stable")]
    return Dataset(tx, path, has_labels, has_scenarios, reordered, warnings)


def _refuse_duplicates(path: str, ids: np.ndarray) -> None:
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if same.size:
        later = order[same + 1]
        k = int(np.argmin(later))
        row, first = int(later[k]), int(order[same[k]])
        raise DataError(f"{path}, row {row + 1:,}, column {ID}: id {int(ids[row])} is also row {first + 1:,}'s "
                        f"({same.size:,} repeated ids in the file); ids must be unique")


def iso_time(tx_time: int) -> str:
    return datetime.fromtimestamp(EPOCH + int(tx_time), UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- writing -----------------------------------------------------------------------------------------
def write(path: str, transactions: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> None:
    """Transactions (simulator.TX_DTYPE or DATA_DTYPE) as the Handbook's CSV or Parquet."""
    kind = file_kind(str(path))
    if kind == "parquet":
        _write_parquet(str(path), transactions)
        return
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(WRITTEN)
        for start in range(0, transactions.size, chunk_rows):
            tx = transactions[start:start + chunk_rows]
            t = tx["tx_time"]
            stamps = np.datetime_as_string(np.datetime64(EPOCH, "s") + t.astype("timedelta64[s]"))
            writer.writerows(zip(tx["tx_id"].tolist(), (s[:10] + " " + s[11:] for s in stamps.tolist()),
                                 tx["customer_id"].tolist(), tx["terminal_id"].tolist(), tx["amount"].tolist(),
                                 t.tolist(), (t // 86400).tolist(), tx["fraud"].tolist(), tx["scenario"].tolist(),
                                 strict=True))


def _write_parquet(path: str, tx: np.ndarray) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: {PARQUET_HINT}") from None
    t = tx["tx_time"].astype(np.int64)
    table = pa.table({ID: tx["tx_id"].astype(np.int64),
                      TIME: pa.array(t + EPOCH, type=pa.timestamp("s")),
                      CUSTOMER: tx["customer_id"].astype(np.int64), TERMINAL: tx["terminal_id"].astype(np.int64),
                      AMOUNT: tx["amount"].astype(np.float64), "TX_TIME_SECONDS": t, "TX_TIME_DAYS": t // 86400,
                      FRAUD: tx["fraud"].astype(np.int64), SCENARIO: tx["scenario"].astype(np.int64)})
    pq.write_table(table, path)
