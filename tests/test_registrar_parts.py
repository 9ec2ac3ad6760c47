"""The registrar's parts, each on its own: what waits, the link's backoff, the leases (on the
real embedded store), the withdrawals' bookkeeping, what the disk says, the memory's read."""

from __future__ import annotations

import os
import sqlite3

from vfs_notifier.registrar.disk import is_regular_file, same_file, version_of, version_on_disk
from vfs_notifier.registrar.lease import Leases
from vfs_notifier.registrar.link import BACKOFF_MAX, Link
from vfs_notifier.registrar.memory_read import read_memory
from vfs_notifier.registrar.queue import Move, Offer, Waiting
from vfs_notifier.registrar.withdrawals import DIRECTORIES_PER_QUERY, Withdrawals, _coalesced
from vfs_notifier.rows import Row
from vfs_notifier.store import NewVideo, Version
from vfs_notifier.store_sqlite import SQLiteStore


def offer(path: str) -> Offer:
    return Offer(Row("/r", path, "http://h" + path), Version(1, 1, 1, 1), True)


def test_waiting_sees_renames_not_yet_written_as_done():
    waiting = Waiting()
    waiting.moves.append(Move("/r/a", "/r/b", "/r", "u/a", "u/b", is_dir=True))
    waiting.moves.append(Move("/r/b/x.mp4", "/r/y.mp4", "/r", "u/b/x", "u/y", is_dir=False))
    assert waiting.origin("/r/y.mp4") == "/r/a/x.mp4"       # both renames undone, newest first
    assert waiting.origin("/r/b/z.mp4") == "/r/a/z.mp4"
    assert waiting.origin("/r/bz.mp4") == "/r/bz.mp4"       # a sibling, not below the directory


def test_waiting_drops_a_directory_and_roots_no_longer_held():
    waiting = Waiting()
    for path in ("/r/d/1.mp4", "/r/d/e/2.mp4", "/r/dd.mp4", "/s/3.mp4"):
        waiting.offers[path] = offer(path)
    waiting.drop("/r/d", is_dir=True)
    assert sorted(waiting.offers) == ["/r/dd.mp4", "/s/3.mp4"]
    newer = offer("/r/dd.mp4")
    old = waiting.offers["/r/dd.mp4"]
    waiting.offers["/r/dd.mp4"] = newer
    waiting.written(old)                                    # a newer version stays queued
    assert waiting.offers["/r/dd.mp4"] is newer
    waiting.withdrawals["/s/gone.mp4"] = False
    waiting.moves.append(Move("/s/a.mp4", "/s/b.mp4", "/s", "", "", False))
    waiting.drop_roots(["/s"], lambda p: p.split("/")[1] and "/" + p.split("/")[1])
    assert list(waiting.offers) == ["/r/dd.mp4"] and not waiting.withdrawals and not waiting.moves
    assert len(waiting) == 1


def test_the_link_backs_off_and_says_a_problem_once():
    link = Link()
    assert link.may_try(0)
    assert link.down("refused", now=0) == 0.5 and link.retry_at == 0.5
    assert not link.may_try(0.4) and link.may_try(0.5)
    assert link.down("refused", now=1) is None               # the same problem: not said again
    assert link.down("timed out", now=2) == 2.0              # news, and the backoff grew
    for _ in range(10):
        link.down("timed out", now=3)
    assert link.retry_at == 3 + BACKOFF_MAX
    link.worked()
    assert link.down("timed out", now=4) == 0.5              # after a write worked: news again


def test_leases_on_the_embedded_store(tmp_path, caplog):
    db = str(tmp_path / "db.sqlite3")
    first, second = SQLiteStore(db), SQLiteStore(db)
    first.open(), second.open()
    mine, theirs = Leases(["/r", "/s"], 15), Leases(["/r"], 15)
    assert mine.renew(first) == (["/r", "/s"], []) and mine.holds("/r")
    assert mine.renew(first) == ([], [])                     # renewed: nothing new
    assert theirs.renew(second) == ([], []) and not theirs.holds("/r") and "/r" in theirs.standby
    assert mine.fence(["/r"]) == {"/r": 1}
    assert theirs.fence(["/r"]) == {"/r": 0}                 # not held: a token no lease has
    assert mine.lost(["/r", "/r"]) == ["/r"] and not mine.holds("/r")   # said once
    mine.release(first)
    assert not mine.holds("/s")
    first.close()                                            # the process goes: its flocks too
    assert theirs.renew(second) == (["/r"], []) and "/r" not in theirs.standby


def test_a_reconcile_sweeps_only_when_a_remembered_file_was_not_met():
    withdrawals = Withdrawals(("/r/",))
    withdrawals.begin_reconcile("/r", remembered=0)
    assert not withdrawals.end_reconcile("/r", complete=True, remembered=5)   # a first start
    withdrawals.begin_reconcile("/r", remembered=2)
    withdrawals.found_registered("/r")
    withdrawals.found_registered("/r")
    assert not withdrawals.end_reconcile("/r", complete=True, remembered=2)
    withdrawals.begin_reconcile("/r", remembered=2)
    withdrawals.found_registered("/r")
    assert not withdrawals.end_reconcile("/r", complete=False, remembered=2)  # an incomplete walk proves nothing
    withdrawals.begin_reconcile("/r", remembered=2)
    withdrawals.found_registered("/r")
    assert withdrawals.end_reconcile("/r", complete=True, remembered=2)


def test_many_directories_withdrawn_are_read_as_their_parent_never_above_a_root():
    many = {f"/r/d/{n}": True for n in range(DIRECTORIES_PER_QUERY + 1)}
    assert _coalesced({**many, "/r/d/0/inner": True, "/r/x.mp4": False}, ("/r/",)) == [("/r/d", True), ("/r/x.mp4", False)]
    two_roots = {f"/{root}/{n}": True for root in "rs" for n in range(DIRECTORIES_PER_QUERY)}
    assert len(_coalesced(two_roots, ("/r/", "/s/"))) == 2 * DIRECTORIES_PER_QUERY   # "/" is no root


def test_what_the_disk_says(tmp_path):
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x")
    version = version_of(os.lstat(path))
    assert version_on_disk(str(path)) == version and same_file(str(path), version)
    os.symlink(path, tmp_path / "link.mp4")
    assert version_on_disk(str(tmp_path / "link.mp4")) is None and not is_regular_file(str(tmp_path / "link.mp4"))
    path.unlink()
    path.write_bytes(b"another")
    assert not same_file(str(path), version._replace(ino=version.ino + 10**9))
    assert is_regular_file(str(path)) and not is_regular_file(str(tmp_path / "missing.mp4"))


def test_the_memory_read_adopts_older_rows_only_where_this_instance_may_write(tmp_path):
    """Rows with no companion entry (written before the memory existed) are adopted with the
    version on disk now, below the prefixes and where adoptable() says so; the rest are left."""
    db = str(tmp_path / "db.sqlite3")
    (tmp_path / "r").mkdir()
    on_disk = tmp_path / "r" / "old.mp4"
    on_disk.write_bytes(b"\0" * 10)
    store = SQLiteStore(db)
    store.open()
    [kept] = store.insert([NewVideo("/x", "/x/kept.mp4", "u", Version(1, 2, 3, 4))], {})
    with sqlite3.connect(db) as conn:
        for path in (str(on_disk), "/s/theirs.mp4", "/elsewhere/other.mp4"):
            conn.execute("INSERT INTO videos (main_dir, des_video_path, des_url) VALUES ('/r', ?, 'u')", (path,))
    fences = []
    memory = read_memory(store, [str(tmp_path / "r"), "/s", "/x"], (str(tmp_path / "r") + "/", "/s/", "/x/"),
                         lambda path: not path.startswith("/s/"), lambda paths: fences.append(sorted(paths)) or {})
    assert memory.get("/x/kept.mp4").video_id == kept
    assert memory.get(str(on_disk)) is not None and memory.holds(str(on_disk), os.lstat(on_disk))
    assert memory.get("/s/theirs.mp4") is None and memory.get("/elsewhere/other.mp4") is None
    assert fences == [[str(on_disk)]]
    assert [p for _, p in store.unremembered()] == ["/s/theirs.mp4", "/elsewhere/other.mp4"]
    store.close()
