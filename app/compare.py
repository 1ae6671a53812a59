"""Step 4: search a finished run with every system side by side (base, fine-tuned, and hybrid when the run
has one), as a diff against base: each result says how far it moved ("▲ up 3 · was #7", "new"), a test question's
relevant passages come first with their rank under every system (and are marked where they appear), and the
query's words are highlighted. Models and indexes come from the caches in ``app.ui``."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from adapt.errors import AdaptError
from adapt.explain import SYSTEMS, model_name
from adapt.hybrid import DEPTH
from adapt.runs import Run
from app.navigate import picker_key
from app.passages import clipped, highlighted, query_words
from app.ui import kept, plain, retriever

ORDERS = ("Worst first", "Best first")


def pick_question(key: str, questions: dict[str, str]) -> None:
    """Copy the picked test question into the query box."""
    picked = st.session_state.get(key)
    if picked:
        st.session_state["query"] = questions[picked]


def arrow(change) -> str:
    if pd.isna(change) or change == 0:
        return "="
    return f"▲ {int(change)}" if change > 0 else f"▼ {int(-change)}"


def movement(rank: int, base_rank: int | None) -> str:
    """A result's move against base, as a badge: up, down, same, or new (not in base's top ``DEPTH``)."""
    if base_rank is None:
        return ":violet-badge[new]"
    if base_rank == rank:
        return ":gray-badge[= same]"
    word, colour = ("▲ up", "blue") if base_rank > rank else ("▼ down", "orange")
    return f":{colour}-badge[{word} {abs(base_rank - rank)} · was #{base_rank}]"


def change_column(system: str) -> str:
    """per_query.csv's rank change against base: ``rank_change`` (fine-tuned) or ``hybrid_rank_change``."""
    return "hybrid_rank_change" if system == "hybrid" else "rank_change"


def ordered_questions(run: Run, order: str, system: str) -> list[str]:
    """Test question ids by ``system``'s rank change against base: the worst (or best) first."""
    changes = run.per_query.set_index("query_id")[change_column(system)]
    changes = changes.groupby(level=0).first().reindex(list(run.test.queries)).fillna(0)
    return list(changes.sort_values(ascending=order == ORDERS[0], kind="stable").index)


def picker_ui(run: Run, run_dir: str, systems: list[str]) -> None:
    table = run.per_query.drop_duplicates("query_id").set_index("query_id")
    by = run.report.get("recommended") if run.report.get("recommended") in systems[1:] else "finetuned"
    left, right = st.columns([4, 1])
    order = right.radio(f"Order by {SYSTEMS[by].lower()} change", ORDERS, **kept("pick_order"))

    def label(qid: str) -> str:
        changes = [f"{SYSTEMS[s].lower()} {arrow(table.loc[qid, change_column(s)])}"
                   for s in systems[1:]] if qid in table.index else []
        return f"{run.test.queries[qid]}  ({', '.join(changes)})" if changes else run.test.queries[qid]

    left.selectbox("Pick a test question (▲ its relevant passage moved up against base, ▼ down) ...",
                   ordered_questions(run, order, by), index=None, format_func=label, key=picker_key(run_dir),
                   on_change=pick_question, args=(picker_key(run_dir), dict(run.test.queries)),
                   placeholder="Choose one of the held-out test questions")


def compare_ui(run: Run, run_dir: str, stamp: int) -> None:
    systems = run.systems()
    picker_ui(run, run_dir, systems)
    left, right = st.columns([4, 1])
    query = left.text_input("... or type your own query (press Enter to search)", **kept("query"),
                            placeholder="e.g. tiny green bugs on my roses").strip()
    k = int(right.number_input("Passages per system", 1, 50, 5, **kept("k")))
    if not query:
        st.info("Pick a test question or type a query to see what each system retrieves.")
        return
    try:  # every system to DEPTH, for the ranks of relevant passages below the cut and of base's results
        found = {which: retriever(run_dir, stamp, which).search(query, max(k, DEPTH)) for which in systems}
    except AdaptError as exc:
        st.error(f"Error: {exc}")
        return
    ranks = {which: {hit.passage_id: hit.rank for hit in hits} for which, hits in found.items()}
    words = query_words(query)
    qid = run.question_id(query)
    relevant = run.test.relevant_docs.get(qid, set()) if qid else set()
    if relevant:
        pinned_ui(run, relevant, ranks, words)
    else:
        st.caption("Your own query: no passage is known to be relevant to it. A badge says how far each result "
                   "moved against base; the query's words are highlighted.")
    for column, which in zip(st.columns(len(systems)), systems):
        with column:
            st.subheader(SYSTEMS[which])
            st.caption(plain(model_used(run, which)))
            hits_ui(which, found[which][:k], relevant, ranks["base"], words)


def pinned_ui(run: Run, relevant: set[str], ranks: dict[str, dict[str, int]], words: set[str]) -> None:
    """A test question's relevant passages first, best placed first, with their rank under every system."""
    one = len(relevant) == 1
    what = "its relevant passage comes" if one else f"its {len(relevant)} relevant passages come"
    st.caption(f"This is a test question: {what} first, with {'its' if one else 'their'} rank under each system. "
               f"Below, ✓ marks {'it' if one else 'them'} and a badge says how far each result moved against base.")
    best = {pid: min(found.get(pid, DEPTH + 1) for found in ranks.values()) for pid in relevant}
    for pid in sorted(relevant, key=lambda pid: (best[pid], pid)):
        with st.container(border=True, key=f"pinned_{pid}"):
            for cell, which in zip(st.columns(len(ranks)), ranks):
                cell.markdown(f"{SYSTEMS[which]}: {rank_text(which, ranks[which].get(pid), ranks['base'].get(pid))}")
            st.markdown(f":green-badge[✓ relevant] `{pid}` {highlighted(run.test.corpus[pid], words)}")


def rank_text(which: str, rank: int | None, base_rank: int | None) -> str:
    """A passage's rank under a system, and (beside base) its move: "**#3** ▲ up 4 · was #7"."""
    if rank is None:
        return f"**not in the top {DEPTH}**"
    return f"**#{rank}**" + ("" if which == "base" else " " + movement(rank, base_rank))


def hits_ui(which: str, hits, relevant: set[str], base_ranks: dict[str, int], words: set[str]) -> None:
    with st.container(key=f"hits_{which}"):
        for hit in hits:
            with st.container(border=True, key=f"hit_{which}_{hit.rank}"):
                mark = " :green-badge[✓ relevant]" if hit.passage_id in relevant else ""
                moved = "" if which == "base" else " " + movement(hit.rank, base_ranks.get(hit.passage_id))
                st.markdown(f"**{hit.rank}.** score {hit.score:.3f} · `{hit.passage_id}`{mark}{moved}")
                passage_ui(hit.text, words)


def passage_ui(text: str, words: set[str]) -> None:
    """A result's passage, clipped to about three lines with the whole of it in an expander below."""
    head = clipped(text)
    if head is None:
        st.markdown(highlighted(text, words))
        return
    st.markdown(highlighted(head, words) + " …")
    with st.expander("Whole passage"):
        st.markdown(highlighted(text, words))


def model_used(run: Run, which: str) -> str:
    """The model behind a column: the one that actually ran, not the one asked for."""
    base = model_name(run.report["models"]["base"]["resolved"])
    if which == "hybrid":
        fusion = run.report["hybrid"]["fusion"]
        how = "reciprocal rank fusion" if fusion["method"] == "rrf" else f"weight {fusion['alpha']:.1f} on the model"
        return f"BM25 + {model_used(run, fusion['dense_system'])} ({how}, chosen on dev)"
    return base if which == "base" else f"{base}, fine-tuned on your pairs"
