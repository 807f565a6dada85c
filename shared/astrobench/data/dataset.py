"""``Dataset``: what ``data.load`` returns, whichever source the split came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Dataset:
    """One split: named arrays (``ds.images``, ``ds.spectra``...), a truth table and metadata."""

    name: str
    split: str
    arrays: dict
    truth: object  # astropy.table.Table
    meta: dict = field(default_factory=dict)

    def __getattr__(self, key):
        arrays = self.__dict__.get("arrays", {})
        if key in arrays:
            return arrays[key]
        raise AttributeError(f"dataset {self.__dict__.get('name')!r} has no array {key!r}; "
                             f"it has {', '.join(arrays)}")

    def __getitem__(self, key):
        return self.arrays[key] if key in self.arrays else self.truth[key]

    def __len__(self):
        return len(self.truth)

    def __repr__(self):
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.arrays.items())
        return f"Dataset({self.name!r}, split={self.split!r}, {shapes}, truth={len(self.truth)} rows)"


def _to_dataset(name, split, content, meta) -> Dataset:
    from astropy.table import Table

    truth = content.pop("truth")
    table = Table(np.asarray(truth)) if not isinstance(truth, dict) else Table(truth)
    return Dataset(name=name, split=split, arrays=content, truth=table, meta=meta)
