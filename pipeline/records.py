"""The small immutable records that cross module boundaries (see DESIGN.md, "Records").

Units and frames are in the field names. Arrays are read-only views; a record never
changes after construction. Nothing here does I/O or reads the clock.

Time base
---------
A sensor stream is a sequence of *segments* of uniformly sampled data. Within a segment,
sample ``i`` (counted from the segment's first sample) is at ``t0_s + i / fs_hz`` on the
session time base (for replay: the recording's own ``t_s`` axis). A :class:`Gap` ends a
segment; every stateful detector of that sensor resets, and the next segment starts again
at index 0 with its own ``t0_s``. Times are always computed from integer indices, never
accumulated, so any split of a recording into blocks gives bit-identical times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Placement = Literal["foot", "shank"]
Side = Literal["left", "right"]
PLACEMENTS: tuple[str, ...] = ("foot", "shank")
SIDES: tuple[str, ...] = ("left", "right")


_F64 = np.dtype(np.float64)


def _readonly(a: np.ndarray | None, name: str, cols: int | None = 3) -> np.ndarray | None:
    """``a`` as a read-only float64 array (a view when it is writeable). Every block and
    step goes through here: a float64 ndarray skips ``np.asarray``."""
    if a is None:
        return None
    arr = a if type(a) is np.ndarray and a.dtype is _F64 else np.asarray(a, dtype=np.float64)
    if cols is not None:
        shape = arr.shape
        if len(shape) != 2 or shape[1] != cols:
            raise ValueError(f"{name}: expected shape (n, {cols}), got {shape}")
    if arr.flags.writeable:
        arr = arr.view()
        arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What a sensor is and where it is worn (from a sidecar, the CLI or the device)."""

    sensor_id: str
    placement: Placement
    side: Side
    athlete: str = ""
    acc_range_g: float | None = None
    gyr_range_dps: float | None = None

    def __post_init__(self) -> None:
        if not self.sensor_id:
            raise ValueError("sensor_id must be a non-empty string")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {self.side!r}")
        for name in ("acc_range_g", "gyr_range_dps"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")


@dataclass(frozen=True, slots=True, eq=False)
class SampleBlock:
    """Consecutive, uniformly spaced samples of one sensor, in the sensor's own frame.

    ``acc_ms2``: specific force (gravity included) in m/s², shape (n, 3).
    ``gyr_dps``: angular rate in deg/s, shape (n, 3), or ``None`` (accelerometer only).
    ``first_index``: index of row 0 within the current segment.
    """

    sensor_id: str
    fs_hz: float
    t0_s: float
    first_index: int
    acc_ms2: np.ndarray
    gyr_dps: np.ndarray | None = None
    segment: int = 0
    frame: Literal["sensor", "body"] = "sensor"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fs_hz) and self.fs_hz > 0):
            raise ValueError(f"fs_hz must be positive, got {self.fs_hz!r}")
        if self.first_index < 0:
            raise ValueError(f"first_index must be >= 0, got {self.first_index}")
        acc = _readonly(self.acc_ms2, "acc_ms2")
        gyr = _readonly(self.gyr_dps, "gyr_dps")
        if gyr is not None and gyr.shape != acc.shape:
            raise ValueError(f"gyr_dps shape {gyr.shape} != acc_ms2 shape {acc.shape}")
        object.__setattr__(self, "acc_ms2", acc)
        object.__setattr__(self, "gyr_dps", gyr)

    @property
    def n(self) -> int:
        return int(self.acc_ms2.shape[0])

    @property
    def end_index(self) -> int:
        """Index one past the last sample of this block."""
        return self.first_index + self.n

    def time_s(self, index: float | np.ndarray) -> float | np.ndarray:
        """Session time of a (possibly fractional) segment index."""
        return self.t0_s + np.asarray(index, dtype=np.float64) / self.fs_hz

    @property
    def t_s(self) -> np.ndarray:
        return self.t0_s + np.arange(self.first_index, self.end_index, dtype=np.float64) / self.fs_hz


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples are missing between ``last_t_s`` and ``next_t_s``: detectors must reset."""

    sensor_id: str
    last_t_s: float
    next_t_s: float

    @property
    def duration_s(self) -> float:
        return self.next_t_s - self.last_t_s


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One detected step of one sensor (one foot's ground contact).

    Events are fractional sample indices within the segment and session times.
    ``acc_ms2`` / ``gyr_dps`` are read-only copies of the *body-frame* signals
    (x forward, y left, z up; see ``detectors.alignment``) from ``window_start_index``,
    covering at least from 0.1 s before IC to 0.05 s after TO, so that per-step metrics
    are pure functions of a Step.
    """

    sensor_id: str
    segment: int
    fs_hz: float
    ic_index: float
    to_index: float
    ic_s: float
    to_s: float
    prev_ic_s: float  # NaN for the first step of a segment
    activity: str  # "running" | "walking"
    window_start_index: int
    acc_ms2: np.ndarray
    gyr_dps: np.ndarray | None = None
    gravity_ms2: float = 9.80665

    def __post_init__(self) -> None:
        object.__setattr__(self, "acc_ms2", _readonly(self.acc_ms2, "acc_ms2"))
        object.__setattr__(self, "gyr_dps", _readonly(self.gyr_dps, "gyr_dps"))

    @property
    def contact_ms(self) -> float:
        return (self.to_s - self.ic_s) * 1e3

    @property
    def stride_s(self) -> float:
        """Time since this foot's previous IC (one stride), NaN for the first step."""
        return self.ic_s - self.prev_ic_s

    @property
    def cadence_spm(self) -> float:
        """Step rate of *both* feet in steps/min, from this foot's last stride (2 steps)."""
        return 120.0 / self.stride_s

    @property
    def flight_ms(self) -> float:
        """Flight time after this step from one sensor: half the stride minus contact.

        One foot sees strides, not steps; assuming symmetric steps, the step time is half
        the stride. With both feet recorded the engine reports the measured value instead.
        """
        return (self.stride_s / 2.0) * 1e3 - self.contact_ms

    def rel(self, index: float) -> float:
        """Position of a segment index inside this step's sample window."""
        return index - self.window_start_index


@dataclass(frozen=True, slots=True, init=False)
class Metric:
    """One named per-step or windowed value (names and units come from the schema)."""

    name: str
    value: float
    unit: str
    t_s: float
    sensor_id: str
    reason: str = ""  # why value is NaN, if it is

    def __init__(self, name: str, value: float, unit: str, t_s: float, sensor_id: str, reason: str = ""):
        # ~20 Metrics per step: the frozen dataclass __init__ (object.__setattr__ per field,
        # ~1.4 us) became ~0.4 us by setting the slots through their descriptors directly
        _set_name(self, name)
        _set_value(self, value)
        _set_unit(self, unit)
        _set_t_s(self, t_s)
        _set_sensor_id(self, sensor_id)
        _set_reason(self, reason)


# the slot descriptors' setters (bypass the frozen __setattr__, as dataclass' own __init__ does)
_set_name, _set_value, _set_unit, _set_t_s, _set_sensor_id, _set_reason = (
    Metric.__dict__[f].__set__ for f in ("name", "value", "unit", "t_s", "sensor_id", "reason"))


@dataclass(frozen=True, slots=True, init=False)
class StepRecord:
    """A step with its sensor and its metrics: what sinks write (one row of steps.csv)."""

    sensor: SensorInfo
    step: Step
    metrics: tuple[Metric, ...] = field(default_factory=tuple)

    def __init__(self, sensor: SensorInfo, step: Step, metrics: tuple[Metric, ...] = ()):
        # made twice per step (engine, symmetry): slots set directly, as for Metric
        _set_sensor(self, sensor)
        _set_step(self, step)
        _set_metrics(self, metrics)

    def value(self, name: str) -> float:
        for m in self.metrics:
            if m.name == name:
                return m.value
        raise KeyError(name)


_set_sensor, _set_step, _set_metrics = (StepRecord.__dict__[f].__set__ for f in ("sensor", "step", "metrics"))


CLEARED = "cleared"  # severity of the record that ends an alert (the rule is back in range)


@dataclass(frozen=True, slots=True)
class Alert:
    """A message a runner or coach can act on. ``severity`` is the rule's (``warning``,
    ``info``, ...) when it fires and :data:`CLEARED` when it is back in range."""

    rule: str
    severity: str
    value: float
    threshold: float
    t_s: float
    message: str
    sensor_id: str = ""
    athlete: str = ""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One run: its id, athlete and the wall-clock time of ``t_s == 0`` (ns since epoch).

    Replay maps the recording's own ``t_s`` axis onto wall time with ``start_wall_ns``
    (from the sidecar's optional ``start_utc``, else the file's modification time);
    live sources use the host clock at the start of the run.
    """

    session_id: str
    athlete: str
    start_wall_ns: int

    def wall_ns(self, t_s: float) -> int:
        return self.start_wall_ns + int(round(t_s * 1e9))
