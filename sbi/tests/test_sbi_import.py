"""The track folder is named sbi/ but must never shadow the sbi library (it has no __init__.py)."""

from pathlib import Path

TRACK_DIR = Path(__file__).resolve().parents[1]


def test_import_sbi_gets_the_library():
    from sbi.inference import NPE

    import sbi

    assert not (TRACK_DIR / "__init__.py").exists()
    assert sbi.__file__ is not None and TRACK_DIR not in Path(sbi.__file__).resolve().parents
    assert "site-packages" in sbi.__file__ or "dist-packages" in sbi.__file__
    assert callable(NPE)
