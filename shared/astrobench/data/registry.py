"""The dataset registry: a name maps to a simulated generator or a remote, checksummed file.

Simulated datasets are declared by modules of ``astrobench.sim`` in a module-level list
``DATASETS``; remote ones in ``astrobench.data.real.DATASETS``. Tests and users can add
entries with :func:`register`. Modules declaring datasets keep heavy imports (jax, torch,
skypy) inside functions so that listing datasets stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources

from .errors import DataError


@dataclass
class SimulatedSpec:
    name: str
    version: str
    description: str
    tracks: tuple
    sizes: dict  # {"full": {"train": n, "test": n}, "fast": {...}}
    # (sizes: dict, seed: int, progress: bool) -> {split: {key: array, "truth": {col: array}}}, or an iterator of
    # (split, content) pairs: the cache writes each split before asking for the next (one split in memory)
    generate: Callable
    config: Callable  # () -> dict of generator parameters
    seed: int = 0
    licence: str = "CC-BY-4.0 (generated data); code BSD-3-Clause"
    citation: str = "Astro x ML hackathon starter kit; SkyPy (Amara+2021); speclite; kcorrect (Blanton & Roweis 2007)"
    kind: str = field(default="simulated", init=False)

    @property
    def splits(self) -> tuple:
        return tuple(self.sizes["full"])


@dataclass
class RemoteSpec:
    name: str
    version: str
    description: str
    tracks: tuple
    urls: tuple  # primary first, then mirrors
    filename: str
    size_bytes: int
    sha256: str | None  # published by the data's owners, else None (trust on first use)
    hash_source: str  # where the hash was published, or why there is none
    licence: str
    citation: str
    offline_alternative: str  # the simulated dataset to use without network
    adapter: Callable | None = None  # (path, split, fast) -> (arrays like a simulated split, config)
    splits: tuple = ("train", "test")
    kind: str = field(default="remote", init=False)


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
    from .. import sim
    from . import real

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
