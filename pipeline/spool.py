"""Durable on-disk spool of line-protocol batches: write-ahead, replayed in order, bounded.

Why hand-written: ``influxdb-client`` drops a batch once its retries run out and keeps
nothing on disk, and no well-kept Python library offers a small fsync'd FIFO of files.

Layout of a spool directory (one per InfluxDB target)::

    target.json                    where these batches go (URL, database/bucket, precision;
                                   never credentials)
    000000000042-5000.lp           batch #42 holding 5000 lines, UTF-8 line protocol

A batch is written to ``.tmp`` and renamed into place, so a batch file is either complete or
absent after a crash (POSIX rename is atomic). Batches that wait (the server did not take
them) are fsync'd, file and directory (and ``target.json`` with the first of them), so they
also survive a power cut; the sink spools
ahead of sending without fsync while the server accepts writes (a killed process loses
nothing either way: the page cache belongs to the kernel). Batches
are read back oldest first (by sequence number) and removed only after the server has
accepted them; writing a point twice is harmless in InfluxDB (same series + timestamp
overwrites), so a crash between "accepted" and "removed" at worst re-sends a batch. (The
sink removes accepted batches lazily -- :meth:`Spool.remove` with ``lazy=True``, files
deleted at the next :meth:`Spool.collect` -- so that its sender does not stop between two
requests for file deletions: a crash then re-sends the few batches accepted since.) A
batch appended by this process is also kept in memory (up to ``CACHE_BYTES``) so that
sending it does not read it back from disk.

The spool is bounded by ``max_bytes``: appending beyond it, or a failing disk (ENOSPC,
EIO ...), raises :class:`~pipeline.errors.SinkError` -- the run stops rather than dropping
data silently. ``depth_points``/``depth_batches`` are the spool depth (gait_health).
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import SinkError

_NAME = re.compile(r"^(\d{12})-(\d+)\.lp$")
TARGET_FILE = "target.json"
CACHE_BYTES = 16 * 1024 * 1024  # batches kept in memory as well (sent without reading the file; ~3 requests)


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    seq: int
    n_lines: int
    path: Path
    n_bytes: int

    def read_bytes(self) -> bytes:
        """The batch as stored: UTF-8 lines, each ending in a newline."""
        return self.path.read_bytes()

    def read_lines(self) -> list[str]:
        text = self.path.read_text(encoding="utf-8")
        return [ln for ln in text.split("\n") if ln]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A FIFO of line-protocol batches in ``directory`` for one ``target``.

    ``target`` is a small JSON-able dict naming the destination (no secrets). Opening a
    directory that still holds batches for a *different* target is refused, so old data
    never lands in the wrong database.
    """

    def __init__(self, directory: str | Path, *, target: dict, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.target = dict(target)
        self._lock = threading.Lock()
        self._cache: dict[int, bytes] = {}  # seq -> the batch's bytes (appended by this process)
        self._cache_bytes = 0
        self._unlink: list[Path] = []  # accepted batches whose files are still to be deleted
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create the InfluxDB spool directory {self.directory}: {exc.strerror}") from None
        self._batches: list[SpoolBatch] = []
        for p in self.directory.iterdir():
            m = _NAME.match(p.name)
            if m:
                self._batches.append(SpoolBatch(int(m.group(1)), int(m.group(2)), p, p.stat().st_size))
            elif p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)  # a batch that was never completed: never acknowledged either
        self._batches.sort(key=lambda b: b.seq)
        self._next_seq = (self._batches[-1].seq + 1) if self._batches else 1
        tf = self.directory / TARGET_FILE
        old = json.loads(tf.read_text(encoding="utf-8")) if tf.exists() else None
        if self._batches and old is not None and old != self.target:
            raise SinkError(
                f"spool {self.directory} holds {self.depth_points} points for another target {old}; "
                f"expected {self.target}. Flush it first (gaitwatch spool flush) or choose another spool directory"
            )
        # target.json is made durable (fsync) together with the first batch that is, not now:
        # a run whose server takes everything never waits for a disk flush.
        self._target_durable = True
        if old != self.target:  # (a full disk must not stop a spool from being reopened and flushed)
            self._write_atomic(tf, json.dumps(self.target, sort_keys=True).encode(), fsync=False)
            self._target_durable = False

    @staticmethod
    def read_target(directory: str | Path) -> dict | None:
        tf = Path(directory) / TARGET_FILE
        return json.loads(tf.read_text(encoding="utf-8")) if tf.exists() else None

    # -- depth ------------------------------------------------------------------------------
    @property
    def depth_batches(self) -> int:
        with self._lock:
            return len(self._batches)

    @property
    def depth_points(self) -> int:
        with self._lock:
            return sum(b.n_lines for b in self._batches)

    @property
    def depth_bytes(self) -> int:
        with self._lock:
            return sum(b.n_bytes for b in self._batches)

    # -- FIFO ------------------------------------------------------------------------------
    def _write_atomic(self, path: Path, data: bytes, *, fsync: bool = True) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if fsync:
                _fsync_dir(self.directory)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            what = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
            raise SinkError(
                f"cannot write to the InfluxDB spool {self.directory}: {what} "
                f"({self.depth_points} points waiting); stopping so that nothing is dropped"
            ) from None

    def _sync_target(self) -> None:
        """fsync target.json (once), before any batch that relies on it is made durable."""
        if self._target_durable:
            return
        fd = os.open(self.directory / TARGET_FILE, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        self._target_durable = True

    def sync(self) -> None:
        """fsync every pending batch and the directory (when batches start to wait)."""
        try:
            self._sync_target()
            for b in self.pending():
                try:
                    fd = os.open(b.path, os.O_RDONLY)
                except FileNotFoundError:
                    continue  # sent and removed meanwhile
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise SinkError(f"cannot sync the InfluxDB spool {self.directory}: {exc.strerror}") from None

    def append(self, lines: list[str], *, fsync: bool = True) -> SpoolBatch:
        """Append one batch: complete or absent after a crash (rename), and on stable
        storage before returning if ``fsync`` (else it survives a killed process but not a
        power cut until :meth:`sync`)."""
        if not lines:
            raise ValueError("append needs at least one line")
        return self.append_bytes(("\n".join(lines) + "\n").encode("utf-8"), len(lines), fsync=fsync)

    def append_bytes(self, data: bytes, n_lines: int, *, fsync: bool = True) -> SpoolBatch:
        """:meth:`append` for ``n_lines`` lines already joined: UTF-8, each ending in a newline."""
        if n_lines < 1 or not data.endswith(b"\n"):
            raise ValueError("append needs at least one newline-terminated line")
        with self._lock:
            used = sum(b.n_bytes for b in self._batches)
            if used + len(data) > self.max_bytes:
                raise SinkError(
                    f"InfluxDB spool {self.directory} is full: {used} of {self.max_bytes} bytes used by "
                    f"{sum(b.n_lines for b in self._batches)} points the server has not accepted; "
                    "stopping so that nothing is dropped (raise [influx] spool_max_mb or fix the server)"
                )
            seq = self._next_seq
            self._next_seq += 1
        path = self.directory / f"{seq:012d}-{n_lines}.lp"
        if fsync and not self._target_durable:
            try:
                self._sync_target()
            except OSError as exc:
                raise SinkError(f"cannot sync the InfluxDB spool {self.directory}: {exc.strerror}") from None
        self._write_atomic(path, data, fsync=fsync)
        batch = SpoolBatch(seq, n_lines, path, len(data))
        with self._lock:
            if self._batches and self._batches[-1].seq > seq:
                self._batches.append(batch)
                self._batches.sort(key=lambda b: b.seq)
            else:
                self._batches.append(batch)
            if self._cache_bytes + len(data) <= CACHE_BYTES:
                self._cache[seq] = data
                self._cache_bytes += len(data)
        if self._unlink:
            self.collect()
        return batch

    def read(self, batch: SpoolBatch) -> bytes:
        """The batch's bytes (from memory if this process appended it, else from its file)."""
        data = self._cache.get(batch.seq)
        return data if data is not None else batch.read_bytes()

    def oldest(self) -> SpoolBatch | None:
        with self._lock:
            return self._batches[0] if self._batches else None

    def oldest_run(self, *, max_lines: int, skip: frozenset[int] | set[int] = frozenset()) -> list[SpoolBatch]:
        """The oldest batches whose ``seq`` is not in ``skip`` (those another request is
        sending), in order, as many as fit in ``max_lines`` (at least one, if any)."""
        out: list[SpoolBatch] = []
        n = 0
        with self._lock:
            for b in self._batches:
                if b.seq in skip:
                    continue
                if out and n + b.n_lines > max_lines:
                    break
                out.append(b)
                n += b.n_lines
        return out

    def pending(self) -> list[SpoolBatch]:
        with self._lock:
            return list(self._batches)

    def remove(self, batch: SpoolBatch, *, lazy: bool = False) -> None:
        """Drop a batch the server accepted; ``lazy``: its file is deleted at the next
        :meth:`collect` (or :meth:`append`), not now."""
        with self._lock:
            if self._batches and self._batches[0].seq == batch.seq:
                del self._batches[0]
            else:
                self._batches = [b for b in self._batches if b.seq != batch.seq]
            data = self._cache.pop(batch.seq, None)
            if data is not None:
                self._cache_bytes -= len(data)
            if lazy:
                self._unlink.append(batch.path)
                return
        batch.path.unlink(missing_ok=True)

    def collect(self) -> None:
        """Delete the files of batches removed lazily."""
        with self._lock:
            paths, self._unlink = self._unlink, []
        for p in paths:
            p.unlink(missing_ok=True)

    def replace(self, batch: SpoolBatch, lines: list[str]) -> SpoolBatch | None:
        """Rewrite a batch with fewer lines (after part of it was written), keeping its place."""
        if not lines:
            self.remove(batch)
            return None
        data = ("\n".join(lines) + "\n").encode("utf-8")
        path = self.directory / f"{batch.seq:012d}-{len(lines)}.lp"
        if not self._target_durable:
            self.sync()
        self._write_atomic(path, data)
        if path != batch.path:
            batch.path.unlink(missing_ok=True)
        new = SpoolBatch(batch.seq, len(lines), path, len(data))
        with self._lock:
            old = self._cache.pop(batch.seq, None)
            if old is not None:
                self._cache_bytes -= len(old)
            self._batches = [new if b.seq == batch.seq else b for b in self._batches]
        return new
