"""A dropped database connection at each place the registrar calls the store.

The store is the real MySQL store on the real MariaDB server; the fault is real too: just
before the chosen store method runs, the server is told to KILL the service's connection,
so the call fails as it would when a server restarts or a network drops in that instant.
The registrar must absorb it (no exception), reconnect, and in the end have every file
registered once, every rename and withdrawal applied.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vfs_notifier.registrar import Registrar, version_of
from vfs_notifier.rows import RowMaker
from vfs_notifier.settings import Database, Root
from vfs_notifier.store_mysql import MySQLStore

CALL_SITES = ["remembered_columns", "unremembered", "remember", "start_insert", "existing", "resignal", "move",
              "withdraw", "remembered_below", "lease"]


class DroppingStore(MySQLStore):
    """The real store; the server kills its connection right before one chosen call."""

    def __init__(self, database: Database, admin, site: str) -> None:
        self.admin, self.site, self.dropped = admin, site, 0
        super().__init__(database)

    def __getattribute__(self, name: str):
        attribute = super().__getattribute__(name)
        if name == object.__getattribute__(self, "site") and object.__getattribute__(self, "dropped") == 0:
            object.__setattr__(self, "dropped", 1)
            self._kill_connections()
        return attribute

    def _kill_connections(self) -> None:
        for conn in (self._conn, self._lease_conn):
            if conn is not None:
                with self.admin.cursor() as cursor:
                    cursor.execute(f"KILL CONNECTION {conn.thread_id()}")


def _run_until_quiet(reg: Registrar, rounds: int = 60) -> None:
    for _ in range(rounds):
        reg.retry_at = 0
        reg.connect()
        reg.renew_leases() if reg.connected else None
        reg.flush()
        if reg.committing:
            time.sleep(0.002)        # as the loop does (daemon.COMMIT_POLL_SECONDS)
        if reg.connected and not reg.pending and not reg.committing:
            reg.flush(wait=True)     # the last commit met: the rows are read right after
            if reg.connected:
                return
    raise AssertionError(f"still pending: {reg.pending}, problem {reg.problem!r}")


@pytest.mark.parametrize("site", CALL_SITES)
def test_a_connection_dropped_at_each_store_call_loses_nothing(site, mariadb, mysql_env, tmp_path: Path):
    env = mysql_env
    database = Database(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]), socket="", user=env["MYSQL_USER"],
                        name=env["MYSQL_DB_NAME"], password=env["MYSQL_PASS"], sqlite_path="")
    base = tmp_path / "srv"
    root_dir = base / "videos"
    (root_dir / "d").mkdir(parents=True)
    root = Root(path=str(root_dir), base_url="http://h/v", base_path=str(base))
    maker = RowMaker(root)

    def offer(reg: Registrar, path: Path) -> None:
        reg.offer(maker.row_for_path(str(path)), version_of(os.lstat(path)))

    # Some history: a registered file, a row of the previous version, files to change.
    first = Registrar(MySQLStore(database), [root], forget_removed=True)
    assert first.connect()
    kept, changed, gone = (root_dir / "d" / "kept.mp4", root_dir / "d" / "changed.mp4", root_dir / "gone.mp4")
    for path in (kept, changed, gone):
        path.write_bytes(b"v1")
        offer(first, path)
    first.flush()
    first.close()
    legacy = root_dir / "legacy.mp4"
    legacy.write_bytes(b"old")
    admin = mariadb.connect(env["MYSQL_DB_NAME"])
    with admin.cursor() as cursor:
        cursor.execute("INSERT INTO videos (main_dir, des_video_path, status, des_url) VALUES (%s, %s, 1, %s)",
                       (str(root_dir), str(legacy), "http://h/v/videos/legacy.mp4"))

    reg = Registrar(DroppingStore(database, admin, site), [root], forget_removed=True)
    _run_until_quiet(reg)
    new = root_dir / "new.mp4"
    new.write_bytes(b"new")
    offer(reg, new)
    changed.write_bytes(b"v2, longer")
    offer(reg, changed)
    os.unlink(gone)
    reg.withdraw(str(gone), is_dir=False)
    os.rename(root_dir / "d", root_dir / "e")
    reg.move(maker.directory_row(str(root_dir / "d")), maker.directory_row(str(root_dir / "e")), is_dir=True)
    offer(reg, root_dir / "e" / "changed.mp4")   # the gate walks a renamed directory: a change is met there
    _run_until_quiet(reg)
    if site in ("lease",):
        reg.renew_leases()
        _run_until_quiet(reg)
    assert reg.store.dropped == 1, f"the store was never called at {site}"

    with admin.cursor() as cursor:
        cursor.execute("SELECT des_video_path, status FROM videos ORDER BY des_video_path")
        rows = cursor.fetchall()
    assert [r[0] for r in rows] == sorted([str(root_dir / "e" / "changed.mp4"), str(root_dir / "e" / "kept.mp4"),
                                           str(legacy), str(new)])
    assert reg.may_write(root.path)
    reg.close()
    admin.close()
