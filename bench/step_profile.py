"""Where a run's training time goes: per stage, per step, and inside a step.

Runs ``python -m adapt.run`` in this process (the same code path, the same defaults) with the trainer
instrumented, then writes one section to RESULTS.md:

- per stage: the run's own report.json "timings";
- per step: wall time of each optimiser step (median, spread, total), the student's forward passes
  inside it, the optimiser's update, and the rest of the step (the loss and the backward pass);
- between steps: the dev evaluations, the checkpoint saves and what is left (fetching and tokenising the
  next batch, logging, callbacks);
- padding: the share of padding in the batches the trainer hands the student, per column (anchor, then
  the candidates, which sentence-transformers merges into one pass), and in what the transformer
  actually computes once adapt.padding has sliced them.

    python -m bench.step_profile                    # the README's sample command
    python -m bench.step_profile --dataset askextension-kb-california --base minilm --guide mpnet
    python -m bench.step_profile --slice-rows 8     # another slice size for adapt.padding

Why an instrumented trainer rather than ``torch.profiler``: the question is which part of adapt's loop
(forward, backward, optimiser, evaluation, saving, data) to make cheaper, and operator-level traces of
a whole run are large and slow to take on two cores. The instrumentation is hooks only (forward pre/post
hooks on the student, optimiser step hooks, a trainer callback), so the measured run is adapt's own:
``adapt.train.SentenceTransformerTrainer`` is swapped for a subclass that adds them, nothing else.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import DATA, ROOT, append_results, fresh_cache, machine_facts, median, spread, table


class StepClock:
    """Collects the timings; the hooks and the callback below write into one of these."""

    def __init__(self):
        self.steps: list[dict] = []
        self.evaluations: list[float] = []
        self.saves: list[float] = []
        self.between: list[float] = []
        self.tokens: dict[str, list[int]] = {}  # column -> [real, padded] as the trainer hands them over
        self.computed = [0, 0]  # [real, computed] as the transformer ran them (after adapt.padding's slicing)
        self._step = None
        self._mark = None  # end of the last step, evaluation or save
        self._forward_start = None
        self._optimizer_start = None
        self._forward_index = 0

    # trainer callback side
    def step_begin(self):
        now = time.perf_counter()
        if self._mark is not None:
            self.between.append(now - self._mark)
        self._step = {"start": now, "forward": 0.0, "optimizer": 0.0}
        self._forward_index = 0

    def step_end(self):
        now = time.perf_counter()
        if self._step is not None:
            self._step["wall"] = now - self._step.pop("start")
            self.steps.append(self._step)
        self._step, self._mark = None, now

    def evaluated(self):
        now = time.perf_counter()
        self.evaluations.append(now - self._mark)
        self._mark = now

    def saved(self):
        now = time.perf_counter()
        self.saves.append(now - self._mark)
        self._mark = now

    # hook side (only inside a training step: the dev evaluator's encodings are not a step's)
    def forward_pre(self, module, args):
        if self._step is None:
            return
        self._forward_start = time.perf_counter()
        features = args[0] if args else None
        if isinstance(features, dict) and "attention_mask" in features:
            mask = features["attention_mask"]
            column = "anchor" if self._forward_index == 0 else "candidates"  # positives and negatives, merged
            real, computed = self.tokens.setdefault(column, [0, 0])
            self.tokens[column] = [real + int(mask.sum()), computed + int(mask.numel())]
        self._forward_index += 1

    def inner_pre(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if self._step is not None and mask is not None:
            self.computed = [self.computed[0] + int(mask.sum()), self.computed[1] + int(mask.numel())]

    def forward_post(self, module, args, output):
        if self._step is not None and self._forward_start is not None:
            self._step["forward"] += time.perf_counter() - self._forward_start
            self._forward_start = None

    def optimizer_pre(self, optimizer, args, kwargs):
        self._optimizer_start = time.perf_counter()

    def optimizer_post(self, optimizer, args, kwargs):
        if self._step is not None and self._optimizer_start is not None:
            self._step["optimizer"] += time.perf_counter() - self._optimizer_start


def instrument(clock: StepClock):
    """Swap adapt.train's trainer class for one that reports to ``clock``; returns a function that undoes it."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
    from transformers import TrainerCallback

    import adapt.train as train_module

    class Clocked(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            clock.step_begin()

        def on_step_end(self, args, state, control, **kwargs):
            clock.step_end()

        def on_evaluate(self, args, state, control, **kwargs):
            clock.evaluated()

        def on_save(self, args, state, control, **kwargs):
            clock.saved()

    stock = train_module.SentenceTransformerTrainer

    class ProfiledTrainer(stock):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(Clocked())
            self.model.register_forward_pre_hook(clock.forward_pre)
            self.model.register_forward_hook(clock.forward_post)
            inner = getattr(self.model[0], "model", None) or getattr(self.model[0], "auto_model", None)
            if inner is not None:  # the transformer itself: what it computes, slices and all
                inner.register_forward_pre_hook(clock.inner_pre, with_kwargs=True)

    pre = register_optimizer_step_pre_hook(clock.optimizer_pre)
    post = register_optimizer_step_post_hook(clock.optimizer_post)
    train_module.SentenceTransformerTrainer = ProfiledTrainer

    def undo():
        train_module.SentenceTransformerTrainer = stock
        pre.remove()
        post.remove()
    return undo


def command(args) -> list[str]:
    if args.dataset == "sample":
        return ["sample_data/agriculture_pairs.csv", "--corpus", "sample_data/agriculture_corpus.csv"]
    folder = DATA / args.dataset
    extra = [str(folder / "pairs.csv")]
    if (folder / "corpus.csv").exists():
        extra += ["--corpus", str(folder / "corpus.csv")]
    return extra


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sample", help="sample (the README's command) or a set in the data folder")
    parser.add_argument("--base", help="adapt.run's --base (default: adapt.run's)")
    parser.add_argument("--guide", help="adapt.run's --guide (default: adapt.run's)")
    parser.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"))
    parser.add_argument("--slice-rows", type=int, help="rows a training slice (adapt.padding.SLICE_ROWS; "
                        "default: adapt's own)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    facts = machine_facts()

    import os

    os.chdir(ROOT)  # the sample command's paths are the README's, relative to the project
    from adapt import padding, run

    padding.SLICE_ROWS = args.slice_rows or padding.SLICE_ROWS
    clock = StepClock()
    undo = instrument(clock)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        extra = command(args) + [f"--precision={args.precision}", "--cache-dir", str(Path(tmp) / "cache")]
        extra += [f"--base={args.base}"] if args.base else []
        extra += [f"--guide={args.guide}"] if args.guide else []
        try:
            fresh_cache(Path(tmp) / "cache")
            wall = time.perf_counter()
            code = run.main([*extra, "--out", str(out), "-q"])
            wall = time.perf_counter() - wall
        finally:
            undo()
        if code != 0:
            raise SystemExit(f"adapt.run exited with {code}")
        report = json.loads((out / "report.json").read_text())

    steps = clock.steps
    walls = [s["wall"] for s in steps]
    forwards = [s["forward"] for s in steps]
    optimizers = [s["optimizer"] for s in steps]
    rests = [s["wall"] - s["forward"] - s["optimizer"] for s in steps]
    train_s = report.get("timings", {}).get("train")
    other_between = [b for b in clock.between]
    rows = [
        {"part": "training steps", "count": len(steps), "median s": median(walls), "range": spread(walls),
         "total s": sum(walls)},
        {"part": "  student forward passes (in a step)", "count": len(steps), "median s": median(forwards),
         "range": spread(forwards), "total s": sum(forwards)},
        {"part": "  loss and backward (rest of a step)", "count": len(steps), "median s": median(rests),
         "range": spread(rests), "total s": sum(rests)},
        {"part": "  optimiser update", "count": len(steps), "median s": median(optimizers),
         "range": spread(optimizers), "total s": sum(optimizers)},
        {"part": "dev evaluations", "count": len(clock.evaluations), "median s": median(clock.evaluations or [0]),
         "range": spread(clock.evaluations) if clock.evaluations else "", "total s": sum(clock.evaluations)},
        {"part": "checkpoint saves", "count": len(clock.saves), "median s": median(clock.saves or [0]),
         "range": spread(clock.saves) if clock.saves else "", "total s": sum(clock.saves)},
        {"part": "between steps (next batch, logging)", "count": len(other_between),
         "median s": median(other_between or [0]), "range": spread(other_between) if other_between else "",
         "total s": sum(other_between)},
    ]
    accounted = sum(walls) + sum(clock.evaluations) + sum(clock.saves) + sum(other_between)
    padded_rows = [{"tokens": f"{column} batches as handed over", "real": real, "with padding": padded,
                    "padding share": 1 - real / padded if padded else 0.0}
                   for column, (real, padded) in clock.tokens.items()]
    real, computed = clock.computed
    if computed:
        padded_rows.append({"tokens": "computed by the transformer (after slicing, adapt.padding)", "real": real,
                            "with padding": computed, "padding share": 1 - real / computed})
    stages = [{"stage": stage, "s": seconds} for stage, seconds in report.get("timings", {}).items()]
    tested = {system: values.get("ndcg@10") for system, values in report.get("metrics", {}).items()}
    training = report.get("training", {})
    shown = "python -m adapt.run " + " ".join(command(args)) + f" --precision={args.precision}" + \
        (f" --base={args.base}" if args.base else "") + (f" --guide={args.guide}" if args.guide else "")
    body = (f"Profiled command: `{shown}` (in-process, fresh guide cache), {wall:.0f} s wall; "
            f"precision {(report.get('precision') or {}).get('used')}; {training.get('steps')} steps, "
            f"best dev step {training.get('best_step')}; training slices of {training.get('slice_rows')} rows; "
            f"test NDCG@10 " + ", ".join(f"{k} {v:.4f}" for k, v in tested.items() if v is not None) +
            f". The train stage took {train_s} s, of which the parts "
            f"below account for {accounted:.1f} s (the rest: the guide's pass and setting up the trainer).\n\n"
            f"{table(rows)}\n\nPadding in the student's training batches:\n\n{table(padded_rows)}\n\n"
            f"Per stage (report.json \"timings\"):\n\n{table(stages)}")
    print(body)
    append_results("bench.step_profile", "Step profile: adapt.run", body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
