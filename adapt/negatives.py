"""Hard negatives mined from the search corpus, with the guide removing likely false negatives.

In-batch negatives from a few thousand pairs are mostly easy. For each training pair, the passages
the base model (and/or BM25) ranks highest for its question are harder ones, but some of them
answer the question as well as the known positive does: training against those teaches the model
to push right answers away. GISTEmbed's rule decides, with the guide as judge: a candidate whose
guide similarity to the question is at or above ``positive_similarity * (1 - margin)`` is a likely
false negative and is dropped. Of the rest, the ``per_question`` best ranked are kept. The guide judges
candidates best first and stops at a pair's N-th kept one: same negatives, a fraction of the guide's work
(on medquad, 20 candidates a pair would have it embed nearly the whole 16k-passage corpus).

Why not sentence-transformers' ``mine_hard_negatives``: it ranks and filters with one model, and
here the base model (or BM25) ranks while the guide judges; it reports neither how many candidates
the filter removed nor which, and a person needs both to audit the filter; and it would re-encode
every text with the guide, where ``guide_embedder`` reads and fills adapt's on-disk guide cache,
so training later finds the negatives' guide embeddings already there.

Candidates come from the search corpus passages only (``corpus``), never from dev or test
questions. The result keeps every training pair: one (question, passage, negative) row per
negative, so ``per_question`` N gives N rows a pair (GIST takes one negative column, so N
negatives of one question become N rows, which the no-duplicates sampler spreads over batches).
Where the guide left fewer than N hard candidates, the slots are filled with random corpus
passages (easy negatives, still checked by the guide rule), counted in ``filled_random``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pandas as pd

from adapt.errors import ConfigError
from adapt.guide import guide_vectors
from adapt.index import PassageIndex
from adapt.lexical import BM25Index

logger = logging.getLogger(__name__)

MARGIN = 0.05  # relative, as GISTEmbedLoss(margin_strategy="relative")
CANDIDATE_DEPTH = 20  # candidates looked at per training pair
AUDIT_EXAMPLES = 5

# texts and the training column they stand in ("anchor" or "positive") -> the guide's normalised embeddings
GuideEmbed = Callable[[list[str], str], np.ndarray]


@dataclass
class NegativeCounts:
    pairs: int  # training pairs mined for
    candidates: int  # candidates the guide judged, best first until N were kept (own positives dropped)
    removed: int  # judged likely false negatives by the guide
    kept: int  # hard negatives kept
    pairs_without_negative: int  # pairs whose candidates the guide removed all of
    filled_random: int = 0  # negative slots filled by ``_fill`` (random passages the guide passes first)


@dataclass
class RemovedExample:
    question: str
    positive: str
    removed: str
    removed_similarity: float  # guide similarity of the question to the removed candidate
    positive_similarity: float  # ... and to the known positive


@dataclass
class MinedNegatives:
    training: pd.DataFrame  # question, passage, negative: N rows per training pair
    counts: NegativeCounts
    examples: list[RemovedExample] = field(default_factory=list)
    margin: float = MARGIN

    def to_dict(self) -> dict:
        """The audit for report.json."""
        return {"margin": self.margin, **asdict(self.counts), "examples": [asdict(e) for e in self.examples]}


def dense_candidates(index: PassageIndex, question_vectors: np.ndarray,
                     depth: int = CANDIDATE_DEPTH) -> list[list[str]]:
    """Passage ids best first per question, from the base model's index."""
    _, I = index.search(question_vectors, depth)
    return [[index.ids[r] for r in row if r >= 0] for row in I]


def lexical_candidates(bm25: BM25Index, questions: list[str], depth: int = CANDIDATE_DEPTH) -> list[list[str]]:
    """Passage ids best first per question, from BM25 (passages sharing no word are left out)."""
    D, I = bm25.search(questions, depth)
    return [[bm25.ids[r] for s, r in zip(scores, row) if r >= 0 and s > 0] for scores, row in zip(D, I)]


def merge_candidates(*sources: list[list[str]], depth: int = CANDIDATE_DEPTH) -> list[list[str]]:
    """Per question, the sources' lists taken in turn (first of each, then second ...), without repeats."""
    merged = []
    for lists in zip(*sources):
        order = [pid for rank in zip_longest(*lists) for pid in rank if pid is not None]
        merged.append(list(dict.fromkeys(order))[:depth])
    return merged


def guide_embedder(model, guide, guide_name: str, cache_dir: Path | None, prompts: dict[str, str]) -> GuideEmbed:
    """The guide fed as in training (the student's tokens and prompts), through the on-disk guide cache."""
    def embed(texts: list[str], column: str) -> np.ndarray:
        return guide_vectors(model, guide, texts, prompts.get(column), guide_name, cache_dir)
    return embed


def _fill(q, positive, positive_sim, kept, others, per_question, judge) -> list[str]:
    """Slots left after the hard candidates: random passages the guide passes, then the least similar
    of the rest, and as a last resort the positive itself (GIST's in-loss filter masks that one)."""
    others = [t for t in dict.fromkeys(others) if t not in kept]
    sims, bad = judge(q, positive_sim, others)
    passed = [t for t, b in zip(others, bad) if not b]
    rest = [t for _, t in sorted(zip(sims, others)) if t not in passed]
    need = per_question - len(kept)
    fill = (passed + rest)[:need]
    return fill + [positive] * (need - len(fill))


def mine_hard_negatives(train: pd.DataFrame, corpus: dict[str, str], candidates: list[list[str]],
                        embed: GuideEmbed, per_question: int, margin: float = MARGIN,
                        examples: int = AUDIT_EXAMPLES, seed: int = 0) -> MinedNegatives:
    """Guide-filtered negatives for each (question, passage) row of ``train``.

    ``candidates[i]`` are corpus passage ids for row i, best first (``dense_candidates``,
    ``lexical_candidates`` or both merged).
    """
    if per_question < 0:
        raise ConfigError(f"hard negatives per question must be 0 or more, found {per_question}")
    if not 0.0 <= margin < 1.0:
        raise ConfigError(f"the false-negative margin must be at least 0 and below 1, found {margin}")
    if len(candidates) != len(train):
        raise ValueError(f"{len(candidates)} candidate lists for {len(train)} training pairs")
    columns = ["question", "passage", "negative"]
    if per_question == 0 or train.empty:
        return MinedNegatives(train[["question", "passage"]].reset_index(drop=True) if per_question == 0
                              else pd.DataFrame(columns=columns), NegativeCounts(len(train), 0, 0, 0, 0), [], margin)

    questions, positives = list(train["question"]), list(train["passage"])
    own = train.groupby("question")["passage"].agg(set).to_dict()
    rng = np.random.default_rng(seed)
    pool = list(dict.fromkeys(corpus.values()))
    spare = [[t for t in (pool[i] for i in rng.choice(len(pool), min(len(pool), 4 * per_question), replace=False))
              if t not in own[q]] for q in questions]
    texts = [list(dict.fromkeys(t for t in (corpus[pid] for pid in ids) if t not in own[q]))
             for q, ids in zip(questions, candidates)]
    unique_questions = list(dict.fromkeys(questions))
    q_vectors = dict(zip(unique_questions, embed(unique_questions, "anchor")))
    p_vectors: dict[str, np.ndarray] = {}

    def embed_passages(needed) -> None:
        new = [t for t in dict.fromkeys(needed) if t not in p_vectors]
        if new:
            p_vectors.update(zip(new, embed(new, "positive")))

    def judge(q, positive_sim, row):
        sims = np.array([float(p_vectors[t] @ q) for t in row]) if row else np.zeros(0)
        return sims, sims >= positive_sim * (1 - margin)

    embed_passages(positives)
    qs = [q_vectors[question] for question in questions]
    positive_sims = [float(p_vectors[positive] @ q) for positive, q in zip(positives, qs)]
    # The guide judges each pair's candidates best first and stops at its N-th kept one, in rounds: each
    # round embeds the next few candidates of every pair still short, in one batch. The negatives are
    # those judging every candidate would keep; the guide embeds a fraction of the candidates.
    judged: list[list[tuple[str, float, bool]]] = [[] for _ in questions]  # (text, guide similarity, removed)

    def kept_of(i):
        return [t for t, _, bad in judged[i] if not bad]

    short = [i for i in range(len(questions)) if texts[i]]
    while short:
        chunks = {i: texts[i][len(judged[i]):len(judged[i]) + per_question - len(kept_of(i)) + 2] for i in short}
        embed_passages(t for chunk in chunks.values() for t in chunk)
        for i, chunk in chunks.items():
            sims, bad = judge(qs[i], positive_sims[i], chunk)
            for t, sim, b in zip(chunk, sims, bad):
                if len(kept_of(i)) == per_question:
                    break
                judged[i].append((t, float(sim), bool(b)))
        short = [i for i in short if len(judged[i]) < len(texts[i]) and len(kept_of(i)) < per_question]
    embed_passages(t for i in range(len(questions)) if len(kept_of(i)) < per_question for t in spare[i])

    rows, audit = [], []
    counts = NegativeCounts(len(train), 0, 0, 0, 0)
    for i, (question, positive) in enumerate(zip(questions, positives)):
        kept = kept_of(i)
        removed = [(t, sim) for t, sim, bad in judged[i] if bad]
        counts.candidates += len(judged[i])
        counts.removed += len(removed)
        counts.kept += len(kept)
        counts.pairs_without_negative += not kept
        if removed and len(audit) < examples:
            audit.append(RemovedExample(question, positive, removed[0][0], removed[0][1], positive_sims[i]))
        if len(kept) < per_question:
            counts.filled_random += per_question - len(kept)
            kept += _fill(qs[i], positive, positive_sims[i], kept, texts[i] + spare[i], per_question, judge)
        rows.extend((question, positive, negative) for negative in kept)
    logger.info("Hard negatives: %d candidates, %d removed as likely false negatives, %d kept, %d slots filled "
                "with random passages", counts.candidates, counts.removed, counts.kept, counts.filled_random)
    return MinedNegatives(pd.DataFrame(rows, columns=columns), counts, audit, margin)
