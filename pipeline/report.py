"""A session report without Grafana: one self-contained HTML page from a replay/live output
directory (``steps.csv``, ``alerts.csv``, ``session.json`` of :mod:`pipeline.sinks.file_sink`).

The page is for the runner: the run at a glance (time, distance, cadence, contact, impact,
strike pattern), what to work on (the run's alerts with their advice, warnings first), and
plots made with matplotlib, embedded as PNG data URIs so the file can be mailed or opened
offline: cadence and contact time over the run, impact with its moving average and the alert
threshold, strike pattern shares, left/right comparison. Metrics the sensors could not
measure are listed with the reason (from ``session.json``), so an empty plot is explained.

Plot smoothing is the alert rules' own moving average (``[alerts] window_steps`` running
steps), so what the page shows is what the alerts judged.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError

#: strike_pattern_code (detectors/form/strike.py, Altman & Davis 2012): +1 rearfoot, 0 midfoot, -1 forefoot
STRIKE_LABELS = {1.0: "rearfoot", 0.0: "midfoot", -1.0: "forefoot"}
SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "": "#555555"}
#: Per-side comparison: metric -> (label, unit, decimals)
COMPARE = {
    "contact_ms": ("Ground contact", "ms", 0),
    "flight_ms": ("Flight", "ms", 0),
    "impact_g": ("Foot impact", "g", 1),
    "pta_g": ("Shin impact (PTA)", "g", 1),
    "strike_angle_deg": ("Strike angle", "deg", 1),
    "pronation_excursion_deg": ("Pronation", "deg", 1),
    "stride_length_m": ("Stride length", "m", 2),
    "foot_progression_deg": ("Toe-out", "deg", 1),
    "shank_angle_ic_deg": ("Shank angle at contact", "deg", 1),
}
REASONS = {
    "fs_too_low": "the sampling rate is too low for it",
    "no_gyro": "the sensor has no gyroscope",
    "no_standing_calibration": "no standing still before the run (calibration)",
    "no_previous_stride": "it needs the previous stride",
    "clipped": "the sensor's range was exceeded",
    "no_pair": "it needs a sensor of the same kind on the other leg",
}
SKIP_REASONS = frozenset({"wrong_placement"})  # a metric of the other placement: not a problem


@dataclass
class RunData:
    directory: Path
    steps: pd.DataFrame
    alerts: pd.DataFrame
    session: dict
    window_steps: int = 5
    thresholds: dict[str, float] = field(default_factory=dict)


def load_run(directory: str | Path) -> RunData:
    """Read the three files of an output directory (``alerts.csv`` may be missing: no alerts)."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"report: {d} is not a directory (give the --out directory of replay/live)")
    steps_p, session_p, alerts_p = d / "steps.csv", d / "session.json", d / "alerts.csv"
    for p in (steps_p, session_p):
        if not p.exists():
            raise InputError(f"report: {p} not found (give the --out directory of replay/live)")
    try:
        steps = pd.read_csv(steps_p)
        session = json.loads(session_p.read_text())
        alerts = pd.read_csv(alerts_p) if alerts_p.exists() else pd.DataFrame(
            columns=["t_s", "rule", "severity", "sensor_id", "athlete", "value", "threshold", "message"])
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"report: cannot read {d}: {' '.join(str(exc).split())}") from None
    for col in ("sensor_id", "side", "placement", "activity", "ic_s"):
        if col not in steps.columns:
            raise InputError(f"report: {steps_p} has no column {col!r}; is it a gaitwatch steps.csv?")
    steps["side"] = steps["side"].fillna("")
    from pipeline.config import load_config
    from pipeline.dashboards_gen import alert_thresholds

    cfg = load_config()
    return RunData(d, steps, alerts, session, window_steps=int(cfg.get("alerts", "window_steps")),
                   thresholds=alert_thresholds())


# -- numbers ----------------------------------------------------------------------------------------


def _running(run: RunData) -> pd.DataFrame:
    s = run.steps
    r = s[s["activity"] == "running"]
    return r if len(r) else s


def _feet(df: pd.DataFrame) -> pd.DataFrame:
    f = df[df["placement"] == "foot"]
    return f if len(f) else df


def _median(df: pd.DataFrame, col: str) -> float:
    if col not in df.columns:
        return math.nan
    v = pd.to_numeric(df[col], errors="coerce").dropna()
    return float(v.median()) if len(v) else math.nan


def headline(run: RunData) -> dict[str, float | str]:
    """The run at a glance (medians over running steps; foot sensors preferred)."""
    r = _feet(_running(run))
    out: dict[str, float | str] = {
        "steps": int(len(_feet(run.steps)[["sensor_id", "ic_s"]])),
        "duration_s": float(run.session.get("duration_s") or 0.0),
        "cadence_spm": _median(r, "cadence_spm"),
        "contact_ms": _median(r, "contact_ms"),
        "impact_g": _median(r, "impact_g"),
        "pta_g": _median(_running(run)[_running(run)["placement"] == "shank"], "pta_g"),
        "speed_mps": _median(r, "speed_mps"),
    }
    # distance: stride lengths summed per foot sensor (each stride counted once), longest sensor
    dist = math.nan
    if "stride_length_m" in r.columns:
        per = r.groupby("sensor_id")["stride_length_m"].sum(min_count=1).dropna()
        if len(per):
            dist = float(per.max())
    out["distance_m"] = dist
    shares = strike_shares(run)
    out["strike"] = max(shares, key=shares.get) if shares else ""
    return out


def strike_shares(run: RunData, side: str | None = None) -> dict[str, float]:
    """Share of running foot steps per strike pattern (0..1)."""
    r = _feet(_running(run))
    if side is not None:
        r = r[r["side"] == side]
    if "strike_pattern_code" not in r.columns:
        return {}
    codes = pd.to_numeric(r["strike_pattern_code"], errors="coerce").dropna()
    if not len(codes):
        return {}
    return {label: float((codes == code).mean()) for code, label in STRIKE_LABELS.items()}


def side_table(run: RunData) -> list[tuple[str, str, float, float, float]]:
    """(label, unit, left median, right median, symmetry index %) of each measured metric.

    SI = (right - left) / mean(left, right) * 100 (Robinson et al. 1987), on medians; foot
    sensors for foot metrics, the shank sensor for shank metrics."""
    r = _running(run)
    rows = []
    for col, (label, unit, _dec) in COMPARE.items():
        if col not in r.columns:
            continue
        vals = {}
        for side in ("left", "right"):
            sub = r[r["side"] == side]
            if col not in ("pta_g", "shank_angle_ic_deg"):
                sub = _feet(sub)
            vals[side] = _median(sub, col)
        if not any(math.isfinite(v) for v in vals.values()):
            continue
        le, ri = vals["left"], vals["right"]
        si = (ri - le) / (0.5 * (le + ri)) * 100 if math.isfinite(le) and math.isfinite(ri) and (le + ri) else math.nan
        rows.append((label, unit, le, ri, si))
    return rows


def alert_groups(run: RunData) -> list[dict]:
    """Alerts of the run grouped by rule (and sensor): count, first/last time, latest advice;
    warnings before tips."""
    a = run.alerts
    if not len(a):
        return []
    out = []
    for (rule, severity), g in a.groupby(["rule", "severity"], sort=False):
        g = g.sort_values("t_s")
        out.append({"rule": str(rule), "severity": str(severity), "count": int(len(g)),
                    "first_s": float(g["t_s"].iloc[0]), "last_s": float(g["t_s"].iloc[-1]),
                    "message": str(g["message"].iloc[-1]),
                    "sensors": sorted({str(x) for x in g["sensor_id"].dropna() if str(x)})})
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda x: (rank.get(x["severity"], 1), x["first_s"]))


def not_measured(run: RunData) -> list[tuple[str, str, str]]:
    """(sensor, metric, why) of metrics the run could not measure on most steps."""
    out = []
    for sensor, metrics in (run.session.get("extra", {}).get("metrics") or {}).items():
        for name, m in metrics.items():
            steps, valid = int(m.get("steps") or 0), int(m.get("valid") or 0)
            reasons = {k: v for k, v in (m.get("nan_reasons") or {}).items() if k not in SKIP_REASONS}
            if steps and valid < 0.5 * steps and reasons:
                why = max(reasons, key=reasons.get)
                out.append((sensor, name, REASONS.get(why, why.replace("_", " "))))
    return out


def early_late(run: RunData) -> tuple[str, list[tuple[str, str, float, float, float, bool]]]:
    """Early run against the end of the run, the way the fatigue rule looks at it.

    Windows from ``[fatigue]``: early = ``baseline_s`` of running starting ``baseline_skip_s``
    after the first running step, late = the last ``window_s``; a run too short for them is
    split in thirds (first vs last). Rows: (label, unit, early, late, change %, fatigue sign)
    for cadence (down), contact time (up; the rule uses the duty factor) and impact (up), a
    sign when the change passes the rule's ``min_change`` (pipeline/fatigue.py FEATURES:
    Hanley & Mohan 2014, Apte et al. 2021, Clansey et al. 2012)."""
    from pipeline.config import load_config
    from pipeline.fatigue import FEATURES

    r = _running(run)
    if not len(r):
        return "", []
    f = load_config().section("fatigue")
    t = pd.to_numeric(r["ic_s"], errors="coerce")
    t0, t1 = float(t.min()), float(t.max())
    skip, base, win = float(f["baseline_skip_s"]), float(f["baseline_s"]), float(f["window_s"])
    if t1 - t0 >= skip + base + win:
        early = (t >= t0 + skip) & (t < t0 + skip + base)
        late = t > t1 - win
        what = (f"minutes {skip / 60:g}-{(skip + base) / 60:g} of running against the last {win / 60:g} minutes")
    else:
        third = (t1 - t0) / 3
        early, late = t <= t0 + third, t >= t1 - third
        what = "first third of the run against the last third (too short for the fatigue rule's windows)"
    rows = []
    shank = (r["placement"] == "shank").any() and "pta_g" in r.columns
    for col, label, unit, feature, dec in (("cadence_spm", "Cadence", "steps/min", "cadence_spm", 0),
                                           ("contact_ms", "Ground contact", "ms", "duty_factor", 0),
                                           ("pta_g" if shank else "impact_g", "Impact", "g", "impact", 1)):
        if col not in r.columns:
            continue
        sub = r[r["placement"] == "shank"] if col == "pta_g" else _feet(r)
        e, l_ = _median(sub[early[sub.index]], col), _median(sub[late[sub.index]], col)
        if not (math.isfinite(e) and math.isfinite(l_)) or e == 0:
            continue
        change = (l_ - e) / abs(e)
        direction, min_change = FEATURES[feature]
        rows.append((label, unit, e, l_, change * 100, direction * change >= min_change))
    return what, rows


# -- plots --------------------------------------------------------------------------------------------


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax, ylabel: str) -> None:
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)


def _time_axis(run: RunData) -> tuple[float, str]:
    """(divisor, label): minutes for runs of 3 minutes or more, else seconds."""
    last = float(pd.to_numeric(run.steps["ic_s"], errors="coerce").max()) if len(run.steps) else 0.0
    return (60.0, "minutes into the run") if last >= 180.0 else (1.0, "seconds into the run")


def _alert_marks(ax, run: RunData, div: float) -> None:
    a = run.alerts
    if len(a):
        warn = a[a["severity"] != "info"]
        for i, t in enumerate(sorted(set(float(x) for x in warn["t_s"]))):
            ax.axvline(t / div, color="#e377c2", alpha=0.6, lw=1, label="warning" if i == 0 else None)


def plot_over_run(run: RunData, col: str, ylabel: str, *, threshold: float | None = None, placement: str = "foot",
                  by: str = "side") -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = _running(run)
    r = r[r["placement"] == placement] if (r["placement"] == placement).any() else r
    if col not in r.columns or not pd.to_numeric(r[col], errors="coerce").notna().any():
        return None
    div, xlabel = _time_axis(run)
    fig, ax = plt.subplots(figsize=(8.5, 2.8))
    for key, g in r.groupby(by):
        g = g.sort_values("ic_s")
        y = pd.to_numeric(g[col], errors="coerce")
        color = SIDE_COLORS.get(str(g["side"].iloc[0]), "#555555")
        ax.plot(g["ic_s"] / div, y, ".", ms=3, alpha=0.35, color=color)
        avg = y.rolling(run.window_steps, min_periods=1).mean()
        ax.plot(g["ic_s"] / div, avg, "-", lw=2, color=color, label=f"{key} ({run.window_steps}-step average)")
    lo, hi = ax.get_ylim()
    mid = float(pd.to_numeric(r[col], errors="coerce").median())
    if math.isfinite(mid) and hi - lo < 0.1 * abs(mid):  # small variation is not drawn as a big swing
        ax.set_ylim(min(lo, mid - 0.05 * abs(mid)), max(hi, mid + 0.05 * abs(mid)))
    if threshold is not None and math.isfinite(threshold):
        ax.axhline(threshold, color="#d62728", ls="--", lw=1, label=f"alert above {threshold:g}")
    _alert_marks(ax, run, div)
    ax.set_xlabel(xlabel)
    _style(ax, ylabel)
    ax.legend(loc="best", fontsize=8, frameon=False)
    return _png(fig)


def plot_strike(run: RunData) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(side, strike_shares(run, side)) for side in ("left", "right")]
    rows = [(s, sh) for s, sh in rows if sh]
    if not rows:
        return None
    colors = {"rearfoot": "#ff7f0e", "midfoot": "#2ca02c", "forefoot": "#1f77b4"}
    fig, ax = plt.subplots(figsize=(8.5, 0.6 + 0.55 * len(rows)))
    for i, (side, sh) in enumerate(rows):
        left = 0.0
        for label in ("rearfoot", "midfoot", "forefoot"):
            w = sh.get(label, 0.0)
            ax.barh(i, w * 100, left=left, color=colors[label], label=label if i == 0 else None)
            if w >= 0.08:
                ax.text(left + w * 50, i, f"{label} {w:.0%}", ha="center", va="center", color="white", fontsize=9)
            left += w * 100
    ax.set_yticks(range(len(rows)), [f"{s} foot" for s, _ in rows])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of running steps")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=3, frameon=False, fontsize=8)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    return _png(fig)


def plot_sides(run: RunData) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in side_table(run) if math.isfinite(r[2]) and math.isfinite(r[3])]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 0.5 + 0.45 * len(rows)))
    y = np.arange(len(rows))
    si = [r[4] for r in rows]
    colors = ["#d62728" if abs(v) > 10 else "#2ca02c" for v in si]  # 10 %: the imbalance rule's threshold
    ax.barh(y, si, color=colors)
    ax.axvline(0, color="black", lw=0.8)
    lim = max(15.0, max(abs(v) for v in si) * 1.2)
    ax.set_xlim(-lim, lim)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("<- left larger      symmetry index (%)      right larger ->")
    for yy, v in zip(y, si):
        ax.text(v, yy, f" {v:+.1f} %", va="center", ha="left" if v >= 0 else "right", fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    return _png(fig)


# -- HTML ---------------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;max-width:920px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.1em}h2{margin-top:1.6em;border-bottom:2px solid #eee;padding-bottom:.2em}
.sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{background:#f6f8fa;border-radius:8px;padding:.6em 1em;min-width:120px}
.card .v{font-size:1.6em;font-weight:600}.card .l{color:#666;font-size:.85em}
.alert{border-left:5px solid #d62728;background:#fff5f5;padding:.6em 1em;margin:.6em 0;border-radius:4px}
.alert.info{border-color:#1f77b4;background:#f3f8fd}
.alert .meta{color:#666;font-size:.85em}
.good{border-left:5px solid #2ca02c;background:#f3fbf3;padding:.6em 1em;border-radius:4px}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}
img{max-width:100%}
.foot{color:#888;font-size:.8em;margin-top:3em}
"""


def _fmt(v: float, dec: int = 0, unit: str = "") -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "&ndash;"
    return f"{v:.{dec}f}{(' ' + unit) if unit else ''}"


def _mmss(t_s: float) -> str:
    return f"{int(t_s // 60)}:{int(t_s % 60):02d}"


def render_html(run: RunData) -> str:
    s = run.session
    h = headline(run)
    e = html.escape
    when = str(s.get("start_utc", ""))[:16].replace("T", " ")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>Run report {e(str(s.get('session_id', '')))}</title><style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>Your run</h1><p class='sub'>{e(str(s.get('athlete') or 'runner'))} &middot; {e(when)} UTC "
                 f"&middot; session {e(str(s.get('session_id', '')))} &middot; {e(str(s.get('status', '')))}</p>")
    dur = h["duration_s"]
    cards = [("time", f"{int(dur // 60)}:{int(dur % 60):02d}" if dur else "&ndash;"),
             ("distance", _fmt(h["distance_m"] / 1000, 2, "km") if math.isfinite(h["distance_m"]) else "&ndash;"),
             ("cadence", _fmt(h["cadence_spm"], 0, "steps/min")),
             ("ground contact", _fmt(h["contact_ms"], 0, "ms")),
             ("impact at the shin" if math.isfinite(h["pta_g"]) else "impact at the foot",
              _fmt(h["pta_g"] if math.isfinite(h["pta_g"]) else h["impact_g"], 1, "g")),
             ("strike", e(str(h["strike"]) or "&ndash;")),
             ("steps", str(h["steps"]))]
    parts.append("<div class='cards'>" + "".join(
        f"<div class='card'><div class='v'>{v}</div><div class='l'>{e(k)}</div></div>" for k, v in cards) + "</div>")

    parts.append("<h2>What to work on</h2>")
    groups = alert_groups(run)
    if not groups:
        parts.append("<div class='good'>No form alerts on this run: nothing the sensors saw needs changing. "
                     "Keep it up.</div>")
    for g in groups:
        cls = "alert info" if g["severity"] == "info" else "alert"
        times = (f"at {_mmss(g['first_s'])}" if g["count"] == 1
                 else f"{g['count']} times, {_mmss(g['first_s'])} to {_mmss(g['last_s'])}")
        parts.append(f"<div class='{cls}'><b>{e(g['rule'].replace('_', ' '))}</b> "
                     f"<span class='meta'>({e('tip' if g['severity'] == 'info' else g['severity'])}, {times}"
                     f"{', ' + e(', '.join(g['sensors'])) if g['sensors'] else ''})</span>"
                     f"<br>{e(g['message'])}</div>")

    plots = [
        ("Cadence", "Steps per minute, both feet. Around 170-180 is typical for easy running; a few percent more "
                    "steps often means softer landings.",
         plot_over_run(run, "cadence_spm", "steps/min")),
        ("Ground contact time", "How long each foot stays on the ground.",
         plot_over_run(run, "contact_ms", "ms")),
        ("Impact at the shin", "Peak tibial acceleration per step (shank sensor).",
         plot_over_run(run, "pta_g", "g", threshold=run.thresholds.get("pta_g"), placement="shank", by="sensor_id")),
        ("Impact at the foot", "Peak vertical deceleration of the foot at landing.",
         plot_over_run(run, "impact_g", "g", threshold=run.thresholds.get("impact_g"))),
        ("How your foot lands", "Share of steps landing on the heel (rearfoot), flat (midfoot) or the ball of "
                                "the foot (forefoot).", plot_strike(run)),
        ("Left vs right", "Difference between the legs (symmetry index of the medians); green within 10 %.",
         plot_sides(run)),
    ]
    parts.append("<h2>Your run in plots</h2>")
    if not len(run.steps):
        parts.append("<p>No steps were detected in this run.</p>")
    for title, text, img in plots:
        if img is None:
            continue
        parts.append(f"<h3>{e(title)}</h3><p class='sub'>{e(text)}</p><img alt='{e(title)}' src='{img}'>")

    what, el = early_late(run)
    if el:
        parts.append(f"<h2>Early vs late</h2><p class='sub'>{e(what)}: does your form hold up?</p>"
                     "<table><tr><th>median</th><th>early</th><th>late</th><th>change</th><th></th></tr>")
        for label, unit, ev, lv, pct, sign in el:
            dec = 1 if unit == "g" else 0
            parts.append(f"<tr><td>{e(label)}</td><td>{_fmt(ev, dec, unit)}</td><td>{_fmt(lv, dec, unit)}</td>"
                         f"<td>{_fmt(pct, 1, '%')}</td><td>{'&#9888; a sign of fatigue' if sign else ''}</td></tr>")
        parts.append("</table>")
    rows = side_table(run)
    if rows:
        parts.append("<h2>Left and right in numbers</h2><table><tr><th>median of running steps</th><th>left</th>"
                     "<th>right</th><th>difference</th></tr>")
        for label, unit, le, ri, si in rows:
            dec = COMPARE[next(k for k, v in COMPARE.items() if v[0] == label)][2]
            parts.append(f"<tr><td>{e(label)}</td><td>{_fmt(le, dec, unit)}</td><td>{_fmt(ri, dec, unit)}</td>"
                         f"<td>{_fmt(si, 1, '%')}</td></tr>")
        parts.append("</table>")
    missing = not_measured(run)
    if missing:
        parts.append("<h2>Not measured on this run</h2><ul>" + "".join(
            f"<li>{e(metric)} ({e(sensor)}): {e(why)}</li>" for sensor, metric, why in missing) + "</ul>")
    inputs = ", ".join(str(x) for x in (s.get("extra", {}) or {}).get("inputs", []))
    parts.append(f"<p class='foot'>gaitwatch report of {e(str(run.directory.name))}"
                 f"{' (' + e(inputs) + ')' if inputs else ''}. Alerts and thresholds: gaitwatch's alert rules. "
                 f"Not medical advice: if something hurts, see a physiotherapist or doctor.</p></body></html>")
    return "\n".join(parts)


def write_report(directory: str | Path, out: str | Path | None = None) -> Path:
    run = load_run(directory)
    path = Path(out) if out else Path(directory) / "report.html"
    path.write_text(render_html(run), encoding="utf-8")
    return path
