"""Read, validate, clean and split question/passage pairs.

Everything a person can get wrong about a file ends here in a ``DataError`` that names the file
and says how to fix it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adapt.errors import DataError
from adapt.files import atomic_write_text

logger = logging.getLogger(__name__)

QUESTION_NAMES = ("question", "query", "anchor", "questions", "queries")
PASSAGE_NAMES = ("passage", "context", "positive", "answer", "document", "passages", "text")
READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
MIN_QUESTIONS = 10
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
    label = f"{role} file '{path}'"
    if not path.exists():
        raise DataError(f"{label} not found; check the path")
    if path.is_dir():
        raise DataError(f"{label} is a directory; pass a .csv, .tsv, .jsonl or .parquet file")
    kind = READERS.get(path.suffix.lower(), "csv")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{label} cannot be read ({exc.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{label} is empty; it needs a header row and at least one row of data")
    if kind == "parquet":
        frame = _read_parquet(raw, label)
    else:
        text = _decode(raw, label)
        frame = _read_jsonl(text, label) if kind == "jsonl" else _read_delimited(text, kind, label)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _decode(raw: bytes, label: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{label} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}); "
            "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again"
        ) from None
    if "\x00" in text:
        raise DataError(f"{label} contains NUL bytes, so it is not a text file; export it as UTF-8 CSV")
    return text


def _read_delimited(text: str, kind: str, label: str) -> pd.DataFrame:
    sep = "\t" if kind == "tsv" else ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
            skip_blank_lines=True, engine="c",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{label} is empty; it needs a header row and at least one row of data") from None
    except (pd.errors.ParserError, csv.Error, ValueError, OverflowError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{label} could not be parsed as {kind.upper()} ({detail}); check its quoting, "
            "e.g. a field with a stray double quote"
        ) from None
    return frame


def _read_jsonl(text: str, label: str) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise DataError(f"{label} line {number} is not valid JSON; write one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{label} line {number} is not a JSON object; write one object per line, "
                            'e.g. {"question": "...", "passage": "..."}')
        rows.append({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in row.items()})
    if not rows:
        raise DataError(f"{label} is empty; it needs at least one JSON object")
    return pd.DataFrame(rows).fillna("")


def _read_parquet(raw: bytes, label: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{label} is not a readable Parquet file ({type(exc).__name__}); re-export it") from None
    return frame.astype(str).fillna("")


def _pick_column(frame: pd.DataFrame, wanted: str | None, names: tuple[str, ...], what: str,
                 option: str, label: str) -> str:
    found = ", ".join(repr(c) for c in frame.columns) or "none"
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


# ----------------------------------------------------------------------------------------------
# Cleaning


def load_pairs(path: Path | str, question_col: str | None = None, passage_col: str | None = None,
               role: str = "pairs") -> Pairs:
    """Read pairs, strip whitespace, drop rows with an empty field and exact duplicate pairs."""
    frame = read_table(path, role)
    label = f"{role} file '{path}'"
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
        raise DataError(f"{label} has {rows_read} rows but none with both a question and a passage; fill them in")
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
    label = f"corpus file '{path}'"
    if len(frame.columns) == 1:
        column = frame.columns[0]
    else:
        column = _pick_column(frame, None, PASSAGE_NAMES, "passage", "a single column", label)
    passages = frame[column].astype(str).str.strip()
    passages = passages[passages != ""]
    if passages.empty:
        raise DataError(f"{label} has no non-empty passages; add a 'passage' column with text")
    return list(dict.fromkeys(passages))


# ----------------------------------------------------------------------------------------------
# Splitting


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
        n_test = max(1, int(round(n * eval_fraction)))
        n_dev = int(round(n * dev_fraction)) if dev_fraction > 0 else 0
        if n < MIN_QUESTIONS or n - n_test - n_dev < MIN_TRAIN_QUESTIONS:
            need = max(MIN_QUESTIONS, int(np.ceil(MIN_TRAIN_QUESTIONS / max(1e-9, 1 - eval_fraction - dev_fraction))))
            raise DataError(
                f"too few pairs to split: found {n} distinct questions, need at least {need} "
                f"to hold out {eval_fraction:.0%} for testing and still train; add more pairs"
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
        n_dev = int(round(len(questions) * dev_fraction)) if dev_fraction > 0 else 0
        if len(questions) - n_dev < MIN_TRAIN_QUESTIONS:
            raise DataError(
                f"too few pairs to train on: {len(questions)} distinct questions remain after removing the "
                f"test questions, need at least {MIN_TRAIN_QUESTIONS + n_dev}; add more pairs"
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
            raise DataError("every test question duplicates a training question; nothing is left to evaluate")
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
