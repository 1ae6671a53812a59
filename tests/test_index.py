"""FAISS search against brute-force numpy on seeded random vectors, and save / load."""

import json

import faiss
import numpy as np
import pytest

from adapt import index as index_module
from adapt.errors import ConfigError, RunError
from adapt.index import (Hit, PassageIndex, Retriever, build_faiss, choose_kind, exact_search, index_bytes,
                         normalise_rows, recall_against_flat)


def corpus(n=500, dim=24, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [f"d{i}" for i in range(n)]
    return vectors, ids, [f"passage {i}" for i in range(n)]


def brute_force(vectors, queries, k):
    scores = normalise_rows(queries) @ normalise_rows(vectors).T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, top, axis=1), top


def test_flat_search_equals_numpy():
    vectors, ids, texts = corpus()
    index = PassageIndex.build(vectors, ids, texts, kind="flat")
    queries = np.random.default_rng(1).standard_normal((40, 24)).astype(np.float32)
    D, I = index.search(queries, 10)
    D_ref, I_ref = brute_force(vectors, queries, 10)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, D_ref, atol=1e-5)


def test_scores_are_cosine_whatever_the_vector_norms():
    vectors, ids, texts = corpus(n=50)
    index = PassageIndex.build(vectors * 7.5, ids, texts, kind="flat")
    D, _ = index.search(vectors[:3] * 0.1, 1)
    np.testing.assert_allclose(D[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivf-sq8"])
def test_approximate_indexes_record_recall_against_flat(kind):
    vectors, ids, texts = corpus(n=3000, dim=16)
    index = PassageIndex.build(vectors, ids, texts, kind=kind)
    assert index.info["kind"] == kind
    assert 0.5 <= index.info["recall@10_vs_flat"] <= 1.0
    _, I = index.search(vectors[:5], 1)
    assert list(I[:, 0]) == [0, 1, 2, 3, 4]  # a stored vector finds itself


def test_auto_chooses_by_size_and_memory_budget():
    assert choose_kind("auto", 1000) == "flat"
    assert choose_kind("auto", 1_000_000) == "hnsw"  # 1.8 GB of 384-d vectors and links
    assert choose_kind("auto", 10_000_000) == "ivf-sq8"  # 3.7 GiB of 8-bit vectors
    assert choose_kind("auto", 20_000_000) == "ivf-pq"  # 8-bit vectors would hold 7.3 GiB
    assert choose_kind("auto", 3_000_000, dim=1024, memory_gb=5) == "ivf-sq8"  # HNSW would hold 13 GB
    assert choose_kind("auto", 50_000, dim=384, memory_gb=0.05) == "ivf-sq8"  # flat 77 MB > 54 MB
    assert choose_kind("auto", 50_000, dim=384, memory_gb=0.01) == "ivf-pq"  # 8-bit 19.6 MB > 10.7 MB
    assert choose_kind("auto", 5_000, dim=384, memory_gb=0.001) == "ivf-sq8"  # too few to train PQ codes on
    assert choose_kind("ivf", 10) == "ivf"
    assert index_bytes("ivf-pq", 10_000_000, 384) == 10_000_000 * (96 + 8)  # the vectors stay on disk
    assert index_bytes("ivf-sq8", 10_000_000, 384) == 10_000_000 * (384 + 8)
    assert index_bytes("hnsw", 1_000_000, 384) == 1_000_000 * (1536 + 256)


def clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 100, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return normalise_rows(vectors)


@pytest.mark.parametrize("kind, stored, rescored", [("ivf-pq", 8, 50), ("ivf-sq8", 32, 5)])
def test_compressed_indexes_record_recall_and_survive_save_and_load(tmp_path, kind, stored, rescored):
    vectors = clustered(12_000, 32)
    ids = [f"d{i}" for i in range(len(vectors))]
    index = PassageIndex.build(vectors, ids, ids, kind=kind)
    assert index.info["kind"] == kind and index.info["memory_gb"] == round(12_000 * (stored + 8) / 2 ** 30, 3)
    assert index.info["rescored_per_result"] == rescored == index.searcher.factor
    assert 0.9 <= index.info["recall@10_vs_flat"] <= 1.0
    D, I = index.search(vectors[:20], 10)
    assert list(I[:, 0]) == list(range(20))  # re-scored exactly: a stored vector finds itself
    D_ref, I_ref = brute_force(vectors, vectors[:20], 10)
    np.testing.assert_allclose(D[:, 0], D_ref[:, 0], atol=1e-5)  # exact scores, not code approximations
    index.save(tmp_path / "idx")
    loaded = PassageIndex.load(tmp_path / "idx")
    assert isinstance(loaded.vectors, np.memmap)  # read from disk, not loaded whole
    assert loaded.index.nprobe == index.index.nprobe == 48 and loaded.searcher.factor == rescored
    assert faiss.downcast_index(loaded.index.quantizer).hnsw.efSearch == 96  # searched wider than it was built
    info = json.loads((tmp_path / "idx" / "info.json").read_text())
    (tmp_path / "idx" / "info.json").write_text(json.dumps({**info, "rescored_per_result": 7}))
    assert PassageIndex.load(tmp_path / "idx").searcher.factor == 7  # the width its recall was measured at
    D2, I2 = loaded.search(vectors[:20], 10)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_allclose(D2, D)


def test_ivf_pq_on_a_small_corpus_says_what_to_do():
    vectors, ids, texts = corpus(n=500)
    with pytest.raises(ConfigError) as error:
        PassageIndex.build(vectors, ids, texts, kind="ivf-pq")
    assert str(error.value) == "index ivf-pq needs at least 10,000 passages to train its codes; found 500; use --index auto or flat"


def test_exact_search_in_chunks_equals_numpy(monkeypatch):
    monkeypatch.setattr(index_module, "CHUNK", 37)  # many chunks, the last one short
    vectors = normalise_rows(corpus(n=500)[0])
    queries = normalise_rows(np.random.default_rng(1).standard_normal((30, 24)).astype(np.float32))
    D, I = exact_search(queries, vectors, 10)
    D_ref, I_ref = brute_force(vectors, queries, 10)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, D_ref, atol=1e-5)


def test_an_index_builds_from_a_memmap_added_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "CHUNK", 64)
    vectors = clustered(3000, 16)
    np.save(tmp_path / "v.npy", vectors)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    index = build_faiss(mapped, "hnsw")
    assert index.ntotal == 3000
    _, I = index.search(vectors[:5], 1)
    assert list(I[:, 0]) == [0, 1, 2, 3, 4]
    assert recall_against_flat(index, mapped, sample=200) == recall_against_flat(index, vectors, sample=200) >= 0.9


def test_save_and_load_round_trip(tmp_path):
    vectors, ids, texts = corpus(n=100)
    index = PassageIndex.build(vectors, ids, texts, kind="flat", model_name="m")
    index.save(tmp_path / "idx")
    loaded = PassageIndex.load(tmp_path / "idx")
    assert loaded.ids == ids and loaded.texts == texts and loaded.info["model"] == "m"
    hits = loaded.hits(vectors[7], 3)
    assert isinstance(hits[0], Hit)
    assert (hits[0].passage_id, hits[0].text, hits[0].rank) == ("d7", "passage 7", 1)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.rank for h in hits] == [1, 2, 3]


def test_k_larger_than_corpus_returns_every_passage():
    vectors, ids, texts = corpus(n=4)
    assert len(PassageIndex.build(vectors, ids, texts, kind="flat").hits(vectors[0], 10)) == 4


def test_loading_an_incomplete_index_says_what_is_missing(tmp_path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "info.json").write_text("{}")
    with pytest.raises(RunError, match=r"missing index.faiss, passages.parquet"):
        PassageIndex.load(tmp_path / "idx")


@pytest.mark.parametrize("name, content, why", [
    ("index.faiss", b"\x00" * 64, "index.faiss is not a FAISS index"),
    ("passages.parquet", b"PAR1 cut short", "passages.parquet is not a table of passage_id and passage"),
    ("info.json", b'{"kind": "fl', "info.json is not JSON"),
])
def test_loading_a_damaged_index_says_how_to_rebuild_it(tmp_path, name, content, why):
    vectors, ids, texts = corpus(n=20)
    PassageIndex.build(vectors, ids, texts, kind="flat").save(tmp_path / "idx")
    (tmp_path / "idx" / name).write_bytes(content)
    with pytest.raises(RunError) as error:
        PassageIndex.load(tmp_path / "idx")
    assert str(error.value) == (f"index folder '{tmp_path / 'idx'}' is damaged ({why}); run adapt.run again with "
                                "the same --out to rebuild it")


def test_an_index_with_fewer_passages_than_vectors_is_damaged(tmp_path):
    vectors, ids, texts = corpus(n=20)
    PassageIndex.build(vectors, ids, texts, kind="flat").save(tmp_path / "idx")
    PassageIndex.build(vectors[:5], ids[:5], texts[:5], kind="flat").save(tmp_path / "small")
    (tmp_path / "small" / "passages.parquet").replace(tmp_path / "idx" / "passages.parquet")
    with pytest.raises(RunError, match=r"\(index.faiss holds 20 vectors for 5 passages\)"):
        PassageIndex.load(tmp_path / "idx")


def test_a_model_and_an_index_of_other_dimensions_do_not_pair():
    class Model:
        def get_embedding_dimension(self):
            return 32

    vectors, ids, texts = corpus(n=10, dim=24)
    with pytest.raises(RunError) as error:
        Retriever(Model(), PassageIndex.build(vectors, ids, texts, kind="flat"))
    assert str(error.value) == ("the model makes 32-d vectors but its index holds 24-d ones; the run folder is "
                                "damaged: run adapt.run again to rebuild it")


def test_a_memory_budget_must_be_positive():
    from adapt.config import RunConfig

    with pytest.raises(ConfigError) as error:
        RunConfig(pairs="pairs.csv", index_memory_gb=0)
    assert str(error.value) == "--index-memory-gb must be a positive number of GB, e.g. 5; got 0"


@pytest.mark.parametrize("kind", ["ivf-pq", "ivf-sq8"])
def test_a_compressed_index_folder_without_its_vectors_says_so(tmp_path, kind):
    vectors = clustered(10_000, 16)
    ids = [f"d{i}" for i in range(len(vectors))]
    PassageIndex.build(vectors, ids, ids, kind=kind).save(tmp_path / "idx")
    (tmp_path / "idx" / "vectors.npy").unlink()
    with pytest.raises(RunError) as error:
        PassageIndex.load(tmp_path / "idx")
    assert str(error.value) == f"index folder '{tmp_path / 'idx'}' is incomplete (missing vectors.npy); re-run adapt.run"
