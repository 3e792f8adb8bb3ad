"""User-facing errors.

Anything a user can cause (a bad config key, a missing or corrupt file) raises a
``DfnasError`` whose message is one line naming the key or file and what was expected.
The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""


class DfnasError(Exception):
    """An error caused by input, reported to the user as one line."""


class ConfigError(DfnasError):
    """A config key is missing, unknown or out of range."""


class DatasetError(DfnasError):
    """A dataset file is missing, truncated or does not match its format."""


class CacheError(DatasetError):
    """A cached file (a dataset's ``data.npz``, a ``partition.json``) whose bytes differ
    from those its stage wrote; ``path`` names it, so the caller can forget its check
    (``dfnas.caches.forget``) and the workflow's next start rebuilds it."""

    def __init__(self, path, what: str) -> None:
        super().__init__(f"{path}: {what}")
        self.path = str(path)


class TrainingError(DfnasError):
    """A run cannot go on: its loss or weights stopped being finite (diverged)."""
