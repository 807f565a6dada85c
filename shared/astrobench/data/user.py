"""Your own data behind the kit's API.

>>> from astrobench import data
>>> data.register_arrays("my-galaxies", {"train": {"images": x_train, "truth": {"z": z_train}},
...                                      "test": {"images": x_test, "truth": {"z": z_test}}},
...                      config={"sky_sigma": [0.007, 0.010, 0.030]})
>>> data.load("my-galaxies", "train").images.shape

The arrays are written once, with a manifest and sha256 hashes, to ``<cache>/user/<name>/`` in the layout of a
generated dataset. From then on ``data.load(name, split)`` returns them memory-mapped, in this process and in
every other one, so a track's script takes them too: ``python anomaly/autoencoder.py --dataset my-galaxies``.
FAST and full mode see the same arrays. ``register_files`` does the same from one ``.npz`` file per split;
``data.unregister(name)`` deletes them. ``config`` holds what the tracks read from ``meta["config"]`` (e.g. the
per-band ``sky_sigma`` that the generative and anomaly tracks normalise by); each track's README lists its keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .cache import cache_dir, check_writable, write_manifest
from .errors import DataError
from .specs import SimulatedSpec

FOLDER = "user"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def folder() -> Path:
    return cache_dir() / FOLDER


def _generate_missing(name):
    def generate(sizes, seed, progress):  # the files are written by register_arrays; load never calls this
        raise DataError(f"dataset {name!r}: its files in {folder() / name} are gone; register it again")
    return generate


def _spec(path: Path):
    m = json.loads((path / "manifest.json").read_text())
    spec = SimulatedSpec(name=m["name"], version=m["version"], description=m["description"],
                         tracks=tuple(m["tracks"]), sizes={"full": m["sizes"], "fast": m["sizes"]},
                         generate=_generate_missing(m["name"]), config=lambda: m["config"], seed=0,
                         licence=m["licence"], citation=m["citation"])
    spec.path = path  # data.path_of: the user folder for FAST and full alike
    return spec


def specs() -> list:
    """The registered user datasets (one folder each under ``<cache>/user``)."""
    root = folder()
    if not root.is_dir():
        return []
    return [_spec(p) for p in sorted(root.iterdir()) if (p / "manifest.json").is_file()]


def _columns(split: str, content: dict, constants: tuple) -> tuple[dict, dict, int]:
    if not isinstance(content, dict) or not content:
        raise DataError(f"split {split!r}: expected a dict of arrays (and optionally 'truth': a dict of columns)")
    truth = content.get("truth", {})
    arrays = {k: np.asarray(v) for k, v in content.items() if k != "truth"}
    if not arrays:
        raise DataError(f"split {split!r}: expected at least one array besides 'truth', e.g. 'images'")
    if not isinstance(truth, dict):
        raise DataError(f"split {split!r}: expected 'truth' to be a dict of 1-D columns")
    truth = {k: np.asarray(v) for k, v in truth.items()}
    rows = [(k, v) for k, v in [*arrays.items(), *truth.items()] if k not in constants]
    n = {len(v) if v.ndim else -1 for _, v in rows}
    if len(n) != 1 or -1 in n or 0 in n:
        lengths = {k: (len(v) if v.ndim else "scalar") for k, v in rows}
        raise DataError(f"split {split!r}: expected every array and truth column to have the same first length "
                        f"> 0, got {lengths}")
    for k, v in [*arrays.items(), *truth.items()]:
        if v.dtype == object:
            raise DataError(f"split {split!r}: {k!r} has dtype object; expected numbers or fixed-width strings")
    for k, v in truth.items():
        if v.ndim != 1:
            raise DataError(f"split {split!r}: truth column {k!r} has shape {v.shape}; expected 1-D")
    for k in arrays:
        if "." in k:
            raise DataError(f"split {split!r}: array name {k!r} contains '.'; expected a plain name")
    return arrays, truth, n.pop()


def register_arrays(name: str, splits: dict, config: dict | None = None, description: str = "",
                    tracks: tuple = (), licence: str = "as its owners say", citation: str = "",
                    constants: tuple = ("wavelength",), reserved=()) -> Path:
    """Store ``splits`` ({split: {array name: array, "truth": {column: 1-D array}}}) as dataset ``name``;
    returns its folder. Every split must have the same array names, and every array one row per object, except
    the ``constants`` (e.g. the spectra's common ``wavelength`` grid). Registering a name again replaces it.
    ``reserved``: the built-in names (``data.register_arrays`` passes them), which a user set may not take."""
    if not isinstance(name, str) or not NAME.match(name):
        raise DataError(f"dataset name {name!r}: expected lower-case letters, digits, '-', '_' or '.'")
    if name in reserved:
        raise DataError(f"dataset name {name!r} is a built-in dataset; expected a new name")
    if not isinstance(splits, dict) or not splits:
        raise DataError("expected splits as a dict, e.g. {'train': {...}, 'test': {...}}")
    checked = {s: _columns(s, c, tuple(constants)) for s, c in splits.items()}
    keys = {s: sorted(a) for s, (a, _, _) in checked.items()}
    if len({tuple(k) for k in keys.values()}) != 1:
        raise DataError(f"expected the same arrays in every split, got {keys}")
    config = dict(config or {})
    try:
        json.dumps(config)
    except TypeError as err:
        raise DataError(f"config: expected JSON-serialisable values ({err})") from None
    final = folder() / name
    check_writable(final.parent)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=final.parent))
    try:  # written beside, then moved into place: never a half-written dataset
        digest = hashlib.sha256()
        for split, (arrays, truth, n) in checked.items():
            for key, value in arrays.items():
                np.save(tmp / f"{split}.{key}.npy", np.ascontiguousarray(value), allow_pickle=False)
            cols = list(truth) or ["index"]
            values = [truth[c] for c in truth] or [np.arange(n)]
            np.save(tmp / f"{split}.truth.npy", np.rec.fromarrays(values, names=cols), allow_pickle=False)
        for p in sorted(tmp.iterdir()):
            digest.update(p.name.encode() + p.read_bytes())
        sizes = {s: n for s, (_, _, n) in checked.items()}
        write_manifest(tmp, {"name": name, "version": f"user-{digest.hexdigest()[:12]}", "seed": 0, "fast": False,
                             "sizes": sizes, "config": config, "description": description or f"{name} (user data)",
                             "tracks": list(tracks), "licence": licence, "citation": citation})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def register_files(name: str, files: dict, config: dict | None = None, **kwargs) -> Path:
    """``register_arrays`` from one ``.npz`` per split ({split: path}); keys ``truth_<column>`` become truth
    columns, every other key an array."""
    splits = {}
    for split, path in files.items():
        path = Path(path)
        if not path.is_file():
            raise DataError(f"split {split!r}: {path} not found; expected an .npz file")
        try:
            with np.load(path, allow_pickle=False) as z:
                content = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            raise DataError(f"split {split!r}: {path} is not a readable .npz file ({err})") from None
        splits[split] = {k: v for k, v in content.items() if not k.startswith("truth_")}
        splits[split]["truth"] = {k[len("truth_"):]: v for k, v in content.items() if k.startswith("truth_")}
    return register_arrays(name, splits, config=config, **kwargs)


def remove(name: str) -> bool:
    """Delete a user dataset's files; False if there were none."""
    path = folder() / name
    if (path / "manifest.json").is_file():
        shutil.rmtree(path)
        return True
    return False
