"""Benchmark and validate the `superres-nbody` generator (figures quoted in its card).

    OMP_NUM_THREADS=1 python benchmarks/bench_nbody.py [--only fast|full] [--validate N] [--json benchmarks/nbody.json]

Budgets, from an empty temporary cache: wall time to generate the FAST set and the full set (both splits), a cached
reload, and the peak RSS of the process. ``--validate N`` also runs N production-size pairs (32^3 / 64^3 particles,
128 Mpc/h) and reports P_LR / P_HR, P_HR / halofit and the large-scale growth. Timings need a quiet machine: the
load average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time

import numpy as np


def budgets(only: str | None) -> dict:
    from astrobench import data

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASTROBENCH_DATA"] = tmp
        for mode in ("fast", "full"):
            if only and mode != only:
                continue
            fast = mode == "fast"
            t0 = time.perf_counter()
            train = data.load("superres-nbody", "train", fast=fast, progress=False)  # generates both splits
            out[f"{mode}_generate_s"] = round(time.perf_counter() - t0, 1)
            out[f"{mode}_sizes"] = train.meta["sizes"]
            t0 = time.perf_counter()
            again = data.load("superres-nbody", "test", fast=fast, progress=False)
            _ = float(np.asarray(again.hr[-1]).sum() + np.asarray(data.load("superres-nbody", "train", fast=fast,
                                                                            progress=False).hr[-1]).sum())
            out[f"{mode}_reload_s"] = round(time.perf_counter() - t0, 3)
            out[f"{mode}_sha256"] = again.meta["sha256"]
    return out


def validate(n_boxes: int) -> dict:
    """P(k) figures of production-size pairs (seeds 0..n-1, not the dataset's boxes)."""
    from astrobench.sim import nbody as nb
    from scipy import fft

    box, nl, nh = nb.BOX_MPC_H, nb.NP_LR, nb.NP_HR
    lr_hr, hr_hf, growth = [], [], {"lr": [], "hr": []}
    for seed in range(n_boxes):
        run = nb.simulate_pair(seed)
        k, p_lr, _ = nb.power_spectrum(nb.cic_paint(run["lr"], nb.MESH * nl, box), box)
        k_hr, p_hr, modes = nb.power_spectrum(nb.cic_paint(run["hr"], nb.MESH * nh, box), box)
        lr_hr.append(p_lr[: nl // 2] / p_hr[: nl // 2])
        hr_hf.append(p_hr / nb.halofit_power(k_hr))
        for key, n, p in (("lr", nl, p_lr), ("hr", nh, p_hr)):
            w = run["w_k"] if key == "hr" else nb.restrict_modes(run["w_k"], nh, nl)
            _, p_lin, _ = nb.power_spectrum(fft.irfftn(nb.linear_delta_k(w, n, box), s=(n, n, n)), box,
                                            deconvolve_cic=False)
            growth[key].append(p[:3] / p_lin[:3])  # D(1) = 1
    pick = [0, 1, 3, 5, 7, 11, 15, 23, 31, 47, 63]
    return {"boxes": n_boxes, "k_lr_bins": np.round(k[: nl // 2], 3).tolist(),
            "lr_over_hr_mean": np.round(np.mean(lr_hr, axis=0), 3).tolist(),
            "k_hr_bins": np.round(k_hr[pick], 3).tolist(),
            "hr_over_halofit_mean": np.round(np.mean(hr_hf, axis=0)[pick], 3).tolist(),
            "hr_over_halofit_modes": modes[pick].astype(int).tolist(),
            "first3_bins_over_linear": {key: np.round(np.mean(v, axis=0), 3).tolist() for key, v in growth.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("fast", "full"), help="time one variant only")
    ap.add_argument("--validate", type=int, default=0, metavar="N", help="also run N production-size pairs")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    result = {"cpu_cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "python": platform.python_version(), "load_avg_start": [round(v, 2) for v in os.getloadavg()]}
    result.update(budgets(args.only))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.validate:
        t0 = time.perf_counter()
        result["validation"] = validate(args.validate)
        result["validation_s"] = round(time.perf_counter() - t0, 1)
    result["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
