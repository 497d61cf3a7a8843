"""Kinematic IMU simulator: exact foot/shank IMU signals from a known running motion.

The motion of one segment (foot or shank) is written as a world-frame trajectory of the
segment origin ``o(t)`` and an orientation ``R(t) = Rz(yaw) Ry(-pitch) Rx(roll)``
(world x forward, y left, z up; foot pitch toe-up positive, shank angle positive when the
ankle is ahead of the knee). The sensor sits at a fixed offset ``r`` in the segment and is
mounted with a fixed rotation ``M``. Then, exactly as an IMU measures:

* gyro  = body angular rate ``vee(R^T dR/dt)`` rotated into the sensor frame,
* accel = specific force ``R^T (d²p/dt² + g ẑ)`` at the sensor point ``p = o + R r``,

both evaluated by central differences of the analytic trajectory (step 1e-4 s for position,
1e-5 s for orientation) at the sample times, so the two are consistent with each other.

Event model (ground truth):

* **IC** is the instant the segment's contact point hits the ground: its velocity is
  arrested by a deceleration pulse (fast rise, slower decay; ``_ImpactShape``) whose
  vertical peak is the requested impact ``A`` (``impact_g``). The acceleration therefore
  changes slope abruptly exactly at IC (the impact onset a force plate also marks).
* **TO** is the end of push-off. The foot pitch rate reaches its minimum there (foot rotating
  toes-down about the toe joint), as observed by Falbriard et al. 2018 (Front. Physiol.
  9:610) for foot-worn sensors; the shank's backward rotation rate is largest there, as in
  Aminian et al. 2002 (J. Biomech. 35:689) for shank gyroscopes.
* The foot rolls over heel (rearfoot strike) or forefoot (forefoot strike) to foot-flat,
  stays flat, then rotates about the toe. Pronation is the eversion excursion of the foot
  during stance, foot progression (toe-out) a constant yaw, the shank angle at IC a knot.

Each curve between events is a quintic Hermite spline (value, slope and curvature at
knots), so signals are smooth except at the impact. Per-stride parameters can drift
linearly over the run (fatigue). Sensor effects: mounting rotation, white noise, bias,
range clipping, dropped samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

G_MS2 = 9.80665
FOOT_LENGTH_M = 0.20  # heel to the toe joint (rollover pivot)
SENSOR_OFFSET_M = {"foot": (0.12, 0.0, 0.07), "shank": (0.03, 0.0, 0.10)}
DRIFTABLE = (
    "cadence_spm", "speed_mps", "contact_ms", "strike_angle_deg", "shank_angle_ic_deg",
    "pronation_deg", "toe_out_deg", "impact_g",
)


@dataclass(frozen=True)
class SimParams:
    """Everything the simulator needs; every field is in the unit its name says."""

    placement: str = "foot"
    side: str = "right"
    sensor_id: str = ""
    athlete: str = "sim"
    cadence_spm: float = 170.0  # step rate, both feet
    speed_mps: float = 3.3
    contact_ms: float = 240.0
    strike_angle_deg: float = 12.0  # foot pitch at IC, toe-up positive
    shank_angle_ic_deg: float = 6.0  # + when the ankle is ahead of the knee at IC
    pronation_deg: float = 8.0  # eversion excursion from IC to its peak in stance
    toe_out_deg: float = 7.0  # foot progression angle, + toes out
    impact_g: float = 6.0  # peak vertical deceleration of the contact at IC
    mount_euler_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sensor mount, xyz
    fs_hz: float = 500.0
    duration_s: float = 30.0
    acc_noise_ms2: float = 0.0
    gyr_noise_dps: float = 0.0
    acc_bias_ms2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gyr_bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    acc_range_g: float | None = None
    gyr_range_dps: float | None = None
    drop_fraction: float = 0.0  # fraction of samples dropped (missing rows)
    with_gyro: bool = True
    drift: dict[str, float] = field(default_factory=dict)  # param -> relative change at end
    variability: float = 0.0  # stride-to-stride variability: 0 none, 1 typical runner
    seed: int = 0
    phase_s: float = 0.0  # time of the first IC is stand_s + phase_s + 0.05 s
    # Quiet standing before the run (foot flat, shank vertical, no motion): what a static
    # calibration sees. The run then starts abruptly in late swing 0.05 s before the first IC.
    stand_s: float = 0.0

    def __post_init__(self) -> None:
        if self.placement not in ("foot", "shank"):
            raise ValueError(f"placement must be 'foot' or 'shank', got {self.placement!r}")
        if self.side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {self.side!r}")
        if not (math.isfinite(self.stand_s) and self.stand_s >= 0.0):
            raise ValueError(f"stand_s must be >= 0, got {self.stand_s}")
        if not 50.0 <= self.fs_hz <= 2000.0:
            raise ValueError(f"fs_hz must be in [50, 2000], got {self.fs_hz}")
        stride_ms = 120000.0 / self.cadence_spm
        if not 0.1 * stride_ms < self.contact_ms < 0.75 * stride_ms:
            raise ValueError(f"contact_ms {self.contact_ms} does not fit a stride of {stride_ms:.0f} ms")
        for k in self.drift:
            if k not in DRIFTABLE:
                raise ValueError(f"drift: unknown parameter {k!r}; driftable: {', '.join(DRIFTABLE)}")


def _hermite5(t: np.ndarray, t0: float, t1: float, k0, k1) -> np.ndarray:
    """Quintic Hermite between knots k=(value, slope, curvature) at t0 and t1."""
    h = t1 - t0
    s = (t - t0) / h
    s2, s3 = s * s, s * s * s
    s4, s5 = s3 * s, s3 * s2
    h00 = 1 - 10 * s3 + 15 * s4 - 6 * s5
    h10 = s - 6 * s3 + 8 * s4 - 3 * s5
    h20 = 0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5
    h01 = 10 * s3 - 15 * s4 + 6 * s5
    h11 = -4 * s3 + 7 * s4 - 3 * s5
    h21 = 0.5 * s3 - s4 + 0.5 * s5
    y0, d0, c0 = (np.asarray(v, dtype=float) for v in k0)
    y1, d1, c1 = (np.asarray(v, dtype=float) for v in k1)
    shp = (-1,) + (1,) * y0.ndim
    r = lambda a: a.reshape(shp)  # noqa: E731
    return (r(h00) * y0 + r(h10) * h * d0 + r(h20) * h * h * c0
            + r(h01) * y1 + r(h11) * h * d1 + r(h21) * h * h * c1)


def _smooth(knots: list[tuple[float, tuple]], free: tuple[int, ...]) -> list[tuple[float, tuple]]:
    """Set the curvature of the knots at indices ``free`` to the slope change of their
    neighbours (a central difference), so the curve has no acceleration notches there."""
    out = list(knots)
    for i in free:
        (t0, k0), (t1, k1), (t2, k2) = knots[i - 1], knots[i], knots[i + 1]
        curv = (np.asarray(k2[1], float) - np.asarray(k0[1], float)) / (t2 - t0)
        out[i] = (t1, (k1[0], k1[1], curv))
    return out


def _piecewise(t: np.ndarray, knots: list[tuple[float, tuple]]) -> np.ndarray:
    """Evaluate a chain of quintic Hermite pieces; t must lie within the knot range."""
    times = np.array([k[0] for k in knots])
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(knots) - 2)
    first = np.asarray(knots[0][1][0], dtype=float)
    out = np.empty((t.size,) + first.shape)
    for i in np.unique(idx):
        m = idx == i
        out[m] = _hermite5(t[m], knots[i][0], knots[i + 1][0], knots[i][1], knots[i + 1][1])
    return out


def _after_to(tc: float, tsw: float, angle_to: float, rate_to: float, t_min: float) -> tuple[tuple, float]:
    """A knot shortly after TO where the rate has risen to 40 % of its TO value, so that
    the rate minimum (the TO signature) lies exactly at TO; returns it and the angle at
    ``t_min`` (rate zero) that continues it smoothly (rate decaying linearly to zero)."""
    dt = 0.1 * tsw
    angle_k = angle_to + 0.7 * rate_to * dt
    knot = (tc + dt, (angle_k, 0.4 * rate_to, -0.4 * rate_to / (t_min - tc - dt)))
    return knot, angle_k + 0.2 * rate_to * (t_min - tc - dt)


class _ImpactShape:
    """Deceleration of the contact point at IC: a fast quarter-sine rise to the peak within
    ``rise_s`` then a raised-cosine decay over ``2 * rise_s`` (impact transients rise in
    ~10 ms and decay more slowly: Lieberman et al. 2010, Nature 463:531; tibial shock,
    Milner et al. 2006). Scaled so the velocity change is exactly ``-v_ic`` and the
    vertical peak is ``A``: ``rise_s = |v_z| / (A (1 + 2/pi))``.
    """

    @staticmethod
    def rise(vz_abs: float, a_ms2: float) -> float:
        return vz_abs / (a_ms2 * (1.0 + 2.0 / math.pi))

    def duration(self, vz_abs: float, a_ms2: float) -> float:
        return 3.0 * self.rise(vz_abs, a_ms2)

    def displacement(self, tau: np.ndarray, v_ic: np.ndarray, a_ms2: float) -> np.ndarray:
        """u(tau) with u(end) = 0, u'(0) = v_ic, u'(end) = 0 (per unit of the pulse)."""
        tr = self.rise(abs(v_ic[2]), a_ms2)
        td = 2.0 * tr
        k, mm = math.pi / (2 * tr), math.pi / td
        area = tr * (2.0 / math.pi + 1.0)  # integral of the unit-peak shape

        def g2(t):  # double integral of the unit-peak shape from 0
            t = np.asarray(t, dtype=float)
            x1 = (t - np.sin(k * t) / k) / k
            s_ = np.clip(t - tr, 0.0, None)
            v1_end = 1.0 / k
            x1_end = (tr - 1.0 / k) / k
            x2 = x1_end + v1_end * s_ + 0.5 * (s_ * s_ / 2 + (1 - np.cos(mm * s_)) / (mm * mm))
            return np.where(t <= tr, x1, x2) / area

        t_end = 3.0 * tr
        u0 = -v_ic * (t_end - float(g2(t_end)))
        tt = tau[:, None]
        return u0 + v_ic * tt - v_ic * g2(tt)


_IMPACT_SHAPE = _ImpactShape()


@dataclass(frozen=True)
class _Stride:
    """One stride's parameters and events (times in s from the start of the recording)."""

    ic_s: float
    stride_s: float
    contact_s: float
    strike_deg: float
    shank_ic_deg: float
    pron_deg: float
    yaw_deg: float
    impact_ms2: float
    speed_mps: float
    x0_m: float  # world x of the heel/ankle contact point

    @property
    def to_s(self) -> float:
        return self.ic_s + self.contact_s


class Simulator:
    """Generates one sensor's recording and its per-step ground truth.

    >>> sim = Simulator(SimParams(duration_s=5))
    >>> t_s, acc_ms2, gyr_dps = sim.signals()
    """

    def __init__(self, params: SimParams):
        self.p = params
        self._strides = self._plan()

    # ----------------------------------------------------------------- planning
    def _value(self, name: str, t_s: float) -> float:
        base = getattr(self.p, name)
        rel = self.p.drift.get(name, 0.0)
        frac = min(max(t_s / self.p.duration_s, 0.0), 1.0)
        return base * (1.0 + rel * frac) if name not in ("strike_angle_deg", "shank_angle_ic_deg", "toe_out_deg") \
            else base + rel * frac  # angles drift by an absolute number of degrees

    def _plan(self) -> list[_Stride]:
        p = self.p
        sign = 1.0 if p.side == "left" else -1.0
        strides: list[_Stride] = []
        t = p.stand_s + p.phase_s + 0.05 - 120.0 / p.cadence_spm  # one stride before the first IC
        x = 0.0
        v = p.variability
        k = 0
        while t < p.duration_s + 2.0:
            # stride-to-stride variability (seeded per stride): coefficients of variation of
            # healthy running, Nakayama et al. 2010 / Meardon et al. 2011 (stride time ~1.5 %,
            # contact ~3 %), tibial shock ~8 % (Sheerin et al. 2019); angles a few degrees
            r = np.random.default_rng([p.seed, 7919, k]).standard_normal(8) * v if v > 0 else np.zeros(8)
            stride_s = 120.0 / self._value("cadence_spm", t) * (1.0 + 0.015 * r[0])
            speed = self._value("speed_mps", t) * (1.0 + 0.01 * r[1])
            strides.append(_Stride(
                ic_s=t, stride_s=stride_s,
                contact_s=self._value("contact_ms", t) / 1e3 * (1.0 + 0.03 * r[2]),
                strike_deg=self._value("strike_angle_deg", t) + 1.5 * r[3],
                shank_ic_deg=self._value("shank_angle_ic_deg", t) + 1.0 * r[4],
                pron_deg=max(self._value("pronation_deg", t) + 1.0 * r[5], 0.0),
                yaw_deg=sign * (self._value("toe_out_deg", t) + 1.0 * r[6]),
                impact_ms2=self._value("impact_g", t) * G_MS2 * (1.0 + 0.08 * r[7]), speed_mps=speed, x0_m=x,
            ))
            k += 1
            t += stride_s
            x += speed * stride_s
        return strides

    # ----------------------------------------------------------------- motion
    def _angles(self, s: _Stride, nxt: _Stride, tau: np.ndarray) -> np.ndarray:
        """(yaw, segment pitch/shank angle, eversion) in degrees over one stride."""
        tc, T = s.contact_s, s.stride_s
        tsw = T - tc
        if self.p.placement == "foot":
            th_s, th_n = s.strike_deg, nxt.strike_deg
            t_ff = min(0.04 + 0.003 * abs(th_s), 0.3 * tc)
            t_ho = 0.6 * tc
            th_to = -(30.0 + 40.0 * s.speed_mps / 10.0)
            w_to = 1.7 * th_to / (tc - t_ho)
            w_ic = lambda th: -0.4 * th / t_ff  # noqa: E731  rolling towards flat at IC
            k_after, th_min = _after_to(tc, tsw, th_to, w_to, tc + 0.18 * tsw)
            th_max = th_n + 6.0
            knots = [
                (0.0, (th_s, w_ic(th_s), 0.0)),
                (t_ff, (0.0, 0.0, 0.0)),
                (t_ho, (0.0, 0.0, 0.0)),
                (tc, (th_to, w_to, 0.0)),
                k_after,
                (tc + 0.18 * tsw, (th_min, 0.0, 0.0)),
                (tc + 0.5 * tsw, (0.5 * (th_min + th_max), 1.7 * (th_max - th_min) / (0.62 * tsw), 0.0)),
                (T - 0.25 * tsw, (th_max, 0.0, 0.0)),
                (T, (th_n, w_ic(th_n), 0.0)),
            ]
            knots = _smooth(knots, (5, 6, 7))
        else:
            a_ic, a_n = s.shank_ic_deg, nxt.shank_ic_deg
            a_to = -(35.0 + 10.0 * s.speed_mps / 5.0)
            w_to = 2.0 * (a_to - a_ic) / tc
            k_after, a_min = _after_to(tc, tsw, a_to, w_to, tc + 0.22 * tsw)
            a_max = max(a_n, 0.0) + 12.0
            knots = [
                (0.0, (a_ic, -150.0, 0.0)),
                (0.45 * tc, (0.4 * a_to, 0.9 * (a_to - a_ic) / tc, 0.0)),
                (tc, (a_to, w_to, 0.0)),
                k_after,
                (tc + 0.22 * tsw, (a_min, 0.0, 0.0)),
                (tc + 0.55 * tsw, (0.5 * (a_min + a_max), 1.6 * (a_max - a_min) / (0.55 * tsw), 0.0)),
                (T - 0.25 * tsw, (a_max, 0.0, 0.0)),
                (T, (a_n, -150.0, 0.0)),
            ]
            knots = _smooth(knots, (1, 4, 5, 6))
        pitch = _piecewise(tau, knots)
        # eversion: starts at 0 at IC, peaks at 40 % of stance, back to 0 before TO
        ev = _piecewise(tau, [
            (0.0, (0.0, 0.0, 0.0)), (0.4 * tc, (s.pron_deg, 0.0, 0.0)),
            (0.95 * tc, (0.0, 0.0, 0.0)), (T, (0.0, 0.0, 0.0))])
        yaw = _piecewise(tau, [(0.0, (s.yaw_deg, 0.0, 0.0)), (tc, (s.yaw_deg, 0.0, 0.0)),
                               (T, (nxt.yaw_deg, 0.0, 0.0))])
        return np.stack([yaw, pitch, ev], axis=1)

    def _rotation(self, ang_deg: np.ndarray) -> Rotation:
        roll_sign = 1.0 if self.p.side == "left" else -1.0  # eversion lifts the lateral edge
        return Rotation.from_euler(
            "ZYX", np.column_stack([ang_deg[:, 0], -ang_deg[:, 1], roll_sign * ang_deg[:, 2]]), degrees=True)

    def _pivot(self, ang_deg: np.ndarray) -> np.ndarray:
        """Segment-frame pivot during stance: heel/ankle, or toe joint when pitched toe-down."""
        piv = np.zeros((ang_deg.shape[0], 3))
        if self.p.placement == "foot":
            piv[ang_deg[:, 1] < 0.0, 0] = FOOT_LENGTH_M
        return piv

    def _stance_origin(self, s: _Stride, tau: np.ndarray) -> np.ndarray:
        """Segment origin in stance: rotation about the fixed contact pivot + impact pulse."""
        ang = self._angles(s, s, tau)
        R = self._rotation(ang)
        piv = self._pivot(ang)
        yaw = math.radians(s.yaw_deg)
        heel = np.array([s.x0_m, 0.0, 0.0])
        toe = heel + FOOT_LENGTH_M * np.array([math.cos(yaw), math.sin(yaw), 0.0])
        c = np.where((piv[:, :1] > 0), toe, heel)
        o = c - R.apply(piv)
        if self.p.placement == "shank":
            o[:, 2] += 0.08  # ankle joint height; it rolls forward over the foot
            o[:, 0] += 0.15 * s.speed_mps * tau * np.clip(tau / s.contact_s, 0, 1)
        # impact: the contact velocity v_ic is arrested by a pulse of vertical peak A
        v_ic = self._contact_velocity(s)
        m = tau < _IMPACT_SHAPE.duration(abs(v_ic[2]), s.impact_ms2)
        o[m] += _IMPACT_SHAPE.displacement(tau[m], v_ic, s.impact_ms2)
        return o

    def _contact_velocity(self, s: _Stride) -> np.ndarray:
        """Velocity of the contact point just before IC (m/s): forward and downward."""
        return np.array([0.12 * s.speed_mps, 0.0, -(0.55 + 0.12 * s.speed_mps)])

    def _origin(self, s: _Stride, nxt: _Stride, tau: np.ndarray) -> np.ndarray:
        tc, T = s.contact_s, s.stride_s
        out = np.empty((tau.size, 3))
        st = tau < tc
        if st.any():
            out[st] = self._stance_origin(s, tau[st])
        if (~st).any():
            h = 1e-4

            def state(fn, t0, side):
                ts = np.array([t0, t0 + side * h, t0 + 2 * side * h])
                y = fn(ts)
                d = side * (-3 * y[0] + 4 * y[1] - y[2]) / (2 * h)
                c = (y[0] - 2 * y[1] + y[2]) / (h * h)
                return (y[0], d, c)

            k_to = state(lambda x: self._stance_origin(s, x), tc, -1)
            k_ic = state(lambda x: self._stance_origin(nxt, x - T), T, +1)
            swing_h = 0.16 if self.p.placement == "foot" else 0.30
            mid_x = 0.5 * (k_to[0][0] + k_ic[0][0]) + 0.05
            y_mid = 0.5 * (k_to[0][1] + k_ic[0][1])
            tm = tc + 0.5 * (T - tc)
            vx_mid = 1.8 * (k_ic[0][0] - k_to[0][0]) / (T - tc)
            k_mid = ((mid_x, y_mid, swing_h), (vx_mid, 0.0, 0.0), (0.0, 0.0, 0.0))
            # late swing: the foot glides down at its landing velocity (no vertical
            # acceleration just before contact) while still slowing down horizontally
            v_ic = self._contact_velocity(nxt)
            dl = 0.2 * (T - tc)
            p_ic = np.asarray(k_ic[0])
            k_late = ((p_ic[0] - dl * (v_ic[0] + 0.3 * s.speed_mps), p_ic[1], p_ic[2] - dl * v_ic[2]),
                      (v_ic[0] + 0.6 * s.speed_mps, 0.0, v_ic[2]), (0.0, 0.0, 0.0))
            ks = lambda k: (np.asarray(k[0]), np.asarray(k[1]), np.asarray(k[2]))  # noqa: E731
            out[~st] = _piecewise(tau[~st], _smooth([(tc, ks(k_to)), (tm, ks(k_mid)), (T - dl, ks(k_late)),
                                                    (T, ks(k_ic))], (1, 2)))
        return out

    def _stride_pose(self, i: int, t: np.ndarray) -> tuple[np.ndarray, Rotation]:
        s, nxt = self._strides[i], self._strides[i + 1]
        tau = t - s.ic_s
        ang = self._angles(s, nxt, tau)
        R = self._rotation(ang)
        o = self._origin(s, nxt, tau)
        pos = o + R.apply(np.tile(SENSOR_OFFSET_M[self.p.placement], (t.size, 1)))
        return pos, R

    def _imu(self, i: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame specific force (m/s²) and angular rate (deg/s) at times t in stride i."""
        h_p, h_r = 1e-4, 1e-5
        x0 = self._strides[i].x0_m  # local coordinates keep finite differences exact
        pm, _ = self._stride_pose(i, t - h_p)
        p0, R0 = self._stride_pose(i, t)
        pp, _ = self._stride_pose(i, t + h_p)
        acc_w = ((pp - x0) - 2 * (p0 - x0) + (pm - x0)) / (h_p * h_p)
        acc_w[:, 2] += G_MS2
        f_body = R0.inv().apply(acc_w)
        _, Rm = self._stride_pose(i, t - h_r)
        _, Rp = self._stride_pose(i, t + h_r)
        w_body = (Rm.inv() * Rp).as_rotvec() / (2 * h_r)
        return f_body, np.degrees(w_body)

    # ----------------------------------------------------------------- outputs
    def signals(self, t_start_s: float = 0.0, t_stop_s: float | None = None):
        """Sensor-frame samples on the ideal grid n / fs_hz in [t_start_s, t_stop_s).

        Returns (t_s, acc_ms2, gyr_dps) with mounting, bias, noise and clipping applied,
        before dropped samples. Any time range can be generated independently (the noise
        of sample n depends only on the seed and n), so long runs are made in chunks.
        """
        p = self.p
        t_stop_s = p.duration_s if t_stop_s is None else t_stop_s
        n0 = int(math.ceil(t_start_s * p.fs_hz - 1e-9))
        n1 = int(math.ceil(t_stop_s * p.fs_hz - 1e-9))
        n = np.arange(n0, n1)
        t = n / p.fs_hz
        acc = np.empty((n.size, 3))
        gyr = np.empty((n.size, 3))
        ics = np.array([s.ic_s for s in self._strides])
        idx = np.searchsorted(ics, t, side="right") - 1
        still = t < p.stand_s
        for i in np.unique(idx[~still]):
            m = (idx == i) & ~still
            acc[m], gyr[m] = self._imu(int(i), t[m])
        if still.any():  # standing: flat foot / vertical shank, heading of the first stride
            r0 = self._rotation(np.array([[self._strides[0].yaw_deg, 0.0, 0.0]]))
            acc[still] = r0.inv().apply([0.0, 0.0, G_MS2])
            gyr[still] = 0.0
        mount = Rotation.from_euler("xyz", p.mount_euler_deg, degrees=True)
        acc = mount.inv().apply(acc) + np.asarray(p.acc_bias_ms2)
        gyr = mount.inv().apply(gyr) + np.asarray(p.gyr_bias_dps)
        if p.acc_noise_ms2 or p.gyr_noise_dps:
            for k0 in range(n0 - n0 % 4096, n1, 4096):  # noise keyed by sample number
                rng = np.random.default_rng([p.seed, k0])
                na = rng.standard_normal((4096, 3)) * p.acc_noise_ms2
                ng = rng.standard_normal((4096, 3)) * p.gyr_noise_dps
                lo, hi = max(k0, n0), min(k0 + 4096, n1)
                acc[lo - n0:hi - n0] += na[lo - k0:hi - k0]
                gyr[lo - n0:hi - n0] += ng[lo - k0:hi - k0]
        if p.acc_range_g:
            acc = np.clip(acc, -p.acc_range_g * G_MS2, p.acc_range_g * G_MS2)
        if p.gyr_range_dps:
            gyr = np.clip(gyr, -p.gyr_range_dps, p.gyr_range_dps)
        return t, acc, gyr

    def kept(self, n: np.ndarray) -> np.ndarray:
        """Mask of samples that are not dropped (deterministic per sample number)."""
        if self.p.drop_fraction <= 0:
            return np.ones(n.shape, dtype=bool)
        h = (n.astype(np.uint64) * np.uint64(2654435761) + np.uint64(self.p.seed)) % np.uint64(1_000_003)
        return h >= np.uint64(int(self.p.drop_fraction * 1_000_003))

    def _sensor_impact(self, i: int, window_s: float = 0.05) -> dict:
        """What an ideal IMU at the sensor point sees of the impact of stride ``i``.

        ``impact_g`` is the contact point's deceleration; the sensor sits elsewhere on the
        segment (foot: 0.14 m from the heel), and the segment keeps rotating through the
        impact (foot slap), so its own peak differs. The gravity-free world acceleration
        of the sensor point over ``window_s`` after IC gives: the vertical impact peak
        (``sensor_impact_g``, the first peak reaching half the window's maximum: a later
        foot slap is not the impact), its average rate from IC (``sensor_impact_rate_gps``), the
        peak forward deceleration (``sensor_braking_g``), and for the shank the peak along
        the shank axis (segment z, ``sensor_pta_g``) and of the magnitude
        (``sensor_pta_resultant_g``). Evaluated at 20 kHz from the analytic trajectory.
        """
        s = self._strides[i]
        t = s.ic_s + np.arange(0.0, window_s, 5e-5)
        h = 1e-4
        x0 = s.x0_m
        pm, _ = self._stride_pose(i, t - h)
        p0, R0 = self._stride_pose(i, t)
        pp, _ = self._stride_pose(i, t + h)
        a = ((pp - x0) - 2 * (p0 - x0) + (pm - x0)) / (h * h)

        def first_peak(x):  # the impact is the first peak; a later foot slap can be higher
            mid = x[1:-1]
            c = np.flatnonzero((mid >= x[:-2]) & (mid > x[2:]) & (mid >= 0.5 * x.max()))
            return int(c[0]) + 1 if c.size else int(np.argmax(x))

        k = first_peak(a[:, 2])
        out = {"sensor_impact_g": a[k, 2] / G_MS2,
               "sensor_impact_rate_gps": (a[k, 2] - a[0, 2]) / G_MS2 / max(t[k] - s.ic_s, 1e-9),
               "sensor_braking_g": max(-a[:, 0].min(), 0.0) / G_MS2}
        if self.p.placement == "shank":
            axial = np.einsum("ni,ni->n", a, R0.apply(np.tile([0.0, 0.0, 1.0], (t.size, 1))))
            res = np.linalg.norm(a, axis=1)
            out["sensor_pta_g"] = axial[first_peak(axial)] / G_MS2
            out["sensor_pta_resultant_g"] = res[first_peak(res)] / G_MS2
        return {k_: round(float(v), 4) for k_, v in out.items()}

    def _sensor_swing(self, i: int) -> dict:
        """The sensor point over stride ``i`` (foot): its forward (world x) velocity just
        before IC (``sensor_landing_velocity_mps``) and its highest point in the swing
        after this stance above its height at foot-flat (``sensor_swing_height_m``)."""
        s, nxt = self._strides[i], self._strides[i + 1]
        h = 1e-4
        pa, _ = self._stride_pose(i, np.array([s.ic_s - 2 * h, s.ic_s - h]))
        out = {"sensor_landing_velocity_mps": (pa[1, 0] - pa[0, 0]) / h}
        if self.p.placement == "foot":
            t = np.linspace(s.to_s, nxt.ic_s, 400)
            z, _ = self._stride_pose(i, t)
            flat, _ = self._stride_pose(i, np.array([s.ic_s + 0.45 * s.contact_s]))
            out["sensor_swing_height_m"] = z[:, 2].max() - flat[0, 2]
        return {k: round(float(v), 4) for k, v in out.items()}

    def truth(self) -> list[dict]:
        """Ground truth per step inside the recording: events and the true parameters."""
        rows = []
        for i, s in enumerate(self._strides):
            if s.ic_s < max(self.p.stand_s, 0.0) or s.to_s > self.p.duration_s:
                continue
            rows.append({
                "sensor_id": self.p.sensor_id, "side": self.p.side, "placement": self.p.placement,
                "ic_s": round(s.ic_s, 6), "to_s": round(s.to_s, 6),
                "contact_ms": round(s.contact_s * 1e3, 3),
                "stride_s": round(s.stride_s, 6),
                "cadence_spm": round(120.0 / s.stride_s, 4),
                "speed_mps": round(s.speed_mps, 4),
                "strike_angle_deg": round(s.strike_deg, 4),
                "shank_angle_ic_deg": round(s.shank_ic_deg, 4),
                "pronation_deg": round(s.pron_deg, 4),
                "toe_out_deg": round(abs(s.yaw_deg), 4),
                "impact_g": round(s.impact_ms2 / G_MS2, 4),
                "stride_length_m": round(s.speed_mps * s.stride_s, 4),
                **self._sensor_impact(i),
                **self._sensor_swing(i),
            })
        return rows


def write_recording(params: SimParams, path: str | Path, *, chunk_s: float = 60.0) -> Path:
    """Write ``path`` (CSV in the recording format), its ``.json`` sidecar and
    ``*_truth.csv`` with the per-step ground truth. Long runs are written in chunks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sim = Simulator(params)
    sensor_id = params.sensor_id or path.stem
    cols = ["t_s", "acc_x_ms2", "acc_y_ms2", "acc_z_ms2"]
    if params.with_gyro:
        cols += ["gyr_x_dps", "gyr_y_dps", "gyr_z_dps"]
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(cols) + "\n")
        t0 = 0.0
        while t0 < params.duration_s:
            t1 = min(t0 + chunk_s, params.duration_s)
            t, acc, gyr = sim.signals(t0, t1)
            keep = sim.kept(np.rint(t * params.fs_hz).astype(np.int64))
            data = np.column_stack([t, acc, gyr] if params.with_gyro else [t, acc])[keep]
            np.savetxt(f, data, fmt=["%.6f"] + ["%.5f"] * (data.shape[1] - 1), delimiter=",")
            t0 = t1
    side = {"sensor_id": sensor_id, "placement": params.placement, "side": params.side,
            "athlete": params.athlete, "start_utc": "2026-01-01T08:00:00Z"}
    if params.acc_range_g:
        side["acc_range_g"] = params.acc_range_g
    if params.gyr_range_dps:
        side["gyr_range_dps"] = params.gyr_range_dps
    path.with_suffix(".json").write_text(json.dumps(side, indent=2) + "\n", encoding="utf-8")
    truth = sim.truth()
    for r in truth:
        r["sensor_id"] = sensor_id
    tpath = path.with_name(path.stem + "_truth.csv")
    with tpath.open("w", encoding="utf-8", newline="\n") as f:
        keys = list(truth[0]) if truth else ["ic_s", "to_s"]
        f.write(",".join(keys) + "\n")
        for r in truth:
            f.write(",".join(str(r[k]) for k in keys) + "\n")
    params_path = path.with_name(path.stem + "_params.json")
    params_path.write_text(json.dumps(asdict(params), indent=2) + "\n", encoding="utf-8")
    return path


def iter_blocks(params: SimParams, *, block_s: float = 1.0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(t_s, acc_ms2, gyr_dps) blocks of the whole run, without dropped samples."""
    sim = Simulator(params)
    t0 = 0.0
    while t0 < params.duration_s:
        t1 = min(t0 + block_s, params.duration_s)
        yield sim.signals(t0, t1)
        t0 = t1


def with_(params: SimParams, **changes) -> SimParams:
    return replace(params, **changes)
