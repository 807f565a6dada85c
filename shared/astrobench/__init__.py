"""astrobench: datasets, simulators, metrics and plotting shared by the Astro x ML hackathon tracks."""

import sys

__version__ = "0.1.0"
# pyproject.toml's requires-python, said again here for the copies that no installer checks (a Codabench bundle's
# scoring program): an older Python gets one line at import, not a TypeError from zip(strict=True) mid-scoring
REQUIRES_PYTHON = (3, 10)
if sys.version_info < REQUIRES_PYTHON:
    raise ImportError(f"astrobench needs Python >= {'.'.join(map(str, REQUIRES_PYTHON))}; this is Python "
                      f"{sys.version.split()[0]}")
