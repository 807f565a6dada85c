"""Errors the data layer raises with a one-line, actionable message (defined in ``astrobench.errors``)."""

from ..errors import DataError

__all__ = ["DataError"]
