"""Fixtures for every test folder of the repository (shared/tests/conftest.py holds the shared package's own)."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test left open: one pytest-xdist worker runs many tests, and pyplot's "more than 20
    figures" RuntimeWarning is an error here, so a leak in one test would fail whichever test came next."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
