"""The registrar against real stores (SQLite here, MariaDB where marked): the life of a row.

Every test works on real files in a temporary root, since the registrar checks the disk
when it withdraws a row and remembers the version (device, inode, size, mtime) of each.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from vfs_notifier.registrar import BATCH, Registrar, version_of
from vfs_notifier.rows import RowMaker
from vfs_notifier.settings import Root
from vfs_notifier.store import StoreUnavailable
from vfs_notifier.store_sqlite import SQLiteStore


class Fixture:
    def __init__(self, tmp_path: Path) -> None:
        self.base = tmp_path / "srv"
        self.root_dir = self.base / "videos"
        self.root_dir.mkdir(parents=True)
        self.db = str(tmp_path / "db.sqlite3")
        self.root = Root(path=str(self.root_dir),
                         base_url="http://h/v", base_path=str(self.base))
        self.maker = RowMaker(self.root)
        self.last: Registrar | None = None

    def registrar(self, forget: bool = True, restart: bool = True, **kwargs) -> Registrar:
        """A registrar on the root; by default a restart: the one made before is stopped
        (a second one beside it would stand by: see the lease tests)."""
        if restart and self.last is not None:
            self.last.close()
        reg = Registrar(SQLiteStore(self.db), [self.root], forget_removed=forget, **kwargs)
        assert reg.connect()
        self.last = reg
        return reg

    def file(self, name: str, data: bytes = b"video") -> Path:
        path = self.root_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def offer(self, reg: Registrar, path: Path) -> bool:
        return reg.offer(self.maker.row_for_path(str(path)), version_of(os.lstat(path)))

    def rows(self) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT id, des_video_path, status, des_url FROM videos ORDER BY id").fetchall()

    def sql(self, statement: str, *args) -> None:
        with sqlite3.connect(self.db) as conn:
            conn.execute(statement, args)


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def test_batches_and_never_doubles(fx):
    reg = fx.registrar()
    files = [fx.file(f"{i}.mp4") for i in range(BATCH * 2 + 500)]
    assert all(fx.offer(reg, f) for f in files)
    assert not fx.offer(reg, files[7])
    assert [reg.flush() for _ in range(4)] == [BATCH, BATCH, 500, 0]
    assert not fx.offer(reg, files[7])
    assert len(fx.rows()) == BATCH * 2 + 500


def test_the_memory_survives_a_restart(fx):
    reg = fx.registrar()
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    reg.flush()
    reg.close()
    again = fx.registrar()
    assert not fx.offer(again, path)
    assert len(again.memory) == 1


def test_a_row_a_consumer_deleted_is_never_resurrected_but_a_new_version_gets_one(fx):
    reg = fx.registrar()
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    reg.flush()
    fx.sql("DELETE FROM videos")
    restarted = fx.registrar()
    assert not fx.offer(restarted, path)          # same version: the consumer's delete stands
    restarted.flush()
    assert fx.rows() == []
    os.unlink(path)
    fx.file("a.mp4", b"another upload")           # a new file at that path is a new video
    assert fx.offer(restarted, path)
    restarted.flush()
    assert [r[1] for r in fx.rows()] == [str(path)]


def test_overwritten_in_place_is_signalled_once_on_the_same_row(fx):
    reg = fx.registrar()
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    reg.flush()
    fx.sql("UPDATE videos SET status = 3")
    (first_id, *_), = fx.rows()
    with open(path, "ab") as handle:
        handle.write(b" and more")
    assert fx.offer(reg, path)
    reg.flush()
    assert not fx.offer(reg, path)
    assert [(r[0], r[2]) for r in fx.rows()] == [(first_id, 1)]
    assert reg.signalled == 1


def test_the_same_bytes_under_a_new_inode_are_not_a_change(fx):
    reg = fx.registrar()
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    reg.flush()
    fx.sql("UPDATE videos SET status = 3")
    st = os.lstat(path)
    copy = fx.root_dir / "tmp-copy"
    copy.write_bytes(path.read_bytes())
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(copy, path)
    assert fx.offer(reg, path)
    reg.flush()
    assert [r[2] for r in fx.rows()] == [3] and reg.signalled == 0
    assert not fx.offer(reg, path)


def test_a_renamed_directory_keeps_its_rows_ids_and_statuses(fx):
    reg = fx.registrar()
    files = [fx.file(f"show/s{i}.mp4") for i in range(50)] + [fx.file("shows/x.mp4")]
    for f in files:
        fx.offer(reg, f)
    reg.flush()
    fx.sql("UPDATE videos SET status = 2")
    before = {r[0]: r[1] for r in fx.rows()}
    os.rename(fx.root_dir / "show", fx.root_dir / "Show 2")
    reg.move(fx.maker.directory_row(str(fx.root_dir / "show")),
             fx.maker.directory_row(str(fx.root_dir / "Show 2")), is_dir=True)
    # Before the move is written, the new paths already count as registered.
    assert not fx.offer(reg, fx.root_dir / "Show 2" / "s3.mp4")
    reg.flush()
    after = {r[0]: (r[1], r[2], r[3]) for r in fx.rows()}
    assert after.keys() == before.keys()
    assert all(status == 2 for _, status, _ in after.values())
    moved = sorted(p for p, _, _ in after.values() if "/Show 2/" in p)
    assert len(moved) == 50 and after[next(i for i, p in before.items() if p.endswith("shows/x.mp4"))][0].endswith("shows/x.mp4")
    assert all(url.startswith("http://h/v/videos/Show%202/") for p, _, url in after.values() if "/Show 2/" in p)
    assert not fx.offer(reg, fx.root_dir / "Show 2" / "s3.mp4")


def test_a_withdrawal_checks_the_disk_when_it_deletes(fx):
    reg = fx.registrar()
    files = [fx.file(f"upload/{i}.mp4") for i in range(5)]
    for f in files:
        fx.offer(reg, f)
    reg.flush()
    # rm -rf upload; mv staging/upload upload: the directory left and came back, same names.
    reg.withdraw(str(fx.root_dir / "upload"), is_dir=True)
    os.unlink(files[0])
    reg.flush()
    assert sorted(r[1] for r in fx.rows()) == sorted(str(f) for f in files[1:])
    assert reg.withdrawn == 1


def test_forget_off_keeps_rows(fx):
    reg = fx.registrar(forget=False)
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    reg.flush()
    os.unlink(path)
    reg.withdraw(str(path), is_dir=False)
    reg.flush()
    assert len(fx.rows()) == 1


def test_rows_of_the_previous_version_are_adopted_not_doubled_nor_signalled(fx):
    paths = [fx.file(f"old{i}.mp4") for i in range(3)]
    fx.registrar().close()     # creates the tables
    for p in paths:
        fx.sql("INSERT INTO videos (main_dir, des_video_path, status, des_url) VALUES (?, ?, 2, ?)",
               str(fx.root_dir), str(p), "http://h/v/videos/" + p.name)
    reg = fx.registrar()
    assert not any(fx.offer(reg, p) for p in paths)
    reg.flush()
    assert [r[2] for r in fx.rows()] == [2, 2, 2]


def test_resync_brings_back_deleted_rows_only_when_asked(fx):
    reg = fx.registrar()
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    reg.flush()
    fx.sql("DELETE FROM videos")
    reg.resync = True
    assert fx.offer(reg, path)
    reg.flush()
    assert [r[1] for r in fx.rows()] == [str(path)]


def test_an_unavailable_store_keeps_everything_queued_and_caps_the_queue(fx):
    reg = fx.registrar(queue_cap=10)
    files = [fx.file(f"{i}.mp4") for i in range(15)]
    reg.store.close()
    reg.store._conn = None     # the connection is gone, as after a server restart
    for f in files:
        fx.offer(reg, f)
    assert len(reg.queue) == 10 and reg.reconcile_needed
    assert reg.flush() == 0 and not reg.connected and reg.problem
    reg.retry_at = 0
    assert reg.connect()
    assert reg.flush() == 10
    assert len(fx.rows()) == 10


def test_a_second_registrar_stands_by_while_the_first_holds_the_root(fx):
    first = fx.registrar()
    assert first.may_write(fx.root.path)
    second = fx.registrar(restart=False)
    assert not second.may_write(fx.root.path) and fx.root.path in second.standby
    first.close()
    gained, _ = second.renew_leases()
    assert gained == [fx.root.path] and second.may_write(fx.root.path)


def test_store_failures_never_escape(fx):
    reg = fx.registrar()
    path = fx.file("a.mp4")
    fx.offer(reg, path)
    os.unlink(fx.db)
    reg.store._conn.close()
    assert reg.flush() == 0
    assert not reg.connected
    with pytest.raises(StoreUnavailable):
        reg.store.existing([1])


def test_a_first_reconcile_sweeps_nothing_a_later_one_withdraws_what_it_missed(fx):
    """A first start registers what its walk finds: no row below the root can be stale, so
    no sweep lstats them all again. A later walk that misses a remembered file sweeps."""
    reg = fx.registrar()
    kept, lost = fx.file("kept.mp4"), fx.file("lost.mp4")
    reg.begin_reconcile(fx.root)
    assert fx.offer(reg, kept) and fx.offer(reg, lost)
    reg.flush()
    reg.end_reconcile(fx.root, complete=True)
    assert reg.pending == 0 and len(fx.rows()) == 2
    lost.unlink()                      # while the service was down: no event tells of it
    reg.begin_reconcile(fx.root)
    reg.found_registered(fx.root)      # the walk meets kept.mp4 only
    reg.end_reconcile(fx.root, complete=True)
    assert reg.pending == 1
    reg.flush()
    assert [r[1] for r in fx.rows()] == [str(kept)]


def test_withdrawals_wait_for_a_turn_with_time_left_but_never_long(fx):
    """A page of withdrawals takes a query, an lstat a row and a DELETE: a turn that has spent
    its time on events leaves it to the next, yet three such turns running are the most."""
    reg = fx.registrar()
    gone = fx.file("gone.mp4")
    assert fx.offer(reg, gone)
    reg.flush()
    gone.unlink()
    reg.withdraw(str(gone), is_dir=False)
    for _ in range(3):
        reg.flush(time_left=0.001)
        assert len(fx.rows()) == 1 and reg.pending == 1
    reg.flush(time_left=0.001)
    assert fx.rows() == [] and reg.pending == 0
    other = fx.file("other.mp4")
    assert fx.offer(reg, other)
    reg.flush()
    other.unlink()
    reg.withdraw(str(other), is_dir=False)
    reg.flush(time_left=0.05)          # time enough: at once
    assert fx.rows() == []


def test_a_few_files_are_logged_by_name_and_a_burst_in_one_line(fx, caplog):
    reg = fx.registrar()
    few = [fx.file(f"few/{i}.mp4") for i in range(3)]
    burst = [fx.file(f"burst/{i:02d}.mp4") for i in range(40)]
    with caplog.at_level(logging.DEBUG, logger="vfs_notifier"):
        for f in few:
            fx.offer(reg, f)
        reg.flush()
        for f in burst:
            fx.offer(reg, f)
        reg.flush()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "registered" in r.getMessage()]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and "registered" in r.getMessage()]
    assert info[:3] == [f"registered {f} as http://h/v/videos/few/{f.name}" for f in few]
    assert info[3:] == [f"registered 40 new files ({burst[0]}, ...)"]
    assert len(debug) == 40 and all(d.startswith("registered ") for d in debug)
    assert len(fx.rows()) == 43


def test_a_row_carried_by_a_stale_rename_to_where_its_file_never_was_is_withdrawn(fx):
    """`work` was renamed to `renamed` before a new `work` got a.mp4, whose row was written
    before the rename's event was read; then the new `work` went too. The bulk move carries
    the row below `renamed`, where a.mp4 never was; no later event names that path."""
    reg = fx.registrar()
    (fx.root_dir / "renamed").mkdir()
    a = fx.file("work/a.mp4")
    fx.offer(reg, a)
    reg.flush()
    assert [r[1] for r in fx.rows()] == [str(a)]
    os.unlink(a)
    (fx.root_dir / "work").rmdir()
    reg.move(fx.maker.directory_row(str(fx.root_dir / "work")),
             fx.maker.directory_row(str(fx.root_dir / "renamed")), is_dir=True)
    for _ in range(3):
        reg.flush()
    assert fx.rows() == [] and reg.lookup(str(fx.root_dir / "renamed" / "a.mp4")) is None


def test_unchanged_answers_as_is_current_and_counts_a_reconcile(fx):
    reg = fx.registrar()
    old, new, other = fx.file("old.mp4"), fx.file("new.mp4"), fx.file("other.mp4")
    fx.offer(reg, old)
    reg.flush(wait=True)
    reg.begin_reconcile(fx.root)
    assert reg.unchanged(str(old), os.lstat(old), fx.root)          # remembered: one lookup
    assert reg.withdrawals.reconciles[fx.root.path].hits == 1
    assert not reg.unchanged(str(new), os.lstat(new), fx.root)       # never registered
    fx.offer(reg, new)
    assert reg.unchanged(str(new), os.lstat(new), fx.root)           # queued as this version
    assert reg.withdrawals.reconciles[fx.root.path].hits == 1        # queued is not remembered
    os.utime(old, ns=(1, 1))
    assert not reg.unchanged(str(old), os.lstat(old))                 # a new version
    reg.resync = True
    fx.offer(reg, other)
    assert not reg.unchanged(str(old), os.lstat(old))
    assert all(reg.unchanged(str(p), os.lstat(p)) == reg.is_current(str(p), version_of(os.lstat(p)))
               for p in (old, new, other))
