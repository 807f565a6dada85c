"""Helpers every notebook and baseline uses: FAST mode, a notebook's settings cell, seeding, device choice,
the shipped pretrained models."""

from __future__ import annotations

import os
import random

from .errors import BaselineError, SettingError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


_FULL: bool | None = None  # a notebook's settings cell (settings(full=...)); None in scripts


def fast() -> bool:
    """FAST mode: ``ASTROBENCH_FAST`` decides when set (1/true/0/false); otherwise FAST when ``CI`` is set; otherwise,
    in a notebook, its settings cell decides (quick unless ``FULL = True``); a script without either runs full."""
    value = os.environ.get("ASTROBENCH_FAST")
    if value is not None:
        v = value.strip().lower()
        if v in TRUE:
            return True
        if v in FALSE:
            return False
        raise SettingError(f"ASTROBENCH_FAST={value!r}: expected 1/true/yes/on or 0/false/no/off")
    if "CI" in os.environ:
        return True
    return _FULL is not None and not _FULL


def settings(full: bool = False) -> bool:
    """A notebook's settings cell: quick (FAST data and training) unless ``full=True``, so Colab and Binder, which
    set neither ``CI`` nor ``ASTROBENCH_FAST``, start quick. ``ASTROBENCH_FAST`` still overrides and CI stays FAST.
    Every later ``fast()`` in this kernel (``data.load``, a script's ``main``) follows; returns it."""
    global _FULL
    if not isinstance(full, bool):
        raise SettingError(f"FULL={full!r}: expected True or False")
    _FULL = full
    return fast()


def pretrained(load, *args, **kwargs):
    """``load(*args, **kwargs)`` of a script's shipped model (``<track>/pretrained/``), or None, after printing the
    one-line reason, when there is none for this data (a stale or missing model): the notebook goes on without it."""
    try:
        return load(*args, **kwargs)
    except BaselineError as err:
        print(f"no pretrained model: {err}")
        return None


def seed_everything(seed: int = 0) -> int:
    """Seed Python, numpy and (when installed) torch; returns the seed."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - legacy global state is what third-party code draws from
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:
        return seed
    torch.manual_seed(seed)
    return seed


def device(prefer: str = "auto") -> str:
    """'cuda' when a GPU is visible to torch, else 'mps' on Apple silicon, else 'cpu'. ``ASTROBENCH_DEVICE``
    (auto/cpu/cuda/mps), when set, replaces "auto": e.g. a notebook CI on a GPU runner forced to the CPU."""
    if prefer == "auto":
        prefer = os.environ.get("ASTROBENCH_DEVICE", "auto").strip().lower() or "auto"
        if prefer not in {"auto", "cpu", "cuda", "mps"}:
            raise SettingError(f"ASTROBENCH_DEVICE={prefer!r}: expected auto, cpu, cuda or mps")
    if prefer not in {"auto", "cpu", "cuda", "mps"}:
        raise ValueError(f"device {prefer!r}: expected auto, cpu, cuda or mps")
    if prefer != "auto":
        return prefer
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
