"""Take the model home: the model card a run writes, and the ONNX / OpenVINO exports measured against torch,
on a run made with the tiny models."""

import json
import shlex

import numpy as np
import pytest

from adapt import export
from adapt.card import model_card, run_command
from adapt.config import RunConfig
from adapt.explain import about_text, interpret_change
from adapt.export import ExportResult, export_run, main
from adapt.index import encode_passages
from adapt.onnx_graph import load_exported
from adapt.pipeline import run_pipeline
from adapt.run import build_parser
from adapt.runs import load_model, open_run
from tests.test_pipeline import tiny_config


@pytest.fixture(scope="module")
def run_dir(tiny_models, tmp_path_factory):
    """One finished tiny run shared by this module's tests (they only read it, or write under export/)."""
    root = tmp_path_factory.mktemp("export-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADAPT_CACHE", str(root / "cache"))
        from tests.conftest import SAMPLE_PAIRS

        run_pipeline(tiny_config(tiny_models, SAMPLE_PAIRS, root / "run"))
    return root / "run"


def test_run_command_lists_the_changed_settings_and_round_trips_through_the_cli(tmp_path):
    config = RunConfig(pairs="pairs.csv", out=tmp_path / "my run", epochs=2, k="1,5", drop_leaks=True,
                       fallback=False, learning_rate=1e-4, dev_fraction=0.1)
    command = run_command(config.to_dict())
    assert command == (f"python -m adapt.run pairs.csv --out '{tmp_path / 'my run'}' --dev-fraction 0.1 --drop-leaks "
                       "--no-fallback --epochs 2 --learning-rate 0.0001 --k 1,5")
    args = vars(build_parser().parse_args(shlex.split(command)[3:]))
    args.pop("quiet"), args.pop("verbose")
    assert RunConfig(**args).to_dict() == config.to_dict()
    assert run_command(RunConfig(pairs="p.csv").to_dict()) == "python -m adapt.run p.csv"


def test_the_run_writes_a_model_card_with_the_test_table_counts_and_command(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    card = (run_dir / "model" / "README.md").read_text()
    metrics = report["metrics"]
    assert card.startswith("---\n") and "library_name: sentence-transformers" in card  # the trainer's hub metadata
    assert "| metric | Base | Fine-tuned | Hybrid | BM25 |" in card
    row = "| NDCG@10 | " + " | ".join(f"{metrics[s]['ndcg@10']:.4f}" for s in ("base", "finetuned", "hybrid", "bm25"))
    assert row + " |" in card
    assert f"**{interpret_change(report).sentence}**" in card
    assert f"- {about_text(report)['Data']}\n" in card
    inp = report["data"]["input"]
    assert f"- pairs read: {inp['rows_read']:,}; dropped: 0 with an empty field, 0 exact duplicates" in card
    command = run_command(report["config"])
    assert command == (f"python -m adapt.run {report['config']['pairs']} --out {run_dir} --base "
                       f"{report['config']['base']} --guide {report['config']['guide']} --epochs 1 --batch-size 16 "
                       "--bootstrap 200")
    assert f"```bash\n{command}\n```" in card
    assert "## The trainer's card" in card and "### Training Logs" in card  # the trainer's own card follows
    assert card.count("\n---\n") == 1 and "# SentenceTransformer\n" not in card  # one front matter, one title


def test_model_card_without_a_trainer_card_writes_its_own_front_matter(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    card = model_card(report, "python -m adapt.run pairs.csv")
    assert card.startswith("---\nlibrary_name: sentence-transformers\n")
    assert "The trainer's card" not in card and card.endswith("```bash\npython -m adapt.run pairs.csv\n```\n")


def test_onnx_export_round_trips_with_the_same_ndcg(run_dir):
    result = export_run(run_dir, "onnx")
    out = run_dir / "export" / "onnx"
    assert result.out == out and (out / "onnx" / "model.onnx").is_file()
    saved = json.loads((out / "export.json").read_text())
    assert saved["ndcg@10"] == {"exported": result.exported.ndcg_at_10, "torch": result.torch.ndcg_at_10,
                                "change": result.exported.ndcg_at_10 - result.torch.ndcg_at_10}
    assert saved["passages_per_second"]["torch"] == result.torch.passages_per_second > 0
    report = json.loads((run_dir / "report.json").read_text())
    run = open_run(run_dir)
    # torch measured here agrees with the run's own (exact) index; the export agrees with torch
    assert result.torch.ndcg_at_10 == pytest.approx(report["metrics"]["finetuned"]["ndcg@10"], abs=1e-6)
    assert abs(result.exported.ndcg_at_10 - result.torch.ndcg_at_10) <= 0.01
    assert saved["test_questions"] == len(run.test.queries) and saved["corpus_passages"] == len(run.test.corpus)
    texts = list(run.test.corpus.values())[:20]
    exported = encode_passages(load_exported(out, "onnx"), texts)
    assert np.abs(exported - encode_passages(load_model(run, "finetuned"), texts)).max() < 1e-4


def test_int8_export_is_smaller_and_keeps_ndcg(run_dir, tmp_path):
    full = export_run(run_dir, "onnx", out=tmp_path / "fp32")
    small = export_run(run_dir, "onnx", "int8", out=tmp_path / "int8")
    assert small.size_mb < full.size_mb
    assert not (tmp_path / "int8" / "onnx" / "model.onnx.data").exists()
    assert abs(small.exported.ndcg_at_10 - small.torch.ndcg_at_10) <= 0.01


def test_openvino_export_round_trips(run_dir, tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is optional: pip install openvino")
    result = export_run(run_dir, "openvino", out=tmp_path / "ov")
    assert (tmp_path / "ov" / "openvino" / "openvino_model.xml").is_file()
    assert abs(result.exported.ndcg_at_10 - result.torch.ndcg_at_10) <= 0.01


def test_sentence_transformers_loads_the_onnx_export(run_dir, tmp_path):
    pytest.importorskip("optimum.onnxruntime", reason="optimum-onnx does not support transformers 5 yet")
    from sentence_transformers import SentenceTransformer

    result = export_run(run_dir, "onnx", out=tmp_path / "onnx")
    texts = list(open_run(run_dir).test.corpus.values())[:20]
    model = SentenceTransformer(str(result.out), backend="onnx")
    assert np.abs(encode_passages(model, texts) - encode_passages(load_exported(result.out, "onnx"), texts)).max() < 1e-4


def test_missing_packages_name_the_pip_command(tmp_path, monkeypatch, capsys):
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    assert main([str(tmp_path), "--format", "onnx"]) == 1
    assert capsys.readouterr().err == ("Error: exporting to ONNX needs onnxruntime, which is not installed; "
                                       "install with: pip install onnx onnxscript onnxruntime\n")
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None)
    assert main([str(tmp_path), "--format", "openvino", "--quantize", "int8"]) == 1
    assert capsys.readouterr().err == ("Error: exporting to OpenVINO int8 needs onnx, onnxscript, onnxruntime, "
                                       "openvino, which are not installed; install with: pip install onnx onnxscript "
                                       "onnxruntime openvino\n")


def test_export_refuses_a_folder_of_other_files(run_dir, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main([str(run_dir), "--out", str(tmp_path / "mine")]) == 1
    assert capsys.readouterr().err == (f"Error: --out '{tmp_path / 'mine'}' already holds files that are not an adapt "
                                       f"export; pass a new or empty folder, e.g. --out {tmp_path / 'mine' / 'adapt-export'}\n")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_summary_reads_the_numbers(tmp_path):
    m = export.Measurement(0.5123, 300.0, 238, 132)
    t = export.Measurement(0.5100, 200.0, 238, 132)
    text = export.summary(ExportResult(tmp_path, "onnx", "int8", "onnx/model.onnx", 22.5, m, t, 4.2))
    assert text.splitlines() == [
        f"Exported ONNX int8 to {tmp_path} (onnx/model.onnx, 22.5 MB) in 4 s.",
        "NDCG@10 on 132 test questions: ONNX int8 0.5123, torch 0.5100 (change +0.0023).",
        "Encoding 238 passages: ONNX int8 300 passages/s, torch 200 passages/s (1.50x).",
        f"Wrote {tmp_path / 'export.json'}.",
    ]


@pytest.mark.slow
def test_real_minilm_exports_keep_ndcg_on_the_sample(sample_pairs, sample_corpus, tmp_path, cache_dir):
    from adapt.config import RunConfig

    out = tmp_path / "run"
    # fp32: the export measures the torch model in fp32, and only then is the run's own number exactly its own
    run_pipeline(RunConfig(pairs=sample_pairs, corpus=sample_corpus, out=out, base="minilm", guide="minilm",
                           epochs=1, bootstrap=200, precision="fp32"))
    report = json.loads((out / "report.json").read_text())
    for quantize in (None, "int8"):
        result = export_run(out, "onnx", quantize)
        assert result.torch.ndcg_at_10 == pytest.approx(report["metrics"]["finetuned"]["ndcg@10"], abs=1e-6)
        assert abs(result.exported.ndcg_at_10 - result.torch.ndcg_at_10) <= 0.01, quantize
