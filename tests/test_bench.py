"""bench.compute_floor's FLOP count, against torch's own count of a real forward pass."""

from __future__ import annotations

import pytest


def test_forward_flops_match_torch_flop_counter(tiny):
    import torch
    from sentence_transformers import SentenceTransformer
    from torch.utils.flop_counter import FlopCounterMode

    from bench.compute_floor import forward_flops, token_lengths

    model = SentenceTransformer(str(tiny["student"]), device="cpu")
    model.eval()
    # torch's counter has no formula for the fused CPU attention kernel; the eager path's products it counts
    model[0].auto_model.set_attn_implementation("eager")
    texts = ["How do I stop aphids on roses?",
             "Water tomatoes deeply once a week rather than lightly every day, and mulch to keep the soil moist.",
             "Frost"]
    counted = 0
    with torch.no_grad():
        for text in texts:  # one text a pass: no padding, so the counter sees the real tokens only
            with FlopCounterMode(display=False) as counter:
                model(model.preprocess([text]))
            counted += counter.get_total_flops()
    lengths = token_lengths(model, texts)
    assert list(lengths) == [len(model.tokenize([t])["input_ids"][0]) for t in texts]
    # Linear layers and attention's two products; the pooler's one product a text, left out, is under 1%
    assert forward_flops(model, lengths) == pytest.approx(counted, rel=0.01)
