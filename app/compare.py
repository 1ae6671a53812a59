"""Step 4: search a finished run with the base and the fine-tuned model side by side, with the relevant
passages of a test question marked. Models and indexes come from the caches in ``app.ui``."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from adapt.errors import AdaptError
from adapt.report import model_name
from adapt.runs import Run
from app.ui import kept, plain, retriever

SYSTEMS = (("base", "Base"), ("finetuned", "Fine-tuned"))


def pick_question(key: str, questions: dict[str, str]) -> None:
    """Copy the picked test question into the query box."""
    picked = st.session_state.get(key)
    if picked:
        st.session_state["query"] = questions[picked]


def compare_ui(run: Run, run_dir: str, stamp: int) -> None:
    table = run.per_query.set_index("query_id")

    def label(qid: str) -> str:
        change = int(table.loc[qid, "rank_change"]) if qid in table.index else 0
        arrow = f"▲ {change}" if change > 0 else f"▼ {-change}" if change < 0 else "="
        return f"{run.test.queries[qid]}  ({arrow})"

    st.selectbox("Pick a test question (▲ fine-tuning moved its passage up, ▼ down) ...",
                 list(run.test.queries), index=None, format_func=label, key=f"pick:{run_dir}",
                 on_change=pick_question, args=(f"pick:{run_dir}", dict(run.test.queries)),
                 placeholder="Choose one of the held-out test questions")
    left, right = st.columns([4, 1])
    query = left.text_input("... or type your own query (press Enter to search)", **kept("query"),
                            placeholder="e.g. tiny green bugs on my roses").strip()
    k = int(right.number_input("Passages per model", 1, 50, 5, **kept("k")))
    if not query:
        st.info("Pick a test question or type a query to see what each model retrieves.")
        return
    qid = run.question_id(query)
    relevant = run.test.relevant_docs.get(qid, set()) if qid else set()
    if qid:
        passages = "passage" if len(relevant) == 1 else "passages"
        st.caption(f"This is a test question: ✓ marks its relevant {passages} in both columns.")
        with st.expander(f"Its relevant {passages}"):
            for pid in sorted(relevant):
                st.markdown(f"`{pid}` {plain(run.test.corpus[pid])}")
    for column, (which, title) in zip(st.columns(2), SYSTEMS):
        with column:
            st.subheader(title)
            st.caption(plain(model_used(run, which)))
            if qid in table.index:
                rank = table.loc[qid, f"{which}_rank"]
                shown = "" if pd.isna(rank) or rank <= k else f" (below the {k} shown)"
                st.markdown(f"Relevant passage at **rank {int(rank)}**{shown}" if pd.notna(rank)
                            else "Relevant passage **not in the top 100**")
            try:
                hits = retriever(run_dir, stamp, which).search(query, k)
            except AdaptError as exc:
                st.error(f"Error: {exc}")
                continue
            with st.container(key=f"hits_{which}"):
                for hit in hits:
                    with st.container(border=True, key=f"hit_{which}_{hit.rank}"):
                        mark = " :green-badge[✓ relevant]" if hit.passage_id in relevant else ""
                        st.markdown(f"**{hit.rank}.** score {hit.score:.3f} · `{hit.passage_id}`{mark}")
                        st.markdown(plain(hit.text))


def model_used(run: Run, which: str) -> str:
    """The model behind a column: the one that actually ran, not the one asked for."""
    base = model_name(run.report["models"]["base"]["resolved"])
    return base if which == "base" else f"{base}, fine-tuned on your pairs"
