"""requirements-lock.txt (`make lock`) pins every dependency of the kit and its extras, torch excepted (the
Makefile's TORCH_SPEC installs the CPU build; a GPU machine brings its own)."""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_the_lock_covers_every_extra_and_leaves_torch_out():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {name(r) for r in project["dependencies"]}
    for reqs in project["optional-dependencies"].values():
        wanted |= {name(r) for r in reqs if not r.startswith("astrobench")}
    lines = [ln for ln in (ROOT / "requirements-lock.txt").read_text().splitlines() if ln and not ln.startswith(" ")]
    pinned = {name(ln) for ln in lines if "==" in ln}
    missing = wanted - pinned - {"torch"}
    assert not missing, f"not in the lock: {sorted(missing)}; run `make lock`"
    assert all("==" in ln for ln in lines if not ln.startswith("#"))  # exact versions only
    assert not pinned & {"torch", "triton"} and not any(p.startswith("nvidia-") for p in pinned)
