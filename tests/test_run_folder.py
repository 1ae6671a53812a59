"""--out only ever names a run folder adapt made, or a new or empty one: a folder holding someone's own
files is refused before any work starts, and not one of its bytes changes."""

import json
import os
import subprocess
import sys

import pytest

from adapt.config import RunConfig
from adapt.errors import ConfigError, RunError
from adapt.files import MARKER, check_run_dir, claim_run_dir
from tests.conftest import ROOT, SAMPLE_PAIRS

RUN = [sys.executable, "-m", "adapt.run", str(SAMPLE_PAIRS), "--base", "minilm", "--epochs", "1"]


def adapt_run(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("ADAPT_KILL_AT", None)
    return subprocess.run([*RUN, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def snapshot(folder):
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.fixture
def project(tmp_path):
    """A person's own project folder, with names a run would write."""
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "pairs.csv").write_text("question,passage\nq,p\n")
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(bytes(range(256)))
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "report.json").write_text('{"mine": true}\n')
    return folder


def test_a_folder_of_someone_elses_files_is_refused_untouched(project):
    before = snapshot(project)
    done = adapt_run("--out", str(project))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: --out '{project}' holds files adapt did not make (data/, model/, notes.txt, report.json); "
        "a run replaces model/, index/ and data/ in its folder, so adapt writes only into a new or empty "
        f"folder or one made by adapt; pass a new folder, e.g. --out {project / 'adapt-run'}")
    assert snapshot(project) == before  # not a byte changed, nothing added (not even a lock file)


@pytest.mark.parametrize("out, message", [
    ("", "--out is empty; pass a folder for the run, e.g. --out runs/my-run"),
    ("notes.txt", "--out 'notes.txt' is a file, not a folder; pass a folder for the run, e.g. --out runs/my-run"),
    ("notes.txt/run", "--out 'notes.txt/run' is inside 'notes.txt', which is a file, not a folder; pass a folder "
                      "for the run, e.g. --out runs/my-run"),
    ("/dev/null", "--out '/dev/null' is a device or special file, not a folder; pass a folder for the run, "
                  "e.g. --out runs/my-run"),
])
def test_an_out_that_is_not_a_folder_is_refused(project, out, message):
    before = snapshot(project)
    done = adapt_run("--out", out, cwd=project)  # run from inside the project: "" must not mean "here"
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"Error: {message}"
    assert snapshot(project) == before


def test_the_config_refuses_the_same_outs(project, monkeypatch):
    monkeypatch.chdir(project)
    for out in ("", "  ", "notes.txt", "notes.txt/run/deeper"):
        with pytest.raises(ConfigError, match="^--out "):
            RunConfig(pairs=SAMPLE_PAIRS, out=out)
    assert RunConfig(pairs=SAMPLE_PAIRS, out="runs/new").out.name == "new"


def test_new_empty_marked_and_older_run_folders_are_accepted(tmp_path):
    new, empty, marked, older, interrupted = (tmp_path / n for n in ("new", "empty", "marked", "older", "cut"))
    empty.mkdir()
    marked.mkdir()
    (marked / MARKER).write_text("")
    (marked / "data").mkdir()
    older.mkdir()  # made before the marker existed: its report.json has adapt's keys
    (older / "report.json").write_text(json.dumps({"adapt_version": "0.1.0", "metrics": {}, "config": {}}))
    (older / "model").mkdir()
    (interrupted / ".work").mkdir(parents=True)  # a first run killed before it published anything
    (interrupted / ".lock").write_text("")
    publishing = tmp_path / "publishing"  # an older first run killed while publishing: no report.json yet
    (publishing / "model").mkdir(parents=True)
    (publishing / ".publishing").write_text("model\nreport.json\n")
    for folder in (new, empty, marked, older, interrupted, publishing):
        check_run_dir(folder)
        claim_run_dir(folder)
        assert (folder / MARKER).is_file()
    assert (older / "model").is_dir() and (marked / "data").is_dir()


def test_a_report_json_that_is_not_adapts_does_not_make_a_run_folder(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "report.json").write_text('{"metrics": {}}')
    with pytest.raises(RunError, match=r"holds files adapt did not make \(report.json\)"):
        claim_run_dir(folder)
    assert not (folder / MARKER).exists()
    many = tmp_path / "many"
    many.mkdir()
    for name in "abcdef":
        (many / name).write_text("")
    with pytest.raises(RunError, match=r"\(a, b, c, d and 2 more\)"):
        check_run_dir(many)
