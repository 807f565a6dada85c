"""Errors the data layer raises with a one-line, actionable message."""


class DataError(Exception):
    """A dataset could not be provided: unknown name, bad split, failed download, bad hash."""
