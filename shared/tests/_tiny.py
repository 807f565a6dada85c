"""A tiny `galaxies` variant shared by in-process tests and the subprocesses they start."""

from astrobench.data.specs import SimulatedSpec
from astrobench.sim import galaxies

NAME = "galaxies-tiny"


def spec():
    return SimulatedSpec(
        name=NAME, version=galaxies.VERSION, description="50-object galaxies for tests", tracks=("tests",),
        sizes={"full": {"train": 40, "test": 10}, "fast": {"train": 40, "test": 10}},
        generate=galaxies.generate, config=galaxies.config,
    )
