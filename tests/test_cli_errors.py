"""The real command line on bad input: exit 2, one line on stderr naming file/line/column, no traceback."""

from __future__ import annotations

import re

import pytest
from recording_fixtures import CASE_IDS, CASES, HEADER, case_paths, rows


def _check_one_line_error(proc, *must_contain: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gaitwatch: error: ")
    for s in must_contain:
        assert s in lines[0], (s, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_replay_bad_input_exits_2_with_one_line(case, tmp_path, run_cli):
    csv_path, named = case_paths(case, tmp_path / "in")
    proc = run_cli("replay", csv_path, "--out", tmp_path / "out")
    where = named.name + (f":{case.line}" if case.line is not None else "")
    line = _check_one_line_error(proc, where, *( [f"column {case.column!r}"] if case.column else []))
    assert re.search(case.message, line), line


def test_error_in_second_recording_names_that_file(tmp_path, run_cli):
    good, _ = case_paths(next(c for c in CASES if c.name == "sidecar_missing_side"), tmp_path)
    (tmp_path / "good.csv").write_text("\n".join([HEADER, *rows()]) + "\n")
    (tmp_path / "good.json").write_text('{"sensor_id": "g", "placement": "foot", "side": "left"}')
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([HEADER.replace("acc_x_ms2", "acc_x_G"), *rows()]) + "\n")
    (tmp_path / "bad.json").write_text('{"sensor_id": "b", "placement": "foot", "side": "right"}')
    proc = run_cli("replay", tmp_path / "good.csv", bad, "--out", tmp_path / "out")
    _check_one_line_error(proc, "bad.csv:1", "column 'acc_x_G'", "unknown unit suffix '_G'")
    assert not (tmp_path / "out").exists()  # header errors are found before any output is made


def test_same_sensor_id_twice_is_an_error(tmp_path, run_cli):
    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text("\n".join([HEADER, *rows()]) + "\n")
        (tmp_path / f"{name}.json").write_text('{"sensor_id": "same", "placement": "foot", "side": "left"}')
    proc = run_cli("replay", tmp_path / "a.csv", tmp_path / "b.csv", "--out", tmp_path / "out")
    _check_one_line_error(proc, "sensor_id 'same' appears in more than one recording")


def test_bad_config_file_is_one_line(tmp_path, run_cli):
    (tmp_path / "r.csv").write_text("\n".join([HEADER, *rows()]) + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[ingest]\ngap_fill_max = 0.1\n")
    proc = run_cli("replay", tmp_path / "r.csv", "--placement", "foot", "--side", "left", "--config", cfg)
    _check_one_line_error(proc, "unknown key 'gap_fill_max'")


def test_usage_errors_exit_2(tmp_path, run_cli):
    proc = run_cli("replay", "x.csv", "--speed", "0")
    assert proc.returncode == 2 and "expected a positive number" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("replay", "x.csv", "--placement", "hip")
    assert proc.returncode == 2 and "invalid choice: 'hip'" in proc.stderr
    proc = run_cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_unwritable_out_dir_is_one_line(tmp_path, run_cli):
    (tmp_path / "r.csv").write_text("\n".join([HEADER, *rows()]) + "\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    proc = run_cli("replay", tmp_path / "r.csv", "--placement", "foot", "--side", "left", "--out", blocker / "sub")
    _check_one_line_error(proc, "cannot create output directory")


@pytest.mark.parametrize("command", ["live", "gateway"])
@pytest.mark.parametrize("args, message", [
    (["--ble", "x", "--serial", "/dev/null"], "BLE and serial sensors in one run are not supported yet"),
    (["--ble", "x", "--from-ble-capture", "c.gwcap"], "use either --ble devices or --from-ble-capture files"),
    (["--ble", "x", "--ble-scan-timeout-s", "0"], "--ble-scan-timeout-s must be a positive number"),
    (["--ble", "x", "--ble", "y", "--ble", "z", "--ble-kind", "rsc", "--ble-kind", "rsc"],
     "expected --ble-kind once or 3 times"),
    (["--ble", "x", "--ble", "y", "--sensor-id", "a", "--placement", "foot", "--side", "left"],
     "--sensor-id must be given once per --ble device"),
])
def test_ble_option_errors_are_the_same_for_live_and_gateway(command, args, message, tmp_path, capsys):
    """live and gateway share the BLE options' checks; the message names the command."""
    from pipeline.cli import main

    extra = ["--buffer", str(tmp_path / "buf"), "--nats", "nats://127.0.0.1:1"] if command == "gateway" else []
    assert main([command, *args, *extra]) == 2
    err = capsys.readouterr().err
    assert f"{command}: " in err and message in err, err


@pytest.mark.parametrize("command", ["live", "gateway"])
@pytest.mark.parametrize("args, message", [
    (["--serial", "/dev/null", "--serial", "/dev/zero", "--placement", "foot", "--side", "left", "--side", "right",
      "--side", "left"], "expected --side once or 2 times (once per --serial), got 3"),
    (["--serial", "/dev/null", "--side", "left"], "--placement is required (once for all sensors or once per --serial)"),
    (["--ble", "x", "--ble", "y", "--placement", "foot", "--side", "left", "--side", "left", "--side", "left"],
     "expected --side once or 2 times (once per --ble), got 3"),
])
def test_per_sensor_option_errors_name_the_command_and_option(command, args, message, tmp_path, capsys):
    """The per-sensor option checks are shared by live and gateway, serial and BLE; the message
    names the command that was run and the option that lists the sensors."""
    from pipeline.cli import main

    extra = ["--buffer", str(tmp_path / "buf"), "--nats", "nats://127.0.0.1:1"] if command == "gateway" else []
    assert main([command, *args, *extra]) == 2
    err = capsys.readouterr().err
    assert f"{command}: " in err and message in err, err
