"""Reading, cleaning and splitting pairs: the exact messages people see, and normal behaviour."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapt.data import Pairs, ir_data, load_corpus, load_pairs, split_pairs, write_splits
from adapt.errors import DataError
from adapt.readers import read_table


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_rows(path, rows, header=("question", "passage")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def pairs_of(rows) -> Pairs:
    frame = pd.DataFrame(rows, columns=["question", "passage"])
    return Pairs(frame, {"pairs": len(frame)})


def many_pairs(n_questions: int, passages_per_question: int = 1) -> Pairs:
    return pairs_of([(f"question {i}", f"passage {i}.{j}") for i in range(n_questions)
                     for j in range(passages_per_question)])


def message(excinfo) -> str:
    return str(excinfo.value)


# ----------------------------------------------------------------------------------------------
# Messages people see


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' not found; check the path"


def test_missing_file_under_a_file(tmp_path):
    path = write(tmp_path / "plain.csv", "question,passage\nq,p\n") / "inner.csv"
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' not found; check the path"


def test_directory(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_pairs(tmp_path)
    assert message(excinfo) == f"pairs file '{tmp_path}' is a directory; pass a .csv, .tsv, .jsonl or .parquet file"


def test_named_pipe_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)  # reading it would block forever
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' is not a regular file (a pipe or a device); "
                                "save the data to a file and pass that")


def test_file_name_too_long(tmp_path):
    path = tmp_path / ("x" * 300 + ".csv")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' cannot be read (File name too long); "
                                "check the path and its permissions")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path / "locked.csv", "question,passage\nq,p\n")
    path.chmod(0)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' cannot be read (Permission denied); check its permissions"


def test_file_name_with_a_newline_stays_on_one_line(tmp_path):
    path = tmp_path / "two\nlines.csv"
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file {str(path)!r} not found; check the path"
    assert "\n" not in message(excinfo)


def test_latin1_file(tmp_path):
    path = write(tmp_path / "latin1.csv", "question,passage\ncafé,p\n".encode("latin-1"))
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' is not UTF-8 text (byte 0xe9 on line 2, at byte 20); "
                                "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_with_a_byte_order_mark(tmp_path, encoding):
    bom = "" if encoding == "utf-16" else "\ufeff"  # plain utf-16 writes its own
    path = write(tmp_path / "excel.csv", (bom + "question,passage\nq,p\n").encode(encoding))
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' is not UTF-8 text (it starts with a UTF-16 byte order mark); "
                                "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again")


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-be"])
def test_utf32_file_with_a_byte_order_mark(tmp_path, encoding):
    bom = "" if encoding == "utf-32" else "\ufeff"
    path = write(tmp_path / "wide.csv", (bom + "question,passage\nq,p\n").encode(encoding))
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' is not UTF-8 text (it starts with a UTF-32 byte order mark); "
                                "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again")


def test_utf16_file_without_a_byte_order_mark(tmp_path):
    path = write(tmp_path / "wide.csv", "question,passage\nq,p\n".encode("utf-16-le"))
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' contains NUL bytes, so it is not a text file; "
                                "export it as UTF-8 CSV")


@pytest.mark.parametrize("content", ["", "   \n\n\t\n"])
@pytest.mark.parametrize("name", ["empty.csv", "empty.tsv", "empty.parquet"])
def test_empty_file(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' is empty; it needs a header row and at least one row of data"


@pytest.mark.parametrize("content", ["", "\n \n", "\ufeff\n"])
def test_empty_jsonl(tmp_path, content):
    path = write(tmp_path / "empty.jsonl", content)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' is empty; it needs at least one JSON object"


def test_file_of_only_a_byte_order_mark(tmp_path):
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbf\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' is empty; it needs a header row and at least one row of data"


@pytest.mark.parametrize("content", ["question,passage\n", "question,passage", "question,passage\n\n\n"])
def test_header_only(tmp_path, content):
    path = write(tmp_path / "header.csv", content)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' has a header but no rows; add question/passage pairs"


def test_header_only_parquet(tmp_path):
    path = tmp_path / "header.parquet"
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "passage": pa.array([], pa.string())}), path)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' has a header but no rows; add question/passage pairs"


def test_wrong_question_column(tmp_path):
    path = write(tmp_path / "pairs.csv", "q,text\na,b\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has no question column: expected 'question' "
                                "(or 'query', 'anchor', 'questions'), found 'q', 'text'; "
                                "rename it or pass --question-col")


def test_wrong_passage_column(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,body\na,b\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has no passage column: expected 'passage' "
                                "(or 'context', 'positive', 'answer'), found 'question', 'body'; "
                                "rename it or pass --passage-col")


def test_many_wrong_columns_are_listed_briefly(tmp_path):
    names = [f"c{i}" for i in range(19)] + ["a" * 50]
    path = write(tmp_path / "wide.csv", ",".join(names) + "\n" + ",".join("x" * 20) + "\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    shown = ", ".join(repr(f"c{i}") for i in range(12))
    assert message(excinfo) == (f"pairs file '{path}' has no question column: expected 'question' "
                                f"(or 'query', 'anchor', 'questions'), found {shown} and 8 more; "
                                "rename it or pass --question-col")


def test_very_long_column_name_is_cut_short(tmp_path):
    path = write(tmp_path / "long.csv", "b" * 100_000 + ",passage\nx,y\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has no question column: expected 'question' "
                                f"(or 'query', 'anchor', 'questions'), found {'b' * 40 + '...'!r}, 'passage'; "
                                "rename it or pass --question-col")


def test_question_col_names_a_missing_column(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage\na,b\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path, question_col="prompt")
    assert message(excinfo) == (f"pairs file '{path}' has no column 'prompt' (given by --question-col); "
                                "found 'question', 'passage'")


def test_passage_col_names_a_missing_column(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage\na,b\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path, passage_col="Passage")
    assert message(excinfo) == (f"pairs file '{path}' has no column 'Passage' (given by --passage-col); "
                                "found 'question', 'passage'")


def test_question_and_passage_columns_the_same(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage\na,b\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path, question_col="passage")
    assert message(excinfo) == (f"pairs file '{path}': the question and passage columns are both 'passage'; "
                                "pass two different columns")


@pytest.mark.parametrize("rows, said", [(["q,", ",p"], "2 rows"), ([" , "], "1 row")])
def test_no_row_has_both_fields(tmp_path, rows, said):
    path = write(tmp_path / "pairs.csv", "question,passage\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has {said} but none with both a question and a passage; "
                                "fill them in")


def test_stray_quote(tmp_path):
    path = write(tmp_path / "pairs.csv", 'question,passage\n"what is it,a thing\nq2,p2\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' could not be parsed as CSV (Error tokenizing data. C error: "
                                "EOF inside string starting at row 1); check its quoting, "
                                "e.g. a field with a stray double quote")


def test_row_with_too_many_fields(tmp_path):
    path = write(tmp_path / "pairs.csv", 'question,passage\nq1,p1\n"q2, really",p2\nq3, or not,p3\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' data row 3 has more fields than the header has names (2); "
                                "put double quotes around fields that contain a comma, "
                                "or name every column in the header")


@pytest.mark.parametrize("name, sep, word", [("pairs.csv", ",", "comma"), ("pairs.tsv", "\t", "tab")])
def test_first_row_with_too_many_fields(tmp_path, name, sep, word):
    # pandas alone would take the first field as the row index and shift the rest silently
    path = write(tmp_path / name, f"question{sep}passage\nx{sep}q1{sep}p1\nx{sep}q2{sep}p2\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' data row 1 has more fields than the header has names (2); "
                                f"put double quotes around fields that contain a {word}, "
                                "or name every column in the header")


def test_row_of_a_million_commas_is_quick(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage\nq1,p1\nq2," + "," * 1_000_000 + "\n")
    assert load_pairs(path).frame.to_dict("records") == [{"question": "q1", "passage": "p1"}]
    path = write(tmp_path / "pairs.csv", "question,passage\nq1,p1\nq2,p2,x" + "," * 1_000_000 + "\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' data row 2 has more fields than the header has names (2); "
                                "put double quotes around fields that contain a comma, "
                                "or name every column in the header")


def test_trailing_delimiters_are_harmless(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage\nq1,p1,\nq2,p2,,,\n")
    assert load_pairs(path).frame.to_dict("records") == [{"question": "q1", "passage": "p1"},
                                                        {"question": "q2", "passage": "p2"}]


def test_short_rows_are_padded_with_empty_fields(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage,id\nq1,p1\nq2\n")
    assert read_table(path).to_dict("records") == [{"question": "q1", "passage": "p1", "id": ""},
                                                   {"question": "q2", "passage": "", "id": ""}]


def test_empty_column_names(tmp_path):
    path = write(tmp_path / "pairs.csv", ",question, ,passage\n1,q,x,p\n")
    assert list(read_table(path).columns) == ["Unnamed: 0", "question", "Unnamed: 2", "passage"]


def test_too_many_columns(tmp_path):
    path = write(tmp_path / "wide.csv", ",".join(f"c{i}" for i in range(1001)) + "\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has 1,001 columns in its header row, more than the 1,000 "
                                "it may have; check that the first row names the columns, e.g. question,passage")


def test_header_field_too_long_to_be_a_name(tmp_path):
    path = write(tmp_path / "long.csv", "x" * 200_000 + ",passage\nq,p\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has a header row that cannot be read (field larger than "
                                "field limit (131072)); check that the first row names the columns, "
                                "e.g. question,passage")


def test_jsonl_too_many_keys(tmp_path):
    path = write(tmp_path / "pairs.jsonl", "".join(json.dumps({f"k{i}": i}) + "\n" for i in range(1001)))
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has more than 1,000 different keys by line 1001; "
                                'write the same few keys on every line, e.g. {"question": "...", "passage": "..."}')


def test_parquet_too_many_columns(tmp_path):
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({f"c{i}": ["x"] for i in range(1001)}), path)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has 1,001 columns, more than the 1,000 it may have; "
                                "keep the question and passage columns and a few others")


def test_nul_bytes(tmp_path):
    path = write(tmp_path / "pairs.csv", b"question,passage\nq\x00,p\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' contains NUL bytes, so it is not a text file; "
                                "export it as UTF-8 CSV")


def test_jsonl_bad_line(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"question": "q", "passage": "p"}\n\n{"question": "q2", \n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' line 3 is not valid JSON; write one JSON object per line"


def test_jsonl_line_not_an_object(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"question": "q", "passage": "p"}\n"just text"\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' line 2 is not a JSON object; write one object per line, "
                                'e.g. {"question": "...", "passage": "..."}')


def test_json_array_item_not_an_object(tmp_path):
    path = write(tmp_path / "pairs.json", '[\n  {"question": "q", "passage": "p"},\n  ["q2", "p2"]\n]\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' item 2 of the array is not a JSON object; "
                                'write an array of objects, e.g. {"question": "...", "passage": "..."}')


def test_json_array_that_is_not_valid_json(tmp_path):
    path = write(tmp_path / "pairs.json", '[\n  {"question": "q", "passage": "p"},\n  {"question": "q2"\n]\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' is not valid JSON (Expecting ',' delimiter at line 4, "
                                "column 1); write one JSON array of objects, or one JSON object per line")


@pytest.mark.parametrize("text", ["[]", "[\n]\n"])
def test_empty_json_array(tmp_path, text):
    path = write(tmp_path / "pairs.json", text)
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' is empty; it needs at least one JSON object"


def test_jsonl_integer_too_long_for_python(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"question": ' + "9" * 5000 + ', "passage": "p"}\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' line 1 is not valid JSON; write one JSON object per line"


def test_garbage_parquet(tmp_path):
    path = write(tmp_path / "pairs.parquet", b"PAR1 this is not parquet PAR1")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' is not a readable Parquet file (ArrowInvalid); re-export it"


def test_parquet_with_text_that_is_not_utf8(tmp_path):
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"question": [f"question {i}" for i in range(3)], "passage": ["p"] * 3}), path,
                   compression="none", write_statistics=False)
    raw = path.read_bytes()
    assert raw.count(b"question 1") == 1
    path.write_bytes(raw.replace(b"question 1", b"\x80uestion 1"))  # damaged on disk, still a Parquet file
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' is not a readable Parquet file (ArrowInvalid); re-export it"


def test_role_names_the_file(tmp_path):
    path = tmp_path / "missing.csv"
    with pytest.raises(DataError) as excinfo:
        load_pairs(path, role="eval pairs")
    assert message(excinfo) == f"eval pairs file '{path}' not found; check the path"


def test_corpus_without_a_passage_column(tmp_path):
    path = write(tmp_path / "corpus.csv", "a,b\n1,2\n")
    with pytest.raises(DataError) as excinfo:
        load_corpus(path)
    assert message(excinfo) == (f"corpus file '{path}' has no passage column: expected 'passage' "
                                "(or 'context', 'positive', 'answer'), found 'a', 'b'; "
                                "rename it or pass a file with a single column")


def test_corpus_without_passages(tmp_path):
    path = write(tmp_path / "corpus.csv", "passage\n  \n\"\"\n")
    with pytest.raises(DataError) as excinfo:
        load_corpus(path)
    assert message(excinfo) == f"corpus file '{path}' has no non-empty passages; add a 'passage' column with text"


def test_too_few_questions_to_split():
    with pytest.raises(DataError) as excinfo:
        split_pairs(many_pairs(5, passages_per_question=3), 0.2, 0.1, seed=0)
    assert message(excinfo) == ("too few pairs to split: found 5 distinct questions, need at least 10 "
                                "to hold out 20% for testing and 10% for dev and still train; add more pairs")


def test_one_question_is_too_few():
    with pytest.raises(DataError) as excinfo:
        split_pairs(many_pairs(1), 0.2, 0.0, seed=0)
    assert message(excinfo) == ("too few pairs to split: found 1 distinct question, need at least 10 "
                                "to hold out 20% for testing and still train; add more pairs")


def test_too_few_questions_without_dev():
    with pytest.raises(DataError) as excinfo:
        split_pairs(many_pairs(9), 0.2, 0.0, seed=0)
    assert message(excinfo) == ("too few pairs to split: found 9 distinct questions, need at least 10 "
                                "to hold out 20% for testing and still train; add more pairs")


def test_too_few_questions_counts_what_rounding_takes():
    # 10 questions: 1 to test, round(5.5) = 6 to dev, 3 left to train; 11 leave 4.
    with pytest.raises(DataError) as excinfo:
        split_pairs(many_pairs(10), 0.01, 0.55, seed=0)
    assert message(excinfo) == ("too few pairs to split: found 10 distinct questions, need at least 11 "
                                "to hold out 1% for testing and 55% for dev and still train; add more pairs")
    splits = split_pairs(many_pairs(11), 0.01, 0.55, seed=0)
    assert splits.counts["train_questions"] == 4


def test_too_few_questions_left_beside_eval_pairs():
    pairs = many_pairs(6)
    eval_pairs = pairs_of([("question 0", "passage 0.0"), ("question 1", "passage 1.0")])
    with pytest.raises(DataError) as excinfo:
        split_pairs(pairs, 0.2, 0.2, seed=0, eval_pairs=eval_pairs)
    assert message(excinfo) == ("too few pairs to train on: 4 distinct questions left after removing the "
                                "test questions, need at least 5; add more pairs")
    splits = split_pairs(many_pairs(7), 0.2, 0.2, seed=0, eval_pairs=eval_pairs)
    assert (splits.counts["train_questions"], splits.counts["dev_questions"]) == (4, 1)


# ----------------------------------------------------------------------------------------------
# Normal behaviour


@pytest.mark.parametrize("question, passage", [
    ("query", "context"), ("anchor", "positive"), ("Question", "Answer"), ("QUERY", "document"),
    ("questions", "passages"), ("queries", "text"),
])
def test_column_aliases(tmp_path, question, passage):
    path = write(tmp_path / "pairs.csv", f"id,{question},{passage}\n1,what,that\n")
    pairs = load_pairs(path)
    assert pairs.frame.to_dict("records") == [{"question": "what", "passage": "that"}]


def test_columns_named_explicitly(tmp_path):
    path = write(tmp_path / "pairs.csv", "prompt,reply,question\nwhat,that,ignored\n")
    pairs = load_pairs(path, question_col="prompt", passage_col="reply")
    assert pairs.frame.to_dict("records") == [{"question": "what", "passage": "that"}]


def test_column_names_are_stripped(tmp_path):
    path = write(tmp_path / "pairs.csv", " question , passage\t\nq,p\n")
    assert list(read_table(path).columns) == ["question", "passage"]
    assert load_pairs(path).frame.to_dict("records") == [{"question": "q", "passage": "p"}]


def test_columns_equal_after_stripping_stay_distinct(tmp_path):
    path = write(tmp_path / "pairs.csv", "question, question,passage\nfirst,second,p\n")
    assert list(read_table(path).columns) == ["question", "question.1", "passage"]
    assert load_pairs(path, question_col="question.1").frame.to_dict("records") == [
        {"question": "second", "passage": "p"}]


EXPECTED = [{"question": "what, exactly?", "passage": 'a "quoted"\nanswer'}, {"question": "q2", "passage": "p2"}]


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.CSV", "pairs.data"])
def test_csv(tmp_path, name):
    path = write_rows(tmp_path / name, [(r["question"], r["passage"]) for r in EXPECTED])
    assert load_pairs(path).frame.to_dict("records") == EXPECTED


@pytest.mark.parametrize("name", ["pairs.tsv", "pairs.txt"])
def test_tsv(tmp_path, name):
    path = write(tmp_path / name, 'question\tpassage\nwhat, exactly?\t"a ""quoted""\nanswer"\nq2\tp2\n')
    assert load_pairs(path).frame.to_dict("records") == EXPECTED


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json"])
def test_jsonl(tmp_path, name):
    lines = [json.dumps(EXPECTED[0]), "", json.dumps({**EXPECTED[1], "score": 3, "tags": ["a"]})]
    path = write(tmp_path / name, "\n".join(lines) + "\n")
    assert load_pairs(path).frame.to_dict("records") == EXPECTED
    assert read_table(path).loc[1, "tags"] == '["a"]'


def test_jsonl_line_separator_inside_a_string(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"question": "a\u2028b", "passage": "p\u0085q"}\r\n')
    assert load_pairs(path).frame.to_dict("records") == [{"question": "a\u2028b", "passage": "p\u0085q"}]


def test_jsonl_null_counts_as_empty(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"question": null, "passage": "p"}\n{"question": "q", "passage": "p"}\n'
                                           '{"passage": "p2"}\n')
    pairs = load_pairs(path)
    assert pairs.frame.to_dict("records") == [{"question": "q", "passage": "p"}]
    assert pairs.counts["dropped_empty"] == 2


def test_parquet(tmp_path):
    path = tmp_path / "pairs.parquet"
    table = pa.table({"question": [r["question"] for r in EXPECTED] + [None],
                      "passage": [r["passage"] for r in EXPECTED] + ["orphan"],
                      "score": [1.5, None, 2.0], "raw": [b"\xff", b"ok", None]})
    pq.write_table(table, path)
    pairs = load_pairs(path)
    assert pairs.frame.to_dict("records") == EXPECTED
    assert pairs.counts["dropped_empty"] == 1
    frame = read_table(path)
    assert frame["score"].tolist() == ["1.5", "", "2.0"]
    assert frame["raw"].tolist() == ["\ufffd", "ok", ""]


def test_byte_order_mark_is_ignored(tmp_path):
    path = write(tmp_path / "pairs.csv", "\ufeffquestion,passage\nq,p\n")
    assert load_pairs(path).frame.to_dict("records") == [{"question": "q", "passage": "p"}]


def test_cleaning_counts(tmp_path):
    rows = [
        ("  what is soil?  ", "\tsoil is ground\n"),
        ("what is soil?", "soil is ground"),      # duplicate once stripped
        ("what is soil?", "soil is earth"),       # same question, another passage: kept
        ("", "orphan passage"),                   # empty question
        ("orphan question", "   "),               # empty passage once stripped
        ("what is rain?", "rain is water"),
        ("what is rain?", "rain is water"),       # exact duplicate
    ]
    pairs = load_pairs(write_rows(tmp_path / "pairs.csv", rows))
    assert pairs.frame.to_dict("records") == [
        {"question": "what is soil?", "passage": "soil is ground"},
        {"question": "what is soil?", "passage": "soil is earth"},
        {"question": "what is rain?", "passage": "rain is water"},
    ]
    assert pairs.counts == {"rows_read": 7, "dropped_empty": 2, "dropped_duplicate": 2, "pairs": 3,
                            "questions": 2, "passages": 3}


def test_numbers_stay_text(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,passage\n007,1e3\nNA,null\n")
    assert load_pairs(path).frame.to_dict("records") == [{"question": "007", "passage": "1e3"},
                                                        {"question": "NA", "passage": "null"}]


def test_corpus_single_column_of_any_name(tmp_path):
    path = write(tmp_path / "corpus.csv", "body\n  first \nsecond\n\nfirst\n\"\"\n")
    assert load_corpus(path) == ["first", "second"]


def test_corpus_passage_column_among_others(tmp_path):
    path = write(tmp_path / "corpus.tsv", "id\tDocument\n1\tone\n2\ttwo\n")
    assert load_corpus(path) == ["one", "two"]


def test_split_by_question_without_leakage():
    pairs = many_pairs(30, passages_per_question=3)
    splits = split_pairs(pairs, 0.2, 0.1, seed=7)
    sides = [set(splits.train["question"]), set(splits.dev["question"]), set(splits.test["question"])]
    assert [len(s) for s in sides] == [21, 3, 6]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    for frame in (splits.train, splits.dev, splits.test):
        assert frame.groupby("question").size().eq(3).all()  # every passage of a question on one side
    together = pd.concat([splits.train, splits.dev, splits.test])
    assert sorted(map(tuple, together.to_numpy())) == sorted(map(tuple, pairs.frame.to_numpy()))
    assert splits.counts["train_pairs"] == 63 and splits.counts["test_pairs"] == 18
    assert splits.counts["input"] == pairs.counts


def test_split_is_deterministic_for_a_seed():
    pairs = many_pairs(40)
    first, again, other = (split_pairs(pairs, 0.2, 0.1, seed=s) for s in (3, 3, 4))
    for a, b in ((first.train, again.train), (first.dev, again.dev), (first.test, again.test)):
        pd.testing.assert_frame_equal(a, b)
    assert set(first.test["question"]) != set(other.test["question"])


def test_split_without_dev():
    splits = split_pairs(many_pairs(20), 0.25, 0.0, seed=0)
    assert (splits.counts["train_questions"], splits.counts["dev_questions"], splits.counts["test_questions"]) == \
        (15, 0, 5)
    assert list(splits.dev.columns) == ["question", "passage"]


def test_eval_pairs_file(tmp_path):
    pairs = load_pairs(write_rows(tmp_path / "pairs.csv",
                                  [(f"question {i}", f"passage {i}") for i in range(12)] +
                                  [("question 0", "passage 0b")]))
    eval_pairs = load_pairs(write_rows(tmp_path / "eval.csv",
                                       [("question 0", "passage 0"), ("question 1", "passage 1"),
                                        ("brand new question", "passage new")]), role="eval pairs")
    splits = split_pairs(pairs, 0.2, 0.1, seed=1, eval_pairs=eval_pairs)
    assert splits.test.to_dict("records") == eval_pairs.frame.to_dict("records")
    trained = set(splits.train["question"]) | set(splits.dev["question"])
    assert not trained & set(splits.test["question"])
    assert len(trained) == 10 and splits.counts["dev_questions"] == 1
    assert splits.counts["overlap_dropped"] == 3  # both pairs of question 0, the one of question 1
    assert splits.counts["eval_input"] == eval_pairs.counts
    assert "passage new" in set(splits.corpus["passage"])


def test_extra_passages_join_the_corpus():
    pairs = many_pairs(10)
    splits = split_pairs(pairs, 0.2, 0.0, seed=0, extra_passages=["extra one", "passage 3.0", "extra two"])
    assert splits.corpus["passage"].tolist() == (
        list(splits.train["passage"]) + list(splits.test["passage"]) + ["extra one", "extra two"])
    assert splits.corpus["passage_id"].tolist() == [f"d{i}" for i in range(12)]
    assert splits.counts["corpus_size"] == 12 and splits.counts["extra_passages"] == 3
    assert splits.passage_ids()["extra two"] == "d11"


def test_ir_data_with_shared_passages():
    test = pd.DataFrame({
        "question": ["how deep to plant garlic", "how deep to plant garlic", "when to plant garlic",
                     "how to store garlic"],
        "passage": ["plant cloves 5 cm deep", "garlic basics", "garlic basics", "dry it for two weeks"],
    })
    corpus = pd.DataFrame({"passage_id": ["d0", "d1", "d2", "d3"],
                           "passage": ["garlic basics", "plant cloves 5 cm deep", "dry it for two weeks", "unused"]})
    data = ir_data(test, corpus)
    assert data.queries == {"q0": "how deep to plant garlic", "q1": "when to plant garlic", "q2": "how to store garlic"}
    assert data.relevant_docs == {"q0": {"d1", "d0"}, "q1": {"d0"}, "q2": {"d2"}}
    assert data.corpus == {"d0": "garlic basics", "d1": "plant cloves 5 cm deep", "d2": "dry it for two weeks",
                           "d3": "unused"}


def test_ir_data_from_a_split():
    pairs = pairs_of([(f"q{i}", f"p{i % 4}") for i in range(12)] + [("q0", "p9")])
    splits = split_pairs(pairs, 0.25, 0.0, seed=5)
    data = ir_data(splits.test, splits.corpus)
    ids = splits.passage_ids()
    for qid, question in data.queries.items():
        expected = {ids[p] for p in splits.test.loc[splits.test["question"] == question, "passage"]}
        assert data.relevant_docs[qid] == expected


def test_write_splits_round_trips(tmp_path):
    splits = split_pairs(many_pairs(10, passages_per_question=2), 0.2, 0.1, seed=0)
    write_splits(splits, tmp_path / "data")
    for name in ("train", "dev", "test", "corpus"):
        again = pd.read_csv(tmp_path / "data" / f"{name}.csv", dtype=str, keep_default_na=False)
        assert again.to_dict("records") == getattr(splits, name).to_dict("records")


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 40), per=st.integers(1, 3), eval_fraction=st.floats(0.01, 0.9),
       dev_fraction=st.one_of(st.just(0.0), st.floats(0.0, 0.9)), seed=st.integers(0, 2**32 - 1),
       separate_test=st.booleans())
def test_split_never_leaks_and_says_truly_how_many_it_needs(n, per, eval_fraction, dev_fraction, seed,
                                                           separate_test):
    assume(eval_fraction + dev_fraction < 0.95)
    held_out = pairs_of([("held out question", "held out passage")]) if separate_test else None
    pairs = many_pairs(n, per)
    try:
        splits = split_pairs(pairs, eval_fraction, dev_fraction, seed, eval_pairs=held_out)
    except DataError as exc:
        need = int(re.search(r"need at least (\d+)", str(exc)).group(1))
        assert n < need
        for enough in (need, need + 1, need + 7):  # the number it asks for, and more, do split
            split_pairs(many_pairs(enough), eval_fraction, dev_fraction, seed, eval_pairs=held_out)
        return
    sides = [set(frame["question"]) for frame in (splits.train, splits.dev, splits.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    together = pd.concat([splits.train, splits.dev] + ([] if separate_test else [splits.test]))
    assert sorted(map(tuple, together.to_numpy())) == sorted(map(tuple, pairs.frame.to_numpy()))
    for frame in (splits.train, splits.dev, splits.test):
        assert (frame.groupby("question").size() == (1 if frame is splits.test and separate_test else per)).all()
    assert len(sides[0]) >= 4
    assert set(splits.corpus["passage"]) == set(pairs.frame["passage"]) | set(splits.test["passage"])


# ----------------------------------------------------------------------------------------------
# Over-wide rows, JSON arrays, columns that are not text or not one of a kind


@pytest.mark.parametrize("row, number", [("q2,p2,,x", 2), ("q2,p2,,,,x,", 2), ("q2,p2,\"\",\"x\"", 2)])
def test_text_after_an_empty_extra_field_is_not_lost(tmp_path, row, number):
    path = write(tmp_path / "pairs.csv", f"question,passage\nq1,p1,,\n\n{row}\nq3,p3\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' data row {number} has more fields than the header has names "
                                "(2); put double quotes around fields that contain a comma, "
                                "or name every column in the header")


def test_text_after_an_empty_extra_tab_is_not_lost(tmp_path):
    path = write(tmp_path / "pairs.tsv", "question\tpassage\nq1\tp1\nq2\tp2\t\tx\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' data row 2 has more fields than the header has names "
                                "(2); put double quotes around fields that contain a tab, "
                                "or name every column in the header")


@pytest.mark.parametrize("name", ["pairs.json", "pairs.jsonl"])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_array_of_objects(tmp_path, name, indent):
    items = [EXPECTED[0], {**EXPECTED[1], "score": 3}, {"question": None, "passage": "orphan"}]
    path = write(tmp_path / name, json.dumps(items, indent=indent))
    pairs = load_pairs(path)
    assert pairs.frame.to_dict("records") == EXPECTED
    assert pairs.counts["dropped_empty"] == 1
    assert read_table(path)["score"].tolist() == ["", "3", ""]


def parquet(path, **columns):
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("values, kind, fix", [
    ([1, 2], "numbers (int64)", "store the questions as text (in pandas: df['question'] = df['question'].astype(str))"),
    ([1.5, None], "numbers (double)", "store the questions as text "
                                      "(in pandas: df['question'] = df['question'].astype(str))"),
    ([True, False], "true/false values (bool)", "store the questions as text "
                                                "(in pandas: df['question'] = df['question'].astype(str))"),
    ([["a", "b"], ["c"]], "lists (list<element: string>)", "put one question per row "
                                                        "(in pandas: df = df.explode('question'))"),
    ([{"text": "a"}, {"text": "b"}], "records (struct<text: string>)", "put the question text in a column of its own"),
])
def test_parquet_question_column_that_is_not_text(tmp_path, values, kind, fix):
    path = parquet(tmp_path / "pairs.parquet", question=values, passage=["p1", "p2"])
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == f"pairs file '{path}' column 'question' holds {kind}, not text; {fix} and save it again"


def test_parquet_passage_and_corpus_columns_that_are_not_text(tmp_path):
    path = parquet(tmp_path / "pairs.parquet", question=["q1", "q2"], passage=[[1, 2], [3]])
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' column 'passage' holds lists (list<element: int64>), not text; "
                                "put one passage per row (in pandas: df = df.explode('passage')) and save it again")
    path = parquet(tmp_path / "corpus.parquet", body=[7, 8])
    with pytest.raises(DataError) as excinfo:
        load_corpus(path)
    assert message(excinfo) == (f"corpus file '{path}' column 'body' holds numbers (int64), not text; store the "
                                "passages as text (in pandas: df['body'] = df['body'].astype(str)) and save it again")


def test_parquet_other_columns_may_hold_anything(tmp_path):
    path = parquet(tmp_path / "pairs.parquet", id=[1, 2], question=["q1", "q2"], passage=["p1", "p2"],
                   tags=[["a"], []])
    assert load_pairs(path).frame.to_dict("records") == [{"question": "q1", "passage": "p1"},
                                                        {"question": "q2", "passage": "p2"}]


def test_parquet_saved_from_pandas_with_its_row_index(tmp_path):
    path = tmp_path / "pairs.parquet"
    pd.DataFrame({"question": ["q1", "q2"], "passage": ["p1", "p2"]}, index=[10, 20]).to_parquet(path)
    assert read_table(path).to_dict("records") == [{"question": "q1", "passage": "p1"},
                                                   {"question": "q2", "passage": "p2"}]


@pytest.mark.parametrize("value, kind, line", [("5", "a number", 2), ('["a", "b"]', "a list", 2),
                                               ('{"t": "a"}', "an object", 2), ("true", "a true/false value", 2)])
def test_json_question_that_is_not_text(tmp_path, value, kind, line):
    path = write(tmp_path / "pairs.jsonl", '{"question": "q", "passage": "p"}\n'
                                           f'{{"question": {value}, "passage": "p"}}\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' column 'question' holds {kind} on line {line}, not text; "
                                'write every question as a JSON string, e.g. {"question": "..."}')


def test_json_array_passage_that_is_not_text(tmp_path):
    path = write(tmp_path / "pairs.json", json.dumps([{"question": "q", "passage": "p"},
                                                      {"question": "q2", "passage": 3.5}], indent=1))
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' column 'passage' holds a number in item 2 of the array, "
                                'not text; write every passage as a JSON string, e.g. {"passage": "..."}')


@pytest.mark.parametrize("header, row, named, columns", [
    ("question,passage,passage", "q,p1,p2", "'passage'", "2 and 3"),
    ("passage,question,Passage", "p1,q,p2", "'passage', 'Passage'", "1 and 3"),
    ("question,passage , passage,passage", "q,p1,p2,p3", "'passage'", "2, 3 and 4"),
])
def test_two_passage_columns_are_refused(tmp_path, header, row, named, columns):
    path = write(tmp_path / "pairs.csv", f"{header}\n{row}\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    n = len(columns.replace(" and", ",").split(", "))
    assert message(excinfo) == (f"pairs file '{path}' has {n} columns named {named} (columns {columns}); "
                                "rename or remove all but one, so that it is clear which holds the passages")


def test_two_question_columns_the_first_blank(tmp_path):
    path = write(tmp_path / "pairs.csv", "question,question,passage\n,what is soil,p1\n,what is rain,p2\n")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has 2 columns named 'question' (columns 1 and 2); "
                                "rename or remove all but one, so that it is clear which holds the questions")
    with pytest.raises(DataError) as excinfo:
        load_pairs(path, question_col="question")
    assert message(excinfo).startswith(f"pairs file '{path}' has 2 columns named 'question' (columns 1 and 2)")


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_duplicate_names_in_parquet_and_json(tmp_path, suffix):
    path = tmp_path / f"pairs{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.table([["q"], ["p1"], ["p2"]], names=["question", "passage", "passage"]), path)
    else:
        write(path, '{"question": "q", "passage": "p1", " passage": "p2"}\n')
    with pytest.raises(DataError) as excinfo:
        load_pairs(path)
    assert message(excinfo) == (f"pairs file '{path}' has 2 columns named 'passage' (columns 2 and 3); "
                                "rename or remove all but one, so that it is clear which holds the passages")


def test_one_sentence_describes_what_is_read():
    from adapt.readers import describe_formats

    sentence = ("CSV (.csv), TSV (.tsv, .txt), JSON Lines or a JSON array of objects (.jsonl, .json) or Parquet "
                "(.parquet), with a question column named question, query, anchor, questions or queries and a "
                "passage column named passage, context, positive, answer, document, passages or text (in any "
                "case), or name them with --question-col and --passage-col.")
    assert describe_formats() == sentence
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert sentence in " ".join(readme.split())
