"""Helpers every notebook and baseline uses: FAST mode, seeding, device choice."""

from __future__ import annotations

import os
import random

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class SettingError(ValueError):
    """An environment variable the kit reads has a value it cannot use."""


def fast() -> bool:
    """FAST mode: ``ASTROBENCH_FAST`` decides when set (1/true/0/false); otherwise FAST iff ``CI`` is set."""
    value = os.environ.get("ASTROBENCH_FAST")
    if value is not None:
        v = value.strip().lower()
        if v in TRUE:
            return True
        if v in FALSE:
            return False
        raise SettingError(f"ASTROBENCH_FAST={value!r}: expected 1/true/yes/on or 0/false/no/off")
    return "CI" in os.environ


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
    """'cuda' when a GPU is visible to torch, else 'mps' on Apple silicon, else 'cpu'."""
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
