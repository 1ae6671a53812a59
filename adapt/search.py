"""``python -m adapt.search RUN_DIR ["question"] -k 5``: base, fine-tuned and hybrid results side by side.

With a question it answers once. Without one it loads the models and indexes once and then
answers question after question: at a prompt in a terminal (an empty line or Ctrl-D quits), or
line by line from a pipe (``adapt.search RUN < questions.txt``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import textwrap
from typing import TextIO

from adapt.config import MAX_K
from adapt.errors import AdaptError
from adapt.explain import SYSTEMS
from adapt.run import Parser, one_line, parse, quiet_libraries

PROMPT = "question> "


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m adapt.search",
                    description="Search a finished run with the base model, the fine-tuned model and hybrid search.")
    parser.add_argument("run", help="run directory written by python -m adapt.run (its --out)")
    parser.add_argument("query", nargs="?", default=None,
                        help="the question to search for; leave it out to type questions at a prompt, "
                             "or pipe them in, one a line")
    parser.add_argument("-k", type=int, default=5, help="results per system (default: 5)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow the run's models to run their own Python code (only for runs you trust; "
                             "a run folder's own settings never turn this on)")
    return parser


def side_by_side(query: str, columns: dict[str, list], relevant: set[str], width: int) -> str:
    """One column per system (title -> its hits), best first; ``*`` marks a relevant passage."""
    n = len(columns)
    column = max(24, (width - 3 * (n - 1)) // n)
    lines = [f"Query: {query}", "", " | ".join(f"{title:<{column}}" for title in columns).rstrip(),
             "-+-".join("-" * column for _ in columns)]
    for rank in range(max(map(len, columns.values()), default=0)):
        cells = [_cell(hits[rank], relevant, column) if rank < len(hits) else [] for hits in columns.values()]
        for row in range(max(map(len, cells))):
            lines.append(" | ".join(f"{(c[row] if row < len(c) else ''):<{column}}" for c in cells).rstrip())
        lines.append("")
    if relevant:
        lines.append("* a relevant passage for this test question")
    return "\n".join(lines)


def _cell(hit, relevant: set[str], column: int) -> list[str]:
    mark = " *" if hit.passage_id in relevant else ""
    head = f"{hit.rank}. [{hit.score:.3f}] {hit.passage_id}{mark}"
    return [head] + textwrap.wrap(hit.text, column - 3, max_lines=3, placeholder=" ...",
                                  initial_indent="   ", subsequent_indent="   ")


def answer(run, retrievers: dict, query: str, k: int) -> str:
    """The side-by-side results of every system for one question, sized to the terminal."""
    qid = run.question_id(query)
    relevant = run.test.relevant_docs.get(qid, set()) if qid else set()
    columns = {SYSTEMS[system]: retriever.search(query, k) for system, retriever in retrievers.items()}
    return side_by_side(query, columns, relevant, shutil.get_terminal_size((160, 40)).columns)


def questions(stdin: TextIO):
    """Questions typed at a prompt (an empty line or end of input quits), or piped lines (blank ones skipped)."""
    if stdin.isatty():
        print("Type a question and press Enter; an empty line or Ctrl-D quits.", file=sys.stderr)
        while True:
            try:
                line = input(PROMPT).strip()
            except EOFError:
                return
            if not line:
                return
            yield line
    for line in stdin:
        if line.strip():
            yield line.strip()


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    quiet_libraries()
    if not 1 <= args.k <= MAX_K:
        print(f"Error: -k must be a whole number from 1 to {MAX_K}; got {args.k}", file=sys.stderr)
        return 1
    if args.query is not None and not args.query.strip():
        print("Error: the query is empty; pass a question in quotes, or none to type them at a prompt",
              file=sys.stderr)
        return 1
    try:
        from adapt.runs import open_run

        run = open_run(args.run)
        retrievers = {system: run.retriever(system, args.trust_remote_code) for system in run.systems()}
        asked = [args.query] if args.query is not None else questions(stdin or sys.stdin)
        for query in asked:
            print(answer(run, retrievers, query, args.k), flush=True)
    except AdaptError as exc:
        print(f"Error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
