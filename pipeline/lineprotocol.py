"""Pure record -> InfluxDB line protocol, with full escaping. No I/O, no clock.

Line protocol reference (the same syntax for InfluxDB 1.x, 2.x and 3.x):
https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/

    measurement,tag_key=tag_value,... field_key=field_value,... timestamp

Escaping, as the reference specifies:

* measurement: ``,`` and space are backslash-escaped;
* tag keys, tag values, field keys: ``,``, ``=`` and space are backslash-escaped;
* string field values are double-quoted, with ``"`` and ``\\`` backslash-escaped;
* the protocol cannot carry a line break inside a line, so CR/LF (and other control
  characters) in names and strings are replaced by a space;
* a key or tag value that ends in a backslash would escape the separator after it, and
  1.x has no escape for a backslash there, so trailing backslashes become ``/`` (the one
  documented loss; a backslash inside a value is kept as is);
* unicode is written as UTF-8, unescaped.

Values: every number is written as a float (``repr`` of the Python float: the shortest
string that reads back to the same double). NaN and +/-inf cannot be stored: such a field
is left out of the point and counted in :class:`EncodeStats`; a point left with no field is
not written at all (and counted). Tags with an empty value are left out (the protocol does
not allow empty tag values). Tags are sorted by key, as InfluxDB recommends.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields as dc_fields, is_dataclass
from itertools import chain
from operator import attrgetter, itemgetter


from pipeline import schema
from pipeline.lineprotocol_floats import Shapes as float_shapes
from pipeline.lineprotocol_floats import points as float_points
from pipeline.records import Alert, SensorInfo, SessionInfo, StepRecord
from pipeline.window_aggregates import WindowAggregate

PRECISIONS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MEAS_ESC = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESC = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STR_ESC = str.maketrans({'"': r"\"", "\\": "\\\\"})


@dataclass
class EncodeStats:
    """What the encoder left out. ``nonfinite_dropped`` counts field values (NaN/inf)."""

    points: int = 0
    nonfinite_dropped: int = 0
    points_empty: int = 0


def _clean(s: str) -> str:
    return _CONTROL.sub(" ", s)


@lru_cache(maxsize=256)
def escape_measurement(name: str) -> str:
    if not name:
        raise ValueError("measurement name must not be empty")
    return _clean(name).translate(_MEAS_ESC)


@lru_cache(maxsize=8192)
def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key (cached: names and tag values repeat)."""
    s = _clean(key)
    if s.endswith("\\"):
        s = s.rstrip("\\") + "/" * (len(s) - len(s.rstrip("\\")))
    return s.translate(_KEY_ESC)


def escape_string_value(value: str) -> str:
    return '"' + _clean(value).translate(_STR_ESC) + '"'


def format_float(v: float) -> str:
    """A finite float as line protocol reads it (``repr`` round-trips exactly)."""
    return repr(float(v))


def to_timestamp(time_ns: int, precision: str) -> int:
    """Nanoseconds since the epoch -> integer in ``precision`` (rounded half up)."""
    try:
        div = PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}") from None
    return (int(time_ns) + div // 2) // div if div > 1 else int(time_ns)


@lru_cache(maxsize=4096)
def _head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    parts = [escape_measurement(measurement)]
    parts += [f"{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags) if v]
    return ",".join(parts)


def encode_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, float | int | str],
    time_ns: int,
    *,
    precision: str = "ns",
    stats: EncodeStats | None = None,
) -> str | None:
    """One point as a line (no trailing newline), or ``None`` if no field is finite.

    Numbers (int, float, bool, numpy scalars) are written as floats; ``str`` as string
    fields. The series part (measurement + sorted tags) is cached: a session has few series.
    """
    head = _head(measurement, tuple((k, "" if v is None else str(v)) for k, v in tags.items()))
    return _encode_fields(head, fields, time_ns, precision, stats)


_KEY_PREFIX: dict[str, str] = {}  # field key -> 'escaped_key=' (names are few; bounded below)


def _encode_fields(
    head: str, fields: Mapping[str, float | int | str], time_ns: int, precision: str, stats: EncodeStats | None
) -> str | None:
    out = []
    dropped = 0
    prefixes = _KEY_PREFIX
    for k, v in fields.items():
        pre = prefixes.get(k)
        if pre is None:
            if len(prefixes) > 10_000:
                prefixes.clear()
            pre = prefixes[k] = escape_key(k) + "="
        if type(v) is not float:
            if isinstance(v, str):
                out.append(pre + escape_string_value(v))
                continue
            try:
                v = float(v)  # int, bool, numpy scalars
            except (TypeError, ValueError):
                raise TypeError(f"field {k!r}: expected a number or str, got {type(v).__name__}") from None
        if v - v == 0.0:  # finite (NaN - NaN and inf - inf are NaN)
            out.append(pre + repr(v))
        else:
            dropped += 1
    if stats is not None:
        stats.nonfinite_dropped += dropped
    if not out:
        if stats is not None:
            stats.points_empty += 1
        return None
    if stats is not None:
        stats.points += 1
    return f"{head} {','.join(out)} {to_timestamp(time_ns, precision)}"


# -- records -> lines -------------------------------------------------------------------------


def _athlete(session: SessionInfo, sensor: SensorInfo | None = None, explicit: str = "") -> str:
    return explicit or (sensor.athlete if sensor is not None and sensor.athlete else "") or session.athlete


@lru_cache(maxsize=1024)
def _sensor_head(measurement: str, session: SessionInfo, sensor: SensorInfo) -> str:
    tags = sensor_tags(session, sensor)
    return _head(measurement, tuple(tags.items()))


def sensor_tags(session: SessionInfo, sensor: SensorInfo) -> dict[str, str]:
    return {
        schema.TAG_ATHLETE: _athlete(session, sensor),
        schema.TAG_SESSION: session.session_id,
        schema.TAG_SENSOR: sensor.sensor_id,
        schema.TAG_SIDE: sensor.side,
        schema.TAG_PLACEMENT: sensor.placement,
    }


def step_line(
    record: StepRecord,
    *,
    session: SessionInfo,
    precision: str = "ns",
    stats: EncodeStats | None = None,
    fields: Mapping[str, float | str] | None = None,
) -> str | None:
    """A :class:`StepRecord` as a ``gait_step`` point at the initial contact's wall time.

    ``fields``: the record's :func:`pipeline.schema.step_fields` if already computed."""
    return _encode_fields(
        _sensor_head(schema.MEASUREMENT_STEP, session, record.sensor),
        schema.step_fields(record) if fields is None else fields,
        session.wall_ns(record.step.ic_s),
        precision,
        stats,
    )


# -- the sink's fast path: many records of one session -------------------------------------

_NAME_OF = attrgetter("name")
_VALUE_OF = attrgetter("value")
_STAT_NAME = itemgetter(0)
_STAT_VALUES = itemgetter(1, 2, 3)
#: Numeric core fields of a step point, in :func:`pipeline.schema.step_fields` order (the
#: string field ``activity`` follows them, then the metrics).
STEP_NUMERIC_CORE: tuple[str, ...] = (
    schema.FIELD_IC_S,
    schema.FIELD_TO_S,
    schema.FIELD_CONTACT_MS,
    schema.FIELD_FLIGHT_MS,
    schema.FIELD_CADENCE_SPM,
    schema.FIELD_SEGMENT,
)
PENDING_VALUES = 2000  # deferred values formatted together (~60 step points)
_CACHE_LIMIT = 4096  # shapes per encoder (sensors x activities x metric sets: a handful in practice)


class _StepShape:
    """What repeats in the step points of one (sensor, activity, metric names): the series
    key, the names of the numeric fields and the id of the point shape the compiled writer
    uses (``None``: a metric named like another field, written by the general path)."""

    __slots__ = ("sensor", "numeric", "head", "sid")

    def __init__(self, sensor: SensorInfo, numeric: tuple[str, ...], head: str, sid: int | None):
        self.sensor = sensor  # (held: the cache is keyed by its id)
        self.numeric = numeric
        self.head = head
        self.sid = sid


class SessionEncoder:
    """Step records and window aggregates of one session -> lines, fast, byte for byte what
    :func:`step_line` / :func:`window_line` write (tests/test_lineprotocol.py checks this).

    Why: the sink encodes every step of a run (~30 fields each); per-field Python work
    (building a dict, escaping, key lookups, one ``repr`` and one finiteness test each) cost
    ~20 us per point of the producer's CPU, which the InfluxDB server, sharing the CPUs, then
    lacks. Here what repeats is prepared once per *shape* -- (sensor, activity, metric names)
    for steps, (sensor, field names) for windows: the escaped series key, the ``key=`` pieces
    and the string field (:class:`pipeline.lineprotocol_floats.Shapes`). Per point, Python
    only collects its values (finite or not) and timestamp; the lines of many points are then
    written by one compiled call (:func:`pipeline.lineprotocol_floats.points`), which leaves
    NaN/inf values out (and counts them), writes each value as ``repr`` does (Ryu) and joins
    the pieces. A metric named like another field (the dict semantics of
    :func:`pipeline.schema.step_fields`) and a window with two fields of one name take the
    general path (:func:`_encode_fields`).

    With ``defer=True`` points wait (:attr:`pending`) until ~PENDING_VALUES values have
    gathered or :meth:`flush`; what was left out is added to the ``stats`` given with them
    when their lines are written. Shapes are keyed by the sensor object's identity (the shape
    keeps a reference, so an id is never reused while cached); the caches are bounded.
    """

    def __init__(self, session: SessionInfo, precision: str = "ns"):
        to_timestamp(0, precision)  # validates precision
        self.session = session
        self.precision = precision
        self._div = PRECISIONS[precision]
        self._steps: dict[tuple, _StepShape] = {}
        self._windows: dict[tuple, tuple[int | None, SensorInfo]] = {}
        self._shapes = float_shapes()
        # Deferred points: every numeric value in order, per point its shape id (-1: a line
        # made by the general path, in _general) and timestamp.
        self._vals: list = []
        self._shape_of: list[int] = []
        self._stamps: list[int] = []
        self._general: list[str] = []
        self._stats: EncodeStats | None = None  # credited with the deferred points

    def _new_shape(self, head: str, fields: list[tuple[int, str]], out: list[str]) -> int:
        if len(self._shapes) >= _CACHE_LIMIT or self._shapes.nbytes > 4_000_000:  # (bounded: start over)
            self.flush(out)  # (pending points refer to the shapes by id)
            self._shapes.clear()
            self._steps.clear()
            self._windows.clear()
        return self._shapes.add(head + " ", fields)

    def _step_shape(self, sensor: SensorInfo, activity: str, names: tuple[str, ...], out: list[str]) -> _StepShape:
        for n in names:
            if n == schema.FIELD_ACTIVITY:
                raise ValueError(f"metric name {n!r} is reserved for the step's activity string")
            schema.check_field_name(n)
        numeric = STEP_NUMERIC_CORE + names
        head = _sensor_head(schema.MEASUREMENT_STEP, self.session, sensor)
        sid = None
        if len(set(numeric)) == len(numeric):
            fields = [(1, escape_key(k) + "=") for k in numeric]
            # the string field, after the core fields as in schema.step_fields (never dropped)
            fields.insert(len(STEP_NUMERIC_CORE),
                          (0, escape_key(schema.FIELD_ACTIVITY) + "=" + escape_string_value(str(activity))))
            sid = self._new_shape(head, fields, out)
        shape = self._steps[(id(sensor), activity, names)] = _StepShape(sensor, numeric, head, sid)
        return shape

    def _credit(self, stats: EncodeStats | None, out: list[str]) -> None:
        if stats is not self._stats:
            if self._shape_of:
                self.flush(out)
            self._stats = stats

    def steps(
        self,
        records: Iterable[StepRecord],
        out: list[str],
        stats: EncodeStats | None = None,
        rows: list[tuple[tuple[str, ...], tuple[float, ...]]] | None = None,
        *,
        defer: bool = False,
    ) -> float:
        """Append the lines of these step records to ``out``; returns the latest initial
        contact (session s; -inf if none).

        ``rows`` (optional) receives one ``(numeric field names, values)`` per record, the
        record's numeric fields as :func:`pipeline.schema.step_fields` has them (values may be
        NaN/inf, and ints or numpy scalars where the record has those), for
        :class:`pipeline.window_aggregates.WindowAggregator`.
        """
        if stats is not self._stats:
            self._credit(stats, out)
        shapes = self._steps
        start = self.session.start_wall_ns
        div = self._div
        half = div // 2
        extend = self._vals.extend  # (numbers as they come: the writer reads them as float64, i.e. float(v))
        shape_of = self._shape_of.append
        stamp = self._stamps.append
        row = rows.append if rows is not None else None
        latest = float("-inf")
        for r in records:
            s = r.step
            ms = r.metrics
            names = tuple(map(_NAME_OF, ms))
            sensor = r.sensor
            shape = shapes.get((id(sensor), s.activity, names))
            if shape is None or shape.sensor is not sensor:
                shape = self._step_shape(sensor, s.activity, names, out)
            ic = s.ic_s
            sid = shape.sid
            if sid is not None:
                # Step.contact_ms, .flight_ms and .cadence_spm (pipeline/records.py) inlined: the
                # same operations in the same order (the tests compare with step_line, which
                # calls the properties); five property calls were ~0.5 us per point.
                stride = ic - s.prev_ic_s
                contact = (s.to_s - ic) * 1e3
                vals = (ic, s.to_s, contact, (stride / 2.0) * 1e3 - contact, 120.0 / stride, s.segment,
                        *map(_VALUE_OF, ms))
                extend(vals)
                shape_of(sid)
                t = start + int(round(ic * 1e9))
                stamp((t + half) // div if div > 1 else t)
                if row is not None:
                    row((shape.numeric, vals))
            else:  # a metric named like another field: the dict semantics of schema.step_fields
                fields = schema.step_fields(r)
                line = _encode_fields(shape.head, fields, self.session.wall_ns(ic), self.precision, stats)
                if line is not None:
                    self._general.append(line)
                    shape_of(-1)
                    stamp(0)
                if row is not None:
                    items = [(k, v) for k, v in fields.items() if type(v) is float]
                    row((tuple(k for k, _ in items), tuple(v for _, v in items)))
            if ic > latest:  # (NaN compares False)
                latest = ic
        if not defer or len(self._vals) >= PENDING_VALUES:
            self.flush(out)
        return latest

    def windows(self, windows: Iterable[WindowAggregate], out: list[str], stats: EncodeStats | None = None,
                *, defer: bool = False) -> None:
        """Append the lines of these window aggregates to ``out`` (as :func:`window_line`)."""
        if stats is not self._stats:
            self._credit(stats, out)
        shapes = self._windows
        start = self.session.start_wall_ns
        div = self._div
        half = div // 2
        extend = self._vals.extend
        for w in windows:
            sensor = w.sensor
            names = tuple(map(_STAT_NAME, w.stats))
            shape = shapes.get((id(sensor), names))
            if shape is None or shape[1] is not sensor:
                head = _sensor_head(schema.MEASUREMENT_WINDOW, self.session, sensor)
                keys = [schema.FIELD_WINDOW_STEPS, schema.FIELD_WINDOW_S]
                keys += [schema.window_field(n, st) for n in names for st in schema.WINDOW_STATS]
                sid = None  # two fields of one name: general path (a dict keeps the last)
                if len(set(keys)) == len(keys):
                    sid = self._new_shape(head, [(1, escape_key(k) + "=") for k in keys], out)
                shape = shapes[(id(sensor), names)] = (sid, sensor)
            sid = shape[0]
            if sid is not None:
                extend((w.steps, w.window_s))
                extend(chain.from_iterable(map(_STAT_VALUES, w.stats)))
                self._shape_of.append(sid)
                t = start + int(round(w.start_s * 1e9))
                self._stamps.append((t + half) // div if div > 1 else t)
            else:
                line = window_line(w, session=self.session, precision=self.precision, stats=stats)
                if line is not None:
                    self._general.append(line)
                    self._shape_of.append(-1)
                    self._stamps.append(0)
        if not defer or len(self._vals) >= PENDING_VALUES:
            self.flush(out)

    @property
    def pending(self) -> int:
        """Points encoded with ``defer=True`` whose lines :meth:`flush` has not written yet."""
        return len(self._shape_of)

    def flush(self, out: list[str]) -> None:
        """Append the lines of every deferred point to ``out``, in order."""
        shape_of = self._shape_of
        if not shape_of:
            return
        general = self._general
        text, dropped, empty, emitted = float_points(self._vals, shape_of, self._stamps, self._shapes)
        made = text.split("\n")
        made.pop()  # (after the last newline)
        if not general:
            out.extend(made)
        else:
            append = out.append
            it_made = iter(made)
            it_general = iter(general)
            for sid, e in zip(shape_of, emitted):
                if sid < 0:
                    append(next(it_general))
                elif e:
                    append(next(it_made))
        stats = self._stats
        if stats is not None:
            stats.points += len(shape_of) - len(general) - empty
            stats.points_empty += empty
            stats.nonfinite_dropped += dropped
        shape_of.clear()
        self._vals.clear()
        self._stamps.clear()
        general.clear()


def alert_line(
    alert: Alert,
    *,
    session: SessionInfo,
    precision: str = "ns",
    stats: EncodeStats | None = None,
) -> str | None:
    """An :class:`Alert` as a ``gait_alert`` point at the alert's wall time."""
    tags = {
        schema.TAG_ATHLETE: alert.athlete or session.athlete,
        schema.TAG_SESSION: session.session_id,
        schema.TAG_SENSOR: alert.sensor_id,
        schema.TAG_RULE: alert.rule,
        schema.TAG_SEVERITY: alert.severity,
    }
    fields = {
        schema.FIELD_ALERT_VALUE: alert.value,
        schema.FIELD_ALERT_THRESHOLD: alert.threshold,
        schema.FIELD_ALERT_T_S: alert.t_s,
        schema.FIELD_ALERT_MESSAGE: alert.message,
    }
    return encode_point(
        schema.MEASUREMENT_ALERT, tags, fields, session.wall_ns(alert.t_s), precision=precision, stats=stats
    )


def window_line(
    window: WindowAggregate, *, session: SessionInfo, precision: str = "ns", stats: EncodeStats | None = None
) -> str | None:
    """A :class:`WindowAggregate` as a ``gait_window`` point at the window's start."""
    return encode_point(
        schema.MEASUREMENT_WINDOW,
        sensor_tags(session, window.sensor),
        window.fields(),
        session.wall_ns(window.start_s),
        precision=precision,
        stats=stats,
    )


def record_lines(
    records: Iterable[object], *, session: SessionInfo, precision: str = "ns", stats: EncodeStats | None = None
) -> list[str]:
    """Lines for a mixed list of StepRecord / Alert / WindowAggregate (others are refused)."""
    out: list[str] = []
    for r in records:
        if isinstance(r, StepRecord):
            line = step_line(r, session=session, precision=precision, stats=stats)
        elif isinstance(r, Alert):
            line = alert_line(r, session=session, precision=precision, stats=stats)
        elif isinstance(r, WindowAggregate):
            line = window_line(r, session=session, precision=precision, stats=stats)
        else:
            raise TypeError(f"cannot encode {type(r).__name__} as line protocol (expected StepRecord, Alert, WindowAggregate)")
        if line is not None:
            out.append(line)
    return out


def health_line(
    *,
    session: SessionInfo,
    t_s: float,
    component: str,
    values: Mapping[str, float],
    sensor: str = "",
    precision: str = "ns",
    stats: EncodeStats | None = None,
) -> str | None:
    """A ``gait_health`` point (pipeline health counters) at session time ``t_s``."""
    tags = {
        schema.TAG_ATHLETE: session.athlete,
        schema.TAG_SESSION: session.session_id,
        schema.TAG_COMPONENT: component,
        schema.TAG_SENSOR: sensor,
    }
    fields = {schema.check_field_name(k): float(v) for k, v in values.items()}
    return encode_point(
        schema.MEASUREMENT_HEALTH, tags, fields, session.wall_ns(t_s), precision=precision, stats=stats
    )


def _numeric_items(obj: object, prefix: str = "") -> Iterable[tuple[str, float]]:
    """Flatten a summary-like object to ``(name, float)`` pairs (dataclasses, mappings)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        items = ((f.name, getattr(obj, f.name)) for f in dc_fields(obj))
    elif isinstance(obj, Mapping):
        items = obj.items()
    else:
        return
    for k, v in items:
        name = f"{prefix}{k}"
        if isinstance(v, bool):
            yield name, float(v)
        elif isinstance(v, (int, float)):
            yield name, float(v)
        elif (is_dataclass(v) and not isinstance(v, type)) or isinstance(v, Mapping):
            yield from _numeric_items(v, prefix=f"{name}_")
        else:
            try:
                import numpy as np

                if isinstance(v, np.generic) and np.issubdtype(type(v), np.number):
                    yield name, float(v)
            except ImportError:  # pragma: no cover
                pass


def _fields_of(obj: object, *, skip: frozenset[str] = frozenset()) -> dict[str, float | str]:
    top: dict[str, object]
    if isinstance(obj, Mapping):
        top = {k: v for k, v in obj.items() if k not in skip}
    elif is_dataclass(obj) and not isinstance(obj, type):
        top = {f.name: getattr(obj, f.name) for f in dc_fields(obj) if f.name not in skip}
    else:
        top = {k: v for k, v in vars(obj).items() if not k.startswith("_") and k not in skip}
    return {
        k: v for k, v in _numeric_items(top) if schema._NAME_RE.match(k) and k not in schema.RESERVED_FIELD_NAMES
    }


def _attr(obj: object, name: str, default: object = None) -> object:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


_SUMMARY_TAGLIKE = frozenset({"sensor_id", "side", "placement", "athlete", "session_id", "sensors", "sides"})


def summary_lines(
    summary: object,
    *,
    session: SessionInfo,
    precision: str = "ns",
    stats: EncodeStats | None = None,
) -> list[str]:
    """The session summary (:class:`pipeline.summary.SessionSummary` or a mapping) as
    ``gait_session`` points at the session's start time.

    Numeric values (nested dataclasses/mappings flattened with ``_``, e.g.
    ``running_cadence_spm_median``) become float fields; ``status`` a string field. One
    point for the session (tags athlete, session), one per sensor (+ sensor, side,
    placement tags) and one per side (+ side tag), so field keys never contain ids.
    """
    if summary is None:
        return []
    base = {schema.TAG_ATHLETE: session.athlete, schema.TAG_SESSION: session.session_id}
    t = session.start_wall_ns
    out: list[str] = []

    def emit(tags: dict[str, str], fields: dict[str, float | str]) -> None:
        line = encode_point(schema.MEASUREMENT_SESSION, tags, fields, t, precision=precision, stats=stats)
        if line:
            out.append(line)

    top = _fields_of(summary, skip=_SUMMARY_TAGLIKE)
    status = _attr(summary, "status")
    if isinstance(status, str) and status:
        top[schema.FIELD_SESSION_STATUS] = status
    emit(base, top)
    sensors = _attr(summary, "sensors")
    items: list[tuple[str, object]] = []
    if isinstance(sensors, Mapping):
        items = [(str(k), v) for k, v in sensors.items()]
    elif isinstance(sensors, (list, tuple)):
        items = [(str(_attr(v, "sensor_id", "")), v) for v in sensors]
    for sensor_id, sub in items:
        tags = {**base, schema.TAG_SENSOR: sensor_id}
        for key, tag in (("side", schema.TAG_SIDE), ("placement", schema.TAG_PLACEMENT)):
            v = _attr(sub, key)
            if isinstance(v, str):
                tags[tag] = v
        emit(tags, _fields_of(sub, skip=_SUMMARY_TAGLIKE))
    sides = _attr(summary, "sides")
    if isinstance(sides, (list, tuple)):
        for sub in sides:
            side = _attr(sub, "side")
            if isinstance(side, str):
                emit({**base, schema.TAG_SIDE: side}, _fields_of(sub, skip=_SUMMARY_TAGLIKE))
    return out
