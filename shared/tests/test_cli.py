"""The astrobench command: every subcommand runs, bad input gets one line on stderr and exit 2."""

import os
import subprocess
import sys

import numpy as np
import pytest
from astrobench import cli


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "astrobench.cli", *args], capture_output=True, text=True, env=env)


def test_every_subcommand_has_help():
    for sub in ("list", "info", "fetch", "doctor", "badges", "score", "demo", "new", "event", "leaderboard",
                "codabench"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([sub, "--help"])
        assert exit_.value.code == 0


def test_list_and_info(capsys):
    assert cli.main(["list"]) == 0
    assert "galaxies" in capsys.readouterr().out
    assert cli.main(["info", "galaxies"]) == 0
    assert "# galaxies" in capsys.readouterr().out


def test_doctor_reports_versions_cache_and_datasets(cache, capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for needle in ("Python", "numpy", "CPU cores", "GPU", str(cache), "galaxies"):
        assert needle in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["info", "no-such-set"], "unknown dataset 'no-such-set'"),
        (["fetch", "no-such-set"], "unknown dataset 'no-such-set'"),
        (["list", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice"),
        (["score", "no-such-track", "/no/such/file.npz"], "no scorer for track 'no-such-track'"),
        (["badges", "--repo", "not a repo"], "expected OWNER/NAME"),
        (["fetch", "galaxies", "--cache-dir", "/proc/forbidden"], "not writable"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, cache):
    assert cli.main(args) == 2
    assert os.environ["ASTROBENCH_DATA"] == str(cache)  # --cache-dir must not leak into the process
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1


def test_predictions_file_errors(tmp_path):
    from astrobench.metrics import ScoreInputError, load_predictions

    with pytest.raises(ScoreInputError, match="no such file"):
        load_predictions(tmp_path / "missing.npz")
    bad = tmp_path / "pred.npz"
    bad.write_text("not numpy")
    with pytest.raises(ScoreInputError, match=r"not a readable .npz"):
        load_predictions(bad)
    good = tmp_path / "good.npz"
    np.savez(good, scores=np.arange(3.0))
    assert list(load_predictions(good)) == ["scores"]


def test_console_script_exit_code_in_a_subprocess():
    proc = run("info", "nope")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and not proc.stdout


def test_metrics_require_names_what_was_expected():
    from astrobench.metrics import ScoreInputError, require

    pred = {"x": np.zeros((5, 3), np.float32), "n": np.array([np.nan, 1.0])}
    assert require(pred, "x", shape=(None, 3)).shape == (5, 3)
    with pytest.raises(ScoreInputError, match="missing key 'y'"):
        require(pred, "y")
    with pytest.raises(ScoreInputError, match=r"shape \(5, 3\); expected Nx4"):
        require(pred, "x", shape=(None, 4))
    with pytest.raises(ScoreInputError, match="NaN"):
        require(pred, "n")
    with pytest.raises(ScoreInputError, match="expected a int array"):
        require(pred, "x", kind="i")
    with pytest.raises(ScoreInputError, match="at least 10"):
        require(pred, "x", min_rows=10)


def test_fetch_all_dry_run_prints_sizes_and_total(cache, capsys):
    assert cli.main(["fetch", "--all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "galaxy10-decals" in out and "2,540 MB" in out and "published" in out
    assert "camels-cmd-mtot" in out and "trust-on-first-use" in out
    assert "total to download: 2.86 GB" in out
    assert not any(cache.rglob("*.h5"))  # a dry run downloads nothing


def test_output_into_a_closed_pipe_is_not_a_traceback():
    proc = subprocess.run(f"{sys.executable} -m astrobench.cli info galaxies | head -1", shell=True,
                          capture_output=True, text=True)
    assert proc.stdout == "# galaxies\n" and "Traceback" not in proc.stderr


def _one_line_exit_2(argv, capsys, needle):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_score_rejects_empty_and_truncated_files(tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, score=np.zeros(1000))
    empty, cut = tmp_path / "empty.npz", tmp_path / "cut.npz"
    empty.write_bytes(b"")
    cut.write_bytes(good.read_bytes()[:200])
    for path in (empty, cut):
        _one_line_exit_2(["score", "anomaly", str(path)], capsys, "not a readable .npz file")


def test_score_checks_json_before_scoring(tmp_path, capsys, monkeypatch):
    from astrobench import metrics

    monkeypatch.setattr(metrics, "score", lambda *a, **k: pytest.fail("scored before checking --json"))
    np.savez(tmp_path / "p.npz", score=np.zeros(3))
    _one_line_exit_2(["score", "anomaly", str(tmp_path / "p.npz"), "--json", "/proc/no/m.json"], capsys,
                     "--json /proc/no")
    _one_line_exit_2(["score", "anomaly", str(tmp_path / "p.npz"), "--json", str(tmp_path)], capsys, "is a folder")


def test_demo_checks_out_and_environment_first(tmp_path, capsys, monkeypatch, cache):
    afile = tmp_path / "afile"
    afile.write_text("")
    _one_line_exit_2(["demo", "--out", str(afile)], capsys, "is a file")
    _one_line_exit_2(["demo", "--out", "/proc/demo"], capsys, "not writable")
    monkeypatch.setenv("ASTROBENCH_FAST", "maybe")
    _one_line_exit_2(["demo", "--out", str(tmp_path / "d")], capsys, "ASTROBENCH_FAST='maybe'")
    _one_line_exit_2(["doctor"], capsys, "ASTROBENCH_FAST='maybe'")
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.setenv("ASTROBENCH_DATA", str(afile))
    _one_line_exit_2(["demo", "--out", str(tmp_path / "d")], capsys, "expected a writable folder")
    _one_line_exit_2(["fetch", "galaxies"], capsys, "is a file")
    monkeypatch.setenv("ASTROBENCH_DATA", "/proc/astrobench")
    _one_line_exit_2(["fetch", "galaxies"], capsys, "not writable")
    assert not (tmp_path / "d").exists()


def test_doctor_refuses_a_cache_that_is_a_file(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("")
    for cache in (afile, afile / "sub"):  # as `fetch` does; listing every set as "not cached" would hide the cause
        monkeypatch.setenv("ASTROBENCH_DATA", str(cache))
        _one_line_exit_2(["doctor"], capsys, f"{afile} is a file; expected a folder")
        assert not capsys.readouterr().out


def _counting_spec(calls):
    from astrobench.data.registry import SimulatedSpec

    def generate(sizes, seed, progress):
        calls.append(dict(sizes))
        return {split: {"x": np.zeros((n, 4), np.float32), "truth": {"y": np.arange(n)}} for split, n in sizes.items()}

    return SimulatedSpec(name="cli-counting", version="1", description="numpy-only set for fetch tests",
                         tracks=("tests",), sizes={"full": {"train": 30, "test": 10}, "fast": {"train": 6, "test": 2}},
                         generate=generate, config=dict)


@pytest.fixture
def counting(cache):
    from astrobench import data

    calls = []
    data.register(_counting_spec(calls))
    yield calls
    data.unregister("cli-counting")


def test_fetch_makes_the_fast_and_full_variants_notebooks_read(counting, cache, capsys, monkeypatch):
    from astrobench import data

    monkeypatch.delenv("ASTROBENCH_FAST", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert cli.main(["fetch", "cli-counting", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "fast: 6 train + 2 test, would generate locally" in out and "     8 rows" in out
    assert "full: 30 train + 10 test, would generate locally" in out and "    40 rows" in out
    assert "total to generate: 48 rows" in out and not counting
    assert cli.main(["fetch", "cli-counting", "--variant", "fast"]) == 0
    assert counting == [{"train": 6, "test": 2}]
    assert cli.main(["fetch", "cli-counting", "--dry-run"]) == 0  # the full size, estimated from the FAST variant's
    out = capsys.readouterr().out
    assert "fast: 6 train + 2 test, cached" in out and "~0 MB" in out and "total to generate: 40 rows, ~0.00 GB" in out
    assert cli.main(["fetch", "cli-counting"]) == 0  # default: both, what FAST and full notebooks load
    assert counting == [{"train": 6, "test": 2}, {"train": 30, "test": 10}]
    for fast in (True, False):
        assert (data.path_of("cli-counting", fast=fast) / "manifest.json").is_file()
    capsys.readouterr()
    assert cli.main(["doctor"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "cli-counting" in line]
    assert len(rows) == 2 and all("ready" in row for row in rows)
