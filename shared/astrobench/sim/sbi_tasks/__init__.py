"""SBI benchmark tasks: simulators with a tractable likelihood and committed reference posteriors.

Each task (as in sbibm, Lueckmann+2021) has a box prior, a JAX simulator (jit + vmap), the exact
Gaussian likelihood behind it, 10 fixed observations with their true parameters, and 10 000
reference posterior samples per observation drawn once with NUTS (``sbi/make_reference.py``) and
shipped as package data under ``astrobench/data/reference/``.

    >>> from astrobench.sim.sbi_tasks import get_task
    >>> task = get_task("lightcurve")
    >>> theta = task.sample_prior(1000, seed=0); x = task.simulate(theta, seed=1)
    >>> ref = task.reference_samples()          # (10, 10000, dim)

This package's ``__init__`` stays light (no jax): the dataset registry imports every module of
``astrobench.sim``; the task modules import jax when a task is requested.
"""

from __future__ import annotations

import importlib

TASKS = {"galaxy-profile": "galaxy_profile", "lightcurve": "lightcurve"}


def names() -> list:
    return list(TASKS)


def get_task(name: str):
    """The task object for ``name`` (one of :func:`names`); ValueError for an unknown name."""
    if name not in TASKS:
        raise ValueError(f"unknown SBI task {name!r}; expected one of: {', '.join(TASKS)}")
    module = importlib.import_module(f"{__name__}.{TASKS[name]}")
    return module.Task()
