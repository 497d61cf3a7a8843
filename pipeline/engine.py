"""The engine: per-sensor detector chains fed with SampleBlocks and Gaps, StepRecords out.

One code path for live, replay and offline: every source hands the engine the same
items (``SampleBlock`` or ``Gap``) in arrival order, and batch processing is a stream of
one block. Per sensor the chain is

    SampleBlock (sensor frame) -> Alignment -> SampleBlock (body frame) -> step events
    -> per-step metrics -> StepRecord

and across sensors the alert rules (``pipeline.alerts``: form cues with hysteresis;
``pipeline.fatigue``: drift against the early run) turn StepRecords into Alerts, which
follow the StepRecord that raised them in the output. The engine follows the streaming
contract (``update``/``flush``/``reset``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.alignment import Alignment
from detectors.form.asymmetry import Symmetry  # form (issue 3)
from detectors.steps import make_step_detector
from pipeline.alerts import FormCues, metric_values
from pipeline.config import Config, load_config
from pipeline.errors import InputError
from pipeline.fatigue import FatigueDrift
from pipeline.metrics import MetricsChain  # form metrics (issue 3)
from pipeline.records import CLEARED, Alert, Gap, SampleBlock, SensorInfo, Step, StepRecord


@dataclass
class SensorCounters:
    """What happened to one sensor's stream (reported in the session summary)."""

    samples: int = 0
    blocks: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    steps: int = 0
    running_steps: int = 0
    walking_steps: int = 0
    has_gyro: bool | None = None
    fs_hz: float = float("nan")


class _SensorChain:
    def __init__(self, info: SensorInfo, config: Config):
        self.info = info
        self._config = config
        a = config.section("alignment")
        self.alignment = Alignment(
            placement=info.placement,
            warmup_active_s=a["warmup_active_s"],
            max_buffer_s=a["max_buffer_s"],
        )
        self._steps = None  # created at the first block: depends on fs_hz and gyro presence
        self.form = MetricsChain(info, config, sensor_rotation=lambda: self.alignment.rotation)  # form (issue 3):
        # per-step metrics + stride samples; the rotation lets it find clipping in the sensor frame
        self.counters = SensorCounters()

    def update(self, block: SampleBlock) -> list[Step]:
        c = self.counters
        if self._steps is None:
            c.has_gyro = block.gyr_dps is not None
            c.fs_hz = block.fs_hz
            self._steps = make_step_detector(
                self._config.get("detectors", "steps"),
                placement=self.info.placement,
                fs_hz=block.fs_hz,
                has_gyro=c.has_gyro,
            )
        elif (block.gyr_dps is not None) != c.has_gyro or block.fs_hz != c.fs_hz:
            raise InputError(
                f"sensor {self.info.sensor_id!r}: stream changed form mid-run "
                f"(gyro {c.has_gyro} -> {block.gyr_dps is not None}, fs {c.fs_hz} -> {block.fs_hz} Hz)"
            )
        c.samples += block.n
        c.blocks += 1
        out: list[Step] = []
        for body in self.alignment.update(block):
            self.form.samples(body)  # form (issue 3)
            out += self._steps.update(body)
        return out

    def flush(self) -> list[Step]:
        out: list[Step] = []
        if self._steps is None:
            return out
        for body in self.alignment.flush():
            self.form.samples(body)  # form (issue 3)
            out += self._steps.update(body)
        out += self._steps.flush()
        return out

    def gap(self, gap: Gap) -> list[Step]:
        out = self.flush()
        self.counters.gaps += 1
        self.counters.gap_s += gap.duration_s
        self.reset()
        return out

    def reset(self) -> None:
        self.alignment.reset()
        self.form.reset()  # form (issue 3)
        if self._steps is not None:
            self._steps.reset()


class Engine:
    """Routes items to per-sensor chains and turns steps into records."""

    def __init__(self, sensors: Sequence[SensorInfo], *, config: Config | None = None,
                 history_baselines: dict[str, float] | None = None):
        self.config = config if config is not None else load_config()
        self.cues = FormCues.from_config(self.config, history_baselines=history_baselines)
        self.fatigue = FatigueDrift.from_config(self.config)
        self.alert_counts: dict[str, int] = {}
        ids = [s.sensor_id for s in sensors]
        if len(set(ids)) != len(ids):
            raise InputError(f"sensor ids must be unique in a session, got {ids}")
        self.sensors = {s.sensor_id: s for s in sensors}
        self._chains = {s.sensor_id: _SensorChain(s, self.config) for s in sensors}
        m = self.config.section("metrics")  # form (issue 3): left/right symmetry, steps held until both sides known
        self.symmetry = Symmetry(list(sensors), window_steps=m["asymmetry_window_steps"], max_hold_s=m["asymmetry_max_hold_s"])

    def _chain(self, sensor_id: str) -> _SensorChain:
        try:
            return self._chains[sensor_id]
        except KeyError:
            raise InputError(f"unknown sensor {sensor_id!r}; known: {sorted(self._chains)}") from None

    def update(self, item: SampleBlock | Gap) -> list[StepRecord | Alert]:
        chain = self._chain(item.sensor_id)
        steps = chain.gap(item) if isinstance(item, Gap) else chain.update(item)
        return self._with_alerts(self.symmetry.update(self._records(chain, steps)))  # form: symmetry

    def flush(self) -> list[StepRecord | Alert]:
        out: list[StepRecord] = []
        for chain in self._chains.values():
            out += self._records(chain, chain.flush())
        out = self.symmetry.update(out) + self.symmetry.flush()  # form (issue 3)
        return self._with_alerts(out) + self.cues.flush() + self.fatigue.flush()

    def reset(self) -> None:
        for chain in self._chains.values():
            chain.reset()
        self.symmetry.reset()  # form (issue 3)
        self.cues.reset()
        self.fatigue.reset()

    def _with_alerts(self, records: list[StepRecord]) -> list[StepRecord | Alert]:
        out: list[StepRecord | Alert] = []
        cues, fatigue = self.cues.update, self.fatigue.update
        for rec in records:
            out.append(rec)
            if rec.step.activity != "running":
                continue  # the rules and the fatigue drift watch running steps only
            values = metric_values(rec)  # once per record, shared by the rules and the fatigue drift
            alerts = cues(rec, values)
            more = fatigue(rec, values)
            if alerts or more:
                for alert in alerts + more:
                    if alert.severity != CLEARED:
                        self.alert_counts[alert.rule] = self.alert_counts.get(alert.rule, 0) + 1
                    out.append(alert)
        return out

    def counters(self) -> dict[str, SensorCounters]:
        return {sid: ch.counters for sid, ch in self._chains.items()}

    def _records(self, chain: _SensorChain, steps: list[Step]) -> list[StepRecord]:
        c = chain.counters
        out = []
        for st in steps:
            c.steps += 1
            if st.activity == "running":
                c.running_steps += 1
            else:
                c.walking_steps += 1
            out.append(StepRecord(sensor=chain.info, step=st, metrics=chain.form.update(st)))  # form (issue 3)
        return out
