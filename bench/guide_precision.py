"""The frozen guide in fp32, bf16 and int8: encode speed, closeness to fp32, and the GIST masks it decides.

The guide's embeddings only decide which in-batch candidates GIST masks as likely false negatives (and
which mined negatives the filter drops), so a cheaper guide pays wherever those decisions stay the same.
This measures, on one seeded sample of real pairs:

- encode time of the questions and passages (median of ``--repeats`` after one untimed pass), and its
  ratio to fp32;
- cosine of each embedding to its fp32 embedding (minimum and mean);
- the GIST question-to-passage mask over batches of ``--batch-size`` rows (a candidate passage is masked
  when the guide scores it above the question's own passage, margin 0): how many entries fp32 masks, and
  how many entries of the variant differ from fp32's.

Variants: fp32; bf16 autocast (where the CPU has AVX-512 BF16 or AMX, adapt.precision); int8 dynamic
quantisation of every ``nn.Linear`` (``torch.ao.quantization.quantize_dynamic``, weights int8 per
channel, activations quantised per batch); and int8 of the attention projections only (the feed-forward
layers of BERT-style encoders carry outlier activations that per-tensor int8 clips).

    python -m bench.guide_precision                 # mpnet, 256 askextension pairs
    python -m bench.guide_precision --guide mpnet --pairs 512 --dataset scifact
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from bench.common import DATA, add_threads_option, append_results, machine_facts, median, set_threads, table


def int8(model, only_attention: bool):
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
             and (not only_attention or ".attention." in name)}
    return quantize_dynamic(copy.deepcopy(model), {name: per_channel_dynamic_qconfig for name in names},
                            dtype=torch.qint8)


def masks(questions: np.ndarray, passages: np.ndarray, batch: int) -> np.ndarray:
    """GIST's question-to-passage false-negative mask per batch of rows, flattened (diagonal excluded)."""
    found = []
    for start in range(0, len(questions) - batch + 1, batch):
        q, p = questions[start:start + batch], passages[start:start + batch]
        scores = q @ p.T
        masked = scores > np.diag(scores)[:, None]
        found.append(masked[~np.eye(batch, dtype=bool)])
    return np.concatenate(found)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="askextension-kb-california")
    parser.add_argument("--guide", default="mpnet")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32, help="training batch for the masks")
    parser.add_argument("--max-seq-length", type=int, default=256, help="the student's (minilm: 256)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    add_threads_option(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    started = time.perf_counter()
    facts = machine_facts()

    import torch

    from adapt import models, precision
    from adapt.data import load_pairs

    frame = load_pairs(DATA / args.dataset / "pairs.csv").frame
    rows = frame.sample(n=min(args.pairs, len(frame)), random_state=args.seed).reset_index(drop=True)
    texts = list(rows["question"]) + list(rows["passage"])
    guide = models.load(models.resolve(args.guide, "guide", fallback=False), max_seq_length=args.max_seq_length)
    guide.eval()

    variants = {"fp32": (guide, None)}
    support = precision.bf16_support("cpu")
    if support:
        variants["bf16 autocast"] = (guide, torch.bfloat16)
    variants["int8 dynamic, every Linear"] = (int8(guide, only_attention=False), None)
    variants["int8 dynamic, attention only"] = (int8(guide, only_attention=True), None)

    def encode(model, dtype):
        with torch.inference_mode(), (torch.autocast("cpu", dtype=dtype) if dtype else torch.autocast(
                "cpu", enabled=False)):
            return model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)

    found = {}
    for name, (model, dtype) in variants.items():
        encode(model, dtype)  # untimed: first-call costs
        seconds, vectors = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            vectors = encode(model, dtype)
            seconds.append(time.perf_counter() - start)
        found[name] = (median(seconds), vectors)
        print(f"{name}: {median(seconds):.1f} s", flush=True)

    reference_s, reference = found["fp32"]
    n = len(rows)
    reference_mask = masks(reference[:n], reference[n:], args.batch_size)
    table_rows = []
    for name, (seconds, vectors) in found.items():
        cosine = (vectors * reference).sum(axis=1)
        mask = masks(vectors[:n], vectors[n:], args.batch_size)
        table_rows.append({"guide": name, "encode s (median)": seconds, "x fp32 time": seconds / reference_s,
                           "min cosine to fp32": float(cosine.min()), "mean cosine": float(cosine.mean()),
                           "masked (of entries)": f"{int(mask.sum())} / {mask.size}",
                           "mask entries differing from fp32": int((mask != reference_mask).sum())})
    body = (f"Guide `{args.guide}` (max {args.max_seq_length} tokens), {n} seeded pairs of `{args.dataset}` "
            f"({2 * n} texts), batch {args.batch_size} for the masks; "
            f"bf16: {support or 'not supported on this CPU, skipped'}.\n\n{table(table_rows)}")
    print(body)
    append_results("bench.guide_precision", "Guide precision: fp32, bf16, int8", body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
