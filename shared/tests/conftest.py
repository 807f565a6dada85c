"""Shared fixtures: every test gets its own empty dataset cache."""

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))  # for the small helper module _tiny.py


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty $ASTROBENCH_DATA for this test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ASTROBENCH_DATA", str(root))
    return root


@pytest.fixture
def tiny(cache):
    """A registered, tiny variant of `galaxies` (50 objects) for fast data-layer tests."""
    import _tiny
    from astrobench import data

    data.register(_tiny.spec())
    yield _tiny.NAME
    data.unregister(_tiny.NAME)
