"""``python -m adapt.export RUN --format onnx|openvino [--quantize int8] [--out DIR]``: take the model home.

Exports a finished run's fine-tuned model (adapt/onnx_graph.py), then measures the export against the
torch model on the run's own data, the same texts for both: NDCG@10 on the test questions searching the
whole corpus (exact search), and encode speed in passages per second over the corpus. The numbers go to
``export.json`` in the export folder (default ``RUN/export/<format>[-int8]``) and to the terminal.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from adapt import __version__
from adapt.errors import AdaptError, ExportError

logger = logging.getLogger("adapt.export")  # not __name__: under -m that is "__main__"

FORMATS = ("onnx", "openvino")
QUANTIZE = ("int8",)
LABELS = {"onnx": "ONNX", "openvino": "OpenVINO"}
WARMUP = 16  # passages encoded before timing, so one-time set-up is not counted
REPEATS = 3  # timed passes over the corpus; the fastest counts (as timeit does: the others met more noise)


def needed_packages(fmt: str, quantize: str | None = None) -> list[str]:
    """The pip packages an export needs: the ONNX exporter always, then the runtime it is measured on
    (OpenVINO's int8 is quantised by ONNX Runtime before conversion)."""
    packages = ["onnx", "onnxscript"]
    if fmt == "onnx" or quantize:
        packages.append("onnxruntime")
    if fmt == "openvino":
        packages.append("openvino")
    return packages


def check_packages(fmt: str, quantize: str | None = None) -> None:
    needed = needed_packages(fmt, quantize)
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        what = f"{LABELS[fmt]}{' int8' if quantize else ''}"
        verb = "is" if len(missing) == 1 else "are"
        raise ExportError(f"exporting to {what} needs {', '.join(missing)}, which {verb} not installed; "
                          f"install with: pip install {' '.join(needed)}")


def default_out(run_dir: Path, fmt: str, quantize: str | None = None) -> Path:
    return Path(run_dir) / "export" / (fmt + (f"-{quantize}" if quantize else ""))


@dataclass
class Measurement:
    ndcg_at_10: float  # on the run's test questions, exact search over the whole corpus
    passages_per_second: float  # encoding the run's corpus
    passages: int
    questions: int


@dataclass
class ExportResult:
    out: Path
    format: str
    quantize: str | None
    file: str  # the graph, relative to ``out``
    size_mb: float
    exported: Measurement
    torch: Measurement
    seconds: float  # exporting, not measuring

    def to_dict(self) -> dict:
        return {"format": self.format, "quantize": self.quantize, "file": self.file, "size_mb": self.size_mb,
                "ndcg@10": {"exported": self.exported.ndcg_at_10, "torch": self.torch.ndcg_at_10,
                            "change": self.exported.ndcg_at_10 - self.torch.ndcg_at_10},
                "passages_per_second": {"exported": self.exported.passages_per_second,
                                        "torch": self.torch.passages_per_second,
                                        "speedup": self.exported.passages_per_second / self.torch.passages_per_second},
                "test_questions": self.exported.questions, "corpus_passages": self.exported.passages,
                "export_seconds": self.seconds, "measured_on": "cpu",
                "adapt_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def measure(model, run, batch_size: int = 64) -> Measurement:
    """NDCG@10 of ``model`` on ``run``'s test set (a fresh exact index) and its corpus encode speed."""
    from adapt.evaluate import evaluate_index
    from adapt.index import PassageIndex, encode_passages, encode_queries

    ids, texts = list(run.test.corpus), list(run.test.corpus.values())
    encode_passages(model, texts[:WARMUP], batch_size)
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        vectors = encode_passages(model, texts, batch_size)
        seconds.append(time.perf_counter() - start)
    index = PassageIndex.build(vectors, ids, texts, "flat")
    queries = encode_queries(model, list(run.test.queries.values()), batch_size)
    ndcg = evaluate_index(index, queries, run.test, (10,)).metrics["ndcg@10"]
    return Measurement(ndcg, len(texts) / max(min(seconds), 1e-9), len(texts), len(run.test.queries))


def _check_out(out: Path) -> None:
    """Replace an earlier export in ``out``, never a folder of someone else's files."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "export.json").is_file())):
        raise ExportError(f"--out '{out}' already holds files that are not an adapt export; pass a new or "
                          f"empty folder, e.g. --out {out / 'adapt-export'}")


def _export_files(torch_model, folder: Path, model_dir: Path, fmt: str, quantize: str | None) -> None:
    from adapt import onnx_graph

    shutil.copytree(model_dir, folder)  # the model's own files: tokenizer, pooling, prompts, card
    onnx_path = folder / onnx_graph.ONNX_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_graph.export_onnx(torch_model, onnx_path)
        if quantize:
            quantized = onnx_path.with_name("model_qint8.onnx")
            onnx_graph.quantize_onnx(onnx_path, quantized)
            quantized.replace(onnx_path)  # the name sentence-transformers loads by default
        if fmt == "openvino":
            onnx_graph.to_openvino(onnx_path, folder / onnx_graph.OPENVINO_FILE)
            shutil.rmtree(onnx_path.parent)


def export_run(run_dir: Path | str, fmt: str = "onnx", quantize: str | None = None,
               out: Path | str | None = None, trust_remote_code: bool = False) -> ExportResult:
    """Export the fine-tuned model of the finished run in ``run_dir`` and measure it against torch."""
    from adapt import onnx_graph
    from adapt.files import atomic_write_json
    from adapt.runs import load_model, open_run

    if fmt not in FORMATS:
        raise ExportError(f"--format must be {' or '.join(FORMATS)}; got {fmt!r}")
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"--quantize must be int8; got {quantize!r}")
    check_packages(fmt, quantize)
    run = open_run(run_dir)
    out = Path(out) if out is not None else default_out(run.out, fmt, quantize)
    _check_out(out)
    # on the CPU, where the exported model runs too: the comparison is like for like
    # trust comes from the person's own flag, never from the run folder (as in adapt.search)
    torch_model = load_model(run, "finetuned", trust_remote_code).to("cpu")

    partial = out.parent / f".{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    logger.info("Exporting %s to %s", LABELS[fmt] + (" int8" if quantize else ""), out)
    start = time.perf_counter()
    try:
        _export_files(torch_model, partial, run.out / "model", fmt, quantize)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    graph = onnx_graph.ONNX_FILE if fmt == "onnx" else onnx_graph.OPENVINO_FILE
    size = sum(p.stat().st_size for p in (partial / graph).parent.iterdir()) / 1e6
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)

    logger.info("Measuring the export and the torch model on %d test questions and %d passages",
                len(run.test.queries), len(run.test.corpus))
    exported = measure(onnx_graph.load_exported(out, fmt), run)
    result = ExportResult(out, fmt, quantize, graph.as_posix(), round(size, 2), exported, measure(torch_model, run),
                          seconds)
    atomic_write_json(out / "export.json", result.to_dict())
    return result


def summary(result: ExportResult) -> str:
    e, t = result.exported, result.torch
    what = LABELS[result.format] + (" int8" if result.quantize else "")
    return "\n".join([
        f"Exported {what} to {result.out} ({result.file}, {result.size_mb:.1f} MB) in {result.seconds:.0f} s.",
        f"NDCG@10 on {e.questions} test questions: {what} {e.ndcg_at_10:.4f}, torch {t.ndcg_at_10:.4f} "
        f"(change {e.ndcg_at_10 - t.ndcg_at_10:+.4f}).",
        f"Encoding {e.passages} passages: {what} {e.passages_per_second:.0f} passages/s, torch "
        f"{t.passages_per_second:.0f} passages/s ({e.passages_per_second / t.passages_per_second:.2f}x).",
        f"Wrote {result.out / 'export.json'}.",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m adapt.export",
        description="Export a finished run's fine-tuned model to ONNX or OpenVINO and measure it against torch.")
    parser.add_argument("run", help="run directory written by python -m adapt.run (its --out)")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="what to export to (default: onnx)")
    parser.add_argument("--quantize", choices=QUANTIZE, default=None,
                        help="quantise the weights to int8 (smaller, usually faster on CPU)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the exported model (default: RUN/export/FORMAT, or FORMAT-int8)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a model that ships its own Python code (never taken from the run folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("adapt").setLevel(logging.INFO)  # adapt's own steps; the libraries stay at warnings
    from adapt.run import quiet_libraries

    quiet_libraries()
    import torch.onnx  # noqa: F401  (torch sets its loggers up on import; quieten them after)

    for noisy in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        result = export_run(args.run, args.format, args.quantize, args.out, args.trust_remote_code)
    except AdaptError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
