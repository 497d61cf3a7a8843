"""``gaitwatch report``: the HTML page of a run, rendered from real replay outputs."""

from __future__ import annotations

import base64
import csv
import html
import io
import re
import statistics
from pathlib import Path

import pytest

from pipeline import report as rp
from pipeline.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
DEMO = sorted(p for p in (ROOT / "fixtures" / "demo").glob("*.csv") if not p.stem.endswith("_truth"))


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_out")
    assert cli_main(["replay", *map(str, DEMO), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def alert_out(tmp_path_factory):
    """A simulated run that trips alerts (overstriding and hard landings seen by the shank) and
    whose contacts lengthen by 15 % towards the end (a fatigue sign)."""
    tmp = tmp_path_factory.mktemp("alert_run")
    assert cli_main(["simulate", str(tmp / "rec"), "--session", "demo", "--duration-s", "20", "--fs-hz", "200",
                     "--stand-s", "2", "--strike-angle-deg", "18", "--shank-angle-ic-deg", "13",
                     "--impact-g", "11", "--drift", "contact_ms=0.15"]) == 0
    recs = sorted(p for p in (tmp / "rec").glob("*.csv") if not p.stem.endswith("_truth"))
    assert cli_main(["replay", *map(str, recs), "--out", str(tmp / "out"), "--athlete", "ana"]) == 0
    return tmp / "out"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)]


def test_demo_report_is_self_contained_with_plots(demo_out, capsys):
    assert cli_main(["report", str(demo_out)]) == 0
    path = demo_out / "report.html"
    assert f"wrote {path}" in capsys.readouterr().out
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # self-contained: nothing loaded from elsewhere
    assert not re.search(r"""(src|href)=['"](?!data:)""", text)
    imgs = _images(text)
    assert len(imgs) >= 5  # cadence, contact, shin impact, foot impact, strike, left/right
    from PIL import Image

    for raw in imgs:
        im = Image.open(io.BytesIO(raw))
        im.verify()
        assert im.size[0] > 400 and im.size[1] > 50
    # the headline numbers are the run's: medians of the running foot steps in steps.csv
    rows = [r for r in _rows(demo_out / "steps.csv") if r["activity"] == "running" and r["placement"] == "foot"]
    cad = statistics.median(float(r["cadence_spm"]) for r in rows if r["cadence_spm"])
    contact = statistics.median(float(r["contact_ms"]) for r in rows)
    assert f"{cad:.0f} steps/min" in text and f"{contact:.0f} ms" in text
    n_alerts = len(_rows(demo_out / "alerts.csv"))
    assert ("No form alerts" in text) == (n_alerts == 0)


def test_alerts_with_their_advice_warnings_first(alert_out):
    path = rp.write_report(alert_out)
    text = path.read_text(encoding="utf-8")
    alerts = _rows(alert_out / "alerts.csv")
    rules = {a["rule"] for a in alerts}
    assert {"overstriding", "high_impact"} <= rules  # 13 deg > 10, 11 g > 8 (defaults.toml rules)
    for a in alerts:
        if a == max((b for b in alerts if b["rule"] == a["rule"]), key=lambda b: float(b["t_s"])):
            assert html.escape(a["message"]) in text  # the latest advice of each rule
    pos = {a["rule"]: text.index(html.escape(a["rule"].replace("_", " "))) for a in alerts}
    warn = [pos[a["rule"]] for a in alerts if a["severity"] != "info"]
    tips = [pos[a["rule"]] for a in alerts if a["severity"] == "info"]
    if warn and tips:
        assert max(warn) < min(tips)
    assert "No form alerts" not in text


def test_numbers_behind_the_plots(alert_out):
    run = rp.load_run(alert_out)
    shares = rp.strike_shares(run)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert max(shares, key=shares.get) == "rearfoot"  # 18 deg toe-up > 8 deg (Altman & Davis 2012)
    table = {label: (le, ri, si) for label, _u, le, ri, si in rp.side_table(run)}
    le, ri, si = table["Ground contact"]
    assert si == pytest.approx((ri - le) / ((le + ri) / 2) * 100)
    assert abs(si) < 5  # the simulator's feet are symmetric
    h = rp.headline(run)
    rows = [r for r in _rows(alert_out / "steps.csv") if r["activity"] == "running" and r["placement"] == "shank"]
    assert h["pta_g"] == pytest.approx(statistics.median(float(r["pta_g"]) for r in rows if r["pta_g"]))
    # distance: one foot's stride lengths (about speed x duration of running)
    assert 0.8 * 3.3 * 18 < h["distance_m"] < 1.1 * 3.3 * 20


def test_not_measured_explains_missing_metrics(tmp_path):
    """At 100 Hz the impact metrics are NaN (fs_too_low): the page says why."""
    assert cli_main(["simulate", str(tmp_path / "rec"), "--duration-s", "8", "--fs-hz", "100", "--side", "left"]) == 0
    assert cli_main(["replay", str(tmp_path / "rec" / "foot_left.csv"), "--out", str(tmp_path / "out")]) == 0
    run = rp.load_run(tmp_path / "out")
    missing = {(m, why) for _s, m, why in rp.not_measured(run)}
    assert ("impact_g", rp.REASONS["fs_too_low"]) in missing
    text = rp.render_html(run)
    assert "Not measured on this run" in text and "impact_g" in text


def test_bad_directory_is_one_line_error(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gaitwatch: error: report:") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert cli_main(["report", str(tmp_path / "empty")]) == 2
    assert "steps.csv not found" in capsys.readouterr().err


def test_early_vs_late(alert_out, demo_out):
    what, rows = rp.early_late(rp.load_run(alert_out))
    by = {label: (e, l_, pct, sign) for label, _u, e, l_, pct, sign in rows}
    assert "third" in what  # 20 s: shorter than the fatigue rule's windows
    e, l_, pct, sign = by["Ground contact"]
    assert l_ > e and sign  # +15 % drift -> about +10 % between the thirds, over the rule's 4 %
    assert not by["Cadence"][3]
    _w, rows = rp.early_late(rp.load_run(demo_out))
    assert rows and not any(r[5] for r in rows)  # the steady demo run shows no sign
    text = (alert_out / "report.html").read_text() if (alert_out / "report.html").exists() else \
        rp.write_report(alert_out).read_text()
    assert "Early vs late" in text and "a sign of fatigue" in text
