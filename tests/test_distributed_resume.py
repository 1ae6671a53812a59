"""A killed 2-process run resumes like a single one: torchrun with gloo on CPU, tiny models, a real kill.

The launcher and both workers are killed with SIGKILL (as an out-of-memory kill or a lost machine
would stop them) once training has saved a complete checkpoint; the same command run again must reuse
the finished work, resume training from the newest complete checkpoint and publish one complete run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapt.train import checkpoint_problem
from tests.conftest import ROOT
from tests.test_cli import cli_args
from tests.test_distributed import torchrun
from tests.test_pipeline import recomputed

TRAINING = ("--eval-steps", "3", "--patience", "0", "--epochs", "3")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts each worker in a session of its own, so a process
    group does not hold them)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def complete_checkpoints(out: Path) -> list[Path]:
    saved = out.glob(".work/train-*/checkpoints/checkpoint-*")
    return sorted((p for p in saved if checkpoint_problem(p) is None), key=lambda p: int(p.name.rsplit("-", 1)[1]))


def kill_after_first_checkpoint(tiny, pairs, out: Path, cwd: Path, wait_s: float = 240) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "adapt.run", *cli_args(tiny, pairs, out, "--batch-size", "8", *TRAINING), "-q"]
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=cwd, start_new_session=True)
    deadline = time.monotonic() + wait_s
    try:
        while not complete_checkpoints(out):
            if launcher.poll() is not None:
                pytest.fail(f"the run ended (status {launcher.returncode}) before its first checkpoint:\n"
                            f"{launcher.stderr.read()[-6000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no complete checkpoint under {out / '.work'} after {wait_s:.0f} s")
            time.sleep(0.05)
        workers = descendants(launcher.pid)
        for pid in [launcher.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        launcher.communicate(timeout=30)
        assert len(workers) >= 2, workers  # both ranks were running, and were killed with the launcher
        return launcher
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(timeout=30)


def test_a_killed_two_process_run_resumes_like_a_single_one(tiny, sample_pairs, tmp_path, cache_dir):
    out = tmp_path / "run"
    killed = kill_after_first_checkpoint(tiny, sample_pairs, out, tmp_path)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    [train_dir] = out.glob(".work/train-*")
    assert not (train_dir / "result.json").exists()  # stopped in the middle of training
    resume_from = complete_checkpoints(out)[-1]
    [base_done] = out.glob(".work/base-*/DONE")
    encoded = {p: p.stat().st_mtime_ns for p in base_done.parent.glob("*.npy")}

    again = torchrun(tiny, sample_pairs, out, tmp_path, *TRAINING)  # the same command again
    assert again.returncode == 0, again.stderr[-6000:]
    assert again.stdout.count("Wrote ") == 1

    report = json.loads((out / "report.json").read_text())
    training = report["training"]
    assert training["resumed_from"] == str(resume_from) and training["reused"] is False
    assert training["steps"] > int(resume_from.name.rsplit("-", 1)[1])
    assert training["distributed"] == {"world_size": 2, "backend": "gloo", "devices": ["cpu", "cpu"]}
    assert {p: p.stat().st_mtime_ns for p in encoded} == encoded  # the base encodings were reused, not redone
    assert list(out.glob(".work/train-*")) == [train_dir]  # same data and settings: the same training

    assert sorted(p.name for p in out.iterdir()) == [
        ".adapt-run", ".work", "data", "index", "model", "per_query.csv", "report.json", "report.md"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("run")) == ["run"]
    assert not (train_dir / "checkpoints").exists()  # tidied after training
    for system in ("base", "finetuned"):
        assert report["metrics"][system] == pytest.approx(recomputed(out, system, "test", (1, 3, 5, 10)), abs=1e-6)
