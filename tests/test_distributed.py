"""Two processes, one run: torchrun with gloo on CPU, tiny models, a real DDP training (no mocks)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_cli import cli_args
from tests.test_pipeline import recomputed


def torchrun(tiny, pairs, out, cwd, *extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "adapt.run", *cli_args(tiny, pairs, out, "--batch-size", "8", *extra), "-q"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_two_gloo_processes_write_one_complete_run(tiny, sample_pairs, tmp_path, cache_dir):
    out = tmp_path / "run"
    done = torchrun(tiny, sample_pairs, out, tmp_path)
    assert done.returncode == 0, done.stderr[-6000:]
    assert done.stdout.count("Wrote ") == 1  # rank 0 alone reports
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "data", "index", "model", "per_query.csv", "report.json", "report.md"]

    report = json.loads((out / "report.json").read_text())
    assert report["training"]["distributed"] == {"world_size": 2, "backend": "gloo", "devices": ["cpu", "cpu"]}
    assert report["training"]["loss"] == "CachedGISTEmbedLoss" and report["training"]["steps"] > 0
    for system in ("base", "finetuned"):
        assert report["metrics"][system] == pytest.approx(recomputed(out, system, "test", (1, 3, 5, 10)), abs=1e-6)
    assert not list((out / ".work").glob("train-*/checkpoints"))  # rank 0 tidied up after training

    again = torchrun(tiny, sample_pairs, out, tmp_path)  # the same command again: training is reused
    assert again.returncode == 0, again.stderr[-6000:]
    rerun = json.loads((out / "report.json").read_text())
    assert rerun["training"]["reused"] is True and rerun["metrics"] == report["metrics"]


def test_when_rank_0_stops_before_training_the_others_stop_too(tiny, tmp_path, cache_dir):
    bad = tmp_path / "bad.csv"
    bad.write_text("q,text\nwhat is soil?,the top layer of earth\n")
    done = torchrun(tiny, bad, tmp_path / "run", tmp_path)
    assert done.returncode != 0
    problem = (f"pairs file '{bad}' has no question column: expected 'question' (or 'query', 'anchor', 'questions'), "
               "found 'q', 'text'; rename it or pass --question-col")
    errors = sorted(line for line in done.stderr.splitlines() if line.startswith("Error: "))
    assert errors == [f"Error: {problem}",  # rank 0 says it once, and rank 1 waits no more
                      f"Error: the main process (rank 0) stopped before training: {problem}"]
    assert not (tmp_path / "run" / "report.json").exists()


def test_finish_leaves_the_process_group(tmp_path):
    import torch.distributed as dist

    from adapt.distributed import finish

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    finish()
    assert not dist.is_initialized()
    finish()  # nothing to leave: no error


def test_one_of_several_exits_with_its_code_and_nothing_unflushed(tmp_path):
    script = "from adapt.distributed import exit_process\nprint('every line', end='')\nexit_process(3)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORLD_SIZE": "2", "RANK": "1"}
    env.pop("PYTHONUNBUFFERED", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3
    assert done.stdout == "every line"  # piped stdout is block-buffered: os._exit alone would drop it
