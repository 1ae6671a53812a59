"""Errors a person can act on. The CLI turns them into ``Error: ...`` and exit status 1."""


class AdaptError(Exception):
    """Base class: the message says what was expected, what was found, and how to fix it."""


class ConfigError(AdaptError):
    """A run setting is out of range or inconsistent."""


class DataError(AdaptError):
    """An input file is missing, unreadable, or has the wrong shape."""


class ModelError(AdaptError):
    """A model could not be resolved or loaded."""


class RunError(AdaptError):
    """A run directory is missing, incomplete, or in use by another run."""


class ExportError(AdaptError):
    """A finished run's model could not be exported (a missing package, a folder in the way)."""
