"""The Streamlit app (``streamlit run app/streamlit_app.py``): a thin UI over ``adapt``, one module per page.

- ``streamlit_app``  routing: a new run or an earlier one, then a run's tabs
- ``upload``         step 1: upload pairs and extra passages, pick columns, the data summary
- ``new_run``        step 2: models and settings, the Run button and its progress
- ``results``        steps 3 and 5: the test change and its interval first, metrics, per question
- ``compare``        step 4: base, fine-tuned and hybrid search results side by side, as a diff against base
- ``passages``       a passage as Compare shows it: escaped, the query's words highlighted
- ``navigate``       a per-question row opens in Compare; a finished run scrolls its results into view
- ``ui``             what the pages share: widget helpers, safe text, cached runs, models and indexes
- ``workspace``      where the app keeps uploads and runs, and the upload size limit
- ``preflight``      what a run will use, checked before it starts: data summary, models
- ``jobs``           the pipeline in a background thread, one run at a time, with progress

The interpretation of a report (the headline, intervals, model notes) is ``adapt.report``'s; the
page modules only lay it out. Modules under ``adapt/`` never import streamlit.
"""
