"""The kit as pip installs it from a wheel (Colab's bootstrap, `pip install .`), not as this editable clone: its wheel
is built from the sources, installed into a fresh environment, and `astrobench new` run from there, outside the clone,
makes a team project from the template the wheel ships (real files where the clone's template links to the baselines).

The fresh environment is a venv without pip that sees this interpreter's packages after its own (a .pth line), so
nothing is downloaded: the wheel's astrobench comes first, its dependencies (copier, numpy, ...) from here.
"""

from __future__ import annotations

import os
import shutil
import site as site_module
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("copier")
pytest.importorskip("setuptools", reason="the wheel is built offline, without build isolation: needs setuptools")

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "astrobench"


def _sources(dst: Path) -> Path:
    """What the build reads, copied (the build writes build/ and an .egg-info beside its sources): pyproject.toml,
    its readme, the package as it is in git (pipeline/ as links), and the baselines those links point at."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(PACKAGE, dst / "shared" / "astrobench", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for link in (PACKAGE / "project_template" / "template" / "pipeline").iterdir():
        target = link.resolve().relative_to(ROOT)
        (dst / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / target, dst / target)
    return dst


def _clean_env(**extra) -> dict:
    """This environment without anything that would put the clone's package on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return dict(env, PYTHONNOUSERSITE="1", **extra)


def test_the_wheel_installs_and_makes_a_team_project_outside_the_clone(tmp_path):
    src = _sources(tmp_path / "src")
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "--wheel-dir", str(dist), str(src)], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path, env=_clean_env())
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("astrobench-*.whl")

    # the wheel holds the template's files themselves: the baselines, byte for byte, where the clone has links
    links = sorted((PACKAGE / "project_template" / "template" / "pipeline").iterdir())
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for link in links:
            entry = f"astrobench/project_template/template/pipeline/{link.name}"
            assert entry in names and z.read(entry) == link.read_bytes(), entry
        assert {"astrobench/project_template/copier.yml", "astrobench/project_template/template/train.py.jinja",
                "astrobench/project_template/template/.gitignore"} <= names

    # a fresh environment, without pip: the wheel installed into it by this pip; the rest of the kit's
    # dependencies seen from here, after its own site-packages
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300,
                             cwd=tmp_path, env=_clean_env())
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    assert (site / "astrobench" / "project_template" / "template" / "pipeline" / "autoencoder.py").is_file()
    # (after the install: pip would take an astrobench seen from here for the wheel's, and install nothing)
    here = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                          *site_module.getsitepackages()])
    (site / "zz_kit_dependencies.pth").write_text("".join(f"{p}\n" for p in here))

    # `astrobench new` from the installed console script, in a folder outside the clone
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([str(env_dir / "bin" / "astrobench"), "new", "anomaly", "team", "--team", "Wheel"],
                          cwd=work, capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    dst = work / "team"
    template = site / "astrobench" / "project_template"
    assert str(template) in proc.stdout  # the template it rendered: the installed one, not the clone
    answers = (dst / ".copier-answers.yml").read_text()
    assert f"_src_path: {template}" in answers and "_commit" not in answers
    script = dst / "pipeline" / "autoencoder.py"
    assert script.is_file() and not script.is_symlink()
    assert script.read_bytes() == (ROOT / "anomaly" / "autoencoder.py").read_bytes()
    assert (dst / "train.py").is_file() and "def build_model(" in (dst / "model.py").read_text()
    assert "Wheel" in (dst / "model.py").read_text()
