"""Runs that survive faults: killed at several points, a run never damages the last good one,
never leaves outputs that look complete but are not, and resumes when re-run."""

import json
import os
import subprocess
import sys

import pytest

from adapt.errors import RunError
from adapt.files import RunLock
from adapt.runs import open_run
from tests.conftest import ROOT


def run_cli(tiny, pairs, out, *extra, kill_at=None, cache=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("ADAPT_KILL_AT", None)
    if kill_at:
        env["ADAPT_KILL_AT"] = kill_at
    if cache:
        env["ADAPT_CACHE"] = str(cache)
    args = [sys.executable, "-m", "adapt.run", str(pairs), "--out", str(out), "--base", str(tiny["student"]),
            "--guide", str(tiny["guide"]), "--batch-size", "16", "--bootstrap", "100", "--eval-steps", "3",
            "--patience", "0", *extra]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def good_run(tiny, sample_pairs, tmp_path, cache_dir):
    out = tmp_path / "run"
    done = run_cli(tiny, sample_pairs, out, "--epochs", "1", cache=cache_dir)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("kill_at", ["encode base@0", "train@5", "report@0"])
def test_a_killed_run_leaves_the_last_good_run_untouched(tiny, sample_pairs, good_run, cache_dir, kill_at):
    before = {p: p.read_bytes() for p in (good_run / "report.json", good_run / "per_query.csv",
                                          good_run / "model" / "model.safetensors")}
    killed = run_cli(tiny, sample_pairs, good_run, "--epochs", "2", kill_at=kill_at, cache=cache_dir)
    assert killed.returncode == -9, killed.stderr
    for path, content in before.items():
        assert path.read_bytes() == content, f"{path.name} changed"
    assert open_run(good_run).report["config"]["epochs"] == 1

    resumed = run_cli(tiny, sample_pairs, good_run, "--epochs", "2", cache=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((good_run / "report.json").read_text())
    assert report["config"]["epochs"] == 2
    if kill_at == "train@5":
        assert report["training"]["resumed_from"].endswith("checkpoint-3")
    if kill_at == "report@0":
        assert report["training"]["reused"] is True  # finished training is not repeated


def test_killed_while_publishing_never_looks_complete_and_recovers(tiny, sample_pairs, good_run, cache_dir):
    killed = run_cli(tiny, sample_pairs, good_run, "--epochs", "2", kill_at="publish:index", cache=cache_dir)
    assert killed.returncode == -9
    with pytest.raises(RunError, match="holds no finished run"):
        open_run(good_run)  # half swapped: no report.json, so nobody mistakes it for a complete run

    again = run_cli(tiny, sample_pairs, good_run, "--epochs", "2", cache=cache_dir)
    assert again.returncode == 0, again.stderr
    run = open_run(good_run)
    assert run.report["config"]["epochs"] == 2 and run.report["training"]["reused"] is True
    assert not (good_run / ".staging").exists() and not (good_run / ".publishing").exists()


def test_a_second_writer_is_refused(tiny, sample_pairs, tmp_path):
    out = tmp_path / "busy"
    with RunLock(out):
        second = run_cli(tiny, sample_pairs, out, "--epochs", "1")
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"Error: another run is writing to '{out}' (process {os.getpid()}); wait for it to finish, "
        "or pass a different --out")
    assert not (out / "report.json").exists()


def test_a_stale_lock_from_a_killed_run_is_taken_over(tmp_path):
    folder = tmp_path / "stale"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (folder / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with RunLock(folder):
        assert json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
    assert not (folder / ".lock").exists()
