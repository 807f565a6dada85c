"""The dataset registry: a name maps to a simulated generator or a remote, checksummed file.

Simulated datasets are declared by modules of ``astrobench.sim`` in a module-level list
``DATASETS``; remote ones in ``astrobench.data.real.DATASETS``. Tests and users can add
entries with :func:`register`. Modules declaring datasets keep heavy imports (jax, torch,
skypy) inside functions so that listing datasets stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib import resources

from .errors import DataError
from .specs import RemoteSpec, SimulatedSpec

__all__ = ["RemoteSpec", "SimulatedSpec", "all_specs", "builtin_names", "card", "get", "register", "unregister"]
# the package whose modules declare the simulated datasets (a module-level DATASETS list). Found by name at run time:
# the simulators build on the data layer (its specs and cache), so the data layer never imports them
SIMULATORS = "astrobench.sim"


_EXTRA: dict = {}


def register(spec) -> None:
    """Add (or replace) a dataset entry at run time."""
    _EXTRA[spec.name] = spec


def unregister(name: str) -> None:
    """Forget a run-time entry; a user dataset (``register_arrays``) is deleted from the cache."""
    from . import user

    _EXTRA.pop(name, None)
    user.remove(name)


def _builtin() -> dict:
    from . import real

    sim = importlib.import_module(SIMULATORS)
    specs = {}
    for mod in pkgutil.iter_modules(sim.__path__):
        module = importlib.import_module(f"{sim.__name__}.{mod.name}")
        for spec in getattr(module, "DATASETS", ()):
            specs[spec.name] = spec
    for spec in real.DATASETS:
        specs[spec.name] = spec
    return specs


def builtin_names() -> set:
    return set(_builtin())


def all_specs() -> dict:
    from . import user

    return {**{s.name: s for s in user.specs()}, **_builtin(), **_EXTRA}


def get(name: str):
    specs = all_specs()
    if name not in specs:
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(sorted(specs))}")
    return specs[name]


def card(name: str) -> str:
    """The dataset card (markdown) shipped in ``astrobench/data/cards/<name>.md``."""
    spec = get(name)
    path = resources.files("astrobench.data") / "cards" / f"{spec.name}.md"
    if not path.is_file():
        return f"# {spec.name}\n\n{spec.description}\n\n(no card written yet)\n"
    return path.read_text()
