"""SBI benchmark tasks: a prior, a batched simulator, 10 fixed observations, and (optionally) reference posteriors.

Each task (as in sbibm, Lueckmann+2021) has a box prior, a batched simulator, 10 fixed observations with their
true parameters and, when its likelihood is known, 10 000 reference posterior samples per observation, shipped as
package data under ``astrobench/data/reference/``: drawn once with NUTS (``sbi/make_reference.py``) for the kit's
Gaussian-likelihood tasks, taken from sbibm's published files for ``two_moons``.

    >>> from astrobench.sim.sbi_tasks import get_task
    >>> task = get_task("lightcurve")
    >>> theta = task.sample_prior(1000, seed=0); x = task.simulate(theta, seed=1)
    >>> ref = task.reference_samples()          # (10, 10000, dim)

Bring your own simulator: subclass ``base.BaseTask`` (any batched simulator; ``base.GaussianTask`` for mean +
Gaussian noise with a NUTS reference) and ``register`` it in your process, or declare it in your package's
``pyproject.toml`` so that every process (``sbi/npe.py --task NAME``, ``astrobench score sbi:NAME``) finds it::

    [project.entry-points."astrobench.sbi_tasks"]
    ring = "my_package.tasks:Ring"

(CONTRIBUTING.md, "Add an SBI task"). Only installed packages' entry points are loaded: a task name in a
submission never imports anything else.

This package's ``__init__`` stays light (no jax): the dataset registry imports every module of
``astrobench.sim``; the task modules import jax when a task is requested.
"""

from __future__ import annotations

import importlib

TASKS = {"galaxy-profile": "galaxy_profile", "lightcurve": "lightcurve", "two_moons": "two_moons"}
_REGISTERED: dict = {}  # name -> task class, added at run time by register()
ENTRY_POINTS = "astrobench.sbi_tasks"  # installed packages' tasks: name -> "module:Class"


def _plugins() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS) if ep.name not in TASKS}


def names() -> list:
    return list(dict.fromkeys([*TASKS, *_REGISTERED, *_plugins()]))


def register(task_class, replace: bool = False):
    """Make a task class (a ``base.BaseTask`` subclass with a ``name``) available to ``get_task``, ``sbi/npe.py``
    and the scorer in this process. Returns the class, so it also works as a decorator."""
    from .base import BaseTask

    if not (isinstance(task_class, type) and issubclass(task_class, BaseTask)) or not getattr(task_class, "name", ""):
        raise ValueError(f"register: {task_class!r}; expected a subclass of astrobench.sim.sbi_tasks.base.BaseTask "
                         "with a name")
    name = task_class.name
    if name in TASKS or (name in _REGISTERED and not replace):
        raise ValueError(f"register: an SBI task {name!r} exists already; expected a new name")
    _REGISTERED[name] = task_class
    return task_class


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


def get_task(name: str):
    """The task object for ``name`` (one of :func:`names`); ValueError for an unknown name."""
    if name in _REGISTERED:
        return _REGISTERED[name]()
    plugins = {} if name in TASKS else _plugins()
    if name in plugins:
        from .base import BaseTask

        cls = plugins[name].load()
        if not (isinstance(cls, type) and issubclass(cls, BaseTask)):
            raise ValueError(f"SBI task {name!r} (entry point {plugins[name].value}): {cls!r}; expected a subclass "
                             "of astrobench.sim.sbi_tasks.base.BaseTask")
        return cls()
    if name not in TASKS:
        raise ValueError(f"unknown SBI task {name!r}; expected one of: {', '.join(names())}")
    module = importlib.import_module(f"{__name__}.{TASKS[name]}")
    return module.Task()
