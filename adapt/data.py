"""Read, validate, clean and split question/passage pairs.

Everything a person can get wrong about a file ends here in a ``DataError`` that names the file
and says how to fix it.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from adapt.errors import DataError
from adapt.files import atomic_write_text

logger = logging.getLogger(__name__)

QUESTION_NAMES = ("question", "query", "anchor", "questions", "queries")
PASSAGE_NAMES = ("passage", "context", "positive", "answer", "document", "passages", "text")
READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
# UTF-32 first: its little-endian mark starts with UTF-16's
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
MIN_QUESTIONS = 10
MAX_COLUMNS = 1000
MIN_TRAIN_QUESTIONS = 4


@dataclass
class Pairs:
    """Cleaned pairs (columns ``question``, ``passage``) and what cleaning did to them."""

    frame: pd.DataFrame
    counts: dict = field(default_factory=dict)


@dataclass
class Splits:
    """Train / dev / test pairs and the search corpus (columns ``passage_id``, ``passage``)."""

    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame
    corpus: pd.DataFrame
    counts: dict = field(default_factory=dict)

    def passage_ids(self) -> dict[str, str]:
        return dict(zip(self.corpus["passage"], self.corpus["passage_id"]))


@dataclass
class IRData:
    """Evaluation data in sentence-transformers' terms."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant_docs: dict[str, set[str]]


# ----------------------------------------------------------------------------------------------
# Reading


def read_table(path: Path | str, role: str = "pairs") -> pd.DataFrame:
    """Read a CSV / TSV / JSONL / Parquet file into a frame of strings, or raise ``DataError``."""
    path = Path(path)
    label = _label(path, role)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise DataError(f"{label} not found; check the path") from None
    except OSError as exc:
        raise DataError(f"{label} cannot be read ({exc.strerror}); check the path and its permissions") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{label} is a directory; pass a .csv, .tsv, .jsonl or .parquet file")
    if not stat.S_ISREG(mode):
        raise DataError(f"{label} is not a regular file (a pipe or a device); save the data to a file and pass that")
    kind = READERS.get(path.suffix.lower(), "csv")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{label} cannot be read ({exc.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{label} is empty; " + ("it needs at least one JSON object" if kind == "jsonl" else
                                                 "it needs a header row and at least one row of data"))
    if kind == "parquet":
        frame = _read_parquet(raw, label)
    else:
        text = _decode(raw, label)
        frame = _read_jsonl(text, label) if kind == "jsonl" else _read_delimited(text, kind, label)
    frame.columns = _unique([str(c).strip() for c in frame.columns])
    return frame


def _label(path: Path | str, role: str) -> str:
    """How messages name a file: quoted, and escaped if the name holds a newline or other control."""
    name = str(path)
    return f"{role} file '{name}'" if name.isprintable() else f"{role} file {name!r}"


def _unique(names: list[str]) -> list[str]:
    """Column names made unique the way pandas does it: a repeat gets '.1', '.2', ..."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, number = name, 0
        while candidate in seen:
            number += 1
            candidate = f"{name}.{number}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _decode(raw: bytes, label: str) -> str:
    for bom, name in BYTE_ORDER_MARKS:
        if raw.startswith(bom):
            raise DataError(
                f"{label} is not UTF-8 text (it starts with a {name} byte order mark); "
                "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again"
            )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{label} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}, at byte {exc.start}); "
            "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again"
        ) from None
    if "\x00" in text:
        raise DataError(f"{label} contains NUL bytes, so it is not a text file; export it as UTF-8 CSV")
    return text


def _read_delimited(text: str, kind: str, label: str) -> pd.DataFrame:
    sep = "\t" if kind == "tsv" else ","
    width = _header_width(text, sep, label)
    # One extra column, filled by a last row that is one field wider than the header, so that pandas
    # always sees it: text in it means a row has more fields than the header has names (empty trailing
    # fields, as "q,p," gives, are harmless). Reading a fixed number of columns also keeps a row of a
    # million commas from taking minutes.
    padded = text if text.endswith("\n") else text + "\n"  # (pandas misreads a lone CR before a delimiter)
    padded += sep * width + "\n"
    try:
        frame = pd.read_csv(
            io.StringIO(padded), sep=sep, header=None, names=range(width + 1), usecols=range(width + 1),
            dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=True, engine="c",
            low_memory=False,  # in chunks, a chunk without the wide last row would have too few columns
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError, OverflowError) as exc:
        detail = _first_line(str(exc)) or type(exc).__name__
        raise DataError(
            f"{label} could not be parsed as {kind.upper()} ({detail}); check its quoting, "
            "e.g. a field with a stray double quote"
        ) from None
    header, frame = frame.iloc[0], frame.iloc[1:-1].reset_index(drop=True)
    extra = (frame[width] != "").to_numpy()
    if extra.any():
        what = "a tab" if kind == "tsv" else "a comma"
        raise DataError(
            f"{label} data row {int(extra.argmax()) + 1} has more fields than the header has names ({width}); "
            f"put double quotes around fields that contain {what}, or name every column in the header"
        )
    frame = frame.drop(columns=width)
    frame.columns = [name if name.strip() else f"Unnamed: {i}" for i, name in enumerate(header.iloc[:width])]
    return frame


def _header_width(text: str, sep: str, label: str) -> int:
    """How many fields the header row has: a guard before pandas builds that many columns."""
    consumed: list[str] = []

    def lines():
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    blank = " \r\n\ufeff" + ("" if sep == "\t" else "\t")  # pandas skips lines of only these
    try:
        for record in csv.reader(lines(), delimiter=sep):
            if "".join(consumed).strip(blank):
                break
            consumed.clear()
        else:
            raise DataError(f"{label} is empty; it needs a header row and at least one row of data")
    except csv.Error as exc:
        raise DataError(
            f"{label} has a header row that cannot be read ({_first_line(str(exc))}); "
            "check that the first row names the columns, e.g. question,passage"
        ) from None
    if len(record) > MAX_COLUMNS:
        raise DataError(
            f"{label} has {len(record):,} columns in its header row, more than the {MAX_COLUMNS:,} it may have; "
            "check that the first row names the columns, e.g. question,passage"
        )
    return len(record)


def _first_line(text: str, limit: int = 200) -> str:
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[:limit] + "..."


def _read_jsonl(text: str, label: str) -> pd.DataFrame:
    rows = []
    keys: set[str] = set()
    # Only "\n" ends a line: str.splitlines() would also split at U+2028 and friends, which JSON
    # strings may hold unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, or an integer too long to convert
            raise DataError(f"{label} line {number} is not valid JSON; write one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{label} line {number} is not a JSON object; write one object per line, "
                            'e.g. {"question": "...", "passage": "..."}')
        try:
            rows.append({str(k): _json_text(v) for k, v in row.items()})
        except (ValueError, RecursionError):
            raise DataError(f"{label} line {number} has a value that cannot be turned into text; "
                            "write questions and passages as JSON strings") from None
        keys.update(rows[-1])
        if len(keys) > MAX_COLUMNS:
            raise DataError(f"{label} has more than {MAX_COLUMNS:,} different keys by line {number}; "
                            'write the same few keys on every line, e.g. {"question": "...", "passage": "..."}')
    if not rows:
        raise DataError(f"{label} is empty; it needs at least one JSON object")
    return pd.DataFrame(rows).fillna("")


def _json_text(value) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _read_parquet(raw: bytes, label: str) -> pd.DataFrame:
    try:
        columns = pq.ParquetFile(io.BytesIO(raw)).metadata.num_columns
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{label} is not a readable Parquet file ({type(exc).__name__}); re-export it") from None
    if columns > MAX_COLUMNS:
        raise DataError(f"{label} has {columns:,} columns, more than the {MAX_COLUMNS:,} it may have; "
                        "keep the question and passage columns and a few others")
    try:
        table = pq.read_table(io.BytesIO(raw))
        table.validate(full=True)  # a damaged string column can hold bytes that are not UTF-8
        frame = table.to_pandas()
        texts = pd.DataFrame({i: _parquet_text(frame.iloc[:, i]) for i in range(frame.shape[1])},
                             index=pd.RangeIndex(len(frame)))
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{label} is not a readable Parquet file ({type(exc).__name__}); re-export it") from None
    texts.columns = list(frame.columns)
    return texts


def _parquet_text(column: pd.Series) -> pd.Series:
    """A Parquet column as text: nulls become "" (so they count as empty), bytes are decoded."""
    if isinstance(column.dtype, pd.StringDtype):
        return column.fillna("").astype(str).reset_index(drop=True)
    return pd.Series([_cell_text(v) for v in column], dtype=str)


def _cell_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""
    return str(value)


def _pick_column(frame: pd.DataFrame, wanted: str | None, names: tuple[str, ...], what: str,
                 option: str, label: str) -> str:
    found = _names(list(frame.columns))
    if wanted is not None:
        if wanted in frame.columns:
            return wanted
        raise DataError(f"{label} has no column {wanted!r} (given by {option}); found {found}")
    lowered = {str(c).lower(): c for c in frame.columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"{label} has no {what} column: expected {names[0]!r} (or {', '.join(repr(n) for n in names[1:4])}), "
        f"found {found}; rename it or pass {option}"
    )


def _names(columns: list[str], limit: int = 12, width: int = 40) -> str:
    """Column names for a message: quoted, long names cut short, and at most ``limit`` of them."""
    shown = [repr(c if len(c) <= width else c[:width] + "...") for c in columns[:limit]]
    more = f" and {len(columns) - limit} more" if len(columns) > limit else ""
    return ", ".join(shown) + more if shown else "no columns"


# ----------------------------------------------------------------------------------------------
# Cleaning


def load_pairs(path: Path | str, question_col: str | None = None, passage_col: str | None = None,
               role: str = "pairs") -> Pairs:
    """Read pairs, strip whitespace, drop rows with an empty field and exact duplicate pairs."""
    frame = read_table(path, role)
    label = _label(path, role)
    q = _pick_column(frame, question_col, QUESTION_NAMES, "question", "--question-col", label)
    p = _pick_column(frame, passage_col, PASSAGE_NAMES, "passage", "--passage-col", label)
    if q == p:
        raise DataError(f"{label}: the question and passage columns are both {q!r}; pass two different columns")
    pairs = pd.DataFrame({"question": frame[q].astype(str).str.strip(), "passage": frame[p].astype(str).str.strip()})
    rows_read = len(pairs)
    if rows_read == 0:
        raise DataError(f"{label} has a header but no rows; add question/passage pairs")
    empty = (pairs["question"] == "") | (pairs["passage"] == "")
    pairs = pairs[~empty]
    duplicate = pairs.duplicated(keep="first")
    pairs = pairs[~duplicate].reset_index(drop=True)
    if pairs.empty:
        raise DataError(f"{label} has {_count(rows_read, 'row')} but none with both a question and a passage; "
                        "fill them in")
    counts = {
        "rows_read": rows_read,
        "dropped_empty": int(empty.sum()),
        "dropped_duplicate": int(duplicate.sum()),
        "pairs": len(pairs),
        "questions": int(pairs["question"].nunique()),
        "passages": int(pairs["passage"].nunique()),
    }
    return Pairs(pairs, counts)


def load_corpus(path: Path | str) -> list[str]:
    """Extra passages: a ``passage`` column (or a file with a single column)."""
    frame = read_table(path, "corpus")
    label = _label(path, "corpus")
    if len(frame.columns) == 1:
        column = frame.columns[0]
    else:
        column = _pick_column(frame, None, PASSAGE_NAMES, "passage", "a file with a single column", label)
    passages = frame[column].astype(str).str.strip()
    passages = passages[passages != ""]
    if passages.empty:
        raise DataError(f"{label} has no non-empty passages; add a 'passage' column with text")
    return list(dict.fromkeys(passages))


# ----------------------------------------------------------------------------------------------
# Splitting


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def normalise(text: str) -> str:
    """Lower case, punctuation removed, white space folded: for spotting near-duplicate questions."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def split_pairs(pairs: Pairs, eval_fraction: float, dev_fraction: float, seed: int,
                eval_pairs: Pairs | None = None, extra_passages: list[str] | None = None,
                drop_leaks: bool = False) -> Splits:
    """Split by unique question into train / dev / test; no test or dev question is trained on."""
    frame = pairs.frame
    rng = np.random.default_rng(seed)
    counts = {"input": dict(pairs.counts)}
    if eval_pairs is None:
        questions = frame["question"].drop_duplicates().to_numpy()
        n = len(questions)
        n_test, n_dev = _split_sizes(n, eval_fraction, dev_fraction, separate_test=False)
        if not _can_split(n, eval_fraction, dev_fraction, separate_test=False):
            need = _questions_needed(eval_fraction, dev_fraction, separate_test=False)
            held = f"{eval_fraction:.0%} for testing"
            if dev_fraction > 0:
                held += f" and {dev_fraction:.0%} for dev"
            raise DataError(
                f"too few pairs to split: found {_count(n, 'distinct question')}, need at least {need} "
                f"to hold out {held} and still train; add more pairs"
            )
        order = rng.permutation(questions)
        test_q, dev_q = set(order[:n_test]), set(order[n_test:n_test + n_dev])
        test = frame[frame["question"].isin(test_q)]
        dev = frame[frame["question"].isin(dev_q)]
        train = frame[~frame["question"].isin(test_q | dev_q)]
        counts["overlap_dropped"] = 0
    else:
        test = eval_pairs.frame
        counts["eval_input"] = dict(eval_pairs.counts)
        overlap = frame["question"].isin(set(test["question"]))
        counts["overlap_dropped"] = int(overlap.sum())
        rest = frame[~overlap]
        questions = rest["question"].drop_duplicates().to_numpy()
        _, n_dev = _split_sizes(len(questions), eval_fraction, dev_fraction, separate_test=True)
        if not _can_split(len(questions), eval_fraction, dev_fraction, separate_test=True):
            need = _questions_needed(eval_fraction, dev_fraction, separate_test=True)
            raise DataError(
                f"too few pairs to train on: {_count(len(questions), 'distinct question')} left after removing the "
                f"test questions, need at least {need}; add more pairs"
            )
        dev_q = set(rng.permutation(questions)[:n_dev])
        dev = rest[rest["question"].isin(dev_q)]
        train = rest[~rest["question"].isin(dev_q)]

    train_norm = set(train["question"].map(normalise))
    leaked = test["question"].map(normalise).isin(train_norm)
    counts["leaks_exact"] = int(test.loc[leaked, "question"].nunique())
    if drop_leaks and leaked.any():
        test = test[~leaked]
        if test.empty:
            raise DataError("every test question duplicates a training question, so nothing is left to evaluate; "
                            "run without --drop-leaks or use a test set with new questions")
    counts["leaks_dropped"] = int(leaked.sum()) if drop_leaks else 0

    passages = list(dict.fromkeys([*train["passage"], *dev["passage"], *test["passage"], *(extra_passages or [])]))
    corpus = pd.DataFrame({"passage_id": [f"d{i}" for i in range(len(passages))], "passage": passages})
    train, dev, test = (df.reset_index(drop=True) for df in (train, dev, test))
    counts.update({
        "train_pairs": len(train),
        "train_questions": int(train["question"].nunique()),
        "dev_pairs": len(dev),
        "dev_questions": int(dev["question"].nunique()),
        "test_pairs": len(test),
        "test_questions": int(test["question"].nunique()),
        "corpus_size": len(corpus),
        "extra_passages": len(extra_passages or []),
    })
    return Splits(train, dev, test, corpus, counts)


def _split_sizes(n: int, eval_fraction: float, dev_fraction: float, separate_test: bool) -> tuple[int, int]:
    """How many of ``n`` distinct questions go to test and to dev."""
    n_test = 0 if separate_test else max(1, int(round(n * eval_fraction)))
    n_dev = int(round(n * dev_fraction)) if dev_fraction > 0 else 0
    return n_test, n_dev


def _can_split(n: int, eval_fraction: float, dev_fraction: float, separate_test: bool) -> bool:
    n_test, n_dev = _split_sizes(n, eval_fraction, dev_fraction, separate_test)
    return (separate_test or n >= MIN_QUESTIONS) and n - n_test - n_dev >= MIN_TRAIN_QUESTIONS


def _questions_needed(eval_fraction: float, dev_fraction: float, separate_test: bool) -> int:
    """The fewest distinct questions from which this count and every larger one can be split."""
    held = dev_fraction + (0.0 if separate_test else eval_fraction)
    # Rounding moves each held-out share by under one question, so this many always leaves enough.
    enough = int(np.ceil((MIN_TRAIN_QUESTIONS + 2) / max(1e-9, 1 - held)))
    floor = MIN_TRAIN_QUESTIONS if separate_test else MIN_QUESTIONS
    n = max(floor, enough)
    for _ in range(100_000):
        if n <= floor or not _can_split(n - 1, eval_fraction, dev_fraction, separate_test):
            break
        n -= 1
    return n


def ir_data(pairs: pd.DataFrame, corpus: pd.DataFrame) -> IRData:
    """Queries, corpus and relevant passages keyed by id, as ``InformationRetrievalEvaluator`` takes them."""
    ids = dict(zip(corpus["passage"], corpus["passage_id"]))
    queries: dict[str, str] = {}
    qid_of: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for question, passage in zip(pairs["question"], pairs["passage"]):
        qid = qid_of.setdefault(question, f"q{len(qid_of)}")
        queries[qid] = question
        relevant.setdefault(qid, set()).add(ids[passage])
    return IRData(queries, dict(zip(corpus["passage_id"], corpus["passage"])), relevant)


def write_splits(splits: Splits, folder: Path) -> None:
    """The exact data a run used, so anyone can re-check its numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", splits.train), ("dev", splits.dev), ("test", splits.test),
                        ("corpus", splits.corpus)):
        atomic_write_text(folder / f"{name}.csv", frame.to_csv(index=False))
