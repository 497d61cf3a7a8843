"""The on-disk spool: order, durability across processes, bounds, full disk, killed writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from influx_fixtures import own_influx_server  # noqa: F401 - fixture
from pipeline import schema
from pipeline.errors import SinkError
from pipeline.spool import Spool

TARGET = {"transport": "v1", "url": "http://127.0.0.1:9", "database": "gw", "retention_policy": "", "precision": "ms"}


def lines(tag: str, n: int) -> list[str]:
    return [f"m,t={tag} v={i}.0 {i}" for i in range(n)]


def test_fifo_order_depth_and_reopen(tmp_path):
    sp = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    a, b, c = sp.append(lines("a", 3)), sp.append(lines("b", 5)), sp.append(lines("c", 1))
    assert (sp.depth_batches, sp.depth_points) == (3, 9)
    assert sp.oldest() == a and a.read_lines() == lines("a", 3)
    sp.remove(a)
    again = Spool(tmp_path, target=TARGET, max_bytes=10**6)  # another process, later
    assert [x.seq for x in again.pending()] == [b.seq, c.seq] and again.depth_points == 6
    d = again.append(lines("d", 2))
    assert d.seq == c.seq + 1  # order continues after a restart
    assert [x.read_lines()[0].split(" ")[0] for x in again.pending()] == ["m,t=b", "m,t=c", "m,t=d"]
    shorter = again.replace(again.oldest(), lines("b", 5)[3:])
    assert again.oldest() == shorter and shorter.n_lines == 2 and again.depth_points == 5


def test_oldest_run_skips_batches_being_sent_and_removal_out_of_order(tmp_path):
    """Two requests in flight: the second worker takes the oldest batches the first is not
    sending; they may be acknowledged in either order."""
    sp = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    a, b, c, d = (sp.append(lines(t, 2)) for t in "abcd")
    first = sp.oldest_run(max_lines=4)
    assert first == [a, b]
    second = sp.oldest_run(max_lines=4, skip={x.seq for x in first})
    assert second == [c, d]
    assert sp.oldest_run(max_lines=4, skip={x.seq for x in first + second}) == []
    sp.remove(c)  # the second request answered first
    sp.remove(d)
    assert sp.pending() == [a, b] and sp.oldest_run(max_lines=1, skip={a.seq}) == [b]
    sp.remove(b)
    sp.remove(a)
    assert sp.depth_batches == 0 and not list(tmp_path.glob("*.lp"))


def test_lazy_remove_and_in_memory_copy(tmp_path):
    """The sink removes accepted batches lazily (files deleted at collect() or the next append,
    not between two requests) and sends batches from memory: the file holds the same bytes,
    and a crash before collect() only means the accepted batch is found (and re-sent) again."""
    sp = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    body = ("\n".join(lines("a", 3)) + "\n").encode()
    a = sp.append_bytes(body, 3, fsync=False)
    b = sp.append(lines("b", 2))
    assert sp.read(a) == body == a.read_bytes() and sp.read(b) == b.read_bytes()
    with pytest.raises(ValueError):
        sp.append_bytes(b"m v=1 1", 1)  # not newline-terminated
    sp.remove(a, lazy=True)
    assert (sp.depth_batches, sp.depth_points) == (1, 2) and a.path.exists()
    assert Spool(tmp_path, target=TARGET, max_bytes=10**6).depth_points == 5  # killed now: a is re-sent
    sp.collect()
    assert not a.path.exists() and Spool(tmp_path, target=TARGET, max_bytes=10**6).depth_points == 2
    sp.remove(b, lazy=True)
    c = sp.append(lines("c", 1))  # an append deletes the files of batches removed before
    assert not b.path.exists() and sp.pending() == [c] and sp.read(c) == c.read_bytes()


def test_in_memory_copies_are_bounded(tmp_path, monkeypatch):
    import pipeline.spool as spool_mod

    monkeypatch.setattr(spool_mod, "CACHE_BYTES", 200)
    sp = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    batches = [sp.append(lines(t, 4), fsync=False) for t in "abcdef"]  # ~60 bytes each
    assert 0 < sp._cache_bytes <= 200 and len(sp._cache) < len(batches)
    assert [sp.read(b) for b in batches] == [b.read_bytes() for b in batches]  # the rest from disk
    for b in batches:
        sp.remove(b, lazy=True)
    assert sp._cache_bytes == 0 and not sp._cache


def test_target_file_is_made_durable_with_the_first_durable_batch(tmp_path, monkeypatch):
    """Opening a spool and spooling ahead while the server takes everything waits for no disk
    flush; the first batch that must survive a power cut brings target.json with it."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1])
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    sp = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    sp.append(lines("a", 2), fsync=False)
    assert synced == [] and Spool.read_target(tmp_path) == TARGET
    b = sp.append(lines("b", 2))
    assert synced[0] == "target.json" and b.path.name + ".tmp" in synced
    synced.clear()
    sp.sync()
    assert "target.json" not in synced  # (once)


def test_incomplete_batch_from_a_crash_is_ignored_and_target_is_kept(tmp_path):
    sp = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    sp.append(lines("a", 2))
    (tmp_path / "000000000002-7.lp.tmp").write_text("m v=1 1\nm v=")  # torn write, never renamed
    again = Spool(tmp_path, target=TARGET, max_bytes=10**6)
    assert again.depth_points == 2 and not list(tmp_path.glob("*.tmp"))
    assert json.loads((tmp_path / "target.json").read_text()) == TARGET
    assert "token" not in (tmp_path / "target.json").read_text()


def test_pending_batches_for_another_target_are_refused(tmp_path):
    Spool(tmp_path, target=TARGET, max_bytes=10**6).append(lines("a", 4))
    other = {**TARGET, "database": "other"}
    with pytest.raises(SinkError, match="holds 4 points for another target"):
        Spool(tmp_path, target=other, max_bytes=10**6)
    empty = tmp_path / "e"
    Spool(empty, target=TARGET, max_bytes=10**6)
    assert Spool(empty, target=other, max_bytes=10**6).target == other  # nothing pending: fine


def test_bound_is_enforced_without_losing_what_was_accepted(tmp_path):
    sp = Spool(tmp_path, target=TARGET, max_bytes=120)
    sp.append(lines("a", 5))
    with pytest.raises(SinkError, match="is full: .* stopping so that nothing is dropped"):
        sp.append(lines("b", 5))
    assert sp.depth_points == 5 and len(list(tmp_path.glob("*.lp"))) == 1


def test_full_disk_is_a_clear_error(tmp_path):
    """A real small filesystem (tmpfs of 64 KiB) fills up: ENOSPC becomes a SinkError."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        sp = Spool(mnt / "spool", target=TARGET, max_bytes=10**9)
        with pytest.raises(SinkError, match="the disk is full"):
            for i in range(1000):
                sp.append(lines(f"x{i}", 200))
        n = sp.depth_points
        assert n > 0 and not list((mnt / "spool").glob("*.tmp"))
        assert Spool(mnt / "spool", target=TARGET, max_bytes=10**9).depth_points == n  # all complete
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from influx_fixtures import make_step_records
    from pipeline.config import load_config
    from pipeline.records import SensorInfo, SessionInfo
    from pipeline.sinks.influx import sink_from_config

    sec = load_config().section("influx")
    sec.update(url={url!r}, database="gw", spool_dir={spool!r}, flush_interval_s=0.0,
               username={user!r}, password={pw!r}, replay_interval_s=60.0)
    L = SensorInfo("L", "foot", "left")
    sink = sink_from_config(sec, session=SessionInfo("k", "a", 10**18), sensors=[L])
    recs = make_step_records(sensors=[L], duration_s=3600.0)
    for i in range(0, len(recs), 10):
        sink.write(recs[i:i + 10])
        print(i + 10, flush=True)
        time.sleep(0.01)
    """
)


def test_killed_writer_loses_at_most_the_unspooled_tail(own_influx_server, tmp_path):
    srv = own_influx_server
    srv.create_database("gw")
    srv.stop()  # down: everything goes to the spool, then the process is killed
    code = _WRITER.format(tests=str(Path(__file__).parent), url=srv.url, spool=str(tmp_path / "spool"),
                          user=srv.user, pw=srv.password)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=str(Path(__file__).parent.parent))
    acknowledged = 0
    deadline = time.monotonic() + 60
    while acknowledged < 200 and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert acknowledged >= 200, p.stderr.read()
    # every write() that returned was spooled (flush_interval_s = 0): nothing acknowledged is lost
    srv.start()
    from pipeline.config import load_config
    from pipeline.sinks.influx import flush_spool

    sec = load_config().section("influx")
    sec.update(spool_dir=str(tmp_path / "spool"), username=srv.user, password=srv.password)
    sent, left = flush_spool(sec, timeout_s=30)
    assert left == 0
    n = srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="gw")
    assert acknowledged <= n <= acknowledged + 10  # + at most the write in flight at the kill
