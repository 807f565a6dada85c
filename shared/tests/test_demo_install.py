"""`astrobench demo` from a non-editable install (Colab's): the package is built and installed as a wheel would be
(`pip install --no-deps --target`, from a copy of the sources with the symlinks resolved, outside the checkout), and
from there the demo finds all five baseline scripts inside the installed package, and one of them runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astrobench.cli import BASELINES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo_install")
    src = tmp / "src"
    shutil.copytree(ROOT / "shared" / "astrobench", src / "shared" / "astrobench",
                    ignore=shutil.ignore_patterns("__pycache__"))  # symlinks=False: the files the links point to
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    target = tmp / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return tmp, target


def run_installed(tmp, target, *args, **kw):
    env = dict(os.environ, PYTHONPATH=str(target))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp, env=env, timeout=300, **kw)


def test_demo_finds_every_baseline_in_the_installed_package(installed):
    tmp, target = installed
    code = ("import json, astrobench, astrobench.cli as c; "
            "print(json.dumps([astrobench.__file__, {k: str(v) for k, v in c.baseline_scripts().items()}]))")
    proc = run_installed(tmp, target, "-c", code)
    assert proc.returncode == 0, proc.stderr
    package, scripts = json.loads(proc.stdout)
    assert Path(package).resolve().is_relative_to(target.resolve()), "the installed copy, not the checkout"
    assert sorted(scripts) == ["anomaly", "generative", "multimodal", "sbi", "superres"]
    for track, path in scripts.items():
        path = Path(path)
        assert path.resolve().is_relative_to(target.resolve()) and path.is_file() and not path.is_symlink(), track
        assert path.read_text() == (ROOT / BASELINES[track]).read_text(), f"{track}: differs from the checkout's"


def test_an_installed_baseline_script_runs(installed):
    tmp, target = installed
    script = target / "astrobench" / "project_template" / "template" / "pipeline" / "upsampler.py"
    proc = run_installed(tmp, target, str(script), "--help")
    assert proc.returncode == 0 and "--pretrained" in proc.stdout, proc.stderr[-2000:]


def test_demo_reports_a_missing_script(monkeypatch, tmp_path, capsys):
    from astrobench import cli

    monkeypatch.setattr(cli, "baseline_scripts", lambda: {})  # an install without the scripts
    monkeypatch.setattr(cli.subprocess, "run", lambda *a, **k: pytest.fail("nothing to run"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 1
    out = capsys.readouterr().out
    assert out.count("script not found") == 5
