"""``python -m adapt.run PAIRS [options]``: fine-tune, index, evaluate, report.

Options come from ``RunConfig``'s fields, so defaults and help live in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

from adapt.config import RunConfig
from adapt.errors import AdaptError

logger = logging.getLogger("adapt")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one ``Error:`` line (exit status 2), like every other error."""

    def error(self, message: str):
        message = message.removeprefix("argument ").replace("/-", " / -", 1)
        self.exit(2, f"Error: {one_line(message)}; see {self.prog} --help\n")


def one_line(message) -> str:
    """A message as one line: line breaks from a person's text or a path are shown, not obeyed."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or the exit status when argparse is done (``--help``, a bad command line)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m adapt.run",
        description="Fine-tune an embedding model on question/passage pairs with GISTEmbed, build FAISS "
                    "indexes for the base and fine-tuned models, and report retrieval metrics for both.",
    )
    for field in dataclasses.fields(RunConfig):
        meta = field.metadata
        annotation = str(field.type)
        if meta.get("positional"):
            parser.add_argument(field.name, type=Path, help=meta["help"])
            continue
        flag = "--" + field.name.replace("_", "-")
        if annotation == "bool":
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=field.default, help=meta["help"])
        else:
            shown = ",".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
            # text as typed: RunConfig converts and checks it, so a bad value gets a message naming the flag
            parser.add_argument(flag, dest=field.name, default=field.default,
                                metavar=field.name.upper(), help=f"{meta['help']} (default: {shown})")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="only print errors and the result (no progress bars)")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="also log each stage's details and the trainer's numbers (loss, learning rate, dev scores)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    args = vars(args)
    quiet, verbose = args.pop("quiet"), args.pop("verbose")
    from adapt.distributed import world

    quiet = quiet or not world().main  # under torchrun only rank 0 speaks
    configure_logging(logging.INFO if verbose and not quiet else logging.WARNING)
    quiet_libraries()
    start = time.perf_counter()
    try:
        from adapt.pipeline import run_pipeline
        from adapt.progress import StageBars

        config = RunConfig(**args)
        with StageBars(sys.stderr, disable=quiet) as bars:
            result = run_pipeline(config, progress=bars)
    except AdaptError as exc:
        print(f"Error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: run the same command again to resume.", file=sys.stderr)
        return 130
    if not result.main:
        return 0
    print(summary(result.report, result.out, time.perf_counter() - start))
    return 0


def configure_logging(level: int) -> None:
    """adapt's log lines on stderr from ``level`` up, as bare messages; a library's warnings reach stderr as well
    (Python's last-resort handler). Called again (the app, tests), it replaces its own handler."""
    own = logging.getLogger("adapt")
    for handler in [h for h in own.handlers if getattr(h, "adapt_cli", False)]:
        own.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.adapt_cli = True
    own.addHandler(handler)
    own.setLevel(level)


def quiet_libraries() -> None:
    """Keep the libraries' chatter (loader messages, weight-loading bars) out of the output."""
    import bm25s  # noqa: F401  (it sets its own logger to DEBUG when imported: import it before quieting it)

    for noisy in ("httpx", "urllib3", "huggingface_hub", "sentence_transformers", "transformers", "datasets",
                  "faiss", "faiss.loader", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def summary(report: dict, out: Path, seconds: float) -> str:
    """The CLI's last lines: the metrics table, the warnings, then the headline and how dev decided."""
    from adapt.explain import interpret_change
    from adapt.report import metrics_table

    table = metrics_table(report, ("accuracy@1", "mrr@10", "ndcg@10", "recall@10"))
    names = {"Base": "base", "Fine-tuned": "tuned", "Change": "change", "Hybrid": "hybrid", "BM25": "BM25"}
    lines = ["", f"{'metric':<12}" + "".join(f" {names[c]:>8}" for c in table.columns)]
    for metric, row in table.iterrows():
        lines.append(f"{metric:<12}" + "".join(f" {v:>+8.4f}" if c == "Change" else f" {v:>8.4f}"
                                               for c, v in row.items()))
    lines += [f"Warning: {w}" for w in report["warnings"]]
    lines.append(f"Dev: {report['verdict']}")
    lines.append(interpret_change(report).sentence)
    lines.append(f"Wrote {out}/report.md, report.json, per_query.csv, model/ and index/ in {seconds:.0f} s.")
    lines.append(f'Search it: python -m adapt.search {out} "your question" -k 5')
    return "\n".join(lines)


if __name__ == "__main__":
    from adapt.distributed import exit_process

    exit_process(main())
