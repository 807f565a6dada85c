"""environment.yml, the pyproject extras and the Makefile name the same dependencies."""

import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def env_pip():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.strip() == "- pip:"))
    reqs = [line.strip()[2:] for line in lines[start + 1 :] if line.strip().startswith("- ")]
    return {_name(r) for r in reqs if not r.startswith("--")}


def test_environment_yml_lists_exactly_the_package_dependencies():
    proj = pyproject()
    extras = proj["optional-dependencies"]
    names = {_name(r) for r in proj["dependencies"]}
    for reqs in extras.values():
        names |= {_name(r) for r in reqs if not r.startswith("astrobench")}
    assert env_pip() == names


def test_all_extra_covers_every_track():
    extras = pyproject()["optional-dependencies"]
    tracks = {"generative", "sbi", "multimodal", "anomaly", "superres"}
    assert tracks | {"all", "test"} <= set(extras)
    assert extras["all"] == [f"astrobench[{','.join(sorted(tracks, key=list(extras).index))}]"]


def test_makefile_installs_all_extras_and_a_torch_the_extras_accept():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^EXTRAS \?= all,test,site$", make, re.M)  # site: make site and its browser test
    assert 'pip install -e ".[$(EXTRAS)]"' in make
    pinned = re.search(r"^TORCH_SPEC \?= torch==([\d.]+)$", make, re.M).group(1)
    extras = pyproject()["optional-dependencies"]
    floors = {r.split(">=")[1] for reqs in extras.values() for r in reqs if _name(r) == "torch"}
    assert floors, "some extra depends on torch"
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))
    assert all(as_tuple(pinned) >= as_tuple(f) for f in floors)
    # the conda route uses the same torch (CPU wheels) and python >= 3.10
    env = (ROOT / "environment.yml").read_text()
    assert "download.pytorch.org/whl/cpu" in env
    assert re.search(r"- python=3\.1[0-9]", env)


def test_no_pins_on_torch_or_numpy():
    # the Colab bootstrap installs the package; an exact pin would replace Colab's torch/numpy
    for req in pyproject()["dependencies"] + [r for v in pyproject()["optional-dependencies"].values() for r in v]:
        if _name(req) in {"torch", "numpy"}:
            assert "==" not in req and "<" not in req, req
