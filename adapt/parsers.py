"""Parse the text (or bytes) of one file format into a ``Table`` of strings, or raise ``DataError``.

adapt/readers.py chooses the parser by extension and does the checks every format shares; each
parser here keeps a column's values as text and notes any column that held something else
(numbers, lists, records), so that using such a column as questions or passages can be refused
instead of trained on as its printed form.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from adapt.errors import DataError

MAX_COLUMNS = 1000
HEADER_FIELD_LIMIT = 131072  # csv's own default field limit: a longer header field is not a name
_FIELD_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class NotText:
    """What a column held instead of text: ``kind`` (e.g. "numbers"), ``detail`` (a type or where)."""

    kind: str
    detail: str
    source: str  # "parquet" or "json": the fix differs


@dataclass
class Table:
    """A file's columns as text (``frame``), with the names as written and the columns that were not text."""

    frame: pd.DataFrame
    names: list[str]  # one per column of ``frame``, stripped, repeats kept (``frame``'s are made unique)
    not_text: dict[int, NotText] = field(default_factory=dict)  # by column position


def first_line(text: str, limit: int = 200) -> str:
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[:limit] + "..."


# ----------------------------------------------------------------------------------------------
# CSV and TSV


def parse_delimited(text: str, kind: str, label: str) -> Table:
    sep = "\t" if kind == "tsv" else ","
    width = _header_width(text, sep, label)
    # One extra column, filled by a last row that is one field wider than the header, so that pandas
    # always sees it: text in it means a row has more fields than the header has names (empty trailing
    # fields, as "q,p," gives, are harmless). Reading a fixed number of columns also keeps a row of a
    # million commas from taking minutes; text further right is found by _wide_row.
    padded = text if text.endswith("\n") else text + "\n"  # (pandas misreads a lone CR before a delimiter)
    padded += sep * width + "\n"
    try:
        frame = pd.read_csv(
            io.StringIO(padded), sep=sep, header=None, names=range(width + 1), usecols=range(width + 1),
            dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=True, engine="c",
            low_memory=False,  # in chunks, a chunk without the wide last row would have too few columns
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError, OverflowError) as exc:
        detail = first_line(str(exc)) or type(exc).__name__
        raise DataError(
            f"{label} could not be parsed as {kind.upper()} ({detail}); check its quoting, "
            "e.g. a field with a stray double quote"
        ) from None
    header, frame = frame.iloc[0], frame.iloc[1:-1].reset_index(drop=True)
    extra = (frame[width] != "").to_numpy()
    rows = [r for r in (int(extra.argmax()) + 1 if extra.any() else 0, _wide_row(text, sep, width)) if r]
    if rows:
        what = "a tab" if kind == "tsv" else "a comma"
        raise DataError(
            f"{label} data row {min(rows)} has more fields than the header has names ({width}); "
            f"put double quotes around fields that contain {what}, or name every column in the header"
        )
    frame = frame.drop(columns=width)
    names = [name.strip() for name in header.iloc[:width]]
    frame.columns = [name if name else f"Unnamed: {i}" for i, name in enumerate(names)]
    return Table(frame, list(frame.columns))


def _wide_row(text: str, sep: str, width: int) -> int:
    """The first data row with text beyond the header's width plus one field (as in "q,p,,x"), or 0."""
    if text.count(sep) <= width:  # no row can be that wide
        return 0
    blank = _blank(sep)
    number = -1  # the header is row 0
    with _field_limit(len(text) + 1):
        try:
            for record in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
                if not record or (len(record) == 1 and not record[0].strip(blank)):
                    continue  # pandas skips blank lines
                number += 1
                if len(record) > width + 1 and any(record[width + 1:]):
                    return max(number, 1)
        except csv.Error:  # pandas read it, so this is a quirk of the csv module: leave it to pandas
            return 0
    return 0


def _blank(sep: str) -> str:
    """The characters of a line that pandas skips as blank."""
    return " \r\n\ufeff" + ("" if sep == "\t" else "\t")


@contextlib.contextmanager
def _field_limit(limit: int):
    """csv's field limit is one setting for the whole process: set it for one parse at a time."""
    with _FIELD_LIMIT_LOCK:
        previous = csv.field_size_limit(max(limit, HEADER_FIELD_LIMIT))
        try:
            yield
        finally:
            csv.field_size_limit(previous)


def _header_width(text: str, sep: str, label: str) -> int:
    """How many fields the header row has: a guard before pandas builds that many columns."""
    consumed: list[str] = []

    def lines():
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    blank = _blank(sep)
    try:
        with _field_limit(HEADER_FIELD_LIMIT):
            for record in csv.reader(lines(), delimiter=sep):
                if "".join(consumed).strip(blank):
                    break
                consumed.clear()
            else:
                raise DataError(f"{label} is empty; it needs a header row and at least one row of data")
    except csv.Error as exc:
        raise DataError(
            f"{label} has a header row that cannot be read ({first_line(str(exc))}); "
            "check that the first row names the columns, e.g. question,passage"
        ) from None
    if len(record) > MAX_COLUMNS:
        raise DataError(
            f"{label} has {len(record):,} columns in its header row, more than the {MAX_COLUMNS:,} it may have; "
            "check that the first row names the columns, e.g. question,passage"
        )
    return len(record)


# ----------------------------------------------------------------------------------------------
# JSON Lines, and a JSON array of objects


JSON_KINDS = ((bool, "a true/false value"), ((int, float), "a number"), (list, "a list"), (dict, "an object"))


def parse_json(text: str, label: str) -> Table:
    """One JSON object per line, or one JSON array of objects (pretty-printed or not)."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{label} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                            "write one JSON array of objects, or one JSON object per line") from None
        except (ValueError, RecursionError):  # an integer too long to convert, or nesting too deep
            raise DataError(f"{label} is not valid JSON; write one JSON array of objects, "
                            "or one JSON object per line") from None
        if not isinstance(items, list):
            raise DataError(f"{label} is not a JSON array; write one JSON array of objects, "
                            "or one JSON object per line")
        return _json_table(((f"item {i} of the array", item) for i, item in enumerate(items, start=1)), label)
    return _json_table(_json_lines(text, label), label)


def _json_lines(text: str, label: str):
    # Only "\n" ends a line: str.splitlines() would also split at U+2028 and friends, which JSON
    # strings may hold unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, or an integer too long to convert
            raise DataError(f"{label} line {number} is not valid JSON; write one JSON object per line") from None


def _json_table(rows_at, label: str) -> Table:
    """A table from (place, value) pairs, where place is "line 3" or "item 3 of the array"."""
    rows = []
    not_text: dict[str, NotText] = {}  # by key: the first value that is not a string (or null)
    keys: dict[str, None] = {}
    for place, row in rows_at:
        if not isinstance(row, dict):
            fix = "write one object per line" if place.startswith("line") else "write an array of objects"
            raise DataError(f"{label} {place} is not a JSON object; {fix}, "
                            'e.g. {"question": "...", "passage": "..."}')
        try:
            rows.append({str(k): _json_text(v) for k, v in row.items()})
        except (ValueError, RecursionError):
            raise DataError(f"{label} {place} has a value that cannot be turned into text; "
                            "write questions and passages as JSON strings") from None
        for key, value in row.items():
            if str(key) not in not_text and value is not None and not isinstance(value, str):
                what = next(name for types, name in JSON_KINDS if isinstance(value, types))
                not_text[str(key)] = NotText(what, ("on " if place.startswith("line") else "in ") + place, "json")
        keys.update(dict.fromkeys(rows[-1]))
        if len(keys) > MAX_COLUMNS:
            raise DataError(f"{label} has more than {MAX_COLUMNS:,} different keys by {place}; "
                            'write the same few keys on every line, e.g. {"question": "...", "passage": "..."}')
    if not rows:
        raise DataError(f"{label} is empty; it needs at least one JSON object")
    frame = pd.DataFrame(rows, columns=list(keys)).fillna("")
    names = [str(c).strip() for c in frame.columns]
    return Table(frame, names, {i: not_text[key] for i, key in enumerate(keys) if key in not_text})


def _json_text(value) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------
# Parquet


def parse_parquet(raw: bytes, label: str) -> Table:
    try:
        columns = pq.ParquetFile(io.BytesIO(raw)).metadata.num_columns
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{label} is not a readable Parquet file ({type(exc).__name__}); re-export it") from None
    if columns > MAX_COLUMNS:
        raise DataError(f"{label} has {columns:,} columns, more than the {MAX_COLUMNS:,} it may have; "
                        "keep the question and passage columns and a few others")
    try:
        table = pq.ParquetFile(io.BytesIO(raw)).read()  # (pq.read_table refuses repeated column names)
        table.validate(full=True)  # a damaged string column can hold bytes that are not UTF-8
        index = {c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        kept = [i for i, f in enumerate(table.schema) if f.name not in index]  # pandas' saved row index
        texts = {n: _arrow_text(table.column(i)) for n, i in enumerate(kept)}
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{label} is not a readable Parquet file ({type(exc).__name__}); re-export it") from None
    frame = pd.DataFrame(texts, index=pd.RangeIndex(table.num_rows), dtype=str)
    names = [str(table.schema.field(i).name).strip() for i in kept]
    not_text = {n: NotText(kind, str(table.schema.field(i).type), "parquet")
                for n, i in enumerate(kept) if (kind := arrow_kind(table.schema.field(i).type))}
    return Table(frame, names, not_text)


def arrow_kind(kind: pa.DataType) -> str | None:
    """None for a column of text (or of bytes, or only nulls); else what it holds, in words."""
    types = pa.types
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if (types.is_string(kind) or types.is_large_string(kind) or types.is_string_view(kind) or types.is_binary(kind)
            or types.is_large_binary(kind) or types.is_binary_view(kind) or types.is_null(kind)):
        return None
    if types.is_integer(kind) or types.is_floating(kind) or types.is_decimal(kind):
        return "numbers"
    if types.is_boolean(kind):
        return "true/false values"
    if types.is_temporal(kind):
        return "dates or times"
    if (types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind) or types.is_map(kind)
            or types.is_list_view(kind) or types.is_large_list_view(kind)):
        return "lists"
    if types.is_struct(kind):
        return "records"
    return "values that are not text"


def _arrow_text(column: pa.ChunkedArray) -> list[str]:
    """A Parquet column as text: nulls become "" (so they count as empty), bytes are decoded."""
    return [_cell_text(v) for v in column.to_pylist()]


def _cell_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)
