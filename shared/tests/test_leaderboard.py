"""`astrobench leaderboard`: ranking, bootstrap intervals, rejected rows, the per-row hooks against the scorers, and
the command's one-line errors. Submissions are synthetic predictions on FAST test splits (no training)."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from astrobench import cli, data, leaderboard
from astrobench.metrics import anomaly

XSS = "<img src=x onerror=alert(1)> $\\alpha$ {{ 7*7 }}"  # escaped by jinja2, plain text to matplotlib


def _team(root, board, team, info=None, **arrays):
    folder = root / board / team
    folder.mkdir(parents=True)
    if arrays:
        np.savez(folder / "predictions.npz", **arrays)
    if info is not False:
        (folder / "team.json").write_text(json.dumps(info or {"name": team.title(), "method": f"{team} scores"}))
    return folder


def make_submissions(root):
    """anomaly: a strong team, a random one, a baseline in between, and one of each kind of broken submission."""
    labels, _ = anomaly.truth(fast=True)
    rng = np.random.default_rng(0)
    noise = {name: np.random.default_rng(seed).normal(size=len(labels)) for seed, name in enumerate(
        ("strong", "baseline", "xss", "coin"))}
    subs, base = root / "submissions", root / "baselines"
    _team(subs, "anomaly", "strong", score=3.0 * labels + noise["strong"])
    _team(subs, "anomaly", "coin", score=noise["coin"])  # random scores: chance level
    _team(subs, "anomaly", "xss", {"name": XSS}, score=0.7 * labels + noise["xss"])
    _team(subs, "anomaly", "short", score=rng.normal(size=10))
    _team(subs, "anomaly", "pickle", score=np.array([{"a": 1}] * len(labels), dtype=object))
    _team(subs, "anomaly", "noteam", False, score=rng.normal(size=len(labels)))
    _team(subs, "anomaly", "badjson", score=rng.normal(size=len(labels)))
    (subs / "anomaly" / "badjson" / "team.json").write_text("{not json")
    (_team(subs, "anomaly", "text") / "predictions.npz").write_text("hello")
    bomb = _team(subs, "anomaly", "bomb")  # 80 MB of zeros: 80 kB on disk
    np.savez_compressed(bomb / "predictions.npz", score=np.zeros(10_000_000))
    link = _team(subs, "anomaly", "link")
    (link / "predictions.npz").symlink_to(subs / "anomaly" / "strong" / "predictions.npz")
    (subs / "nope").mkdir()  # not a track
    (base / "anomaly").mkdir(parents=True)
    np.savez(base / "anomaly" / "predictions.npz", score=1.5 * labels + noise["baseline"])
    return subs, base


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaderboard")
    subs, base = make_submissions(root)
    site = root / "site"
    boards = leaderboard.build(subs, site, baselines=base, n_boot=50, max_mb=16, timeout=None)  # in-process
    return subs, base, site, {b.name: b for b in boards}


def _rows(board_):
    return {r["team"]: r for r in board_.rows}


def test_ranking_baseline_and_references(board):
    _, _, site, boards = board
    b = boards["anomaly"]
    ok = [r["team"] for r in b.rows if r["status"] == "ok"]
    assert ok == ["strong", "baseline", "xss", "coin"]  # by AUROC, the baseline in its place
    rows = _rows(b)
    assert [rows[t]["rank"] for t in ok] == [1, None, 2, 3]
    assert rows["baseline"]["baseline"] and rows["baseline"]["name"] == "baseline"
    assert b.references == [("random ranking", 0.5), ("perfect ranking", 1.0)]
    assert b.scope == "galaxies-anomaly test split, FAST (400 rows)"
    saved = json.loads((site / "results.json").read_text())["anomaly"]
    assert [r["team"] for r in saved["rows"]][:4] == ok


def test_broken_submissions_are_rejected_rows(board):
    _, _, _, boards = board
    rows = _rows(boards["anomaly"])
    reasons = {t: r["reason"] for t, r in rows.items() if r["status"] == "rejected"}
    assert set(reasons) == {"short", "pickle", "noteam", "badjson", "text", "bomb", "link"}
    assert "10 rows; expected the galaxies-anomaly test split" in reasons["short"]
    assert "Python objects" in reasons["pickle"]
    assert "no team.json" in reasons["noteam"] and "not valid JSON" in reasons["badjson"]
    assert "not an .npz archive" in reasons["text"]
    assert "unpacks to 76 MB; expected at most 16 MB" in reasons["bomb"]
    assert "symbolic link" in reasons["link"]
    assert all("\n" not in r and len(r) <= 300 for r in reasons.values())
    assert boards["nope"].error.startswith("folder 'nope' is not a board")


def test_numbers_are_those_of_astrobench_score(board, capsys):
    subs, _, _, boards = board
    capsys.readouterr()
    assert cli.main(["score", "anomaly", str(subs / "anomaly" / "strong" / "predictions.npz")]) == 0
    printed = json.loads(capsys.readouterr().out)
    row = _rows(boards["anomaly"])["strong"]
    for key in ("auroc", "auprc", "precision_at_1pct", "recall_at_1pct_fpr"):
        assert row["metrics"][key] == printed[key]  # identical, not close


def test_intervals_bracket_the_estimates(board):
    _, _, _, boards = board
    rows = _rows(boards["anomaly"])
    for team in ("strong", "baseline", "xss", "coin"):
        for key in ("auroc", "auprc", "precision_at_1pct"):
            lo, hi = rows[team]["intervals"][key]
            assert lo <= rows[team]["metrics"][key] <= hi
    assert rows["coin"]["intervals"]["auroc"][0] < 0.5 < rows["coin"]["intervals"]["auroc"][1]
    assert rows["strong"]["intervals"]["auroc"][0] > rows["coin"]["intervals"]["auroc"][1]


def test_site_files_and_escaping(board):
    _, _, site, _ = board
    assert sorted(p.name for p in site.iterdir()) == ["anomaly.html", "anomaly.png", "index.html", "results.json",
                                                      "style.css"]
    assert (site / "anomaly.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (site / "anomaly.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "{{ 7*7 }}" in page and "<script" not in page  # a name is never evaluated as a template
    index = (site / "index.html").read_text()
    assert 'href="anomaly.html"' in index and "rejected: folder &#39;nope&#39; is not a board" in index


def test_stratified_bootstrap_keeps_class_counts():
    seen = []
    labels = np.array([0] * 30 + [1] * 3)
    group = leaderboard.Resample(len(labels), lambda i: seen.append(labels[i].sum()) or {"x": 0.0}, strata=labels)
    assert leaderboard.bootstrap([group], 50, seed=1) == {"x": [0.0, 0.0]}
    assert seen == [3] * 50  # every resample holds the 3 anomalies' count: AUROC is always defined


def _full_index_matches(target, pred, keys):
    result, _, groups = leaderboard.PER_ROW[target.partition(":")[0]](target, pred)
    values = {}
    for g in groups:
        values |= g.stat(np.arange(g.n))
    for key in keys:
        assert values[key] == pytest.approx(result[key], rel=1e-12, abs=1e-12), key
    return result


def _anomaly_pred(rng):
    labels, _ = anomaly.truth(fast=True)
    return {"score": labels + rng.normal(size=len(labels))}


def _superres_pred(rng):
    from astrobench.metrics import superres

    test = data.load("superres-galaxies", "test", fast=True, progress=False)
    cfg = test.meta["config"]
    sr = superres.bicubic(np.asarray(test.lr), cfg["factor"], cfg["extensive"])
    return {"sr": sr + 1e-3 * rng.normal(size=sr.shape).astype(np.float32)}


def _multimodal_pred(rng):
    truth = {s: data.load("galaxies", s, fast=True, progress=False).truth for s in ("train", "test")}
    emb = {s: np.stack([np.asarray(t["z"]), np.asarray(t["g_r"]), *rng.normal(size=(4, len(t)))], 1)
           .astype(np.float32) for s, t in truth.items()}
    return {"image_emb": emb["test"], "spectrum_emb": emb["test"][:, ::-1].copy(), "image_emb_train": emb["train"],
            "spectrum_emb_train": emb["train"][:, ::-1].copy()}


@pytest.fixture
def cheap_morphology(monkeypatch):
    """The generative scorer with stand-in per-image statistics (the real ones take seconds per 200 stamps; the
    hook only resamples whatever per-image values the scorer returns), and its reference cache emptied around."""
    from astrobench.metrics import generative

    def statistics(images, sky_sigma, **_):
        x = np.asarray(images, np.float64)
        return {s: x[:, i % 3].reshape(len(x), -1)[:, i * 97 % 4096] for i, s in enumerate(generative.STATS)}

    generative.reference.cache_clear()
    monkeypatch.setattr(generative, "statistics", statistics)
    yield
    generative.reference.cache_clear()


def _generative_pred(rng):
    images = data.load("galaxies", "train", fast=True, progress=False).images[:200]  # real galaxies as "samples"
    return {"images": np.asarray(images, np.float32), "fast": np.bool_(True)}


@pytest.mark.parametrize("track, make", [("anomaly", _anomaly_pred), ("superres", _superres_pred),
                                         ("multimodal", _multimodal_pred), ("generative", _generative_pred)])
def test_per_row_hooks_reproduce_the_scorers(track, make, request):
    """A track's per-row quantities, taken over all rows, give the scorer's own numbers for every column."""
    if track == "generative":
        request.getfixturevalue("cheap_morphology")
    _full_index_matches(track, make(np.random.default_rng(1)), [c.key for c in leaderboard.TRACKS[track].columns])


def test_the_nbody_board_ranks_by_the_statistics_not_psnr(tmp_path):
    """superres-nbody ranks on P(k) (then peaks, r(k)): a smooth upsampler, best on PSNR, ranks below maps that keep
    the small-scale power."""
    from astrobench.metrics import superres

    test = data.load("superres-nbody", "test", fast=True, progress=False)
    hr, cfg = np.asarray(test.hr), test.meta["config"]
    smooth = np.clip(superres.bicubic(np.asarray(test.lr), cfg["factor"], cfg["extensive"]), 0, None)
    rough = np.roll(hr, 1, axis=0)  # each map's neighbour: the HR's statistics, none of its structure
    subs = tmp_path / "submissions"
    _team(subs, "superres-nbody", "smooth", sr=smooth)
    _team(subs, "superres-nbody", "rough", sr=rough)
    (b,) = leaderboard.build(subs, tmp_path / "site", n_boot=10, max_mb=16, timeout=None)
    rows = _rows(b)
    assert b.track.columns[0].key == "pk_worst_half_nyquist"
    assert rows["smooth"]["metrics"]["psnr"] > rows["rough"]["metrics"]["psnr"]
    assert [r["team"] for r in b.rows if r["status"] == "ok"] == ["rough", "smooth"]

def test_sbi_hooks_reproduce_calibration(monkeypatch):
    """SBI: C2ST resampled over the 10 observations, SBC and TARP over the calibration simulations (the C2ST itself
    is stubbed: its classifier takes seconds per observation and is the scorer's business)."""
    import astrobench.metrics
    from astrobench.metrics import sbi

    rng = np.random.default_rng(2)
    theta = rng.uniform(size=(200, 2)).astype(np.float32)
    pred = {"calib_theta": theta, "calib_samples": (theta[None] + 0.1 * rng.normal(size=(100, 200, 2)))
            .astype(np.float32)}
    c2st = [0.61, 0.7, 0.55, 0.9, 0.66, 0.52, 0.8, 0.75, 0.6, 0.58]
    fake = {"task": "lightcurve", "c2st_mean": float(np.mean(c2st)), "c2st": c2st,
            **sbi.calibration(pred["calib_samples"], theta)}
    monkeypatch.setattr(astrobench.metrics, "score", lambda target, p: fake)
    _full_index_matches("sbi:lightcurve", pred, ("c2st_mean", "tarp_atc", "sbc_ks_pval_min"))
    _, scope, groups = leaderboard.PER_ROW["sbi"]("sbi:lightcurve", pred)
    assert scope == "task lightcurve" and [g.n for g in groups] == [10, 200]
    ci = leaderboard.bootstrap(groups, 20)
    assert set(ci) == {"c2st_mean", "tarp_atc", "sbc_ks_pval_min"} and ci["c2st_mean"][0] < 0.674 < ci["c2st_mean"][1]


def test_one_scope_per_board():
    """A submission scored on another split than the baseline's is a rejected row, not a mixed ranking."""
    def row(team, scope, auroc, baseline=False):
        return {"team": team, "name": team, "baseline": baseline, "status": "ok", "reason": "", "rank": None,
                "metrics": {"auroc": auroc}, "intervals": {}, "scope": scope, "result": {}}

    b = leaderboard.Board("anomaly", "anomaly", leaderboard.TRACKS["anomaly"],
                          rows=[row("a", "full", 0.7), row("b", "FAST", 0.9), row("c", "full", 0.7),
                                row("d", "full", float("nan")), row("baseline", "full", 0.6, True)])
    leaderboard._finish(b)
    assert [(r["team"], r["rank"], r["status"]) for r in b.rows] == [
        ("a", 1, "ok"), ("c", 1, "ok"), ("baseline", None, "ok"), ("b", None, "rejected"), ("d", None, "rejected")]
    assert _rows(b)["b"]["reason"] == "scored against the FAST; this board ranks the full"
    assert _rows(b)["d"]["reason"] == "auroc is not a finite number"


def test_cli_scores_each_submission_in_its_own_process(board, tmp_path, capsys):
    """The default path (a child process per submission, with a timeout) gives the in-process numbers; --check
    fails the run for a rejected submission; a rebuild replaces the earlier site."""
    subs, _, _, boards = board
    small = tmp_path / "subs"
    for team in ("strong", "short"):
        (small / "anomaly").mkdir(parents=True, exist_ok=True)
        os.symlink(subs / "anomaly" / team, small / "anomaly" / team, target_is_directory=True)
    site = tmp_path / "site"
    site.mkdir()
    argv = ["leaderboard", str(small), "--out", str(site), "--bootstrap", "50", "--timeout", "120"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "anomaly/strong: rejected: the team folder is a symbolic link" in out  # links are refused, even here
    for team in ("strong", "short"):
        os.unlink(small / "anomaly" / team)
        (small / "anomaly" / team).mkdir()
        for f in ("predictions.npz", "team.json"):
            (small / "anomaly" / team / f).write_bytes((subs / "anomaly" / team / f).read_bytes())
    (site / "stale.txt").write_text("from the earlier build")
    assert cli.main([*argv, "--check", "anomaly/short"]) == 1
    out, err = capsys.readouterr()
    assert "anomaly/strong: rank 1 auroc=" in out and "anomaly/short: rejected: 10 rows" in out
    assert err.strip().splitlines()[-1] == "astrobench: rejected: anomaly/short"
    saved = {r["team"]: r for r in json.loads((site / "results.json").read_text())["anomaly"]["rows"]}
    assert saved["strong"]["metrics"] == _rows(boards["anomaly"])["strong"]["metrics"]
    assert saved["strong"]["intervals"] == _rows(boards["anomaly"])["strong"]["intervals"]  # same seed, same draws
    assert not (site / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]  # no temporary folder left


def test_timeout_rejects_without_breaking(board):
    subs, _, _, _ = board
    out = leaderboard.run_one("anomaly", subs / "anomaly" / "strong" / "predictions.npz", 10, 0, 16, timeout=0.05)
    assert out == {"error": "scoring took longer than 0.05 s (the per-submission timeout)"}


def test_npz_checks_read_headers_not_data(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, score=np.zeros(3))
    header = io.BytesIO()  # a valid .npy header that asks numpy for 8 TB, and no data
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("huge.npy", header.getvalue())
    with pytest.raises(leaderboard.Rejected, match=r"'huge.npy' declares shape \(1000000000000,\) of float64"):
        leaderboard.check_npz(path)


@pytest.mark.parametrize("make, args, match", [
    (lambda p: None, ["missing"], "missing: no such folder; expected SUBMISSIONS"),
    (lambda p: (p / "subs").mkdir() or (p / "site").write_text("x"), ["subs"], "is a file; expected a folder"),
    (lambda p: (p / "subs").mkdir() or (p / "site").mkdir() or (p / "site" / "keep.txt").write_text("x"), ["subs"],
     "not a leaderboard site"),
    (lambda p: (p / "subs").mkdir(), ["subs", "--bootstrap", "-1"], "expected --bootstrap >= 0"),
    (lambda p: (p / "subs").mkdir(), ["subs", "--check", "anomaly/ghost"], "--check anomaly/ghost: no such"),
    (lambda p: (p / "subs").mkdir(), ["subs", "--baselines", "nowhere"], "--baselines nowhere: no such folder"),
    (lambda p: (p / "subs").mkdir(), ["subs", "--private", "subs"], "not a private event folder"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, make, args, match):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    rc = cli.main(["leaderboard", *args, "--out", "site"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and match in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_event_mode_ranks_against_the_hidden_labels(tmp_path):
    """--private: the same board scored against an event's secret test split (astrobench event init): a team that
    fitted the public labels falls to chance, and the numbers are those of `astrobench event score`."""
    event = pytest.importorskip("astrobench.event")  # hidden test labels: astrobench/event.py

    private = event.init("leaderboard-test-secret", ["anomaly"], tmp_path / "private", fast=True, progress=False)
    public, _ = anomaly.truth(fast=True)
    with event.using(private / "anomaly"):
        hidden, _ = anomaly.truth(fast=True)
    noise = np.random.default_rng(0).normal(size=len(public))
    _team(tmp_path / "subs", "anomaly", "public", score=3.0 * public + noise)
    insider = _team(tmp_path / "subs", "anomaly", "insider", score=3.0 * hidden + noise)
    (b,) = leaderboard.build(tmp_path / "subs", tmp_path / "site", private=private, n_boot=20, timeout=None)
    rows = _rows(b)
    assert [r["team"] for r in b.rows] == ["insider", "public"] and b.scope.endswith("(the event's hidden labels)")
    assert rows["insider"]["metrics"]["auroc"] > 0.9 and abs(rows["public"]["metrics"]["auroc"] - 0.5) < 0.2
    expected = event.score("anomaly", insider / "predictions.npz", private)
    assert rows["insider"]["metrics"]["auroc"] == expected["auroc"]


def test_one_submission_policy_for_the_board_the_event_and_codabench():
    from astrobench import codabench, event, leaderboard

    assert event.MAX_SUBMISSION_BYTES == leaderboard.MAX_MB << 20 and event.MAX_MEMBERS == leaderboard.MAX_ARRAYS
    assert {t: codabench.PRIMARY[t] for t in leaderboard.TRACKS if t != "sbi"} == {
        t: b.columns[0].key for t, b in leaderboard.TRACKS.items() if t != "sbi"}
