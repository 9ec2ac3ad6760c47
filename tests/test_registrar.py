"""The registrar against a real SQLite store: batching, dedup, forgetting, outages."""

from __future__ import annotations

from vfs_notifier.registrar import Registrar
from vfs_notifier.rows import Row
from vfs_notifier.store import StoreUnavailable
from vfs_notifier.store_sqlite import SQLiteStore


def row(name: str) -> Row:
    return Row("/r", f"/r/{name}", f"http://h/r/{name}")


def registrar(tmp_path, forget=True) -> Registrar:
    reg = Registrar(SQLiteStore(str(tmp_path / "db.sqlite3")), forget_removed=forget)
    assert reg.connect()
    return reg


def stored(reg: Registrar) -> list[str]:
    return sorted(reg.store.registered_paths())


def test_batches_and_never_doubles(tmp_path):
    reg = registrar(tmp_path)
    for i in range(2500):
        assert reg.offer(row(f"{i}.mp4"))
    assert not reg.offer(row("7.mp4"))
    assert reg.flush() == 1000 and reg.flush() == 1000 and reg.flush() == 500 and reg.flush() == 0
    assert not reg.offer(row("7.mp4"))
    assert len(stored(reg)) == 2500


def test_gone_and_back_before_the_deletion_is_written_keeps_the_row(tmp_path):
    reg = registrar(tmp_path)
    reg.offer(row("a.mp4"))
    reg.flush()
    reg.withdraw("/r/a.mp4")
    assert not reg.is_registered("/r/a.mp4")
    reg.offer(row("a.mp4"))
    reg.flush()
    assert stored(reg) == ["/r/a.mp4"]


def test_withdrawn_tree_is_deleted_and_forget_off_keeps_rows(tmp_path):
    reg = registrar(tmp_path)
    for name in ("d/a.mp4", "d/b.mp4", "dd/c.mp4"):
        reg.offer(row(name))
    reg.flush()
    reg.withdraw_tree("/r/d")
    reg.flush()
    assert stored(reg) == ["/r/dd/c.mp4"]
    keep = Registrar(SQLiteStore(str(tmp_path / "db.sqlite3")), forget_removed=False)
    keep.connect()
    keep.withdraw("/r/dd/c.mp4")
    keep.flush()
    assert stored(keep) == ["/r/dd/c.mp4"]


def test_a_failed_store_keeps_rows_queued_and_backs_off(tmp_path):
    now = [100.0]
    reg = Registrar(SQLiteStore(str(tmp_path / "db.sqlite3")), True, clock=lambda: now[0])
    assert reg.connect()

    def broken(rows):
        raise StoreUnavailable("disk on fire")
    real_insert, reg.store.insert = reg.store.insert, broken
    reg.offer(row("a.mp4"))
    assert reg.flush() == 0 and not reg.connected and reg.problem == "disk on fire"
    assert not reg.connect()          # too early: backing off
    reg.store.insert = real_insert
    now[0] += 0.6
    assert reg.connect() and reg.flush() == 1
    assert stored(reg) == ["/r/a.mp4"]
