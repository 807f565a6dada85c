"""benchmarks/generation_memory.py generates a dataset in a fresh process and an empty cache, and reports that
process's peak RSS and the set's hash: a real (FAST) generation reads a plausible peak and the same bytes as the
kit's cache, a limit below it is flagged, and an unknown name is one line and exit 2. The full sweep is for
organisers: `python benchmarks/generation_memory.py`."""

import importlib.util
from pathlib import Path

from astrobench import data

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("generation_memory", ROOT / "benchmarks" / "generation_memory.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_fast_generation_peak_and_bytes():
    row = bench.measure("galaxies-isolated", "fast")
    assert row["error"] is None
    assert 0.05 < row["peak_gb"] < 2.0  # numpy, astropy and SkyPy alone take ~0.15 GB
    assert row["sha256"] == data.load("galaxies-isolated", "train", fast=True, progress=False).meta["sha256"]
    assert "| yes |" in bench.table([row], 2.0)
    assert "**no**" in bench.table([row], 0.01)


def test_unknown_dataset_is_one_line_and_exit_2(capsys):
    assert bench.main(["no-such-set"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "galaxies" in err
