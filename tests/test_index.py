"""FAISS search against brute-force numpy on seeded random vectors, and save / load."""

import numpy as np
import pytest

from adapt.errors import RunError
from adapt.index import Hit, PassageIndex, Retriever, choose_kind, normalise_rows


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


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_record_recall_against_flat(kind):
    vectors, ids, texts = corpus(n=3000, dim=16)
    index = PassageIndex.build(vectors, ids, texts, kind=kind)
    assert index.info["kind"] == kind
    assert 0.5 <= index.info["recall@10_vs_flat"] <= 1.0
    _, I = index.search(vectors[:5], 1)
    assert list(I[:, 0]) == [0, 1, 2, 3, 4]  # a stored vector finds itself


def test_auto_is_flat_for_small_corpora():
    assert choose_kind("auto", 1000) == "flat"
    assert choose_kind("auto", 10_000_000) == "hnsw"
    assert choose_kind("ivf", 10) == "ivf"


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
