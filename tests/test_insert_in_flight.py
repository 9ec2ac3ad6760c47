"""Rows whose INSERT is still under way on the MySQL store's thread.

The loop goes on while the server writes a batch, so the gate's renames, removals and new
versions of those very files arrive before the batch's ids do. The server is held still for
the test with LOCK TABLES from another connection: the insert is certainly in flight while
the registrar is told what happened meanwhile. The real store, the real server.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.media import video_bytes
from vfs_notifier.registrar import Registrar, version_of
from vfs_notifier.rows import RowMaker
from vfs_notifier.settings import Database, Root
from vfs_notifier.store_mysql import MySQLStore


class Held:
    def __init__(self, mariadb, env: dict[str, str], tmp_path: Path) -> None:
        self.database = Database(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]), socket="",
                                 user=env["MYSQL_USER"], name=env["MYSQL_DB_NAME"],
                                 password=env["MYSQL_PASS"], sqlite_path="")
        base = tmp_path / "srv"
        self.root_dir = base / "videos"
        self.root_dir.mkdir(parents=True)
        self.root = Root(path=str(self.root_dir), base_url="http://h/v", base_path=str(base))
        self.maker = RowMaker(self.root)
        self.admin = mariadb.connect(env["MYSQL_DB_NAME"])
        self.reg = Registrar(MySQLStore(self.database), [self.root], forget_removed=True)
        assert self.reg.connect()

    def video(self, name: str, kind: str = "mp4") -> Path:
        path = self.root_dir / name
        path.write_bytes(video_bytes(kind))
        return path

    def offer(self, path: Path) -> bool:
        return self.reg.offer(self.maker.row_for_path(str(path)), version_of(os.lstat(path)))

    def sql(self, statement: str) -> list[tuple]:
        with self.admin.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall())

    def start_held_insert(self) -> None:
        """flush() starts the insert; the server holds it at the table lock."""
        self.sql("LOCK TABLES videos WRITE")
        self.reg.flush()
        time.sleep(0.2)
        assert self.reg.committing, "the insert should wait for the table lock"

    def release_and_settle(self) -> None:
        self.sql("UNLOCK TABLES")
        for _ in range(200):
            self.reg.flush()
            if not self.reg.pending and not self.reg.committing:
                self.reg.flush(wait=True)
                return
            time.sleep(0.01)
        raise AssertionError(f"still pending: {self.reg.pending}")

    def rows(self) -> dict[str, tuple[int, int]]:
        return {p: (i, s) for i, p, s in self.sql("SELECT id, des_video_path, status FROM videos")}


@pytest.fixture
def held(mariadb, mysql_env, tmp_path: Path):
    h = Held(mariadb, mysql_env, tmp_path)
    yield h
    h.sql("UNLOCK TABLES")
    h.reg.close()
    h.admin.close()


def test_a_file_renamed_while_its_row_is_written_has_one_row_at_its_new_name(held):
    a, other = held.video("a.mp4"), held.video("other.mkv", "mkv")
    assert held.offer(a) and held.offer(other)
    held.start_held_insert()
    b = held.root_dir / "b.mp4"
    os.rename(a, b)
    held.reg.move(held.maker.row_for_path(str(a)), held.maker.row_for_path(str(b)), is_dir=False)
    held.offer(b)                        # the gate judges the new name: no second row for it
    held.release_and_settle()
    assert sorted(held.rows()) == sorted([str(b), str(other)])
    assert held.reg.lookup(str(b)) is not None and held.reg.lookup(str(a)) is None


def test_a_file_deleted_while_its_row_is_written_loses_the_row(held):
    a, kept = held.video("a.mp4"), held.video("kept.mp4")
    held.offer(a), held.offer(kept)
    held.start_held_insert()
    os.unlink(a)
    held.reg.withdraw(str(a), is_dir=False)
    held.release_and_settle()
    assert list(held.rows()) == [str(kept)]


def test_a_new_version_offered_while_the_old_is_written_signals_the_row_again(held):
    a = held.video("a.mp4")
    held.offer(a)
    held.start_held_insert()
    os.utime(a, ns=(1, 2_000_000_000))       # another version: its mtime changed
    assert held.offer(a), "a new version is queued beside the one being written"
    held.release_and_settle()
    [(row_id, status)] = held.rows().values()
    assert held.reg.registered == 1 and held.reg.signalled == 1 and status == 1
    assert held.reg.lookup(str(a)).video_id == row_id and not held.reg.queue


def test_a_file_only_queued_and_renamed_leaves_no_row_behind(held):
    a = held.video("a.mp4")
    held.offer(a)
    b = held.root_dir / "b.mp4"
    os.rename(a, b)
    held.reg.move(held.maker.row_for_path(str(a)), held.maker.row_for_path(str(b)), is_dir=False)
    held.offer(b)
    held.release_and_settle()
    assert list(held.rows()) == [str(b)]
