"""The simulated sky against published statistics (sources in the card data/cards/galaxies.md):
galaxy number counts (r band: the Driver et al. 2016 compilation and DESI Legacy Surveys DR8, Ruiz-Macias et al.
2020; i band: COSMOS2020, Weaver et al. 2022, Table 2), the size-magnitude relation (Shen et al. 2003), the
bright-neighbour rate that follows from the counts, and the scene truth and segmentation of `galaxies`."""

import numpy as np
import pytest
from astrobench.sim import galaxies as G

# Weaver et al. 2022 (ApJS 258, 11), Table 2, i band: log10(N / mag / deg^2) at bin centres 19.25 ... 22.75
COSMOS2020_I = {19.25: 3.01, 19.75: 3.23, 20.25: 3.44, 20.75: 3.64, 21.25: 3.85, 21.75: 4.03, 22.25: 4.21,
                22.75: 4.38}


# Ruiz-Macias et al. 2020 (RNAAS 4, 187), the DESI Bright Galaxy Survey selection on Legacy Surveys DR8 (DECaLS
# depth) r-band photometry, after star-galaxy separation: ~800 galaxies per deg^2 at r < 19.5 (BRIGHT) and ~600 at
# 19.5 <= r < 20 (FAINT)
DESI_BGS_R = {(10.0, 19.5): 800.0, (19.5, 20.0): 600.0}


# Driver et al. 2016 (ApJ 827, 108), the galaxy number-count compilation of its Tables 1 and 3 (machine-readable
# release, 4 May 2016), r band: N per 0.5 mag per deg^2 at bin centres 17.0 ... 21.0 (bins +-0.25 mag), i.e. the
# sample's range r < 21 and a quarter magnitude past it. 17.0-19.5: SDSS/GAMA (Wright et al. 2016, 5 % cosmic
# variance); 20.0-21.0: Subaru (Andrews et al. 2016, 11 %), the only rows there.
DRIVER2016_R = {17.0: 24.3, 17.5: 44.7, 18.0: 81.7, 18.5: 145.6, 19.0: 250.4, 19.5: 403.7, 20.0: 700.6,
                20.5: 1159.5, 21.0: 1677.1}


def test_r_band_counts_follow_driver2016_over_the_sample_range_within_30_percent():
    area = 2.0  # 2 deg^2: ~50 galaxies in the brightest bin, so Poisson noise stays well inside the 30 %
    mag_r = np.asarray(G.draw_field(area, 21.25, seed=12)["mag_r"])
    for centre, published in DRIVER2016_R.items():
        ours = np.sum((mag_r >= centre - 0.25) & (mag_r < centre + 0.25)) / area
        assert abs(ours / published - 1) < 0.3, f"r = {centre} +- 0.25: {ours:.0f} vs {published:.0f} per deg^2"


def test_r_band_counts_follow_desi_legacy_surveys_within_30_percent():
    area = 0.5
    mag_r = np.asarray(G.draw_field(area, 20.0, seed=12)["mag_r"])
    for (lo, hi), published in DESI_BGS_R.items():
        ours = np.sum((mag_r >= lo) & (mag_r < hi)) / area
        assert abs(ours / published - 1) < 0.3, f"r in [{lo}, {hi}): {ours:.0f} vs {published:.0f} per deg^2"


def test_galaxy_counts_follow_cosmos2020_within_30_percent():
    area = 0.1
    cols = G._draw_area(area, G.SKYPY_M_LIM + 2.5, seed=11)
    kcorrect = G._import_skypy().galaxies.spectrum.kcorrect
    mag_i = np.ravel(kcorrect.apparent_magnitudes(cols["coeff"], cols["z"], ["decam2014-i"], G._cosmology(),
                                                  stellar_mass=cols["mstar"], resolution=G.KCORRECT_Z_GRID))
    for lo in (19.0, 20.0, 21.0, 22.0):  # 1-mag bins: two of the table's 0.5-mag bins each
        ours = np.sum((mag_i >= lo) & (mag_i < lo + 1)) / area
        published = 0.5 * (10 ** COSMOS2020_I[lo + 0.25] + 10 ** COSMOS2020_I[lo + 0.75])
        assert abs(ours / published - 1) < 0.3, f"i in [{lo}, {lo + 1}): {ours:.0f} vs {published:.0f} per deg^2"


def shen2003_r50_kpc(abs_mag, red):
    """Median half-light radius [kpc] at absolute magnitude M: Shen et al. 2003 (MNRAS 343, 978) eq. 14 (late
    types) and 15 (early types), with the parameters the population draws with (SkyPy's and SLSim's configs)."""
    late = 10 ** (-0.4 * 0.21 * abs_mag + (0.53 - 0.21) * np.log10(1 + 10 ** (-0.4 * (abs_mag + 20.52))) - 1.31)
    return np.where(red, 10 ** (-0.4 * 0.60 * abs_mag - 4.63), late)


def test_sizes_follow_shen2003():
    t = G.draw_field(0.25, G.MAG_LIMIT_R, seed=13)
    z, abs_mag, red = (np.asarray(t[k]) for k in ("z", "abs_mag_B", "is_red"))
    kpc = np.asarray(t["hlr_arcsec"]) * G._cosmology().angular_diameter_distance(z).to_value("kpc") / 206264.806
    offset = np.log10(kpc) - np.log10(shen2003_r50_kpc(abs_mag, red == 1))
    for population in (0, 1):
        for lo in np.arange(-23.0, -17.0):
            sel = (red == population) & (abs_mag >= lo) & (abs_mag < lo + 1)
            if sel.sum() >= 50:  # the rendered bulge + disk of a red galaxy is ~0.1 dex more compact (card)
                assert abs(np.median(offset[sel])) < 0.15, (population, lo, np.median(offset[sel]))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    import os

    from astrobench import data

    old = os.environ.get("ASTROBENCH_DATA")
    os.environ["ASTROBENCH_DATA"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield data.load("galaxies", "train", fast=True, progress=False)
    finally:
        if old is None:
            os.environ.pop("ASTROBENCH_DATA")
        else:
            os.environ["ASTROBENCH_DATA"] = old


@pytest.mark.slow
def test_bright_neighbours_as_the_counts_say(scenes):
    t = scenes.truth
    field = G.draw_field(0.2, G.MAG_LIMIT_R + 2.0, seed=3)
    per_arcsec2 = 1 / (0.2 * 3600.0**2)
    brighter = np.searchsorted(np.sort(field["mag_r"]), np.asarray(t["mag_r"]) + 2.0)  # N(< r_target + 2)
    expected = np.mean(1 - np.exp(-np.pi * 5.0**2 * brighter * per_arcsec2))
    got = np.mean(t["bright_neighbour_5as"])
    n = len(t)
    assert abs(got - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 0.01, (got, expected)


@pytest.mark.slow
def test_scene_truth_and_segmentation_agree(scenes):
    t, seg = scenes.truth, np.asarray(scenes.segmentation)
    assert seg.shape == (len(t), 64, 64) and seg.dtype == np.uint8
    centre = np.all(seg[:, 31:33, 31:33] == 1, axis=(1, 2))
    # the target owns the centre, except where a brighter source lies on top of it or where a faint, extended
    # target stays below the map's threshold (1 sky sigma per pixel)
    target_or_sky = np.all(seg[:, 31:33, 31:33] <= 1, axis=(1, 2))
    assert centre.mean() > 0.97 and np.all((np.asarray(t["blendedness"]) > 0.3) | target_or_sky)
    assert 0.2 < np.mean(t["n_neighbours"]) < 1.0 and np.mean(t["has_star"]) < 0.2
    assert 0.0 <= np.min(t["blendedness"]) and np.max(t["blendedness"]) <= 1.0
    blended = np.asarray(t["blendedness"]) > 0.05
    # another source shows in the map (it may never outshine the target: a neighbour in the margin, say)
    assert blended.any() and np.mean(seg.reshape(len(t), -1).max(axis=1)[blended] >= 2) > 0.9
    stars = np.flatnonzero(np.asarray(t["has_star"]) == 1)
    for i in stars[:20]:
        x, y = round(float(t["star_x"][i])), round(float(t["star_y"][i]))
        if 0 <= x < 64 and 0 <= y < 64 and t["star_mag_r"][i] < 21:
            assert seg[i, y, x] >= 1  # a bright star is a source in the map
    blue = np.asarray(t["is_red"]) == 0
    assert np.mean(np.asarray(t["has_arms"])[blue]) > np.mean(np.asarray(t["has_arms"])[~blue])
