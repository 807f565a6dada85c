"""Event mode: secret test splits, a release without truth, scoring against the private truth (FAST data)."""

import json

import numpy as np
import pytest
from astrobench import cli, data, event, metrics

SECRET = "test-secret-0123456789"


@pytest.fixture(scope="module")
def ev(tmp_path_factory):
    """One private event with every track (FAST) and its release, in a module-wide cache."""
    root = tmp_path_factory.mktemp("event")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTROBENCH_DATA", str(root / "cache"))
        mp.setenv("ASTROBENCH_FAST", "1")
        mp.delenv(event.ENV_VAR, raising=False)
        assert cli.main(["event", "init", "--secret", SECRET, "--out", str(root / "private")]) == 0
        assert cli.main(["event", "release", "--private", str(root / "private"), "--out", str(root / "public")]) == 0
        yield root


@pytest.fixture
def env(ev, monkeypatch):
    monkeypatch.setenv("ASTROBENCH_DATA", str(ev / "cache"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.delenv(event.ENV_VAR, raising=False)
    return ev


def test_release_holds_no_truth(env):
    private, public = env / "private", env / "public"
    every_hidden = set()
    for track, datasets in event.TRACKS.items():
        for name, (inputs, _) in datasets.items():
            folder = private / track / name
            columns = set(np.load(folder / "test.truth.npy").dtype.names) - {"id"}
            arrays = {p.name.split(".")[1] for p in folder.glob("test.*.npy")} - {"truth"}
            hidden = columns | (arrays - set(inputs))  # every truth column, and the arrays participants must not see
            every_hidden |= hidden
            if inputs:
                released = {p.name.split(".")[1] for p in (public / name).glob("*.npy")}
                assert released == set(inputs) and not released & hidden, (track, name)
    # what the scorers read: anomaly labels, multimodal probe targets, superres HR, the generative reference images
    assert {"is_anomaly", "anomaly_type", "anomaly_code", "z", "g_r", "mag_r", "log_mstar", "hr",
            "images"} <= every_hidden
    released = [p for p in public.rglob("*") if p.is_file()]
    assert {p.relative_to(public).parts[0] for p in released} == {
        "event.json", "galaxies", "galaxies-anomaly", "lightcurves", "superres-galaxies", "superres-fields",
        "superres-nbody", "sbi"}
    for p in released:
        if p.suffix == ".npy":
            assert np.load(p, allow_pickle=False).dtype.names is None, p  # no table, so no truth column
            assert p.name not in ("calib_theta.npy", "test.truth.npy", "test.hr.npy"), p
        else:
            assert SECRET not in p.read_text() and '"seed"' not in p.read_text(), p
    # galaxies is released for multimodal; generative's reference is another secret draw
    assert not np.array_equal(np.load(public / "galaxies" / "test.images.npy"),
                              np.load(private / "generative" / "galaxies" / "test.images.npy"))
    index = json.loads((public / "event.json").read_text())
    from astrobench.data.cache import sha256_file

    assert {k: sha256_file(public / k) for k in index["files"]} == index["files"]
    assert set(index["files"]) == {str(p.relative_to(public)) for p in released} - {"event.json"}


def test_participants_load_the_release_with_one_setting(env, monkeypatch):
    public, private = env / "public", env / "private"
    monkeypatch.setenv(event.ENV_VAR, str(public))
    test = data.load("superres-fields", "test", progress=False)
    assert test.truth.colnames == ["id"] and set(test.arrays) == {"lr"}
    assert np.array_equal(test.lr, np.load(private / "superres" / "superres-fields" / "test.lr.npy"))
    assert test.meta["event"] == "public" and test.meta["seed"] is None
    assert data.load("superres-fields", "train", progress=False).meta["kind"] == "simulated"  # train stays public
    assert event.sbi_inputs("lightcurve").shape[0] == event.SBI_SIMS["fast"]
    with pytest.raises(data.DataError, match="holds the fast test split"):
        data.load("superres-fields", "test", fast=False)
    monkeypatch.delenv(event.ENV_VAR)
    public_test = data.load("superres-fields", "test", progress=False)
    assert public_test.lr.shape == test.lr.shape and not np.array_equal(public_test.lr, test.lr)


def test_private_and_public_truth_give_different_scores(env, tmp_path, capsys):
    from astrobench.metrics.superres import bicubic

    public, private = env / "public", env / "private"
    cfg = json.loads((public / "superres-fields" / "manifest.json").read_text())["config"]
    lr = np.load(public / "superres-fields" / "test.lr.npy")
    path = tmp_path / "pred.npz"
    np.savez(path, sr=bicubic(lr, cfg["factor"], cfg["extensive"]))
    assert cli.main(["event", "score", "superres:fields", str(path), "--private", str(private),
                     "--json", str(tmp_path / "event.json")]) == 0
    secret = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "event.json").read_text())["psnr"] == secret["psnr"]
    public_score = metrics.score("superres:fields", str(path))
    assert secret["psnr"] == pytest.approx(secret["psnr_bicubic"])  # bicubic of the event's LR, scored on its HR
    assert abs(public_score["psnr"] - secret["psnr"]) > 1.0  # the public HR is another sky
    with event.using(private / "superres"):  # the same scorer, pointed at the private folder
        assert metrics.score("superres:fields", str(path))["psnr"] == secret["psnr"]



@pytest.mark.parametrize("target", ["anomaly:lightcurves", "superres:nbody"])
def test_the_time_domain_and_nbody_tasks_score_on_the_secret_split(env, tmp_path, capsys, target):
    """A prediction made from the released inputs scores against the event's truth, not the public one."""
    from astrobench.metrics.superres import bicubic

    public, private = env / "public", env / "private"
    if target == "superres:nbody":
        cfg = json.loads((public / "superres-nbody" / "manifest.json").read_text())["config"]
        up = bicubic(np.load(public / "superres-nbody" / "test.lr.npy"), cfg["factor"], cfg["extensive"])
        pred = {"sr": np.clip(up, 0, None)}  # densities: bicubic rings below zero next to halos
    else:  # a score the released curves determine: the flux scatter of each curve
        curves = public / "lightcurves"
        flux, mask = np.load(curves / "test.flux.npy"), np.load(curves / "test.mask.npy")
        pred = {"score": np.nanstd(np.where(mask, flux, np.nan), axis=1)}
    path = tmp_path / "pred.npz"
    np.savez(path, **pred)
    assert cli.main(["event", "score", target, str(path), "--private", str(private)]) == 0
    secret = json.loads(capsys.readouterr().out)
    with event.using(private / target.split(":")[0]):
        assert metrics.score(target, str(path)) == secret  # the same scorer, pointed at the private folder

def test_sbi_event_scores_calibration_on_secret_simulations(env, tmp_path):
    from astrobench.sim.sbi_tasks import get_task

    x = event.sbi_inputs("lightcurve", event=env / "public")
    task = get_task("lightcurve")
    prior = np.stack([task.sample_prior(len(x), seed=s) for s in range(100)])  # calibrated, uninformative
    np.savez(tmp_path / "sbi.npz", calib_samples=prior)
    out = event.score("sbi:lightcurve", tmp_path / "sbi.npz", env / "private")
    assert out["calibration_num_sims"] == len(x) and out["sbc_ks_pval_min"] > 0.01
    assert not list((env / "public").rglob("calib_theta*"))


def test_init_is_deterministic_and_secret_dependent(env, tmp_path):
    assert event.derive_seed(SECRET, "anomaly", "galaxies-anomaly") == event.derive_seed(
        SECRET, "anomaly", "galaxies-anomaly")
    seeds = {event.derive_seed(s, t, "galaxies") for s in (SECRET, SECRET + "x") for t in ("generative", "multimodal")}
    assert len(seeds) == 4 and all(0 <= s < event.SEED_RANGE for s in seeds)
    event.init(SECRET, ["superres"], tmp_path / "again", fast=True, progress=False)
    manifest = lambda root: json.loads((root / "superres" / "superres-fields" / "manifest.json").read_text())
    assert manifest(tmp_path / "again")["files"] == manifest(env / "private")["files"]


def _pred(tmp_path, name="p.npz", **arrays):
    np.savez(tmp_path / name, **arrays)
    return str(tmp_path / name)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: str(d / "missing.npz"), "no such file"),
        (lambda d: (d / "bad.npz").write_text("not a zip") and str(d / "bad.npz"), "not a readable .npz"),
        (lambda d: _pred(d, sr=np.zeros((3, 1, 128, 128), np.float32)), "expected the superres-fields test split"),
        (lambda d: _pred(d, sr=np.full((100, 1, 128, 128), np.nan, np.float32)), "NaN"),
        (lambda d: _pred(d, score=np.zeros(100, np.float32)), "missing key 'sr'"),
    ],
)
def test_bad_submissions_get_one_line_and_exit_2(env, tmp_path, capsys, make, needle):
    rc = cli.main(["event", "score", "superres:fields", make(tmp_path), "--private", str(env / "private"),
                   "--json", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


def test_bad_event_input_gets_one_line_and_exit_2(env, tmp_path, capsys, monkeypatch):
    private, public = str(env / "private"), str(env / "public")
    pred = _pred(tmp_path, score=np.zeros(400, np.float32), dataset=np.array("galaxies"))
    cases = [
        (["event", "score", "anomaly", pred, "--private", private], "'galaxies' is not in this event"),
        (["event", "score", "anomaly:galaxy10-decals", pred, "--private", private], "'galaxy10-decals' is not in"),
        (["event", "score", "anomaly", pred, "--private", public], "not a private event folder"),
        (["event", "score", "sbi:nope", pred, "--private", private], "no SBI task 'nope'"),
        (["event", "init", "--secret", "short", "--out", str(tmp_path / "a")], "at least 16"),
        (["event", "init", "--secret", SECRET, "--tracks", "nope", "--out", str(tmp_path / "a")], "unknown track"),
        (["event", "init", "--secret", SECRET, "--out", private], "not empty"),
        (["event", "release", "--private", private, "--out", public], "not empty"),
        (["event", "release", "--private", public, "--out", str(tmp_path / "a")], "not a private event"),
        (["event", "frobnicate"], "invalid choice"),
    ]
    for args, needle in cases:
        assert cli.main(args) == 2, args
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
    assert not (tmp_path / "a").exists()
    monkeypatch.setattr(event, "MAX_SUBMISSION_BYTES", 1000)  # a small file that unpacks big (a zip bomb's shape)
    np.savez_compressed(tmp_path / "bomb.npz", score=np.zeros(10_000, np.float32))
    assert cli.main(["event", "score", "anomaly", str(tmp_path / "bomb.npz"), "--private", private]) == 2
    assert "bytes unpacked" in capsys.readouterr().err
    monkeypatch.setenv(event.ENV_VAR, public)  # participants cannot score against a release: it has no truth
    assert cli.main(["score", "anomaly", pred]) == 2
    assert "holds no test truth" in capsys.readouterr().err
    monkeypatch.setenv(event.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(data.DataError, match="no such folder"):
        data.load("superres-fields", "test")
