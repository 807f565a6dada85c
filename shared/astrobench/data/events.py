"""An event's released test split as a data source: under ``$ASTROBENCH_EVENT`` (a folder written by
``astrobench event release``, or an organiser's private event folder while it scores), ``data.load(name, "test")``
returns the event's split of ``name`` instead of the public one. Making releases and scoring them is
``astrobench.event``'s (the organisers' layer); reading them is the data layer's, like any other source."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import registry
from .dataset import _to_dataset
from .errors import DataError

ENV_VAR = "ASTROBENCH_EVENT"


def _mode(fast: bool) -> str:
    return "fast" if fast else "full"


def event_split(name: str, split: str, fast: bool):
    """The Dataset ``data.load(name, split)`` returns under ``ASTROBENCH_EVENT``, or None (not in the event)."""
    root = os.environ.get(ENV_VAR)
    if not root:
        return None
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"${ENV_VAR} {root}: no such folder; expected one written by `astrobench event release` "
                        "(or unset it)")
    folder = root / name
    files = sorted(folder.glob(f"{split}.*.npy")) if folder.is_dir() else []
    if not files:
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    spec = registry.get(name)
    if manifest["version"] != spec.version:
        raise DataError(f"${ENV_VAR} {root}: {name} v{manifest['version']} in the event, v{spec.version} in this "
                        "kit; expected the kit version the organisers used")
    rows = manifest["rows"][split]
    if manifest["fast"] != fast:
        raise DataError(f"${ENV_VAR} {root}: the event holds the {_mode(manifest['fast'])} {split} split of {name} "
                        f"({rows} rows), not the {_mode(fast)} one; expected ASTROBENCH_FAST="
                        f"{int(manifest['fast'])} (or unset {ENV_VAR})")
    content = {p.name[len(split) + 1 : -4]: np.load(p, mmap_mode="r", allow_pickle=False) for p in files}
    if "truth" not in content:  # a release: the row index is all the table holds
        content["truth"] = {"id": np.arange(rows, dtype=np.int64)}
    meta = {k: manifest.get(k) for k in ("name", "version", "fast", "config", "sha256", "seed", "inputs")}
    meta.update(split=split, path=str(folder), kind="event", event=manifest["event"], sizes={split: rows},
                files={k: v for k, v in manifest["files"].items() if k.startswith(f"{split}.")})
    return _to_dataset(name, split, content, meta)


def release_in_use() -> Path | None:
    """The folder ``$ASTROBENCH_EVENT`` names when it is a release (test inputs, no truth), else None."""
    root = os.environ.get(ENV_VAR)
    index = Path(root).expanduser() / "event.json" if root else None
    if index is None or not index.is_file():
        return None
    try:
        kind = json.loads(index.read_text()).get("kind")
    except (ValueError, AttributeError):
        kind = None
    return Path(root) if kind == "public" else None
