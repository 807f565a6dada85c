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


def _cpu_seconds() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """ASTROBENCH_CPU_PROFILE=FILE: append each test's CPU seconds (its own and its finished subprocesses', setup to
    teardown) and wall seconds as JSON lines. CPU time, unlike --durations' wall time, barely moves with the load, so
    a profile taken on a busy machine still says where the budget goes."""
    import os
    import time

    path = os.environ.get("ASTROBENCH_CPU_PROFILE")
    cpu, wall = _cpu_seconds(), time.perf_counter()
    yield
    if path:
        import json

        row = {"test": item.nodeid, "cpu": round(_cpu_seconds() - cpu, 2), "wall": round(time.perf_counter() - wall, 2)}
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
