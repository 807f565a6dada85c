"""Real survey and simulation data behind the same ``load`` as the simulated sets.

Each entry is a :class:`RemoteSpec` (URLs with mirrors, size, the owners' sha256 or none, licence,
citation, the simulated set it can replace) plus an adapter that converts the raw file, once and
in chunks (the raw file is read lazily, never whole), into the array layout of that simulated set,
cached as memory-mapped ``.npy`` files. The processed manifest's ``config`` (``Dataset.meta["config"]``)
carries the keys the tracks read from the simulated sets: ``sky_sigma`` (estimated from the image borders),
``factor``, ``extensive`` and ``channels`` for super-resolution pairs. A notebook switches with one variable:
``DATASET = "galaxy10-decals"`` instead of ``"galaxies"``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from .cache import atomic_dir, locked, write_manifest
from .specs import RemoteSpec

ADAPTER_VERSION = "2"  # bump when the processed layout changes: old caches are rebuilt
TEST_FRACTION = 0.1
SPLIT_SEED = 0
FAST_SIZES = {"train": 800, "test": 200}
CHUNK = 256  # rows converted at a time: bounded memory on Binder's 2 GB
LR_FACTOR = 4  # super-resolution pairs: LR = FACTOR x FACTOR block mean of HR (the superres-fields degradation)
BORDER = 4  # pixels of the image frame used to estimate the background noise
NOISE_IMAGES = 2000  # training images the noise estimate looks at


def _processed(path: Path, build) -> Path:
    """Run ``build(tmp_dir)`` once per raw file (locked, atomic) and return the processed directory."""
    out = path.parent / f"processed-v{ADAPTER_VERSION}"
    if not (out / "manifest.json").is_file():
        with locked(out):
            if not (out / "manifest.json").is_file():
                with atomic_dir(out) as tmp:
                    write_manifest(tmp, {"config": build(tmp)})
    return out


def _split_indices(n: int, groups: np.ndarray | None = None) -> dict:
    """Seeded train/test split; with ``groups``, whole groups go to one side (no leakage)."""
    rng = np.random.default_rng(SPLIT_SEED)
    if groups is None:
        order = rng.permutation(n)
        n_test = round(TEST_FRACTION * n)
        return {"train": np.sort(order[n_test:]), "test": np.sort(order[:n_test])}
    uniq = rng.permutation(np.unique(groups))
    n_test = max(1, round(TEST_FRACTION * len(uniq)))
    test = np.isin(groups, uniq[:n_test])
    return {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}


def _load_processed(out: Path, split: str, fast: bool) -> tuple[dict, dict]:
    """(memory-mapped arrays of one split, the processed set's config)."""
    import json

    content = {}
    for p in sorted(out.glob(f"{split}.*.npy")):
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
        content[p.name[len(split) + 1 : -4]] = arr[: FAST_SIZES[split]] if fast and arr.ndim else arr
    with open(out / "manifest.json") as f:
        return content, json.load(f)["config"]


def border_noise(images: np.ndarray) -> list:
    """Background noise per band: 1.4826 x MAD of each image's outer BORDER-pixel frame, median over images.
    Floored at a quarter of the 8-bit step of the composites (a clipped, flat sky has MAD 0)."""
    x = np.asarray(images)
    parts = (x[..., :BORDER, :], x[..., -BORDER:, :], x[..., BORDER:-BORDER, :BORDER], x[..., BORDER:-BORDER, -BORDER:])
    frame = np.concatenate([q.reshape(*x.shape[:2], -1) for q in parts], axis=-1).astype(np.float64)  # the frame only
    mad = np.median(np.abs(frame - np.median(frame, axis=-1, keepdims=True)), axis=-1)
    return [float(max(1.4826 * v, 0.25 / 255)) for v in np.median(mad, axis=0)]


def _block_mean(x: np.ndarray, factor: int) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5), dtype=np.float64)


def _write_images(tmp: Path, source, splits: dict, convert) -> None:
    """Convert every row of ``source`` into ``<split>.images.npy`` (float32, N x 3 x 64 x 64) and its 4x4 block
    mean ``<split>.lr.npy``, for each split's sorted row ``index``. One pass in file order, in blocks aligned with
    the HDF5 chunks, so each compressed chunk is read once (fancy-indexed reads per split were 9x slower); each
    split's rows then arrive in order and are appended to plain files (memory-mapped outputs kept ~0.9 GB of dirty
    pages resident, near Binder's 2 GB)."""
    n = len(source)
    chunk_rows = (getattr(source, "chunks", None) or (CHUNK,))[0]
    step = chunk_rows * max(1, CHUNK // chunk_rows)
    which = np.full(n, -1, np.int8)  # rows in no split are skipped
    with contextlib.ExitStack() as stack:
        files = []
        for k, (split, index) in enumerate(splits.items()):
            which[index] = k
            pair = []
            for key, size in (("images", 64), ("lr", 64 // LR_FACTOR)):
                f = stack.enter_context(open(tmp / f"{split}.{key}.npy", "wb"))
                header = {"descr": "<f4", "fortran_order": False, "shape": (len(index), 3, size, size)}
                np.lib.format.write_array_header_1_0(f, header)
                pair.append(f)
            files.append(pair)
        for i in range(0, n, step):
            hr = convert(source[i : i + step])  # contiguous rows
            lr = _block_mean(hr, LR_FACTOR).astype("<f4")
            for k, (f_hr, f_lr) in enumerate(files):
                sel = which[i : i + step] == k
                f_hr.write(np.ascontiguousarray(hr[sel], dtype="<f4").tobytes())
                f_lr.write(np.ascontiguousarray(lr[sel]).tobytes())


# ------------------------------------------------------------------ Galaxy10 (DECaLS and SDSS)

def _galaxy10_bin4(images: np.ndarray) -> np.ndarray:
    """(n, 256, 256, 3) uint8 RGB -> (n, 3, 64, 64) float32 in [0, 1], g, r, z order, 4 x 4 block mean."""
    x = images.astype(np.float32)
    x /= 255.0  # in place: one float copy of the block
    x = x.reshape(len(x), 64, 4, 64, 4, 3).mean(axis=(2, 4))
    return x[..., ::-1].transpose(0, 3, 1, 2)  # the colour composites map z->R, r->G, g->B


def _galaxy10_crop(images: np.ndarray) -> np.ndarray:
    """(n, 69, 69, 3) uint8 RGB -> central (n, 3, 64, 64) float32 in [0, 1], g, r, i order."""
    x = images[:, 2:66, 2:66].astype(np.float32) / 255.0
    return x[..., ::-1].transpose(0, 3, 1, 2)  # SDSS composites map i->R, r->G, g->B


def _galaxy10_adapter(convert, bands, pixel_scale):
    def adapter(path: Path, split: str, fast: bool) -> tuple[dict, dict]:
        import h5py

        def build(tmp: Path) -> dict:
            with h5py.File(path, "r") as f:
                labels = np.asarray(f["ans"]).astype(np.int64)
                idx = _split_indices(len(labels))
                _write_images(tmp, f["images"], idx, convert)
                for s, index in idx.items():
                    cols = {"label": labels[index], "source_index": index.astype(np.int64)}
                    for key in ("ra", "dec", "redshift", "pxscale"):
                        if key in f:
                            cols[key] = np.asarray(f[key])[index].astype(np.float64)
                    rec = np.rec.fromarrays(list(cols.values()), names=list(cols))
                    np.save(tmp / f"{s}.truth.npy", rec, allow_pickle=False)
                train = np.load(tmp / "train.images.npy", mmap_mode="r")[:NOISE_IMAGES]
            return {"source": path.name, "adapter_version": ADAPTER_VERSION, "split_seed": SPLIT_SEED,
                    "test_fraction": TEST_FRACTION, "bands": bands, "channels": bands, "pixel_scale": pixel_scale,
                    "units": "colour-composite intensity in [0, 1] (8-bit, already stretched by the survey)",
                    "sky_sigma": border_noise(train), "sky_sigma_from": f"1.4826 MAD of the {BORDER}-pixel border",
                    "factor": LR_FACTOR, "extensive": False, "lr": "block mean over factor x factor HR pixels"}

        return _load_processed(_processed(path, build), split, fast)

    return adapter


GALAXY10_DECALS_CLASSES = ("Disturbed", "Merging", "Round Smooth", "In-between Round Smooth", "Cigar Shaped Smooth",
                           "Barred Spiral", "Unbarred Tight Spiral", "Unbarred Loose Spiral",
                           "Edge-on without Bulge", "Edge-on with Bulge")

# ------------------------------------------------------------------ CAMELS CMD 2-D maps


def _camels_adapter(path: Path, split: str, fast: bool) -> tuple[dict, dict]:
    """CMD maps (n, 256, 256) -> 128^2 tiles as density / mean density, plus 4x4 block-mean LR (superres-fields layout).

    Maps of one simulation are correlated (15 projections per simulation), so the split keeps each
    simulation on one side.
    """
    def build(tmp: Path) -> dict:
        maps = np.load(path, mmap_mode="r")
        n_maps = maps.shape[0]
        sim = np.arange(n_maps) // 15
        for s, index in _split_indices(n_maps, groups=sim).items():
            hr = np.lib.format.open_memmap(tmp / f"{s}.hr.npy", mode="w+", dtype=np.float32,
                                           shape=(4 * len(index), 1, 128, 128))
            for j, m in enumerate(index):
                field = np.asarray(maps[m], dtype=np.float64)
                field = field / field.mean()
                tiles = field.reshape(2, 128, 2, 128).transpose(0, 2, 1, 3).reshape(4, 128, 128)
                hr[4 * j : 4 * j + 4, 0] = tiles
            lr = _block_mean(np.asarray(hr), LR_FACTOR).astype(np.float32)
            np.save(tmp / f"{s}.lr.npy", lr, allow_pickle=False)
            rec = np.rec.fromarrays([np.repeat(index, 4), np.repeat(sim[index], 4), np.tile(np.arange(4), len(index))],
                                    names=["map_index", "simulation", "tile"])
            np.save(tmp / f"{s}.truth.npy", rec, allow_pickle=False)
            hr.flush()
            del hr
        return {"source": path.name, "adapter_version": ADAPTER_VERSION, "tile": 128, "npix_hr": 128, "npix_lr": 32,
                "factor": LR_FACTOR, "extensive": False, "channels": ["rho"], "box_mpc_h": 25.0 / 2,
                "units": "density / mean density of the parent map", "lr": "block mean over factor x factor HR cells",
                "periodic": False}

    return _load_processed(_processed(path, build), split, fast)


DATASETS = [
    RemoteSpec(
        name="galaxy10-decals",
        version="1",
        description="Galaxy10 DECaLS: 17 736 Legacy Survey galaxies in 10 Galaxy Zoo classes, "
                    "4x4-binned to 3x64x64 (g, r, z colour composites)",
        tracks=("generative", "anomaly", "superres"),
        urls=("https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
              "https://www.astro.utoronto.ca/~hleung/shared/Galaxy10/Galaxy10_DECals.h5"),
        filename="Galaxy10_DECals.h5",
        size_bytes=2_540_000_000,
        sha256="19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571",
        hash_source="published by the data's authors in astroNN (docs/source/galaxy10.rst and "
                    "astroNN.datasets.galaxy10, https://astronn.readthedocs.io/en/latest/galaxy10.html)",
        licence="see the Zenodo record 10845026 (images: DESI Legacy Imaging Surveys; labels: Galaxy Zoo)",
        citation="Leung & Bovy (astroNN); Walmsley et al. 2022 (Galaxy Zoo DECaLS); Dey et al. 2019 (Legacy Surveys)",
        offline_alternative="galaxies",
        adapter=_galaxy10_adapter(_galaxy10_bin4, ["g", "r", "z"], pixel_scale=4 * 0.262),  # arcsec / pixel
    ),
    RemoteSpec(
        name="galaxy10-sdss",
        version="1",
        description="Galaxy10 SDSS: 21 785 SDSS galaxies in 10 Galaxy Zoo classes, central 3x64x64 "
                    "(g, r, i colour composites)",
        tracks=("generative", "superres"),  # its classes hold no mergers: no anomaly labels
        urls=("https://zenodo.org/records/10844811/files/Galaxy10.h5",),
        filename="Galaxy10.h5",
        size_bytes=210_000_000,
        sha256="969a6b1cefcc36e09fffa86febd2f699a4aa19b837ba0427f01b0bc6ded458af",
        hash_source="published by the data's authors in astroNN (astroNN.datasets.galaxy10sdss)",
        licence="see the Zenodo record 10844811 (images: SDSS; labels: Galaxy Zoo 2)",
        citation="Leung & Bovy (astroNN); Lintott et al. 2008, 2011 (Galaxy Zoo); SDSS",
        offline_alternative="galaxies",
        adapter=_galaxy10_adapter(_galaxy10_crop, ["g", "r", "i"], pixel_scale=0.396),
    ),
    RemoteSpec(
        name="camels-cmd-mtot",
        version="1",
        description="CAMELS Multifield Dataset: total-matter 2-D maps of the IllustrisTNG CV set "
                    "(405 x 256^2), tiled to 128^2 HR + 32^2 LR pairs",
        # the CV set holds one cosmology (cosmic variance only): SBI needs the LH set's maps and parameter file
        tracks=("superres",),
        urls=("https://users.flatironinstitute.org/~fvillaescusa/priv/DEPnzxoWlaTQ6CjrXqsm0vYi8L7Jy/CMD/2D_maps/data/"
              "Maps_Mtot_IllustrisTNG_CV_z=0.00.npy",),
        filename="Maps_Mtot_IllustrisTNG_CV_z=0.00.npy",
        size_bytes=106_168_448,
        sha256=None,
        hash_source="no hash published by CAMELS: trust on first use (recorded beside the file)",
        licence="see https://camels-multifield-dataset.readthedocs.io (CAMELS data policy)",
        citation="Villaescusa-Navarro et al. 2021 (CAMELS, ApJ 915, 71); "
                 "Villaescusa-Navarro et al. 2022 (CMD, ApJS 259, 61)",
        offline_alternative="superres-fields",
        adapter=_camels_adapter,
    ),
]
