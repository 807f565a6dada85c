"""Data of multimodal/contrastive.py: the train/test tensors, their preprocessing from the dataset's own noise model,
and the augmentations (the script imports them; notebooks call them as ``contrastive.<name>``)."""

from __future__ import annotations

import numpy as np
import torch
from astrobench import data

CROP = 48  # central image pixels the encoders see (of 64)
SPACE_CROP = 64  # central space pixels (of 84 x 0.2"): 12.8", the sky of the ground crop (48 x 0.262" = 12.6")
SPEC_NOISE = 1.0  # augmentation noise, in units of the simulator's per-pixel sigma
SPEC_MASK_MAX = 48  # widest masked stretch of the 512-pixel spectrum


def load_data(dataset: str, fast: bool, modalities=("ground", "spectrum")) -> dict:
    """Train/test tensors plus the preprocessing constants ``prep`` (from the dataset's own noise model)."""
    train, test = data.load(dataset, "train", fast=fast), data.load(dataset, "test", fast=fast)
    if not {"images", "spectra"} <= set(train.arrays):
        raise data.DataError(f"dataset {dataset!r} has arrays {', '.join(train.arrays)}; expected images and spectra")
    if "space" in modalities and "space" not in train.arrays:
        raise data.DataError(f"--modalities {','.join(modalities)}: dataset {dataset!r} has no space images "
                             f"(arrays {', '.join(train.arrays)}); expected one with a 'space' array: galaxies-multi")
    conf = train.meta["config"]
    spec_raw = torch.from_numpy(np.array(train.spectra, np.float32))
    prep = {"sky_sigma": list(conf["sky_sigma"]), "sigma_sky": float(conf["spectrum"]["sigma_sky"]),
            "gain": float(conf["spectrum"]["gain"])}
    a = torch.asinh(spec_raw / prep["sigma_sky"])
    prep.update(spec_mean=float(a.mean()), spec_sd=float(a.std()))
    d = {"prep": prep, "train": train, "test": test, "modalities": tuple(modalities),
         "img_train": preprocess_images(train.images, prep["sky_sigma"]), "spec_train": spec_raw,
         "img_test": preprocess_images(test.images, prep["sky_sigma"]),
         "spec_test": torch.from_numpy(np.array(test.spectra, np.float32))}
    if "space" in modalities:  # one band (VIS), its own sky noise
        prep["space_sky_sigma"] = [float(conf["space"]["sky_sigma_nmgy"])]
        for split, ds in (("train", train), ("test", test)):
            d[f"space_{split}"] = preprocess_images(ds.space, prep["space_sky_sigma"], SPACE_CROP)
    return d


def preprocess_images(images, sky_sigma, crop: int = CROP) -> torch.Tensor:
    """nanomaggies -> arcsinh(flux / sky noise) per band: noise ~ 1, bright cores compressed, colours kept.
    Central CROP x CROP pixels: 99 % of the galaxies have a half-light radius < 2.7" (10 px), the rest is sky."""
    lo = (images.shape[-1] - crop) // 2
    out = torch.empty((len(images), images.shape[1], crop, crop), dtype=torch.float32)
    sigma = np.asarray(sky_sigma, np.float32)[None, :, None, None]
    for i in range(0, len(images), 2000):  # chunks of a memory map (a full split is ~1 GB), pages released as it
        x = np.asarray(images[i : i + 2000, :, lo : lo + crop, lo : lo + crop])  # goes (Binder: 2 GB)
        out[i : i + 2000] = torch.from_numpy(np.arcsinh(x / sigma))
        data.release_pages(images)
    return out


def preprocess_spectra(spectra: torch.Tensor, prep: dict) -> torch.Tensor:
    """arcsinh(flux / sky noise), standardised with the train set's scalar mean and sd."""
    return (torch.asinh(spectra / prep["sigma_sky"]) - prep["spec_mean"]) / prep["spec_sd"]


def augment_images(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One of the 8 symmetries of the square per galaxy (two flips and a transpose generate them)."""
    f = torch.rand(len(x), 3, generator=gen) < 0.5
    x = torch.where(f[:, 0, None, None, None], x.flip(-1), x)
    x = torch.where(f[:, 1, None, None, None], x.flip(-2), x)
    return torch.where(f[:, 2, None, None, None], x.transpose(-1, -2), x)


def augment_spectra(raw: torch.Tensor, gen: torch.Generator, prep: dict) -> torch.Tensor:
    """Extra noise from the simulator's noise model, then one masked stretch; returns preprocessed spectra."""
    sigma = torch.sqrt(prep["sigma_sky"] ** 2 + prep["gain"] * raw.clamp(min=0))
    x = preprocess_spectra(raw + SPEC_NOISE * sigma * torch.randn(raw.shape, generator=gen), prep)
    b, n = x.shape
    width = torch.randint(0, SPEC_MASK_MAX + 1, (b, 1), generator=gen)
    start = (torch.rand(b, 1, generator=gen) * (n - width)).long()
    pos = torch.arange(n)[None]
    return x.masked_fill((pos >= start) & (pos < start + width), 0.0)
