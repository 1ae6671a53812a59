"""End to end: wall time, peak memory and per-stage time of whole ``python -m adapt.run`` commands.

Each command runs as a child process; peak RSS is the child's own maximum (``getrusage``
RUSAGE_CHILDREN, ru_maxrss) cross-checked by polling the child's process tree with psutil.
Stage times come from the run's report.json ("timings"). By default each run gets a fresh guide
cache (the bundled models are shared, so mpnet is not unpacked again), i.e. a first run.

    python -m bench.end_to_end                      # the sample data and askextension commands
    python -m bench.end_to_end --quick              # the sample data command only
    python -m bench.end_to_end --from-log /tmp/askext.log --from-run /tmp/runs/askext
                                                    # also record a run made elsewhere (single run)
    python -m bench.end_to_end --commands askextension,agxqa --precisions fp32,bf16 --keep /tmp/e2e
                                                    # each command under each --precision: time and quality;
                                                    # the runs' folders kept under /tmp/e2e

With ``--precisions`` the first one listed is the reference: for every other, the table gives each
command's wall-time ratio to it and the change of test NDCG@10 for the fine-tuned model and the
recommended system, with a paired bootstrap interval over the test questions (both runs split the
data with the same seed, so they share their test questions). The speed issue's rule: a precision
"holds" quality where the change is within 0.005 or its interval spans 0.

    python -m bench.end_to_end --commands askextension --baseline 32757bc
                                                    # each command also at an earlier commit, same run

``--baseline REV`` checks REV out in a temporary git worktree and runs each command there too, with the
same interpreter and the same data files (absolute paths, so both trees read the very same bytes),
alternating baseline and current within each repeat so that drift in the machine's speed hits both. The
extra table gives the current tree's wall time as a multiple of the baseline's, and the change of test
NDCG@10 of the fine-tuned model over the test questions both runs share. The baseline runs as it was: no
``--precision`` (an option it may predate), whatever its defaults were.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DATA, ROOT, append_results, fresh_cache, machine_facts, median, table

COMMANDS = {
    "sample": ["sample_data/agriculture_pairs.csv", "--corpus", "sample_data/agriculture_corpus.csv"],
    "askextension": [str(Path(os.path.relpath(DATA, ROOT)) / "askextension-kb-california" / "pairs.csv"),
                     "--base", "minilm", "--guide", "mpnet"],
    "agxqa": [str(Path(os.path.relpath(DATA, ROOT)) / "agxqa-agriculture-sample" / "pairs.csv"),
              "--corpus", str(Path(os.path.relpath(DATA, ROOT)) / "agxqa-agriculture-sample" / "corpus.csv"),
              "--base", "minilm", "--guide", "mpnet"],
}
QUALITY_TOLERANCE = 0.005  # NDCG@10: the speed issue's "quality must not move"


def run_once(extra: list[str], out: Path, cache: Path | None, root: Path = ROOT) -> dict:
    """One ``python -m adapt.run`` child, run from ``root`` (this tree, or a baseline's worktree)."""
    argv = [sys.executable, "-m", "adapt.run", *extra, "--out", str(out)]
    if cache is not None:
        argv += ["--cache-dir", str(cache)]
    import psutil

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    polled = 0
    proc = psutil.Process(child.pid)
    output = []
    import threading

    reader = threading.Thread(target=lambda: output.extend(child.stdout), daemon=True)
    reader.start()
    while child.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            polled = max(polled, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    reader.join(timeout=5)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if child.returncode != 0:
        raise SystemExit(f"adapt.run failed ({child.returncode}):\n{''.join(output)[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    import pandas as pd

    return {"ndcg": {system: values.get("ndcg@10") for system, values in report.get("metrics", {}).items()},
            "recommended": report.get("recommended"),
            "per_query": pd.read_csv(out / "per_query.csv", dtype={"query_id": str}),
            "precision": (report.get("precision") or {}).get("used"),
            "wall": wall, "peak_mb": peak_kb / 1024 if peak_kb > before else None, "polled_mb": polled / 2**20,
            "timings": report.get("timings", {}), "counts": report.get("data", {}), "models": _models(report),
            "steps": report.get("training", {}).get("steps"),
            "command": "python -m adapt.run " + " ".join(shlex.quote(a) for a in [*extra, "--out", "<tmp>"])}


def absolute(extra: list[str]) -> list[str]:
    """``extra`` with every argument that names a file under this tree made absolute (for a worktree)."""
    return [str((ROOT / a).resolve()) if not a.startswith("-") and (ROOT / a).exists() else a for a in extra]


def ndcg_change(reference: dict, new: dict, ref_system: str, new_system: str):
    """Mean test NDCG@10 of both runs over the questions they share, and the paired interval of the change."""
    from adapt.stats import paired_bootstrap

    both = reference["per_query"][["query_id", f"{ref_system}_ndcg@10"]].merge(
        new["per_query"][["query_id", f"{new_system}_ndcg@10"]], on="query_id", suffixes=("_ref", "_new"))
    ref_col, new_col = both.columns[1], both.columns[2]
    interval = paired_bootstrap(both[ref_col].to_numpy(), both[new_col].to_numpy(), "ndcg@10")
    held = abs(interval.change) <= QUALITY_TOLERANCE or interval.side() == "spans"
    return {"test NDCG@10": f"{both[ref_col].mean():.4f} -> {both[new_col].mean():.4f}",
            "change [95%]": f"{interval.change:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]",
            "questions": len(both), "quality held": "yes" if held else "**no**"}


def baseline_table(results: dict[str, list[dict]], names: list[str], baseline: str) -> str:
    """This tree against ``baseline`` for each command: wall-time ratio (median of per-repeat ratios), the
    speed issue's target (at most half), and the fine-tuned model's test NDCG@10 change."""
    rows = []
    for name in names:
        old, new = results[f"{name} at {baseline}"], results[name]
        ratio = median([n["wall"] / o["wall"] for n, o in zip(new, old)])
        rows.append({"command": name, "baseline s": median([o["wall"] for o in old]),
                     "current s": median([n["wall"] for n in new]), "x baseline": ratio,
                     "at most 0.5x": "met" if ratio <= 0.5 else "**not met**",
                     **ndcg_change(old[0], new[0], "finetuned", "finetuned")})
    return table(rows)


def precision_table(results: dict[str, list[dict]], names: list[str], precisions: list[str]) -> str:
    """Each precision against the first: wall-time ratio, and the change of test NDCG@10 of the fine-tuned
    model and of the recommended system with its paired interval, and whether quality held."""
    if len(precisions) < 2:
        return ""
    rows = []
    for name in names:
        reference = results[f"{name} --precision {precisions[0]}"]
        for precision in precisions[1:]:
            runs = results[f"{name} --precision {precision}"]
            ratio = median([r["wall"] / f["wall"] for r, f in zip(runs, reference)])
            for system in ("finetuned", "recommended"):
                ref_system = reference[0]["recommended"] if system == "recommended" else system
                new_system = runs[0]["recommended"] if system == "recommended" else system
                rows.append({"command": name, "precision": f"{precision} vs {precisions[0]}",
                             "x wall time": ratio, "system": system if system == "finetuned" else
                             f"recommended ({ref_system} / {new_system})",
                             **ndcg_change(reference[0], runs[0], ref_system, new_system)})
    return table(rows)


def _models(report: dict) -> str:
    found = report.get("models", {})
    return " / ".join(str(found.get(role, {}).get("resolved", "?")) for role in ("base", "guide")) if found else ""


def from_log(log: Path, run: Path) -> dict:
    """A run made outside this benchmark: /usr/bin/time -v's numbers from its log, timings from report.json."""
    text = log.read_text(errors="replace")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    command = re.search(r'Command being timed: "(.*)"', text)
    seconds = None
    if wall:
        parts = [float(p) for p in wall.group(1).split(":")]
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    report = json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else {}
    return {"wall": seconds, "peak_mb": int(rss.group(1)) / 1024 if rss else None, "polled_mb": None,
            "timings": report.get("timings", {}), "counts": report.get("data", {}), "models": _models(report),
            "steps": report.get("training", {}).get("steps"),
            "command": command.group(1) if command else f"(see {log})"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", default="sample,askextension", help=f"any of {', '.join(COMMANDS)}")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warm-cache", action="store_true",
                        help="use the default guide cache (~/.cache/adapt) instead of a fresh one per run")
    parser.add_argument("--from-log", type=Path, help="also record a run timed elsewhere with /usr/bin/time -v")
    parser.add_argument("--from-run", type=Path, help="that run's --out folder (for report.json timings)")
    parser.add_argument("--precisions", default="",
                        help="run each command once per --precision listed (fp32, bf16, auto); the first is the "
                             "reference for the time ratio and the quality change")
    parser.add_argument("--keep", type=Path,
                        help="write each run's --out folder under this folder (kept) instead of a temporary one")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run each command at this git revision (a temporary worktree), in the same run")
    parser.add_argument("--quick", action="store_true", help="the sample data command, once")
    args = parser.parse_args(argv)
    if args.quick:
        args.commands, args.repeats = "sample", 1
    started = time.perf_counter()
    facts = machine_facts()

    results = {}
    names = [c for c in args.commands.split(",") if c]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        worktree = None
        if args.baseline:
            worktree = tmp / "baseline"
            subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(worktree), args.baseline],
                           cwd=ROOT, check=True)
        precisions = [p for p in args.precisions.split(",") if p] or [None]
        # (label, arguments, tree, folder tag): the baseline's run of a command goes right before this tree's
        plan = []
        for name in names:
            if worktree:
                plan.append((f"{name} at {args.baseline}", absolute(COMMANDS[name]), worktree, f"{name}-baseline"))
            for precision in precisions:
                plan.append((name + (f" --precision {precision}" if precision else ""),
                             (absolute(COMMANDS[name]) if worktree else COMMANDS[name])
                             + (["--precision", precision] if precision else []), ROOT, f"{name}-{precision}"))
        try:
            for repeat in range(args.repeats):
                for label, extra, tree, tag in plan:
                    cache = None if args.warm_cache else fresh_cache(tmp / f"cache-{tag}-{repeat}")
                    found = run_once(extra, (args.keep or tmp) / f"out-{tag}-{repeat}", cache, tree)
                    print(f"{label} run {repeat + 1}: {found['wall']:.1f} s, peak RSS {found['peak_mb']} MB, test "
                          f"NDCG@10 fine-tuned {found['ndcg'].get('finetuned')}", flush=True)
                    results.setdefault(label, []).append(found)
        finally:
            if worktree:
                subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    if args.from_log:
        results["recorded: " + str(args.from_log)] = [from_log(args.from_log, args.from_run or Path("."))]

    rows, stage_rows = [], []
    for name, runs in results.items():
        rows.append({"run": name, "command": f"`{runs[0]['command']}`", "runs": len(runs),
                     "wall s (median)": median([r["wall"] for r in runs]) if runs[0]["wall"] else None,
                     "peak RSS MB": max((r["peak_mb"] or 0) for r in runs) or None,
                     "polled tree RSS MB": max((r["polled_mb"] or 0) for r in runs) or None,
                     "precision": runs[0].get("precision"),
                     "test NDCG@10 fine-tuned": (runs[0].get("ndcg") or {}).get("finetuned"),
                     "base / guide": runs[0].get("models"), "train steps": runs[0].get("steps"),
                     "train pairs": runs[0]["counts"].get("train_pairs"),
                     "corpus": runs[0]["counts"].get("corpus_size")})
        for stage in runs[0]["timings"]:
            stage_rows.append({"run": name, "stage": stage,
                               "s (median)": median([r["timings"].get(stage, 0.0) for r in runs])})
    summary, stages_table = table(rows), table(stage_rows)
    print("\n" + summary + "\n\n" + stages_table)
    quality = precision_table(results, names, [p for p in args.precisions.split(",") if p])
    if quality:
        print("\n" + quality)
    against = baseline_table(results, names, args.baseline) if args.baseline and not args.precisions else ""
    if against:
        print("\n" + against)
    body = (f"Guide cache: {'the default (may be warm)' if args.warm_cache else 'fresh per run (a first run)'}. "
            f"{args.repeats} run(s) per command measured here; rows marked \"recorded\" are a single run "
            f"timed by someone else with /usr/bin/time -v, reported as found.\n\n{summary}\n\n"
            f"Per stage (report.json \"timings\"):\n\n{stages_table}"
            + (f"\n\nPrecision against {args.precisions.split(',')[0]} (first repeat's runs; test NDCG@10, "
               f"paired bootstrap over the test questions):\n\n{quality}" if quality else "")
            + (f"\n\nAgainst {args.baseline} (its own worktree, same data, same interpreter; test NDCG@10 of the "
               f"fine-tuned model, paired bootstrap over the shared test questions):\n\n{against}" if against else ""))
    append_results("bench.end_to_end", "End to end: adapt.run" + (" (--quick)" if args.quick else ""),
                   body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
