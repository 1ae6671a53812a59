"""Moving around a run's page: a per-question row opens that question in Compare, and a run that has just
finished brings its results into view instead of leaving them below the upload and settings.

Both act before the run's tabs are drawn: the tabs, Compare's question picker and its query box are
widgets, and a widget's value can only be set before the widget is drawn in a run of the script.
"""

from __future__ import annotations

import streamlit as st

from adapt.runs import Run

TABS = ("3. Results", "4. Compare search", "5. Per question")
TAB_KEY = "run_tab"
RESULTS_KEY = "run_results"  # the container of a run's caption and tabs, the target of the jump
# constant text, no data in it: bring the run's results to the top of the window (or as near as the page's
# end allows), again for a moment while the rest of the page is still drawn below them
SCROLL = f"""<script>
(function scroll(tries) {{
  const target = document.querySelector(".st-key-{RESULTS_KEY}");
  if (target) target.scrollIntoView({{block: "start"}});
  if (tries > 0 && (!target || Math.abs(target.getBoundingClientRect().top) > 2))
    setTimeout(() => scroll(tries - 1), 100);
}})(30);
</script>"""


def picker_key(run_dir: str) -> str:
    return f"pick:{run_dir}"


def table_key(run_dir: str) -> str:
    return f"per_query:{run_dir}"


def shown_rows(run_dir: str, query_ids: list[str]) -> None:
    """Remember which question each row of the per-question table stands for, as drawn."""
    st.session_state[f"per_query_rows:{run_dir}"] = list(query_ids)


def open_selected_row(run: Run, run_dir: str) -> None:
    """When a per-question row has just been selected, put its question in Compare and switch to Compare."""
    state = st.session_state.get(table_key(run_dir))
    rows = list(state["selection"]["rows"]) if state else []
    if rows == st.session_state.get(f"per_query_seen:{run_dir}", []):
        return  # nothing new: the row picked earlier stays selected while a person looks elsewhere
    st.session_state[f"per_query_seen:{run_dir}"] = rows
    shown = st.session_state.get(f"per_query_rows:{run_dir}", [])
    if rows and rows[0] < len(shown) and shown[rows[0]] in run.test.queries:
        qid = shown[rows[0]]
        st.session_state[picker_key(run_dir)] = qid
        st.session_state["query"] = run.test.queries[qid]
        st.session_state[TAB_KEY] = TABS[1]


def just_finished(run_dir: str) -> bool:
    """True the first time a new run's results are drawn: they open on the Results tab, scrolled into view
    by ``scroll_to_results`` once drawn."""
    if st.session_state.get("results_shown") == run_dir:
        return False
    st.session_state["results_shown"] = run_dir
    st.session_state[TAB_KEY] = TABS[0]
    return True


def scroll_to_results() -> None:
    st.html(SCROLL, unsafe_allow_javascript=True)
