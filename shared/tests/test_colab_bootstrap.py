"""The Colab bootstrap cell, run as Colab would (a fake `google.colab` module), twice: one clone, one install,
the right folder each time; a failed install shows pip's output. The clone URL points at this repository and pip
at a recorder (the cell's ASTROBENCH_KIT_URL / ASTROBENCH_KIT_PIP overrides, made for this test)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "anomaly" / "02_autoencoder_baseline.ipynb"


def cell() -> str:
    return "".join(json.loads(NOTEBOOK.read_text())["cells"][1]["source"])


def run(cwd, env):
    code = ("import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n" + cell()
            + "\nprint('CWD=' + os.getcwd())\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def colab(tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", "main"], capture_output=True).returncode:
        pytest.skip("no local branch main to clone")
    kit = tmp_path / "content" / "kit"
    log = tmp_path / "pip.log"
    fake_pip = tmp_path / "fake_pip.py"
    fake_pip.write_text(f"import sys\nopen({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    env = dict(os.environ, ASTROBENCH_KIT_DIR=str(kit), ASTROBENCH_KIT_URL=f"file://{ROOT}",
               ASTROBENCH_KIT_PIP=f"{sys.executable} {fake_pip}")
    return kit, log, env, tmp_path


@pytest.mark.slow
def test_running_the_cell_twice_leaves_one_clone_one_install_and_the_track_folder(colab):
    kit, log, env, start = colab
    (start / "content").mkdir()
    first = run(start / "content", env)  # Colab's working folder
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(f"CWD={kit / 'anomaly'}")
    assert (kit / ".git").is_dir() and (kit / "anomaly" / "autoencoder.py").is_file()
    assert log.read_text().splitlines() == [f"install -q {kit}[anomaly]"]  # non-editable, with the track's extra
    again = run(kit / "anomaly", env)  # the second run starts where the first left the kernel
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f"CWD={kit / 'anomaly'}")
    assert not (kit / "anomaly" / "kit").exists() and len(log.read_text().splitlines()) == 1  # no nesting, no reinstall


def test_a_failed_install_shows_pips_output(colab):
    kit, _, env, start = colab
    failing = start / "failing_pip.py"
    failing.write_text("import sys\nprint('ERROR: No matching distribution found for sbi', file=sys.stderr)\n"
                       "sys.exit(1)\n")
    env["ASTROBENCH_KIT_PIP"] = f"{sys.executable} {failing}"
    proc = run(start, env)
    assert proc.returncode != 0
    assert "No matching distribution found for sbi" in proc.stdout and "installing the kit failed" in proc.stderr
    assert not (kit / ".installed-anomaly").exists()  # the next run tries again
