"""Chunked, resumable corpus encoding with a tiny model: chunks land on disk and a re-run reuses them."""

import numpy as np
from sentence_transformers import SentenceTransformer

from adapt.encode import chunk_rows, encode_corpus
from adapt.index import encode_passages


def test_chunk_sizes_follow_the_corpus():
    assert [chunk_rows(n) for n in (10, 25_600, 100_000, 10_000_000)] == [256, 256, 1000, 16_384]


def test_chunks_are_saved_and_reused(tiny, tmp_path):
    model = SentenceTransformer(str(tiny["student"]), device="cpu")
    texts = [f"passage number {i} about soil and water" for i in range(600)]
    told = []
    whole = encode_corpus(model, texts, encode_passages, tmp_path / "chunks", lambda d, t: told.append((d, t)))
    assert told == [(256, 600), (512, 600), (600, 600)]
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == [
        "chunk-000000.npy", "chunk-000001.npy", "chunk-000002.npy"]
    np.testing.assert_allclose(whole, encode_passages(model, texts), atol=1e-6)

    marked = np.full((256, whole.shape[1]), 0.5, dtype=np.float32)
    np.save(tmp_path / "chunks" / "chunk-000000.npy", marked)  # a finished chunk is read, not re-encoded
    (tmp_path / "chunks" / "chunk-000002.npy").unlink()  # a missing one is encoded again
    again = encode_corpus(model, texts, encode_passages, tmp_path / "chunks")
    np.testing.assert_array_equal(again[:256], marked)
    np.testing.assert_allclose(again[256:], whole[256:], atol=1e-6)
    assert (tmp_path / "chunks" / "chunk-000002.npy").exists()


def test_an_empty_corpus_gives_an_empty_matrix(tiny):
    model = SentenceTransformer(str(tiny["student"]), device="cpu")
    assert encode_corpus(model, [], encode_passages).shape == (0, 32)
