"""The Streamlit app (``streamlit run app/streamlit_app.py``): a thin UI over ``adapt``.

- ``streamlit_app``  the page: small ``*_ui()`` functions, nothing else
- ``workspace``      where the app keeps uploads and runs, and the upload size limit
- ``preflight``      what a run will use, checked before it starts: data summary, models
- ``jobs``           the pipeline in a background thread, one run at a time, with progress

Only ``streamlit_app`` imports streamlit.
"""
