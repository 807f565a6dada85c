"""Simulators. Each module may declare ``DATASETS``, a list of registry entries (see ``astrobench.data``).

Modules here keep heavy imports (skypy, jax) inside functions: the registry imports them all.
"""
