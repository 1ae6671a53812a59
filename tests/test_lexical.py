"""BM25Index: scores as bm25s gives them, ids mapped back, and a save / load round trip that changes nothing."""

import numpy as np
import pandas as pd
import pytest

from adapt.errors import RunError
from adapt.lexical import BM25Index

PASSAGES = {
    "p1": "Apple scab shows olive green spots on apple leaves.",
    "p2": "Tomato late blight turns tomato leaves brown and greasy.",
    "p3": "Plant garlic cloves two inches deep in autumn.",
    "p4": "Aphids suck sap from young apple shoots.",
}


def build() -> BM25Index:
    return BM25Index.build(list(PASSAGES.values()), list(PASSAGES))


def test_search_ranks_the_matching_passage_first():
    index = build()
    D, I = index.search(["brown tomato leaves", "garlic depth"], k=2)
    assert D.shape == I.shape == (2, 2)
    assert [index.ids[i] for i in I[:, 0]] == ["p2", "p3"]
    assert (D[:, 0] > 0).all() and (np.diff(D, axis=1) <= 0).all()


def test_k_larger_than_the_corpus_is_clipped():
    D, I = build().search(["apple"], k=50)
    assert I.shape == (1, 4) and sorted(I[0].tolist()) == [0, 1, 2, 3]


def test_ranked_maps_rows_to_passage_ids():
    ranked = build().ranked({"q1": "apple leaves spots"}, k=4)
    assert ranked["q1"][0] == "p1" and set(ranked["q1"]) == set(PASSAGES)


def test_save_load_round_trip_gives_identical_results(tmp_path, sample_corpus):
    corpus = pd.read_csv(sample_corpus)
    texts, ids = list(corpus["passage"]), [f"d{i}" for i in range(len(corpus))]
    index = BM25Index.build(texts, ids)
    queries = [texts[3][:60], "how do i control aphids on roses", "soil ph for blueberries"]
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.ids == ids
    D, I = index.search(queries, 10)
    D2, I2 = loaded.search(queries, 10)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_array_equal(D2, D)


def test_incomplete_folder_is_a_clear_error(tmp_path):
    build().save(tmp_path / "bm25")
    (tmp_path / "bm25" / "passage_ids.json").unlink()
    with pytest.raises(RunError, match=r"^BM25 index folder '.*bm25' is incomplete \(missing passage_ids.json\); "
                                       r"re-run adapt.run$"):
        BM25Index.load(tmp_path / "bm25")
