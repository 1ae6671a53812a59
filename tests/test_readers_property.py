"""Inputs that cannot hurt: whatever bytes a file holds, the readers give a clean frame or a ``DataError``.

Every case ends in a valid parse or a one-line ``DataError`` that names the file; never another
exception, never a hang (each read runs under an alarm). The CLI turns the error into one
``Error: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import csv
import faulthandler
import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapt.data import Pairs, load_corpus, load_pairs
from adapt.readers import read_table
from adapt.errors import DataError
from adapt.run import main

ROOT = Path(__file__).resolve().parents[1]
READ_SECONDS = 20  # one read of any file here takes well under a second; a hang trips this

PROPERTY = settings(
    max_examples=120, deadline=5000, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Hang(BaseException):
    """A BaseException, so that no ``except Exception`` in the code under test can swallow it."""


_depth = 0


@contextmanager
def within(seconds: float):
    """Fail the test if the block runs longer than ``seconds``.

    SIGALRM interrupts Python code; C code (a parser stuck in a loop) only notices once it returns, so
    faulthandler also ends the whole run, printing every thread's stack, if the block is still going
    at three times the limit: a hang then fails loudly instead of stalling CI.
    """
    global _depth

    def alarm(signum, frame):
        raise Hang(f"no result within {seconds} s")

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, alarm)
    outer_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    if _depth == 0:
        faulthandler.dump_traceback_later(3 * seconds, exit=True, file=sys.__stderr__)  # (capsys has no fd)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if _depth == 0:
            faulthandler.cancel_dump_traceback_later()
        if outer_delay:  # an enclosing within() keeps what is left of its own limit
            signal.setitimer(signal.ITIMER_REAL, max(outer_delay - (time.monotonic() - start), 0.001))


def clean_error(exc: DataError, path: Path) -> str:
    text = str(exc)
    assert f"'{path}'" in text, f"message does not name the file: {text!r}"
    assert "\n" not in text and "\r" not in text, f"message is not one line: {text!r}"
    assert len(text) < 1000, f"message too long to read: {len(text)} characters"
    return text


def outcome(reader, path: Path):
    """The reader's result, or the ``DataError`` it raised (checked to be clean); anything else fails."""
    with within(READ_SECONDS):
        try:
            return reader(path)
        except DataError as exc:
            clean_error(exc, path)
            return exc


def check_table(result, path: Path) -> None:
    if isinstance(result, DataError):
        return
    assert isinstance(result, pd.DataFrame)
    assert list(result.columns) == [str(c).strip() for c in result.columns]
    assert result.columns.is_unique
    for column in result.columns:
        assert all(isinstance(v, str) for v in result[column]), f"non-text value in column {column!r}"


def check_pairs(result, path: Path) -> None:
    if isinstance(result, DataError):
        return
    assert isinstance(result, Pairs)
    frame = result.frame
    assert list(frame.columns) == ["question", "passage"]
    assert len(frame) > 0
    for column in ("question", "passage"):
        values = list(frame[column])
        assert all(isinstance(v, str) and v != "" and v == v.strip() for v in values)
    assert not frame.duplicated().any()
    counts = result.counts
    assert counts["pairs"] == len(frame) == counts["rows_read"] - counts["dropped_empty"] - counts["dropped_duplicate"]


def check_corpus(result, path: Path) -> None:
    if isinstance(result, DataError):
        return
    assert isinstance(result, list) and result
    assert all(isinstance(p, str) and p and p == p.strip() for p in result)
    assert len(set(result)) == len(result)


READERS = [(read_table, check_table), (load_pairs, check_pairs), (load_corpus, check_corpus)]


def check_all(path: Path) -> list:
    """Run every reader on ``path``; return their results (value or ``DataError``)."""
    results = []
    for reader, check in READERS:
        result = outcome(reader, path)
        check(result, path)
        results.append(result)
    return results


def cleaned(rows) -> list[dict]:
    """What load_pairs should give for these (question, passage) rows."""
    out = []
    for question, passage in rows:
        pair = {"question": question.strip(), "passage": passage.strip()}
        if pair["question"] and pair["passage"] and pair not in out:
            out.append(pair)
    return out


def to_csv(rows, header=("question", "passage"), delimiter=",", quoting=csv.QUOTE_MINIMAL) -> str:
    buffer = io.StringIO()
    # "\r\n" (the default) as the row end, so that fields holding either character get quoted
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# Text that a real file can hold: no NUL (refused as binary), no surrogates (not encodable).
field_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
tricky_text = st.text(st.sampled_from(list('ab ,"\'\n\r\t;\\') + ["\u2028", "\u0085", "é", "\ufeff"]), max_size=20)
some_field = st.one_of(field_text, tricky_text)
rows_strategy = st.lists(st.tuples(some_field, some_field), max_size=8)
EXTENSIONS = [".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet", ".dat"]


# ----------------------------------------------------------------------------------------------
# Arbitrary bytes


@PROPERTY
@given(raw=st.binary(max_size=400), suffix=st.sampled_from(EXTENSIONS))
def test_random_bytes(tmp_path, raw, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(raw)
    check_all(path)


@PROPERTY
@given(lines=st.lists(st.text(st.sampled_from(list('ab,"\t \r') + ["é", "\x7f", "\u2028"]), max_size=12), max_size=10),
       suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_random_text_with_stray_quotes_and_delimiters(tmp_path, lines, suffix):
    path = tmp_path / f"stray{suffix}"
    path.write_text("question,passage\tquestion\n" + "\n".join(lines), encoding="utf-8")
    check_all(path)


@PROPERTY
@given(prefix=st.binary(max_size=40), junk=st.binary(min_size=1, max_size=8))
def test_random_bytes_after_a_valid_header(tmp_path, prefix, junk):
    path = tmp_path / "junk.csv"
    path.write_bytes(b"question,passage\n" + prefix + junk + b",p\n")
    check_all(path)


@settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                           HealthCheck.too_slow])
@given(width=st.integers(1, 4), data=st.data(), suffix=st.sampled_from([".csv", ".tsv"]))
def test_agrees_with_plain_pandas_where_pandas_reads_cleanly(tmp_path, width, data, suffix):
    sep = "\t" if suffix == ".tsv" else ","
    field = st.text(st.sampled_from(list('ab "\r\n\t,') + ["é"]), max_size=5)
    rows = data.draw(st.lists(st.lists(field, min_size=width, max_size=width), min_size=1, max_size=6))
    text = "\n".join(sep.join(row) for row in rows) + data.draw(st.sampled_from(["", "\n", "\r\n"]))
    assume(text.strip())  # only white space: called empty here, though pandas makes unnamed columns of it
    assume("\r" + sep not in text)  # pandas' tokenizer reads a lone CR before a delimiter its own way
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expected = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                                   skip_blank_lines=True, engine="c")
    except Exception:
        assume(False)  # pandas refuses it too: nothing to compare with
    assume(isinstance(expected.index, pd.RangeIndex))  # not pandas' silent "first field is the index"
    path = tmp_path / f"same{suffix}"
    path.write_bytes(text.encode("utf-8"))
    result = outcome(read_table, path)
    assert isinstance(result, pd.DataFrame), str(result)
    assert result.shape == expected.shape
    assert result.to_numpy().tolist() == expected.to_numpy().tolist()
    names = [str(c).strip() for c in expected.columns]
    if all(names) and len(set(names)) == len(names) and not any("." in n or "Unnamed: " in n for n in names):
        # (names pandas renamed, repeats as "a.1" and blanks as "Unnamed: 0", are renamed here after stripping)
        assert list(result.columns) == names


# ----------------------------------------------------------------------------------------------
# Encodings


@PROPERTY
@given(rows=rows_strategy, suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_utf8_byte_order_mark_changes_nothing(tmp_path, rows, suffix):
    if suffix == ".jsonl":
        text = "".join(json.dumps({"question": q, "passage": p}) + "\n" for q, p in rows)
    else:
        text = to_csv(rows, delimiter="\t" if suffix == ".tsv" else ",")
    plain, marked = tmp_path / f"plain{suffix}", tmp_path / f"marked{suffix}"
    plain.write_bytes(text.encode("utf-8"))
    marked.write_bytes(text.encode("utf-8-sig"))
    for (reader, check) in READERS:
        a, b = outcome(reader, plain), outcome(reader, marked)
        check(b, marked)
        assert type(a) is type(b)
        if isinstance(a, DataError):
            assert str(a).replace(str(plain), str(marked)) == str(b)
        elif isinstance(a, Pairs):
            pd.testing.assert_frame_equal(a.frame, b.frame)
        elif isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        else:
            assert a == b


@PROPERTY
@given(rows=rows_strategy, encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"]),
       suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json"]))
def test_utf16_with_byte_order_mark_says_not_utf8(tmp_path, rows, encoding, suffix):
    path = tmp_path / f"wide{suffix}"
    bom = "\ufeff" if encoding.endswith(("le", "be")) else ""  # plain utf-16 writes its own
    path.write_bytes((bom + to_csv(rows)).encode(encoding))
    for reader, _ in READERS:
        result = outcome(reader, path)
        assert isinstance(result, DataError)
        role = "corpus" if reader is load_corpus else "pairs"
        assert str(result) == (f"{role} file '{path}' is not UTF-8 text (it starts with a UTF-16 byte order mark); "
                               "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again")


@PROPERTY
@given(rows=st.lists(st.tuples(field_text, field_text), min_size=1, max_size=6),
       latin=st.text(st.characters(min_codepoint=0x80, max_codepoint=0xFF), min_size=1, max_size=5),
       where=st.integers(min_value=0, max_value=10_000))
def test_latin1_bytes_inside_utf8(tmp_path, rows, latin, where):
    good = to_csv(rows).encode("utf-8")
    cut = len(b"question,passage\n") + where % (len(good) - len(b"question,passage\n") + 1)
    while cut < len(good) and (good[cut] & 0xC0) == 0x80:  # cut between characters, not inside one
        cut += 1
    raw = good[:cut] + latin.encode("latin-1") + good[cut:]
    path = tmp_path / "mixed.csv"
    path.write_bytes(raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        expected = (f"pairs file '{path}' is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}, "
                    f"at byte {exc.start}); save it as UTF-8 (in Excel: 'CSV UTF-8') and try again")
        result = outcome(load_pairs, path)
        assert isinstance(result, DataError) and str(result) == expected
    else:  # these latin-1 bytes happen to spell valid UTF-8
        check_all(path)


# ----------------------------------------------------------------------------------------------
# Well-formed files with awkward content read back exactly


@PROPERTY
@given(rows=rows_strategy, quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
       suffix=st.sampled_from([".csv", ".tsv"]))
def test_quoted_fields_round_trip(tmp_path, rows, quoting, suffix):
    path = tmp_path / f"pairs{suffix}"
    path.write_bytes(to_csv(rows, delimiter="\t" if suffix == ".tsv" else ",", quoting=quoting).encode("utf-8"))
    result = outcome(load_pairs, path)
    check_pairs(result, path)
    expected = cleaned(rows)
    if expected:
        assert isinstance(result, Pairs), str(result)
        assert result.frame.to_dict("records") == expected
    else:
        assert isinstance(result, DataError)


@PROPERTY
@given(rows=rows_strategy, extra=st.dictionaries(field_text, st.one_of(st.none(), st.integers(), field_text),
                                                  max_size=3),
       ensure_ascii=st.booleans())
def test_jsonl_round_trip(tmp_path, rows, extra, ensure_ascii):
    assume("question" not in {k.strip() for k in extra} and "passage" not in {k.strip() for k in extra})
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps({**extra, "question": q, "passage": p}, ensure_ascii=ensure_ascii) for q, p in rows]
    path.write_text("\n".join(lines), encoding="utf-8")
    result = outcome(load_pairs, path)
    check_pairs(result, path)
    expected = cleaned(rows)
    if expected:
        assert isinstance(result, Pairs), str(result)
        assert result.frame.to_dict("records") == expected
    else:
        assert isinstance(result, DataError)


@PROPERTY
@given(rows=st.lists(st.tuples(st.one_of(st.none(), some_field), st.one_of(st.none(), some_field)), max_size=8))
def test_parquet_round_trip(tmp_path, rows):
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"question": pa.array([q for q, _ in rows], pa.string()),
                             "passage": pa.array([p for _, p in rows], pa.string())}), path)
    result = outcome(load_pairs, path)
    check_pairs(result, path)
    expected = cleaned([(q or "", p or "") for q, p in rows])
    if expected:
        assert isinstance(result, Pairs), str(result)
        assert result.frame.to_dict("records") == expected
    else:
        assert isinstance(result, DataError)


@PROPERTY
@given(rows=rows_strategy, extra=st.dictionaries(field_text, st.one_of(st.none(), st.integers(), field_text),
                                                  max_size=3),
       indent=st.sampled_from([None, 0, 2, "\t"]), suffix=st.sampled_from([".json", ".jsonl"]))
def test_json_array_round_trip(tmp_path, rows, extra, indent, suffix):
    assume("question" not in {k.strip() for k in extra} and "passage" not in {k.strip() for k in extra})
    path = tmp_path / f"pairs{suffix}"
    path.write_text(json.dumps([{**extra, "question": q, "passage": p} for q, p in rows], indent=indent),
                    encoding="utf-8")
    result = outcome(load_pairs, path)
    check_pairs(result, path)
    expected = cleaned(rows)
    if expected:
        assert isinstance(result, Pairs), str(result)
        assert result.frame.to_dict("records") == expected
    elif rows:
        assert str(result).endswith("but none with both a question and a passage; fill them in")
    else:
        assert str(result) == f"pairs file '{path}' is empty; it needs at least one JSON object"


@PROPERTY
@given(extras=st.lists(st.lists(st.sampled_from(["", "", '""', "x", " "]), max_size=5), min_size=1, max_size=6),
       suffix=st.sampled_from([".csv", ".tsv"]))
def test_text_in_any_field_beyond_the_header_is_an_error(tmp_path, extras, suffix):
    sep, word = ("\t", "tab") if suffix == ".tsv" else (",", "comma")
    lines = [f"question{sep}passage"] + [sep.join([f"q{i}", f"p{i}", *extra]) for i, extra in enumerate(extras)]
    path = tmp_path / f"wide{suffix}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = outcome(load_pairs, path)
    wide = [i + 1 for i, extra in enumerate(extras) if any(f not in ("", '""') for f in extra)]
    if wide:
        assert isinstance(result, DataError)
        assert str(result) == (f"pairs file '{path}' data row {wide[0]} has more fields than the header has names "
                               f"(2); put double quotes around fields that contain a {word}, "
                               "or name every column in the header")
    else:
        assert isinstance(result, Pairs), str(result)
        assert result.frame.to_dict("records") == [{"question": f"q{i}", "passage": f"p{i}"}
                                                   for i in range(len(extras))]


ARROW_VALUES = [
    (pa.int32(), [1, None], "numbers"), (pa.float64(), [0.5, 2.0], "numbers"),
    (pa.decimal128(5, 2), [None, None], "numbers"),
    (pa.bool_(), [True, None], "true/false values"), (pa.date32(), [0, 1], "dates or times"),
    (pa.list_(pa.string()), [["a"], None], "lists"), (pa.large_list(pa.int64()), [[1, 2], []], "lists"),
    (pa.map_(pa.string(), pa.string()), [[("a", "b")], []], "lists"),
    (pa.struct([("text", pa.string())]), [{"text": "a"}, None], "records"),
]


@PROPERTY
@given(case=st.sampled_from(ARROW_VALUES), role=st.sampled_from(["question", "passage", "other"]))
def test_parquet_columns_that_are_not_text(tmp_path, case, role):
    kind, values, words = case
    columns = {"question": pa.array(["q1", "q2"]), "passage": pa.array(["p1", "p2"])}
    columns["other" if role == "other" else role] = pa.array(values, kind)
    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table(columns), path)
    table = outcome(read_table, path)
    check_table(table, path)
    result = outcome(load_pairs, path)
    if role == "other":
        assert isinstance(result, Pairs), str(result)
        assert result.frame.to_dict("records") == [{"question": "q1", "passage": "p1"},
                                                   {"question": "q2", "passage": "p2"}]
    else:
        assert isinstance(result, DataError)
        stored = pq.read_schema(path).field(role).type  # (Parquet names a list's items "element")
        assert str(result).startswith(f"pairs file '{path}' column '{role}' holds {words} ({stored}), not text; ")
        assert str(result).endswith(" and save it again")


# ----------------------------------------------------------------------------------------------
# Column names and shapes


@PROPERTY
@given(names=st.lists(some_field, min_size=1, max_size=6), data=st.data(),
       suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet"]))
def test_random_column_names(tmp_path, names, data, suffix):
    width = len(names)
    rows = data.draw(st.lists(st.lists(some_field, min_size=width, max_size=width), max_size=4))
    path = tmp_path / f"named{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(names, row))) + "\n" for row in rows), encoding="utf-8")
    elif suffix == ".parquet":
        columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(width)]
        try:
            pq.write_table(pa.table(columns, names=names), path)
        except (pa.ArrowException, ValueError):
            assume(False)  # pyarrow will not write these names
    else:
        path.write_text(to_csv(rows, header=names, delimiter="\t" if suffix == ".tsv" else ","), encoding="utf-8")
    results = check_all(path)
    pairs = results[1]
    if isinstance(pairs, DataError) and "has no question column" in str(pairs):
        assert "found " in str(pairs)  # the message lists what it found


@PROPERTY
@given(names=st.lists(some_field, min_size=1, max_size=6), blank=st.sampled_from(["", "\n", "\n\n", "\r\n \n"]))
def test_header_only(tmp_path, names, blank):
    path = tmp_path / "header.csv"
    path.write_text(to_csv([], header=names) + blank, encoding="utf-8")
    results = check_all(path)
    assert not isinstance(results[1], Pairs)  # no rows: never a set of pairs
    assert not isinstance(results[2], list)


@PROPERTY
@given(lines=st.lists(st.one_of(
    st.just(""), st.just("   "), st.text(max_size=20),
    st.builds(json.dumps, st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | field_text,
                                       lambda inner: st.lists(inner, max_size=3)
                                       | st.dictionaries(field_text, inner, max_size=3), max_leaves=8)),
    st.builds(lambda q, p: json.dumps({"question": q, "passage": p}), some_field, some_field),
    st.builds(lambda n: "[" * n + "]" * n, st.integers(1, 200_000)),
    st.builds(lambda n: '{"question": ' + "1" * n + ', "passage": "p"}', st.integers(4000, 5000)),
), max_size=8))
def test_jsonl_random_lines(tmp_path, lines):
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    check_all(path)


# ----------------------------------------------------------------------------------------------
# Damaged Parquet


@pytest.fixture(scope="module")
def parquet_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("parquet") / "good.parquet"
    pq.write_table(pa.table({"question": [f"question {i}" for i in range(20)],
                             "passage": [f"passage {i}" * 3 for i in range(20)],
                             "score": [float(i) for i in range(20)]}), path)
    return path.read_bytes()


@PROPERTY
@given(data=st.data())
def test_parquet_with_garbage_bytes(tmp_path, parquet_bytes, data):
    raw = bytearray(parquet_bytes)
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "footer"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    else:  # keep the magic bytes, garble the footer length and metadata
        tail = data.draw(st.binary(min_size=4, max_size=64))
        raw = raw[:-(len(tail) + 4)] + tail + b"PAR1"
    path = tmp_path / "damaged.parquet"
    path.write_bytes(bytes(raw))
    check_all(path)


# ----------------------------------------------------------------------------------------------
# Size


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_field_of_several_megabytes(tmp_path, suffix):
    long = ("x" * 999 + "\n") * 3000 + 'say "hi", ok'  # 3 MB with newlines, a quote and a comma
    rows = [("short question", long), ("q2", "p2")]
    path = tmp_path / f"long{suffix}"
    if suffix == ".csv":
        path.write_text(to_csv(rows), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"question": q, "passage": p}) + "\n" for q, p in rows), encoding="utf-8")
    else:
        pq.write_table(pa.table({"question": [q for q, _ in rows], "passage": [p for _, p in rows]}), path)
    result = outcome(load_pairs, path)
    check_pairs(result, path)
    assert result.frame["passage"].tolist() == [long.strip(), "p2"]
    assert outcome(load_corpus, path) == [long.strip(), "p2"]


def test_column_name_of_several_megabytes(tmp_path):
    path = tmp_path / "long_header.csv"
    path.write_text("h" * 2_000_000 + ",passage\nq,p\n", encoding="utf-8")
    for reader, _ in READERS:
        result = outcome(reader, path)
        assert isinstance(result, DataError)
        assert clean_error(result, path).endswith(
            "has a header row that cannot be read (field larger than field limit (131072)); "
            "check that the first row names the columns, e.g. question,passage")


@settings(PROPERTY, max_examples=4, deadline=None)  # the alarm in outcome() still catches a hang
@given(size=st.integers(1_000_000, 5_000_000), char=st.sampled_from(['"', ",", "a", "\n", "é"]))
def test_random_megabyte_fields(tmp_path, size, char):
    path = tmp_path / "big.csv"
    path.write_text("question,passage\nq," + char * size + "\n", encoding="utf-8")
    check_all(path)


@pytest.fixture(scope="module")
def million_rows(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("million")
    (folder / "rows.csv").write_bytes(b"a\n" * 2_000_000)
    return folder


def test_two_million_rows_of_one_character(million_rows):
    path = million_rows / "rows.csv"
    with within(20):
        frame = read_table(path)
        assert frame.shape == (1_999_999, 1) and list(frame.columns) == ["a"]
        with pytest.raises(DataError) as excinfo:
            load_pairs(path)
        assert str(excinfo.value) == (f"pairs file '{path}' has no question column: expected 'question' "
                                      "(or 'query', 'anchor', 'questions'), found 'a'; "
                                      "rename it or pass --question-col")
        assert load_corpus(path) == ["a"]


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl", ".parquet"])
def test_two_million_rows_as_other_kinds(million_rows, suffix):
    path = million_rows / f"rows{suffix}"
    if not path.exists():
        path.write_bytes(b"a\n" * 2_000_000)
    with within(20):
        check_all(path)


# ----------------------------------------------------------------------------------------------
# Special files: refused, never read (a pipe would block, /dev/zero never ends)


def test_pipe_does_not_hang(tmp_path):
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    results = check_all(path)
    assert all(isinstance(r, DataError) for r in results)


def test_endless_device_does_not_hang():
    path = Path("/dev/zero")
    if not path.exists():
        pytest.skip("no /dev/zero")
    assert all(isinstance(r, DataError) for r in check_all(path))


# ----------------------------------------------------------------------------------------------
# The CLI boundary


def bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "missing": folder / "missing.csv",
        "directory": folder,
        "utf16": folder / "utf16.csv",
        "latin1": folder / "latin1.csv",
        "binary": folder / "binary.csv",
        "header_only": folder / "header.csv",
        "wrong_columns": folder / "wrong.csv",
        "stray_quote": folder / "quote.csv",
        "bad_json": folder / "bad.jsonl",
        "bad_parquet": folder / "bad.parquet",
        "too_few": folder / "few.csv",
        "wide_row": folder / "wide.csv",
        "two_passages": folder / "two.csv",
        "parquet_numbers": folder / "numbers.parquet",
        "json_array_broken": folder / "broken.json",
    }
    files["utf16"].write_bytes("question,passage\nq,p\n".encode("utf-16"))
    files["latin1"].write_bytes("question,passage\ncafé,p\n".encode("latin-1"))
    files["binary"].write_bytes(bytes(range(256)) * 4)
    files["header_only"].write_text("question,passage\n")
    files["wrong_columns"].write_text("q,text\na,b\n")
    files["stray_quote"].write_text('question,passage\n"oops,p\n')
    files["bad_json"].write_text('{"question": "q", "passage": \n')
    files["bad_parquet"].write_bytes(b"PAR1" + bytes(100) + b"PAR1")
    files["too_few"].write_text("question,passage\nq1,p1\nq2,p2\n")
    files["wide_row"].write_text("question,passage\nq1,p1,,x\n")
    files["two_passages"].write_text("question,passage,passage\n,q1,p1\n")
    pq.write_table(pa.table({"question": [1, 2], "passage": ["p1", "p2"]}), files["parquet_numbers"])
    files["json_array_broken"].write_text('[\n  {"question": "q",\n')
    return files


CLI_CASES = ["missing", "directory", "utf16", "latin1", "binary", "header_only", "wrong_columns", "stray_quote",
             "bad_json", "bad_parquet", "too_few", "wide_row", "two_passages", "parquet_numbers", "json_array_broken"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_error_is_one_line(tmp_path, capsys, case):
    bad = bad_files(tmp_path / "inputs")[case]
    out = tmp_path / "run"
    with within(60):
        status = main([str(bad), "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()  # nothing written for bad input


@pytest.mark.parametrize("option", ["--eval-pairs", "--corpus"])
def test_cli_error_for_other_input_files(tmp_path, capsys, option):
    good = tmp_path / "pairs.csv"
    good.write_text(to_csv([(f"question {i}", f"passage {i}") for i in range(20)]))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00")
    status = main([str(good), option, str(bad), "--out", str(tmp_path / "run"), "-q"])
    lines = capsys.readouterr().err.splitlines()
    assert status == 1 and len(lines) == 1
    role = "eval pairs" if option == "--eval-pairs" else "corpus"
    assert lines[0] == (f"Error: {role} file '{bad}' is not UTF-8 text (it starts with a UTF-16 byte order mark); "
                        "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again")


def test_cli_in_a_real_process(tmp_path):
    bad = tmp_path / "excel.csv"
    bad.write_bytes("question,passage\nq,p\n".encode("utf-16"))
    done = subprocess.run([sys.executable, "-m", "adapt.run", str(bad), "--out", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [f"Error: pairs file '{bad}' is not UTF-8 text (it starts with a UTF-16 byte order mark); "
                      "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again"]
    assert done.stderr.splitlines()[-1] == errors[0]
