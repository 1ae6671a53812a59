"""Runs that survive faults: killed at several points, a run never damages the last good one,
never leaves outputs that look complete but are not, and resumes when re-run."""

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from adapt.errors import RunError
from adapt.files import RunLock
from adapt.runs import open_run
from adapt.train import _last_checkpoint, checkpoint_problem
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
    (folder / ".lock").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    with RunLock(folder):
        assert json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
    assert not (folder / ".lock").exists()


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"pid": os.getpid(), "host": socket.gethostname()})])
def test_a_lock_file_nobody_holds_never_blocks(tmp_path, content):
    (tmp_path / ".lock").write_text(content)  # empty, garbage, or naming a live process that does not hold it
    with RunLock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    assert not (tmp_path / ".lock").exists()


def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(target)
    with pytest.raises(RunError) as refused:
        RunLock(tmp_path / "run").__enter__()
    assert str(refused.value) == (f"'{tmp_path / 'run' / '.lock'}' is a symbolic link, not adapt's lock file; "
                                  "remove it and run again")
    assert target.read_text() == "keep me\n"


def test_a_lock_held_by_a_leftover_process_says_how_to_clear_it(tmp_path):
    lock = tmp_path / ".lock"
    gone = dead_pid()
    lock.write_text(json.dumps({"pid": gone, "host": socket.gethostname()}))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(60)"), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError) as refused:
            RunLock(tmp_path).__enter__()
        assert str(refused.value) == (
            f"another run is writing to '{tmp_path}': run {gone} has ended but a process still holds '{lock}'; "
            f"find it with: fuser -v '{lock}', stop it, then run again (or pass a different --out)")
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # the holder is gone: the lock is free again
        pass


def _contend(folder, start, inside, most, taken):
    start.wait()
    for _ in range(30):
        try:
            with RunLock(folder):
                with inside.get_lock():
                    inside.value += 1
                    most.value = max(most.value, inside.value)
                    taken.value += 1
                time.sleep(0.002)
                with inside.get_lock():
                    inside.value -= 1
        except RunError:
            pass
        time.sleep(0.001)


def test_processes_racing_for_a_stale_lock_never_hold_it_together(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for trial in range(10):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        (folder / ".lock").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
        start, inside, most, taken = ctx.Barrier(6), ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0)
        workers = [ctx.Process(target=_contend, args=(folder, start, inside, most, taken)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0] * 6
        assert most.value == 1 and taken.value >= 5  # taken again and again, never by two at once
        assert not (folder / ".lock").exists()


def test_a_checkpoint_cut_short_while_saving_is_skipped_on_resume(tiny, sample_pairs, tmp_path, cache_dir):
    out = tmp_path / "run"
    killed = run_cli(tiny, sample_pairs, out, "--epochs", "2", kill_at="train@5", cache=cache_dir)
    assert killed.returncode == -9
    [saved] = out.glob(".work/train-*/checkpoints/checkpoint-3")
    partial = saved.with_name("checkpoint-6")  # what a kill in the middle of saving step 6 leaves
    shutil.copytree(saved, partial)
    weights = partial / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    resumed = run_cli(tiny, sample_pairs, out, "--epochs", "2", cache=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert ("Removed incomplete checkpoints left by a run stopped while saving: checkpoint-6 (model.safetensors "
            "is cut short); resuming from checkpoint-3") in resumed.stderr.splitlines()
    assert json.loads((out / "report.json").read_text())["training"]["resumed_from"] == str(saved)


def fake_checkpoint(folder, step):
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"weight": torch.ones(64, 8)}, str(folder / "model.safetensors"))
    torch.save({"state": torch.zeros(64)}, folder / "optimizer.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def cut(path, keep=0.5):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


@pytest.mark.parametrize("damage, problem", [
    (lambda c: (c / "trainer_state.json").unlink(), "trainer_state.json is missing"),
    (lambda c: cut(c / "trainer_state.json"), "trainer_state.json is cut short"),
    (lambda c: (c / "trainer_state.json").write_text("{}"), "trainer_state.json has no global_step"),
    (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
    (lambda c: cut(c / "model.safetensors", 0.9), "model.safetensors is cut short"),
    (lambda c: cut(c / "optimizer.pt", 0.9), "optimizer.pt is cut short"),
])
def test_checkpoint_problems_are_named(tmp_path, damage, problem):
    checkpoint = fake_checkpoint(tmp_path / "checkpoint-3", 3)
    assert checkpoint_problem(checkpoint) is None
    damage(checkpoint)
    assert checkpoint_problem(checkpoint) == problem


def test_resume_falls_back_to_the_newest_complete_checkpoint_or_starts_again(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    fake_checkpoint(folder / "checkpoint-3", 3)
    fake_checkpoint(folder / "checkpoint-12", 12)
    (fake_checkpoint(folder / "checkpoint-9", 9) / "trainer_state.json").unlink()
    (folder / "checkpoint-12" / "optimizer.pt").write_bytes(b"")
    with caplog.at_level("WARNING", logger="adapt.train"):
        assert _last_checkpoint(folder) == str(folder / "checkpoint-3")
    assert caplog.messages == ["Removed incomplete checkpoints left by a run stopped while saving: checkpoint-12 "
                               "(optimizer.pt is cut short), checkpoint-9 (trainer_state.json is missing); "
                               "resuming from checkpoint-3"]
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-3"]

    caplog.clear()
    (folder / "checkpoint-3" / "trainer_state.json").unlink()
    with caplog.at_level("WARNING", logger="adapt.train"):
        assert _last_checkpoint(folder) is None
    assert caplog.messages == ["Removed incomplete checkpoints left by a run stopped while saving: checkpoint-3 "
                               "(trainer_state.json is missing); no complete checkpoint is left, so training "
                               "starts again"]
    assert _last_checkpoint(tmp_path / "none") is None
