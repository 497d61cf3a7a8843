"""gaitmap side of bench/bench_pipeline.py --parts gaitmap. Runs in gaitmap's OWN venv (not the product's):

    python3 -m venv /tmp/gaitmap-venv && /tmp/gaitmap-venv/bin/pip install gaitmap gaitmap-mad
    /tmp/gaitmap-venv/bin/python bench/gaitmap_worker.py [--repeat N] OUT.json REC.csv[:left|right] ...

Imports nothing from gaitwatch. For each recording (gaitwatch recording format: ``t_s``,
``acc_*_ms2`` or ``acc_*_g``, ``gyr_*_dps`` or ``gyr_*_rads``; the sidecar's ``side``),
gaitmap's documented offline chain for foot-worn IMUs (Küderle et al., gaitmap, 2024):

1. uniform grid at the median sample rate (linear interpolation, as gaitwatch's reader);
2. sensor alignment for an arbitrarily mounted sensor: ``align_dataset_to_gravity``
   (0.7 s of rest; a run without a standing start has none, then gravity is the mean
   specific force over the whole recording), ``PcaAlignment(target_axis="y", pca_plane_axis=("gyr_x", "gyr_y"))``
   (medio-lateral axis), ``ForwardDirectionSignAlignment`` (180 deg ambiguity, from the
   integrated forward velocity), then ``convert_to_fbf`` (gaitmap's foot body frame);
3. ``BarthDtw`` stride segmentation (Barth et al. 2015, Sensors 15:6419, default
   template and parameters);
4. ``RamppEventDetection`` (Rampp et al. 2015, IEEE TBME 62:1089): IC and TC (toe-off)
   per stride.

Writes JSON: per recording the IC/TO times in seconds (on the file's ``t_s`` axis), the
stride count, and times (the first call in the process includes numba's JIT compilation,
so the chain is timed ``1 + N`` times: ``cold_s`` is the first call, ``warm_s`` /
``warm_cpu_s`` the median of the N warm calls, default N = 1; ``warm_cpu_min_s`` their
minimum and ``warm_cpu_all_s`` all of them).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

G = 9.80665
# Same for ForwardDirectionSignAlignment's ZUPT detectors (0.15 s windows by default): if
# they find no rest, gyro-mean ZUPTs over the foot-flat of a running stance are used.
# BarthDtw's default max_cost (4.0) finds no running stride in the simulated or the PyShoe
# running data (its template is a walking stride); the benchmark reports that and uses 6.0.
DTW_MAX_COST = 6.0
RUN_ZUPT_WINDOW_S, RUN_ZUPT_DPS = 0.06, 40.0


def load(path: Path) -> tuple[np.ndarray, pd.DataFrame, float]:
    """Raw recording -> (grid times, DataFrame acc_x..gyr_z in m/s² and deg/s, fs)."""
    df = pd.read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    t = df["t_s"].to_numpy(float)
    out = {}
    for a in "xyz":
        if f"acc_{a}_ms2" in df:
            out[f"acc_{a}"] = df[f"acc_{a}_ms2"].to_numpy(float)
        else:
            out[f"acc_{a}"] = df[f"acc_{a}_g"].to_numpy(float) * G
    for a in "xyz":
        if f"gyr_{a}_dps" in df:
            out[f"gyr_{a}"] = df[f"gyr_{a}_dps"].to_numpy(float)
        else:
            out[f"gyr_{a}"] = np.degrees(df[f"gyr_{a}_rads"].to_numpy(float))
    fs = float(f"{1.0 / float(np.median(np.diff(t[:2000]))):.9g}")
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * fs)) + 1) / fs
    data = pd.DataFrame({k: np.interp(grid, t, v) for k, v in out.items()})
    return grid, data, fs


def align(data: dict[str, pd.DataFrame], fs: float) -> dict[str, pd.DataFrame]:
    """gaitmap's sensor alignment of {"left_sensor"/"right_sensor": DataFrame} to its sensor frame."""
    from gaitmap.preprocessing import align_dataset_to_gravity
    from gaitmap.preprocessing.sensor_alignment import ForwardDirectionSignAlignment, PcaAlignment

    try:
        sf = align_dataset_to_gravity(data, fs)  # needs 0.7 s of rest (a standing start)
    except ValueError:
        # running without a standing start has no rest: the mean specific force over whole
        # strides is gravity (the foot returns to the same velocity every stride), so the
        # gravity rotation is taken from the mean (gaitmap's own rotation helpers)
        from gaitmap.utils.consts import SF_ACC
        from gaitmap.utils.rotations import get_gravity_rotation, rotate_dataset

        sf = {k: rotate_dataset(v, get_gravity_rotation(v[SF_ACC].to_numpy().mean(axis=0))) for k, v in data.items()}
    sf = PcaAlignment(target_axis="y", pca_plane_axis=("gyr_x", "gyr_y")).align(sf).aligned_data_
    try:
        sf = ForwardDirectionSignAlignment(forward_direction="x", rotation_axis="z").align(
            sf, sampling_rate_hz=fs).aligned_data_
    except ValueError:  # its ZUPT detectors (0.15 s windows) find no rest in running: shorter, gyro-based
        from gaitmap.trajectory_reconstruction import PieceWiseLinearDedriftedIntegration
        from gaitmap.zupt_detection import NormZuptDetector

        zupt = dict(sensor="gyr", window_length_s=RUN_ZUPT_WINDOW_S, inactive_signal_threshold=RUN_ZUPT_DPS,
                    metric="mean")
        sf = ForwardDirectionSignAlignment(
            forward_direction="x", rotation_axis="z", zupt_detector_orientation_init=NormZuptDetector(**zupt),
            pos_method=PieceWiseLinearDedriftedIntegration(NormZuptDetector(**zupt), level_assumption=False),
        ).align(sf, sampling_rate_hz=fs).aligned_data_
    return sf


def flip_heading(sf: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same data turned 180 deg about the vertical (the sign ForwardDirectionSignAlignment decides)."""
    out = {}
    for k, df in sf.items():
        df = df.copy()
        for c in ("acc_x", "acc_y", "gyr_x", "gyr_y"):
            df[c] = -df[c]
        out[k] = df
    return out


def segment_detect(sf: dict[str, pd.DataFrame], fs: float, *, detector: str, max_cost: float = DTW_MAX_COST):
    """BarthDtw strides and IC/TC events of sensor-frame data; (stride list, event list) per sensor."""
    from gaitmap.event_detection import HerzerEventDetection, RamppEventDetection
    from gaitmap.stride_segmentation import BarthDtw
    from gaitmap.utils.coordinate_conversion import convert_to_fbf

    bf = convert_to_fbf(sf, left_like="left_", right_like="right_")
    dtw = BarthDtw(max_cost=max_cost).segment(data=bf, sampling_rate_hz=fs)
    if detector == "rampp":
        ed = RamppEventDetection(enforce_consistency=False)
    else:
        ed = HerzerEventDetection()
    ed = ed.detect(data=bf, stride_list=dtw.stride_list_, sampling_rate_hz=fs)
    return dtw.stride_list_, ed.annotated_original_event_list_


def chain(data: dict[str, pd.DataFrame], fs: float, *, detector: str = "rampp", best_sign: bool = False,
          max_cost: float = DTW_MAX_COST):
    sf = align(data, fs)
    strides, events = segment_detect(sf, fs, detector=detector, max_cost=max_cost)
    if best_sign:  # the other heading too; keep the one with more strides (an upper bound for gaitmap)
        s2, e2 = segment_detect(flip_heading(sf), fs, detector=detector, max_cost=max_cost)
        if sum(len(v) for v in s2.values()) > sum(len(v) for v in strides.values()):
            strides, events = s2, e2
    return strides, events


VARIANTS = (("rampp", False), ("herzer", False), ("rampp", True), ("herzer", True))  # (detector, best_sign)


def events_s(strides, events, name: str, grid: np.ndarray, fs: float) -> dict:
    """IC and TC times (s) of one sensor; each segmented stride holds a TC and the next IC."""
    ev = events[name] if isinstance(events, dict) else events
    seg = strides[name] if isinstance(strides, dict) else strides
    to_t = lambda col: sorted((grid[0] + ev[col].dropna().to_numpy(float) / fs).tolist())  # noqa: E731
    return {"strides": int(len(seg)), "ic_s": to_t("ic"), "to_s": to_t("tc")}


def main(argv: list[str]) -> int:
    repeat = 1
    if argv and argv[0] == "--repeat":
        repeat, argv = max(1, int(argv[1])), argv[2:]
    out_path, specs = Path(argv[0]), argv[1:]
    result: dict = {"recordings": {}}
    for spec in specs:
        path, _, side = spec.partition(":")
        path = Path(path)
        if not side:
            side = json.loads(path.with_suffix(".json").read_text())["side"]
        name = f"{side}_sensor"
        times, cpus = [], []
        for _ in range(1 + repeat):  # cold (numba JIT compiles in the first), then warm: read -> events
            grid = df = strides = events = None  # not kept alive while timing the next call
            gc.collect()  # each call starts with an empty GC (bench_pipeline.child_events does the same)
            t0, c0 = time.perf_counter(), time.process_time()
            grid, df, fs = load(path)
            strides, events = chain({name: df}, fs, detector="rampp")
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        rec = {"side": side, "fs_hz": fs, "samples": int(len(grid)), "cold_s": times[0],
               "warm_s": float(np.median(times[1:])), "cold_cpu_s": cpus[0], "warm_cpu_s": float(np.median(cpus[1:])),
               "warm_cpu_min_s": min(cpus[1:]), "warm_cpu_all_s": cpus[1:], "variants": {}}
        for detector, best in VARIANTS:
            s_, e_ = (strides, events) if (detector, best) == ("rampp", False) else \
                chain({name: df}, fs, detector=detector, best_sign=best)
            rec["variants"][f"{detector}{'+best_sign' if best else ''}"] = events_s(s_, e_, name, grid, fs)
        s_, e_ = chain({name: df}, fs, detector="rampp", max_cost=4.0)
        rec["strides_default_max_cost"] = int(sum(len(v) for v in s_.values()))
        result["recordings"][str(path)] = rec
        print(f"gaitmap {path.name}: " + ", ".join(f"{k} {v['strides']} strides" for k, v in rec["variants"].items())
              + f"; {times[0]:.3f} s cold, {rec['warm_s']:.3f} s warm (median of {repeat})", file=sys.stderr)
    import gaitmap

    result["gaitmap_version"] = gaitmap.__version__
    out_path.write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
