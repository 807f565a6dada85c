"""astrobench: datasets, simulators, metrics and plotting shared by the Astro x ML hackathon tracks."""

__version__ = "0.1.0"
