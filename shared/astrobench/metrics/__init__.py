"""Metrics and the shared scorer behind ``astrobench score`` and every baseline.

Each track adds a module ``astrobench/metrics/<track>.py`` defining

    def score(pred: dict[str, np.ndarray], task: str | None = None) -> dict

which validates its input (raising :class:`ScoreInputError` with a one-line message naming what
was expected) and returns the metrics dict that the baseline also writes to metrics.json.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ScoreInputError

# the key of predictions.npz that records the split they were made on (``astrobench.data.identity``, as JSON)
MADE_ON = "made_on"


class Predictions(dict):
    """The arrays of a predictions file, and its path (what ``load_predictions`` returns)."""

    path: Path | None = None


def tracks() -> list:
    """Tracks that have a scorer (a metrics module with a ``score`` function)."""
    names = []
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_") and hasattr(importlib.import_module(f"{__name__}.{mod.name}"), "score"):
            names.append(mod.name)
    return sorted(names)


def load_predictions(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file; expected a predictions .npz written by a baseline")
    try:
        with open(path, "rb") as fh:  # our handle: closed on any error
            f = np.load(fh, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an archive of named arrays")
            with f:
                pred = Predictions({k: f[k] for k in f.files})
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:  # empty, truncated, not an .npz
        why = "not an archive of arrays" if "pickle" in str(err) else str(err)  # numpy's advice is not for users
        raise ScoreInputError(f"{path}: not a readable .npz file ({why}); expected one written by a baseline or "
                              "np.savez") from None
    pred.path = path
    return pred


def made_on(pred: dict) -> dict | None:
    """The ``made_on`` record of predictions (None in files written before it existed)."""
    if MADE_ON not in pred:
        return None
    try:
        made = json.loads(str(np.asarray(pred[MADE_ON])))
        assert isinstance(made, dict) and isinstance(made.get("inputs", {}), dict)
    except (ValueError, AssertionError):
        raise ScoreInputError(f"{MADE_ON!r} is not a record of the split the predictions were made on; expected "
                              "the JSON string the kit writes (astrobench.baseline.save_predictions)") from None
    return made


def check_made_on(made: dict | None, scored: list, path=None) -> None:
    """Predictions ``made`` on one split, scored against the splits whose metadata is ``scored``: a one-line
    ScoreInputError unless one of them is the split they were made on. Files without the record: a warning."""
    from .. import data

    if made is None:
        if path is not None and scored:
            print(f"astrobench: warning: {path} does not record the split it was made on (an older file); scored "
                  f"as if made on {data.describe(data.identity(scored[-1]))}", file=sys.stderr)
        return
    candidates = [m for m in scored if m.get("split") == made.get("split")]
    problems = [data.mismatch(made, m) for m in candidates]
    if problems and all(problems):
        hint = ("predict with $ASTROBENCH_EVENT set to the event's release" if candidates[-1].get("kind") == "event"
                else "predict without $ASTROBENCH_EVENT")
        raise ScoreInputError(f"{problems[-1]}; expected predictions made on that split: {hint}")


def score(target: str, pred, task: str | None = None) -> dict:
    """Score predictions (a dict of arrays or an .npz path) for ``track`` or ``track:task``."""
    track, _, sub = target.partition(":")
    task = task or (sub or None)
    available = tracks()
    if track not in available:
        raise ScoreInputError(f"no scorer for track {track!r}; expected one of: {', '.join(available) or 'none yet'}")
    if not isinstance(pred, dict):
        pred = load_predictions(pred)
    from .. import data

    release = data.events.release_in_use()
    if release is not None:  # no truth there: one clear line, not a scorer's KeyError
        raise ScoreInputError(f"${data.events.ENV_VAR} {release} is an event release: it holds no test truth; "
                              "expected it unset to score on the public test split (the organisers score the event's)")
    made = made_on(pred)
    module = importlib.import_module(f"{__name__}.{track}")
    with data.watching() as scored:
        result = module.score({k: v for k, v in pred.items() if k != MADE_ON}, task=task)
    check_made_on(made, scored, getattr(pred, "path", None))
    return result


def require(pred: dict, key: str, *, ndim=None, shape=None, kind: str = "f", min_rows=None) -> np.ndarray:
    """Check one predictions array; raise a one-line ScoreInputError naming what was expected.

    ``shape`` may hold None for free axes; ``kind`` is a numpy dtype kind string ('f', 'i', 'fi'...).
    """
    if key not in pred:
        raise ScoreInputError(f"missing key {key!r}; expected keys: {key} (found: {', '.join(sorted(pred)) or 'none'})")
    arr = np.asarray(pred[key])
    want = "x".join("N" if s is None else str(s) for s in shape) if shape is not None else None
    if ndim is not None and arr.ndim != ndim:
        raise ScoreInputError(f"{key!r} has {arr.ndim} dims {arr.shape}; expected {ndim} dims"
                              + (f" ({want})" if want else ""))
    mismatch = shape is not None and (
        arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)))
    if mismatch:
        raise ScoreInputError(f"{key!r} has shape {arr.shape}; expected {want}")
    if arr.dtype.kind not in kind:
        raise ScoreInputError(f"{key!r} has dtype {arr.dtype}; expected a {'/'.join(_KINDS[k] for k in kind)} array")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ScoreInputError(f"{key!r} contains {int(np.sum(~np.isfinite(arr)))} NaN/inf values; expected finite")
    if min_rows is not None and len(arr) < min_rows:
        raise ScoreInputError(f"{key!r} has {len(arr)} rows; expected at least {min_rows}")
    return arr


_KINDS = {"f": "float", "i": "int", "u": "unsigned int", "b": "bool"}


def split_mode(n: int, dataset: str, split: str = "test") -> bool:
    """Which variant (True = FAST) of ``dataset`` has ``n`` rows in ``split``; error if neither."""
    from ..data import registry

    spec = registry.get(dataset)
    if spec.kind == "remote":  # sizes known once the file is converted; FAST takes the first rows
        from .. import data
        from ..data import real

        full = len(data.load(dataset, split, fast=False, progress=False))
        sizes = {"full": full, "fast": min(real.FAST_SIZES[split], full)}  # equal: the full split
    else:
        sizes = {mode: spec.sizes[mode][split] for mode in ("fast", "full")}
    for mode, size in sizes.items():
        if n == size:
            return mode == "fast"
    raise ScoreInputError(
        f"{n} rows; expected the {dataset} {split} split: {sizes['full']} (full) or {sizes['fast']} (FAST)")
