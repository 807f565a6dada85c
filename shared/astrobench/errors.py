"""The kit's error classes: each is one line for the user and exit code 2 (the lowest layer: imports nothing).

The layers re-export their own: ``astrobench.data.DataError``, ``astrobench.metrics.ScoreInputError``,
``astrobench.baseline.BaselineError``, ``astrobench.notebook.SettingError``."""


class SettingError(ValueError):
    """An environment variable the kit reads has a value it cannot use."""


class DataError(Exception):
    """A dataset could not be provided: unknown name, bad split, failed download, bad hash."""


class ScoreInputError(ValueError):
    """Predictions that cannot be scored: wrong keys, shapes, dtypes, NaNs or split sizes."""


class BaselineError(Exception):
    """Bad input to a baseline: one line for the user, exit code 2."""
