"""``python -m adapt.search RUN_DIR "question" -k 5``: base and fine-tuned results side by side."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import textwrap

from adapt.errors import AdaptError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adapt.search",
                                     description="Search a finished run with the base and the fine-tuned model.")
    parser.add_argument("run", help="run directory written by python -m adapt.run (its --out)")
    parser.add_argument("query", help="the question to search for")
    parser.add_argument("-k", type=int, default=5, help="results per model (default: 5)")
    return parser


def side_by_side(query: str, base_hits, tuned_hits, relevant: set[str], width: int) -> str:
    column = max(30, (width - 3) // 2)
    lines = [f"Query: {query}", "", f"{'Base':<{column}} | Fine-tuned", f"{'-' * column}-+-{'-' * column}"]
    for rank in range(max(len(base_hits), len(tuned_hits))):
        cells = []
        for hits in (base_hits, tuned_hits):
            if rank < len(hits):
                hit = hits[rank]
                mark = " *" if hit.passage_id in relevant else ""
                head = f"{hit.rank}. [{hit.score:.3f}] {hit.passage_id}{mark}"
                cells.append([head] + textwrap.wrap(hit.text, column - 3, max_lines=3, placeholder=" ...",
                                                   initial_indent="   ", subsequent_indent="   "))
            else:
                cells.append([])
        for left, right in _zip_longest(*cells):
            lines.append(f"{left:<{column}} | {right}")
        lines.append("")
    if relevant:
        lines.append("* a relevant passage for this test question")
    return "\n".join(lines)


def _zip_longest(a: list[str], b: list[str]):
    for i in range(max(len(a), len(b))):
        yield (a[i] if i < len(a) else ""), (b[i] if i < len(b) else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from adapt.run import quiet_libraries

    quiet_libraries()
    if args.k < 1:
        print("Error: -k must be at least 1", file=sys.stderr)
        return 1
    if not args.query.strip():
        print("Error: the query is empty; pass a question in quotes", file=sys.stderr)
        return 1
    try:
        from adapt.runs import open_run

        run = open_run(args.run)
        base_hits = run.retriever("base").search(args.query, args.k)
        tuned_hits = run.retriever("finetuned").search(args.query, args.k)
    except AdaptError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    qid = run.question_id(args.query)
    relevant = run.test.relevant_docs.get(qid, set()) if qid else set()
    print(side_by_side(args.query, base_hits, tuned_hits, relevant, shutil.get_terminal_size((160, 40)).columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
