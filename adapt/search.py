"""``python -m adapt.search RUN_DIR "question" -k 5``: base and fine-tuned results side by side."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import textwrap

from adapt.config import MAX_K
from adapt.errors import AdaptError
from adapt.run import Parser, one_line, parse, quiet_libraries


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m adapt.search",
                    description="Search a finished run with the base and the fine-tuned model.")
    parser.add_argument("run", help="run directory written by python -m adapt.run (its --out)")
    parser.add_argument("query", help="the question to search for")
    parser.add_argument("-k", type=int, default=5, help="results per model (default: 5)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow the run's models to run their own Python code (only for runs you trust; "
                             "a run folder's own settings never turn this on)")
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
    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    quiet_libraries()
    if not 1 <= args.k <= MAX_K:
        print(f"Error: -k must be a whole number from 1 to {MAX_K}; got {args.k}", file=sys.stderr)
        return 1
    if not args.query.strip():
        print("Error: the query is empty; pass a question in quotes", file=sys.stderr)
        return 1
    try:
        from adapt.runs import open_run

        run = open_run(args.run)
        base_hits = run.retriever("base", args.trust_remote_code).search(args.query, args.k)
        tuned_hits = run.retriever("finetuned", args.trust_remote_code).search(args.query, args.k)
    except AdaptError as exc:
        print(f"Error: {one_line(exc)}", file=sys.stderr)
        return 1
    qid = run.question_id(args.query)
    relevant = run.test.relevant_docs.get(qid, set()) if qid else set()
    print(side_by_side(args.query, base_hits, tuned_hits, relevant, shutil.get_terminal_size((160, 40)).columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
