"""benchmarks/notebook_memory.py measures a notebook kernel's peak RSS: a notebook that allocates a known amount
reads at least that much, a limit below it fails, a failing cell is reported, and one real notebook (shared/00, the
smallest) runs in FAST mode within Binder's 2 GB. The full sweep (every notebook, FAST and full) is too slow for
`make test`: run `python benchmarks/notebook_memory.py [--mode full]`."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("notebook_memory", ROOT / "benchmarks" / "notebook_memory.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def write(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(nbformat.writes(nb))
    return path


def test_peak_includes_what_a_cell_allocated(tmp_path):
    nb = write(tmp_path / "big.ipynb", "import numpy as np\nx = np.ones(50_000_000)  # 400 MB, touched", "del x")
    out = tmp_path / "table.md"
    assert bench.main([str(nb), "--out", str(out)]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert row["error"] is None and row["mode"] == "fast" and row["cells"] == 2
    assert 0.4 <= row["peak_gb"] < 2.0, row  # the high-water mark survives the del
    assert row["peak_cell"] == 0, "the cell that allocated is named"
    assert "| yes |" in out.read_text()
    assert bench.main([str(nb), "--out", str(out), "--limit-gb", "0.3"]) == 1
    assert "| **no** |" in out.read_text()


def test_a_failing_cell_is_a_failed_row(tmp_path):
    nb = write(tmp_path / "bad.ipynb", "1 + 1", "raise ValueError('broken on purpose')")
    out = tmp_path / "table.md"
    assert bench.main([str(nb), "--out", str(out)]) == 1
    assert "failed: cell 1: ValueError: broken on purpose" in out.read_text()


def test_a_cell_over_the_timeout_reports_the_peak_so_far(tmp_path):
    nb = write(tmp_path / "slow.ipynb", "import numpy as np\nx = np.ones(50_000_000)  # 400 MB, touched",
               "import time\ntime.sleep(120)")
    out = tmp_path / "table.md"
    assert bench.main([str(nb), "--out", str(out), "--timeout", "5"]) == 1
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert row["error"] == "cell 1: ran over --timeout 5 s" and row["peak_gb"] is None
    assert 0.4 <= row["partial_gb"] < 2.0, row  # read from /proc while the kernel was busy
    assert "| >= " in out.read_text() and "| not finished |" in out.read_text()


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert bench.main([str(tmp_path / "missing.ipynb")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.skipif(not (ROOT / "shared" / "00_start_here.ipynb").is_file(), reason="no start-here notebook")
def test_start_here_notebook_fits_binder_in_fast_mode(tmp_path):
    out = tmp_path / "table.md"
    assert bench.main([str(ROOT / "shared" / "00_start_here.ipynb"), "--out", str(out)]) == 0, out.read_text()
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert row["peak_gb"] <= bench.LIMIT_GB


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; the peak would not show memory being given back)."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="Linux /proc needed")
def test_anomaly_images_stream_without_staying_resident(tmp_path):
    """The anomaly notebooks' AE.to_sigma: the same values as converting the whole split at once, and streaming a
    memory-mapped split through it does not leave the split in the process's memory (Binder counts RSS)."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("autoencoder", ROOT / "anomaly" / "autoencoder.py")
    ae = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ae)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "images.npy", rng.normal(size=(1600, 3, 64, 64)).astype(np.float32))  # 79 MB
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    sky = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    x = ae.to_sigma(images, sky)
    whole = np.asarray(images, dtype=np.float32) / sky[None, :, None, None]
    rows = rng.permutation(1600)[:64]
    assert np.array_equal(x[rows], whole[rows]) and np.array_equal(x[5:9], whole[5:9])
    assert np.array_equal(x[7], whole[7]) and len(x) == 1600 and x.shape == whole.shape
    del whole, x, images
    x = ae.to_sigma(np.load(tmp_path / "images.npy", mmap_mode="r"), sky)  # a fresh map: nothing of it resident
    before = rss_bytes()
    total = sum(float(x[i : i + 100].sum()) for i in range(0, len(x), 100))  # one pass over the split
    assert np.isfinite(total)
    assert rss_bytes() - before < 30e6, "the streamed split stayed resident"
