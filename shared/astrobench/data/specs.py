"""What a dataset is, for the registry: a simulated generator or a remote, checksummed file (a leaf module:
``registry``, ``real``, ``user`` and the simulators all build on it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


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
