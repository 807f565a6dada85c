"""upsampler.py's command line: bad input is one line on stderr, exit 2, no traceback, no out folder."""

import sys
from pathlib import Path

import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import upsampler  # noqa: E402

BAD = [
    (["--dataset", "nosuch"], "superres-galaxies"),  # the line names the choices
    (["--dataset", "galaxies-anomaly"], "galaxy10-sdss"),
    (["--seed", "x"], "--seed"),
    (["--seed", "-1"], "--seed"),
    (["--steps", "0"], "--steps"),
    (["--steps", "2.5"], "--steps"),
    (["--max-minutes", "0"], "--max-minutes"),
    (["--threads", "0"], "--threads"),
    (["--grad-accum", "0"], "grad"),
    (["--mixed-precision", "fp8"], "--mixed-precision"),
    (["--mixed-precision", "fp16", "--device", "cpu"], "fp16"),
    (["--device", "tpu"], "--device"),
    (["--set", "nosuch=1"], "pk_weight"),
    (["--set", "pk_weight=x"], "pk_weight"),
    (["--set", "pk_weight=-1"], "pk_weight"),
    (["--set", "lr=0"], "lr"),
    (["--set", "lr=1e999"], "lr"),
    (["--set", "steps=0"], "steps"),
    (["--set", "batch=0"], "batch"),
    (["--set", "width=2.5"], "width"),
    (["--set", "batch=100000", "--steps", "1"], "batch"),  # more than the training pairs: after loading them
    (["--pk-weight", "1"], "--pk-weight"),  # gone: --set pk_weight=1
    (["--minutes", "1"], "--minutes"),  # gone: --max-minutes
]


@pytest.fixture(scope="module")
def fields_ready():
    """The FAST fields generated beforehand: the batch check needs the training pairs, and generating them on an
    empty cache prints a progress bar on stderr (not the error under test)."""
    from astrobench import data

    data.load("superres-fields", "train", fast=True, progress=False)


@pytest.mark.parametrize(("argv", "named"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, named, tmp_path, capsys, fields_ready):
    out = tmp_path / "out"
    rc = upsampler.main(["--fast", "--dataset", "fields", "--out", str(out), *argv] if argv[0] != "--dataset"
                        else ["--fast", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("upsampler.py: error:") and named in err
    assert not out.exists()


def test_bad_paths_and_environment(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "a_file"
    afile.write_text("")
    out = tmp_path / "out"
    cases = [["--out", str(afile)], ["--out", str(afile / "sub")],
             ["--out", str(out), "--export-onnx", str(tmp_path)],  # a folder, not a file name
             ["--out", str(out), "--export-onnx", str(afile / "model.onnx")]]  # under a file
    for argv in cases:
        assert upsampler.main(["--fast", "--dataset", "fields", *argv]) == 2
    monkeypatch.setenv("ASTROBENCH_FAST", "maybe")
    assert upsampler.main(["--dataset", "fields", "--out", str(out)]) == 2
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.setenv("ASTROBENCH_DATA", str(afile))
    assert upsampler.main(["--dataset", "fields", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("upsampler.py: error:") for line in err)
    assert "--export-onnx" in err[2] and "--export-onnx" in err[3] and "ASTROBENCH_FAST" in err[4]
    assert not out.exists() and afile.read_text() == ""


def test_short_dataset_names_and_settings():
    assert upsampler.dataset_name("fields") == "superres-fields"
    assert upsampler.dataset_name("galaxies") == "superres-galaxies"
    assert upsampler.dataset_name("camels-cmd-mtot") == "camels-cmd-mtot"
    assert upsampler.FULL.keys() == upsampler.FAST.keys()
    args = upsampler.parser().parse_args(["--fast", "--steps", "7", "--set", "pk_weight=1", "--set", "lr=3e-4"])
    cfg = upsampler.baseline.settings(upsampler.FULL, upsampler.FAST, args)
    assert cfg == dict(upsampler.FAST, steps=7, pk_weight=1.0, lr=3e-4)
