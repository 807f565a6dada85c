"""astrobench.baseline: the plumbing the five baseline scripts share (flags, settings, threads, clock, errors)."""

import json
import time

import pytest
import torch
from astrobench import baseline

FULL = dict(steps=100, width=32, lr=1e-3, channels=(8, 16), extra=None)
FAST = dict(steps=10, width=8, lr=2e-3, channels=(4, 8), extra=None)


def parse(*argv, budget="steps"):
    return baseline.parser("x.py", "A test script.\n\nMore.", out="outputs/x", dataset="galaxies",
                           budget=budget).parse_args(list(argv))


def test_settings_pick_the_mode_and_apply_the_budget_and_set(monkeypatch):
    monkeypatch.delenv("ASTROBENCH_FAST", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert baseline.settings(FULL, FAST, parse()) == FULL
    assert baseline.settings(FULL, FAST, parse("--fast")) == FAST
    cfg = baseline.settings(FULL, FAST, parse("--steps", "7", "--set", "lr=3e-4", "--set", "channels=[2, 4]",
                                              "--set", "width=16", "--set", "extra=abc"))
    assert cfg == dict(FULL, steps=7, lr=3e-4, channels=[2, 4], width=16, extra="abc")
    assert FULL["steps"] == 100  # the module's dict is not touched
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    assert baseline.settings(FULL, FAST, parse()) == FAST  # ASTROBENCH_FAST=1 alone selects FAST
    monkeypatch.setenv("ASTROBENCH_FAST", "maybe")
    with pytest.raises(baseline.BaselineError, match="ASTROBENCH_FAST='maybe'"):
        baseline.settings(FULL, FAST, parse())


@pytest.mark.parametrize("item", ["nokey=1", "lr", "width=wide", "channels=3", "steps=0"])
def test_bad_set_names_the_keys(item):
    with pytest.raises(baseline.BaselineError, match=r"--set"):
        baseline.settings(FULL, FAST, parse("--set", item))


def test_threads_come_from_the_flag_then_the_environment_never_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert baseline.threads() == baseline.DEFAULT_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert baseline.threads() == 3 and baseline.threads(5) == 5
    monkeypatch.setattr("os.getloadavg", lambda: (50.0, 50.0, 50.0), raising=False)
    assert baseline.threads() == 3  # a busy machine changes nothing
    for bad in ("0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        with pytest.raises(baseline.BaselineError, match="OMP_NUM_THREADS"):
            baseline.threads()
    with pytest.raises(baseline.BaselineError, match="--threads 0"):
        baseline.threads(0)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--seed", "-1"], "--seed -1"),
        (["--steps", "0"], "--steps 0"),
        (["--steps", "-5"], "--steps -5"),
        (["--max-minutes", "-1"], "--max-minutes"),
        (["--max-minutes", "0"], "--max-minutes"),
        (["--threads", "0"], "--threads 0"),
        (["--mixed-precision", "fp16", "--device", "cpu"], "fp16"),
        (["--grad-accum", "0"], "--grad-accum"),
    ],
)
def test_start_rejects_bad_flags_before_any_work(argv, needle, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(baseline.BaselineError, match=needle.replace("-", r"\-")):
        baseline.start(parse("--out", str(out), *argv))
    assert not out.exists()


def test_out_and_files_are_checked_without_creating_anything(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(baseline.BaselineError, match="is a file"):
        baseline.start(parse("--out", str(afile)))
    with pytest.raises(baseline.BaselineError, match="is a file"):
        baseline.check_folder(afile / "below")
    with pytest.raises(baseline.BaselineError, match="not writable"):
        baseline.check_file("/proc/no/such.onnx", "--export-onnx")
    with pytest.raises(baseline.BaselineError, match="is a folder"):
        baseline.check_file(tmp_path, "--json")
    assert baseline.check_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and not (tmp_path / "a").exists()
    monkeypatch.setenv("ASTROBENCH_DATA", str(afile))
    with pytest.raises(baseline.BaselineError, match="ASTROBENCH_DATA"):
        baseline.start(parse("--out", str(tmp_path / "o")))
    monkeypatch.setenv("ASTROBENCH_DATA", "/proc/astrobench-cache")
    with pytest.raises(baseline.BaselineError, match="not writable"):
        baseline.start(parse("--out", str(tmp_path / "o")))


def test_one_line_errors_from_argparse(capsys):
    with pytest.raises(baseline.BaselineError, match="invalid int value"):
        parse("--seed", "x")
    assert baseline.fail("x.py", baseline.BaselineError("first line\nsecond")) == 2
    assert capsys.readouterr().err == "x.py: error: first line\n"


def test_help_lists_the_common_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("--help", budget="epochs")
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--fast", "--out", "--seed", "--device", "--dataset", "--threads", "--epochs", "--max-minutes",
                 "--set", "--grad-accum", "--mixed-precision"):
        assert flag in text


def test_clock_only_with_the_flag_and_recorded(tmp_path, monkeypatch, cache):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    run = baseline.start(parse("--out", str(tmp_path), "--threads", "1", "--device", "cpu"))
    assert not run.out_of_time() and torch.get_num_threads() == 1
    run = baseline.start(parse("--out", str(tmp_path), "--max-minutes", "0.0001", "--threads", "1"))
    time.sleep(0.02)
    assert run.out_of_time() and run.stopped_by_clock
    report = run.write_metrics("x", "t", "galaxies", {"m": 1.0}, {"steps": 3}, {"name": "galaxies", "sha256": "ab"})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == report and saved["stopped_by_clock"] is True
    assert saved["config"]["threads"] == 1 and saved["config"]["max_minutes"] == 0.0001
    assert saved["versions"]["dataset"]["sha256"] == "ab" and saved["versions"]["torch"]
    assert set(saved) >= {"track", "task", "dataset", "metrics", "config", "versions", "seconds"}


def test_epoch_batches_are_a_fresh_permutation_per_epoch_and_reproducible():
    run = baseline.local_run()
    draws = []
    for _ in range(2):
        loader = baseline.epoch_batches(run.acc, 10, 4, torch.Generator().manual_seed(0))
        draws.append([idx.tolist() for _ in range(2) for idx in loader])
    assert draws[0] == draws[1] and len(draws[0]) == 6  # 3 batches per epoch, the last one partial
    first = sorted(i for batch in draws[0][:3] for i in batch)
    second = sorted(i for batch in draws[0][3:] for i in batch)
    assert first == second == list(range(10)) and draws[0][:3] != draws[0][3:]


def test_pretrained_round_trip_and_refusals(tmp_path):
    meta = {"name": "galaxies", "version": "1.0.0", "seed": 0, "sha256": "aa", "fast": False, "config": {"npix": 64}}
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    report = {"metrics": {"auroc": 0.9}, "config": {"epochs": 3, "steps_done": 30, "threads": 1}, "seconds": 12.0}
    man = baseline.save_pretrained(tmp_path, state, {"width": 8}, report, meta, "python x.py --threads 1")
    assert man["budget"] == {"epochs": 3, "steps_done": 30} and man["dataset"]["version"] == "1.0.0"
    got, cfg = baseline.load_pretrained(tmp_path, meta)
    assert torch.equal(got["w"], state["w"]) and cfg == {"width": 8}
    # FAST evaluation of a model trained on the full set: same generator settings, another file (sha256)
    got, _ = baseline.load_pretrained(tmp_path, dict(meta, sha256="bb", fast=True))
    for changed, needle in ((dict(meta, version="2.0.0"), "version"), (dict(meta, config={"npix": 32}), "config"),
                            (dict(meta, sha256="bb"), "sha256")):
        with pytest.raises(baseline.BaselineError, match=f"{needle}.*regenerate it: python x.py"):
            baseline.load_pretrained(tmp_path, changed)
    (tmp_path / "config.json").write_text('{"width": 9}')
    with pytest.raises(baseline.BaselineError, match="changed"):
        baseline.load_pretrained(tmp_path, meta)
    with pytest.raises(baseline.BaselineError, match="no shipped model"):
        baseline.load_pretrained(tmp_path / "none", meta)
