"""diffusion.py's bad input: one line on stderr, exit 2, no traceback, no output folder (checked in process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import diffusion  # noqa: E402


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps 0"),
    (["--seed", "-1"], "--seed -1"),
    (["--max-minutes", "0"], "--max-minutes"),
    (["--threads", "0"], "--threads 0"),
    (["--grad-accum", "0"], "--grad-accum 0"),
    (["--resolution", "32"], "unrecognized arguments"),  # a setting now: --set resolution=32
    (["--stop-after", "0"], "--stop-after 0"),
    (["--set", "resolution=48"], "resolution=48"),
    (["--set", "channels=(12, 16)"], "multiples of 8"),
    (["--set", "channels=()"], "multiples of 8"),
    (["--set", "resolution=64", "--set", "channels=(8, 8, 8, 8, 8, 8, 8, 8)"], "divisible"),
    (["--set", "ddim_steps=0"], "ddim_steps=0"),
    (["--set", "ddim_steps=5000"], "ddim_steps <= 1000"),
    (["--set", "ema_decay=1.0"], "ema_decay"),
    (["--set", "ddim_eta=1.5"], "ddim_eta in [0, 1]"),
    (["--set", "train_images='x'"], "train_images='x'"),
    (["--set", "batch=2.5"], "expected a int"),
    (["--set", "nope=1"], "KEY one of"),
    (["--set", "samples=10"], "expected at least 200"),  # the scorer's minimum, before training
    (["--dataset", "no-such-set"], "no-such-set"),
    (["--dataset", "superres-fields"], "3 x 64 x 64"),  # a set without galaxy stamps
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys, monkeypatch):
    # an empty cache: every check comes before any data is generated (no progress bars before the one line)
    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "cache"))
    out = tmp_path / "out"
    rc = diffusion.main(["--fast", "--device", "cpu", "--threads", "1", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("diffusion.py: error: ") and message in err, err
    assert not out.exists()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing generated


def test_bad_fast_env_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASTROBENCH_FAST", "maybe")
    out = tmp_path / "out"
    assert diffusion.main(["--device", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ASTROBENCH_FAST" in err and not out.exists()
