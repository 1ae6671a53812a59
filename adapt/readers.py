"""Read any supported file into a table of strings, hardened against bad input.

Everything a person can get wrong about a file ends here in a ``DataError`` that names the file and
says how to fix it. ``FORMATS`` and the column names below are the one list of what adapt reads:
the reader, its messages, the app and the README all take it from here (``describe_formats``).
The per-format parsing is in adapt/parsers.py.
"""

from __future__ import annotations

import codecs
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adapt.errors import DataError
from adapt.parsers import NotText, Table, parse_delimited, parse_json, parse_parquet


@dataclass(frozen=True)
class Format:
    name: str  # in words, for people
    suffixes: tuple[str, ...]  # the first is the usual one
    kind: str  # which parser reads it


FORMATS = (
    Format("CSV", (".csv",), "csv"),
    Format("TSV", (".tsv", ".txt"), "tsv"),
    Format("JSON Lines or a JSON array of objects", (".jsonl", ".json"), "json"),
    Format("Parquet", (".parquet",), "parquet"),
)
SUFFIXES = {suffix: f.kind for f in FORMATS for suffix in f.suffixes}
DEFAULT_KIND = "csv"  # for any other extension
QUESTION_NAMES = ("question", "query", "anchor", "questions", "queries")
PASSAGE_NAMES = ("passage", "context", "positive", "answer", "document", "passages", "text")
# UTF-32 first: its little-endian mark starts with UTF-16's
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _either(words: list[str], joiner: str = "or") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {joiner} {words[-1]}"


def suffix_list() -> str:
    """"a .csv, .tsv, .jsonl or .parquet file" (the usual extension of each format): what to pass instead."""
    return f"a {_either([f.suffixes[0] for f in FORMATS])} file"


def describe_formats() -> str:
    """The one sentence that tells people which files and columns adapt reads."""
    formats = _either([f"{f.name} ({', '.join(f.suffixes)})" for f in FORMATS])
    return (f"{formats}, with a question column named {_either(list(QUESTION_NAMES))} and a passage column "
            f"named {_either(list(PASSAGE_NAMES))} (in any case), or name them with --question-col and "
            "--passage-col.")


def read_table(path: Path | str, role: str = "pairs") -> pd.DataFrame:
    """Read a CSV / TSV / JSON / Parquet file into a frame of strings, or raise ``DataError``."""
    return read_file(path, role).frame


def read_file(path: Path | str, role: str = "pairs") -> Table:
    """``read_table`` with the column names as written and the columns that do not hold text."""
    path = Path(path)
    label = file_label(path, role)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise DataError(f"{label} not found; check the path") from None
    except OSError as exc:
        raise DataError(f"{label} cannot be read ({exc.strerror}); check the path and its permissions") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{label} is a directory; pass {suffix_list()}")
    if not stat.S_ISREG(mode):
        raise DataError(f"{label} is not a regular file (a pipe or a device); save the data to a file and pass that")
    kind = SUFFIXES.get(path.suffix.lower(), DEFAULT_KIND)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{label} cannot be read ({exc.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{label} is empty; " + ("it needs at least one JSON object" if kind == "json" else
                                                 "it needs a header row and at least one row of data"))
    if kind == "parquet":
        table = parse_parquet(raw, label)
    else:
        text = _decode(raw, label)
        table = parse_json(text, label) if kind == "json" else parse_delimited(text, kind, label)
    table.frame.columns = _unique(table.names)
    return table


def file_label(path: Path | str, role: str) -> str:
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


# ----------------------------------------------------------------------------------------------
# Picking the question and passage columns


def pick_column(table: Table, wanted: str | None, names: tuple[str, ...], what: str, option: str,
                label: str) -> str:
    """The column of ``table.frame`` that holds the ``what`` (e.g. "question"): named ``wanted``, else
    the first of ``names`` found (in any case). Refuses a name that two columns share and a column
    that does not hold text."""
    columns = list(table.frame.columns)
    if wanted is not None:
        same = [i for i, name in enumerate(table.names) if name == wanted]
        if not same and wanted in columns:  # a repeat as the reader renamed it, e.g. 'question.1'
            same = [columns.index(wanted)]
        if not same:
            raise DataError(f"{label} has no column {wanted!r} (given by {option}); found {_names(table.names)}")
    else:
        lowered = [name.lower() for name in table.names]
        same = next(([i for i, low in enumerate(lowered) if low == name] for name in names if name in lowered), [])
        if not same:
            raise DataError(
                f"{label} has no {what} column: expected {names[0]!r} (or {', '.join(repr(n) for n in names[1:4])}), "
                f"found {_names(table.names)}; rename it or pass {option}"
            )
    if len(same) > 1:
        shown = ", ".join(dict.fromkeys(repr(table.names[i]) for i in same))
        raise DataError(
            f"{label} has {len(same)} columns named {shown} (columns {_either([str(i + 1) for i in same], 'and')}); "
            f"rename or remove all but one, so that it is clear which holds the {what}s"
        )
    if same[0] in table.not_text:
        raise DataError(_not_text(label, table.names[same[0]], what, table.not_text[same[0]]))
    return columns[same[0]]


def _not_text(label: str, column: str, what: str, found: NotText) -> str:
    if found.source == "json":
        return (f"{label} column {column!r} holds {found.kind} {found.detail}, not text; write every {what} as a "
                f"JSON string, e.g. {{{json.dumps(column)}: \"...\"}}")
    if found.kind == "lists":
        fix = f"put one {what} per row (in pandas: df = df.explode({column!r}))"
    elif found.kind == "records":
        fix = f"put the {what} text in a column of its own"
    else:
        fix = f"store the {what}s as text (in pandas: df[{column!r}] = df[{column!r}].astype(str))"
    return f"{label} column {column!r} holds {found.kind} ({found.detail}), not text; {fix} and save it again"


def _names(columns: list[str], limit: int = 12, width: int = 40) -> str:
    """Column names for a message: quoted, long names cut short, and at most ``limit`` of them."""
    shown = [repr(c if len(c) <= width else c[:width] + "...") for c in columns[:limit]]
    more = f" and {len(columns) - limit} more" if len(columns) > limit else ""
    return ", ".join(shown) + more if shown else "no columns"
