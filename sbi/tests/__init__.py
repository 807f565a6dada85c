# Deliberate: with this file pytest (--import-mode=importlib) names these modules "tests.test_sbi_*".
# Without it pytest derives "sbi.tests.test_sbi_*" from the path and registers the track folder as a
# namespace package called "sbi", shadowing the sbi library (test_sbi_import.py catches that).
# The track folder itself stays a plain folder (no __init__.py).
