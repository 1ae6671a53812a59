"""bf16 where the hardware has it, fp32 where it does not or where a person asks: detection, encodings, runs."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from sentence_transformers import SentenceTransformer

from adapt import precision, train
from adapt.config import RunConfig
from adapt.errors import ConfigError
from adapt.guide import build_table
from adapt.index import encode_passages, encode_queries
from adapt.pipeline import run_pipeline
from tests.test_pipeline import tiny_config

BF16 = precision.Precision("bf16", "bf16", "a test asked for it", "cpu")
CPU_WITH = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
CPU_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n"


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Point the cpuinfo reader at a file the test writes; no GPU."""
    path = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def write(text: str):
        path.write_text(text)
    return write


def test_auto_is_bf16_where_the_cpu_has_the_flags(cpuinfo):
    cpuinfo(CPU_WITH)
    assert precision.cpu_flags() == {"fpu", "sse2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert precision.resolve("auto") == precision.Precision("auto", "bf16", "the CPU has amx_bf16 and avx512_bf16")
    assert precision.resolve("bf16").used == "bf16"
    assert precision.resolve("fp32") == precision.Precision("fp32", "fp32", "fp32 was asked for")


def test_without_the_flags_everything_falls_back_to_fp32(cpuinfo, caplog):
    cpuinfo(CPU_WITHOUT)
    why = "the CPU has neither avx512_bf16 nor amx_bf16, so fp32 ran"
    with caplog.at_level(logging.INFO, logger="adapt.precision"):
        assert precision.resolve("auto") == precision.Precision("auto", "fp32", why)
        assert precision.resolve("bf16") == precision.Precision("bf16", "fp32", why)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", f"Precision: fp32 on cpu (asked for auto: {why})"),
        ("WARNING", f"Precision: fp32 on cpu (asked for bf16: {why})"),
    ]


def test_an_unreadable_cpuinfo_means_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.cpu_flags() == set()
    assert precision.resolve("auto").used == "fp32"


def test_a_bad_precision_names_the_choices(sample_pairs):
    with pytest.raises(ConfigError) as error:
        RunConfig(pairs=sample_pairs, precision="fp16")
    assert str(error.value) == "--precision must be auto or fp32 or bf16; got 'fp16'"
    assert RunConfig(pairs=sample_pairs).precision == "auto"


def test_autocast_only_in_a_bf16_run():
    assert precision.active().used == "fp32"
    with precision.autocast():
        assert not torch.is_autocast_enabled("cpu")
    with precision.use(BF16):
        assert precision.active() is BF16
        with precision.autocast():
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert precision.active().used == "fp32"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("name", ["student", "guide"])
def test_bf16_passage_encodings_agree_with_fp32_and_stay_float32(tiny, sample_pairs, name):
    model = SentenceTransformer(str(tiny[name]), device="cpu")
    frame = pd.read_csv(sample_pairs).head(40)
    full = encode_passages(model, list(frame["passage"]))
    full_queries = encode_queries(model, list(frame["question"]))
    with precision.use(BF16):
        half = encode_passages(model, list(frame["passage"]))
        queries = encode_queries(model, list(frame["question"]))
    assert half.dtype == np.float32 and half.shape == full.shape
    assert not np.array_equal(half, full)  # bf16 really ran
    assert _cosines(half, full).min() >= 0.99
    assert np.array_equal(queries, full_queries)  # queries stay fp32, as later searches encode them
    with precision.use(precision.Precision("auto", "bf16", "the CPU has it", "cpu")):
        assert np.array_equal(encode_passages(model, list(frame["passage"])), half)  # auto where bf16 runs: the same
    with precision.use(precision.Precision("auto", "fp32", "the CPU lacks it", "cpu")):
        assert np.array_equal(encode_passages(model, list(frame["passage"])), full)


def test_bf16_guide_embeddings_agree_and_never_share_the_fp32_cache(tiny, sample_pairs, cache_dir):
    student = SentenceTransformer(str(tiny["student"]), device="cpu")
    guide = SentenceTransformer(str(tiny["guide"]), device="cpu")
    columns = {"anchor": list(pd.read_csv(sample_pairs)["question"].head(40))}
    full, full_stats = build_table(student, guide, columns, cache_dir=cache_dir)
    with precision.use(BF16):
        half, half_stats = build_table(student, guide, columns, cache_dir=cache_dir)
        _, again = build_table(student, guide, columns, cache_dir=cache_dir)
    assert (full_stats.precision, half_stats.precision) == ("fp32", "bf16")
    assert half_stats.encoded == half_stats.texts > 0  # the fp32 cache was not used
    assert half_stats.cache_path != full_stats.cache_path and again.cache_hit
    assert half.embeddings.dtype == torch.float32
    assert not torch.equal(half.embeddings, full.embeddings)
    assert _cosines(half.embeddings.numpy(), full.embeddings.numpy()).min() >= 0.99


def test_a_run_records_and_uses_the_precision_it_ran(tiny, sample_pairs, tmp_path, cache_dir, cpuinfo, monkeypatch):
    """On a CPU with bf16, auto and bf16 run the guide and the trainer in bf16; a re-run with --precision fp32
    runs fp32 everywhere. bf16 after auto finds auto's training (the same computation) and reuses it; fp32
    reuses nothing of theirs."""
    cpuinfo(CPU_WITH)
    trainer_bf16 = []
    original = train.training_arguments

    def spy(*args, **kwargs):
        arguments = original(*args, **kwargs)
        trainer_bf16.append(arguments.bf16)
        return arguments
    monkeypatch.setattr(train, "training_arguments", spy)
    out = tmp_path / "run"
    reports = []
    for asked in ("auto", "bf16", "fp32"):
        run_pipeline(tiny_config(tiny, sample_pairs, out, precision=asked, hard_negatives=0))
        reports.append(json.loads((out / "report.json").read_text()))
    assert [r["precision"] for r in reports] == [
        {"requested": "auto", "used": "bf16", "why": "the CPU has amx_bf16 and avx512_bf16", "device": "cpu"},
        {"requested": "bf16", "used": "bf16", "why": "the CPU has amx_bf16 and avx512_bf16", "device": "cpu"},
        {"requested": "fp32", "used": "fp32", "why": "fp32 was asked for", "device": "cpu"},
    ]
    assert [r["config"]["precision"] for r in reports] == ["auto", "bf16", "fp32"]
    assert [r["training"]["guide"]["precision"] for r in reports] == ["bf16", "bf16", "fp32"]
    assert [r["training"]["reused"] for r in reports] == [False, True, False]
    assert trainer_bf16 == [True, False]  # bf16's run built no trainer: it reused auto's training
