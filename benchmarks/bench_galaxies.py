"""Benchmark the `galaxies` generator (figures quoted in the dataset card and README).

    python benchmarks/bench_galaxies.py            # full default set in a fresh temp cache + GalSim comparison
    python benchmarks/bench_galaxies.py --quick    # GalSim comparison only

Measures: (1) wall time to generate the full default set (20 000 train + 2 000 test) from an empty
cache, (2) a cached reload, (3) per-image rendering throughput of the batched Fourier renderer vs a
naive one-object-at-a-time GalSim loop over the same profiles (3 bands each), side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np


def galsim_loop(params: dict, n: int) -> np.ndarray:
    import galsim
    from astrobench.sim import render

    out = np.empty((n, 3, 64, 64), np.float32)
    for i in range(n):
        for b in range(3):
            gal = galsim.Add([
                galsim.Spergel(render.NU_BULGE, half_light_radius=params["hlr_bulge"][i],
                               flux=params["flux_bulge"][i, b]),
                galsim.Spergel(render.NU_DISK, half_light_radius=params["hlr_disk"][i],
                               flux=params["flux_disk"][i, b]),
            ]).shear(g1=params["g1"][i], g2=params["g2"][i])
            obj = galsim.Convolve(gal, galsim.Moffat(beta=render.MOFFAT_BETA, fwhm=params["psf_fwhm"][i, b]))
            out[i, b] = obj.drawImage(nx=64, ny=64, scale=1.0, offset=(params["dx"][i], params["dy"][i])).array
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the full-set generation")
    ap.add_argument("--n-compare", type=int, default=500, help="galaxies in the side-by-side comparison")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    from astrobench.sim import galaxies as G
    from astrobench.sim import render

    result = {"cpu_cores": os.cpu_count(), "python": platform.python_version(), "load_avg_start": os.getloadavg()}
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["ASTROBENCH_DATA"] = tmp
            from astrobench import data

            t0 = time.perf_counter()
            train = data.load("galaxies", "train", fast=False)
            result["full_generate_s"] = round(time.perf_counter() - t0, 2)
            result["full_sizes"] = train.meta["sizes"]
            t0 = time.perf_counter()
            again = data.load("galaxies", "train", fast=False)
            _ = float(again.images[-1].sum())  # touch the memory map
            result["cached_reload_s"] = round(time.perf_counter() - t0, 3)

    truth = G.draw_population(args.n_compare, seed=123)
    params = G.render_params(truth)
    render.render({k: v[:8] for k, v in params.items()})  # warm the k-grid cache
    t0 = time.perf_counter()
    ours = render.render(params)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = galsim_loop(params, args.n_compare)
    t_galsim = time.perf_counter() - t0
    peak = ref.max(axis=(-1, -2), keepdims=True)
    result.update(
        n_compare=args.n_compare,
        ours_ms_per_galaxy=round(1e3 * t_ours / args.n_compare, 3),
        galsim_ms_per_galaxy=round(1e3 * t_galsim / args.n_compare, 3),
        speedup=round(t_galsim / t_ours, 1),
        max_abs_diff_over_peak=float(np.max(np.abs(ours - ref) / peak)),
        load_avg_end=os.getloadavg(),
    )
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
