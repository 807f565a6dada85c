"""First-load cost of a real dataset: convert a full-size file in the real Galaxy10 DECaLS format.

    python benchmarks/bench_real_adapters.py [--n 17736] [--workdir DIR] [--json OUT]

Writes a synthetic file with the real layout (HDF5 ``images`` (n, 256, 256, 3) uint8 gzip-compressed in h5py's
automatic chunks, ``ans``, ``ra``, ``dec``, ``redshift``, ``pxscale``; smooth galaxy-like blobs on a noisy sky, so
it compresses like an image), then runs the ``galaxy10-decals`` adapter on it in a fresh process and reports the
conversion's wall time and peak memory (what a Binder or Colab session pays on the first ``load``). The real
2.5 GB file is never downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK = 512


def write_file(path: Path, n: int, seed: int = 0) -> None:
    import h5py
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] - 127.5
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("images", shape=(n, 256, 256, 3), dtype=np.uint8, chunks=True, compression="gzip")
        for i in tqdm(range(0, n, BLOCK), desc="write synthetic Galaxy10_DECals.h5", unit="block"):
            m = min(BLOCK, n - i)
            r2 = (xx**2 + yy**2)[None].astype(np.float32) / rng.uniform(4, 30, (m, 1, 1)).astype(np.float32) ** 2
            blob = 200 * np.exp(-r2)[..., None] * rng.uniform(0.3, 1, (m, 1, 1, 3)).astype(np.float32)
            sky = rng.normal(20, 4, (m, 256, 256, 3)).astype(np.float32)
            ds[i : i + m] = np.clip(blob + sky, 0, 255).astype(np.uint8)
        f["ans"] = rng.integers(0, 10, n).astype(np.uint8)
        for key in ("ra", "dec", "redshift", "pxscale"):
            f[key] = rng.uniform(0, 1, n)


# peak memory from VmHWM (this process image only; ru_maxrss would carry the parent's peak across fork + exec)
CHILD = """
import json, sys, time
from pathlib import Path
from astrobench import data
t0 = time.perf_counter()
arrays, config = data.registry.get("galaxy10-decals").adapter(Path(sys.argv[1]), "train", False)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": round(seconds, 1), "train_rows": len(arrays["images"]),
                  "peak_rss_mb": round(int(next(line.split()[1] for line in open("/proc/self/status")
                                                if line.startswith("VmHWM"))) / 1024, 1),
                  "sky_sigma": config["sky_sigma"]}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=17_736, help="images in the synthetic file (the real one has 17 736)")
    ap.add_argument("--workdir", help="where to write the file (default: a temporary folder, removed after)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "Galaxy10_DECals.h5"
        t0 = time.perf_counter()
        write_file(path, args.n)
        out = {"n": args.n, "file_bytes": path.stat().st_size, "write_seconds": round(time.perf_counter() - t0, 1),
               "cpu_cores": os.cpu_count(), "load_avg_before": [round(v, 2) for v in os.getloadavg()]}
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        out["processed_bytes"] = sum(p.stat().st_size for p in (Path(tmp) / "processed-v2").iterdir())
        out["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
