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


class TrainingError(DfnasError):
    """A run cannot go on: its loss or weights stopped being finite (diverged)."""
