"""Store interface v2 on both real backends: a session MariaDB server and an SQLite file.

Both stores must answer every question alike; the registrar cannot tell them apart.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pymysql
import pytest

from vfs_notifier.settings import Database
from vfs_notifier.store import LeaseLost, NewVideo, Remembered, RowsRejected, Store, StoreUnavailable, Version
from vfs_notifier.store_factory import open_store

REPO = Path(__file__).resolve().parents[1]
OLD_VIDEOS_DDL = {  # the table as 1.0 created it, for the upgrade test
    "sqlite": "CREATE TABLE videos (id INTEGER PRIMARY KEY AUTOINCREMENT, main_dir varchar(512) DEFAULT NULL, "
              "des_video_path varchar(1024) NOT NULL, status int DEFAULT 1, "
              "created_date datetime DEFAULT CURRENT_TIMESTAMP, des_url varchar(1024) DEFAULT NULL)",
    "mysql": "CREATE TABLE `videos` (`id` int(11) NOT NULL AUTO_INCREMENT, `main_dir` varchar(512) DEFAULT NULL, "
             "`des_video_path` varchar(1024) NOT NULL, `status` int(11) DEFAULT 1, "
             "`created_date` datetime DEFAULT current_timestamp(), `des_url` varchar(1024) DEFAULT NULL, "
             "PRIMARY KEY (`id`), KEY `idx_des_video_path` (`des_video_path`(255)), KEY `idx_status` (`status`)) "
             "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
}


@dataclass
class Backend:
    kind: str
    database: Database
    mariadb: Any = None
    opened: Optional[list] = None

    def store(self, open_it: bool = True) -> Store:
        store = open_store(self.database)
        if open_it:
            store.open()
        self.opened.append(store)
        return store

    def sql(self, query: str, *args: Any) -> list[tuple]:
        """Plain SQL as a consumer (or version 1.0) runs it, '?' placeholders."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.database.sqlite_path, isolation_level=None, timeout=10)
            try:
                return conn.execute(query, args).fetchall()
            finally:
                conn.close()
        with self.mariadb.connect(self.database.name) as conn, conn.cursor() as cur:
            cur.execute(query.replace("?", "%s"), args or None)
            return list(cur.fetchall())


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if kind == "sqlite":
        database = Database("", 0, "", "", "", "", str(tmp_path / "db" / "videos.sqlite3"))
        b = Backend("sqlite", database, opened=[])
    else:
        env = request.getfixturevalue("mysql_env")
        database = Database(env["MYSQL_HOST"], int(env["MYSQL_PORT"]), "", env["MYSQL_USER"],
                            env["MYSQL_DB_NAME"], env["MYSQL_PASS"], "")
        b = Backend("mysql", database, request.getfixturevalue("mariadb"), opened=[])
    yield b
    for store in b.opened:
        store.close()


@pytest.fixture(params=["sqlite", "mysql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from make_backend(request.param, request, tmp_path)


@pytest.fixture
def mysql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from make_backend("mysql", request, tmp_path)


@pytest.fixture
def sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from make_backend("sqlite", request, tmp_path)


def video(path: str, ino: int = 1, main_dir: str = "/r", size: int = 100) -> NewVideo:
    url = "http://media.test" + path
    return NewVideo(main_dir, path, url, Version(2049, ino, size, 1_700_000_000_000_000_000 + len(path)))


@contextlib.contextmanager
def statements(backend: Backend, store: Store) -> Iterator[collections.Counter]:
    """How many INSERT, UPDATE and DELETE statements the store sent meanwhile."""
    counts: collections.Counter = collections.Counter()
    kinds = ("insert", "update", "delete")
    if backend.kind == "sqlite":
        def seen(sql: str) -> None:
            word = sql.split(None, 1)[0].lower()
            if word in kinds:
                counts[word] += 1
        store._conn.set_trace_callback(seen)
        yield counts
        store._conn.set_trace_callback(None)
        return
    query = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_insert', 'Com_update', 'Com_delete')"
    before = dict(backend.sql(query))
    yield counts
    for name, value in backend.sql(query):
        counts[name[4:].lower()] = int(value) - int(before[name])


def rows(backend: Backend) -> dict[str, tuple]:
    return {r[1]: r for r in backend.sql("SELECT id, des_video_path, des_url, main_dir, status FROM videos")}


# --- inserting and remembering --------------------------------------------------------

def test_insert_returns_ids_in_order_and_remembers_each_version(backend: Backend) -> None:
    store = backend.store()
    videos = [video(f"/r/{name}.mp4", ino) for ino, name in enumerate("cab", 1)]
    ids = store.insert(videos, {})
    assert ids == sorted(ids) and len(set(ids)) == 3
    listed = list(store.videos())
    assert [(v.id, v.path, v.url, v.main_dir, v.status) for v in listed] == [
        (i, v.path, v.url, "/r", 1) for i, v in zip(ids, videos)]
    assert all(v.created_date for v in listed)
    assert sorted(store.remembered()) == sorted(Remembered(i, v.path, v.version) for i, v in zip(ids, videos))
    assert store.existing(ids + [999999]) == set(ids)


def test_a_big_batch_and_unsigned_inode_numbers(backend: Backend) -> None:
    store = backend.store()
    videos = [video(f"/r/d{n % 7}/v{n}.mp4", ino=(1 << 64) - 1 - n) for n in range(2500)]
    with statements(backend, store) as sent:
        ids = store.insert(videos[:1000], {})
    # one INSERT of the rows and one of their versions; the versions of older rows at
    # these paths are deleted (IN lists of 500 paths)
    assert (sent["insert"], sent["update"], sent["delete"]) == (2, 0, 2)
    ids += store.insert(videos[1000:], {})
    by_id = {v.id: v.path for v in store.videos()}
    assert [by_id[i] for i in ids] == [v.path for v in videos]
    remembered = {r.video_id: r for r in store.remembered()}
    assert [remembered[i].version for i in ids] == [v.version for v in videos]


def test_ids_of_a_multi_row_insert_whatever_the_servers_auto_increment_step(mysql: Backend) -> None:
    """MariaDB gives one INSERT consecutive ids (lock mode 1): they are computed, not read back;
    a step of 2 (a Galera node, a replication pair) and the read-back path give the same truth."""
    backend = mysql
    store = backend.store()
    assert store._id_step == 1                     # the test server's default: lock mode 1
    with store._conn.cursor() as cursor:
        cursor.execute("SET SESSION auto_increment_increment = 2")
    store._id_step = 2
    stepped = store.insert([video(f"/r/s{n}.mp4", n) for n in range(50)], {})
    store._id_step = 0                             # as under lock mode 2: read back and matched
    read = store.insert([video(f"/r/b{n}.mp4", 100 + n) for n in range(50)], {})
    by_id = {v.id: v.path for v in store.videos()}
    assert [by_id[i] for i in stepped] == [f"/r/s{n}.mp4" for n in range(50)]
    assert [by_id[i] for i in read] == [f"/r/b{n}.mp4" for n in range(50)]
    assert stepped[1] - stepped[0] == 2
    remembered = {r.video_id: r.path for r in store.remembered()}
    assert all(remembered[i] == by_id[i] for i in stepped + read)


def test_names_that_quoting_must_carry_intact(backend: Backend) -> None:
    """Rows and versions are quoted by the store itself: what a name holds arrives as it is."""
    names = ["it's.mp4", 'say "hi".mp4', "back\\slash.mp4", "100%s %d %%.mp4", "nul\x1a.mp4",
             "line\nbreak.mp4", "Réunion 会议 🎬.mkv", "semi;colon); DROP TABLE videos; --.mp4"]
    store = backend.store()
    videos = [video(f"/r/{name}", ino) for ino, name in enumerate(names, 1)]
    ids = store.insert(videos, {})
    assert {v.id: v.path for v in store.videos()} == {i: v.path for i, v in zip(ids, videos)}
    assert {r.video_id: (r.path, r.version) for r in store.remembered()} == {
        i: (v.path, v.version) for i, v in zip(ids, videos)}


def test_a_commit_that_fails_on_its_thread_is_the_next_calls_store_unavailable(mysql: Backend) -> None:
    """MySQL writes an insert on a thread of its own so the loop goes on meanwhile; a commit
    that fails (the connection lost at that instant) must not pass for a write that landed."""
    backend = mysql
    store = backend.store()

    def lose(conn: pymysql.connections.Connection) -> None:
        def lost() -> None:
            conn.close()      # what a dropped connection does to a commit in flight
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        conn.commit = lost

    lose(store._conn)
    store.start_insert([video("/r/a.mp4", 1)], {})     # under way: the call returns at once
    with pytest.raises(StoreUnavailable, match="the last commit failed: Lost connection"):
        store.existing([1])
    assert not store.busy and backend.sql("SELECT COUNT(*) FROM videos") == [(0,)]
    store.open()                                   # the reconnect path: the table says what is true
    assert list(store.videos()) == [] and list(store.remembered()) == []
    lose(store._conn)                              # insert() is start_insert() and sync()
    with pytest.raises(StoreUnavailable, match="the last commit failed: Lost connection"):
        store.insert([video("/r/b.mp4", 2)], {})


def test_rows_refused_on_the_thread_are_rows_rejected_and_the_connection_stays(mysql: Backend) -> None:
    store = mysql.store()
    ids = store.start_insert([video("/r/a.mp4", 1), video("/r/" + "x" * 1100 + ".mp4", 2)], {})
    with pytest.raises(RowsRejected):
        store.sync()
    assert mysql.sql("SELECT COUNT(*) FROM videos") == [(0,)]   # rolled back, both
    [again] = store.insert([video("/r/a.mp4", 1)], {})              # the same connection goes on
    assert [r.video_id for r in store.remembered()] == [again] and ids is not None


def test_a_new_row_at_a_deleted_rows_path_replaces_its_memory(backend: Backend) -> None:
    store = backend.store()
    [first] = store.insert([video("/r/a.mp4", ino=1)], {})
    backend.sql("DELETE FROM videos WHERE id = ?", first)      # a consumer's doing
    [second] = store.insert([video("/r/a.mp4", ino=2)], {})
    assert [(r.video_id, r.version.ino) for r in store.remembered()] == [(second, 2)]
    store.remember([Remembered(second, "/r/A.mp4", Version(1, 3, 1, 1))], {})  # upsert by id
    assert [(r.video_id, r.path) for r in store.remembered()] == [(second, "/r/A.mp4")]


def test_remembered_below_is_exact(backend: Backend) -> None:
    store = backend.store()
    paths = ["/r/d/x.mp4", "/r/d/e/y.mp4", "/r/D/x.mp4", "/r/d2/x.mp4", "/r/d.mp4", "/r/d_/x.mp4"]
    store.insert([video(p, n) for n, p in enumerate(paths)], {})
    assert sorted(r.path for r in store.remembered_below("/r/d")) == ["/r/d/e/y.mp4", "/r/d/x.mp4"]
    assert [r.path for r in store.remembered_below("/r/d_")] == ["/r/d_/x.mp4"]


# --- renames ----------------------------------------------------------------------------

def test_a_renamed_file_keeps_its_row(backend: Backend) -> None:
    store = backend.store()
    ids = store.insert([video("/r/a.mp4", 1), video("/r/A.mp4", 2), video("/r/a.mp4.part/x.mp4", 3)], {})
    backend.sql("UPDATE videos SET status = 3")                 # consumers' progress
    assert store.move("/r/a.mp4", "/r/b c.mp4", "/r", "http://media.test/r/a.mp4",
                      "http://media.test/r/b%20c.mp4", {}) == 1
    after = rows(backend)
    assert after["/r/b c.mp4"] == (ids[0], "/r/b c.mp4", "http://media.test/r/b%20c.mp4", "/r", 3)
    assert after["/r/A.mp4"][0] == ids[1] and after["/r/a.mp4.part/x.mp4"][0] == ids[2]
    assert "/r/a.mp4" not in after
    assert {r.path: r.video_id for r in store.remembered()}["/r/b c.mp4"] == ids[0]


def test_a_renamed_directory_of_10000_videos_moves_in_a_few_statements(backend: Backend) -> None:
    store = backend.store()
    inside = [f"/r/a/s{n % 10}/v{n}.mp4" for n in range(10_000)]
    outside = ["/r/A/v.mp4", "/r/a2/v.mp4", "/r/a.mp4", "/r/a_/v.mp4", "/r/b/a/v.mp4", "/r/ä/v.mp4"]
    ids = []
    for start in range(0, len(inside), 1000):
        ids += store.insert([video(p, n) for n, p in enumerate(inside[start:start + 1000], start)], {})
    others = store.insert([video(p, 20_000 + n) for n, p in enumerate(outside)], {})
    backend.sql("UPDATE videos SET status = 2")
    with statements(backend, store) as sent:
        started = time.monotonic()
        moved = store.move("/r/a", "/s/b", "/s", "http://media.test/r/a", "http://media.test/s/b", {})
        took = time.monotonic() - started
    assert (sent["insert"], sent["update"], sent["delete"]) == (0, 2, 0)
    print(f"\nmove of 10,000 rows on {backend.kind}: {took * 1000:.0f} ms")
    assert moved == 10_000
    assert took < 10
    after = {r.id: r for r in store.videos()}
    for row_id, old in zip(ids, inside):
        row = after[row_id]
        new = "/s/b" + old[len("/r/a"):]
        assert (row.path, row.url, row.main_dir, row.status) == (new, "http://media.test" + new, "/s", 2)
    for row_id, old in zip(others, outside):
        assert (after[row_id].path, after[row_id].url, after[row_id].main_dir) == (old, "http://media.test" + old, "/r")
    remembered = {r.video_id: r.path for r in store.remembered()}
    assert remembered[ids[0]] == "/s/b/s0/v0.mp4" and remembered[others[0]] == "/r/A/v.mp4"
    assert len(list(store.remembered_below("/s/b"))) == 10_000
    assert sorted(r.path for r in store.remembered_below("/r")) == sorted(outside)


# --- withdrawing, forgetting, signalling ------------------------------------------------

def test_withdraw_forget_existing(backend: Backend) -> None:
    store = backend.store()
    ids = store.insert([video(f"/r/{n}.mp4", n) for n in range(5)], {})
    backend.sql("DELETE FROM videos WHERE id = ?", ids[0])      # a consumer deleted one already
    assert store.existing(ids) == set(ids[1:])
    assert store.withdraw(ids[:2], {}) == 1
    assert store.existing(ids) == set(ids[2:])
    assert sorted(r.video_id for r in store.remembered()) == ids[2:]
    store.forget([ids[2]], {})
    assert store.existing(ids) == set(ids[2:])                 # the row stays
    assert sorted(r.video_id for r in store.remembered()) == ids[3:]
    assert list(store.unremembered()) == [(ids[2], "/r/2.mp4")]


def test_resignal_sets_status_1_and_a_new_date(backend: Backend) -> None:
    store = backend.store()
    ids = store.insert([video("/r/a.mp4", 1), video("/r/b.mp4", 2)], {})
    backend.sql("UPDATE videos SET status = 5, created_date = '2020-01-01 00:00:00'")
    store.resignal([Remembered(ids[0], "/r/a.mp4", Version(2049, 1, 999, 5))], {})
    by_id = {v.id: v for v in store.videos()}
    assert by_id[ids[0]].status == 1 and by_id[ids[0]].created_date > "2025"
    assert (by_id[ids[1]].status, by_id[ids[1]].created_date) == (5, "2020-01-01 00:00:00")
    assert {r.video_id: r.version for r in store.remembered()}[ids[0]] == Version(2049, 1, 999, 5)


def test_upgrade_from_1_0_rows_are_unremembered_until_remembered(backend: Backend) -> None:
    if backend.kind == "sqlite":
        os.makedirs(os.path.dirname(backend.database.sqlite_path))
    backend.sql(OLD_VIDEOS_DDL[backend.kind])
    for name in ("a", "b", "c"):
        backend.sql("INSERT INTO videos (main_dir, des_video_path, des_url) VALUES ('/r', ?, ?)",
                    f"/r/{name}.mp4", f"http://media.test/r/{name}.mp4")
    store = backend.store()
    old = list(store.unremembered())
    assert [p for _, p in old] == ["/r/a.mp4", "/r/b.mp4", "/r/c.mp4"]
    new = store.insert([video("/r/d.mp4")], {})
    assert list(store.unremembered()) == old
    store.remember([Remembered(i, p, Version(1, i, 1, 1)) for i, p in old], {})
    assert list(store.unremembered()) == []
    assert sorted(r.video_id for r in store.remembered()) == sorted([i for i, _ in old] + new)



def test_unremembered_right_after_a_read_of_the_memory_answers_from_its_snapshot(mysql: Backend) -> None:
    """remembered_columns() reads unremembered()'s ids ahead, in its own snapshot; a store call
    between the two drops that read-ahead, and unremembered() asks the server again."""
    mysql.sql(OLD_VIDEOS_DDL["mysql"])
    mysql.sql("INSERT INTO videos (main_dir, des_video_path, des_url) VALUES ('/r', '/r/old.mp4', 'u')")
    store = mysql.store()
    ids = store.insert([video(f"/r/{n}.mp4", n) for n in range(3)], {})
    assert sum(len(batch[0]) for batch in store.remembered_columns()) == 3
    mysql.sql("INSERT INTO videos (main_dir, des_video_path, des_url) VALUES ('/r', '/r/later.mp4', 'u')")
    assert [p for _, p in store.unremembered()] == ["/r/old.mp4"]     # the read's snapshot
    assert [p for _, p in store.unremembered()] == ["/r/old.mp4", "/r/later.mp4"]
    list(store.remembered_columns())
    store.forget([ids[0]], {})                                       # a call between
    assert [p for _, p in store.unremembered()] == ["/r/old.mp4", "/r/0.mp4", "/r/later.mp4"]


# --- errors -----------------------------------------------------------------------------

def test_a_data_error_rejects_the_whole_batch_and_the_store_goes_on(backend: Backend) -> None:
    store = backend.store()
    with pytest.raises(RowsRejected):
        store.insert([video("/r/good.mp4"), NewVideo("/r", None, "u", Version(1, 2, 3, 4))], {})
    with pytest.raises(RowsRejected):                           # a name that is not UTF-8
        store.insert([video("/r/good.mp4"), video("/r/bad\udcff.mp4")], {})
    if backend.kind == "mysql":                                  # varchar(1024) counts characters
        with pytest.raises(RowsRejected):
            store.insert([video("/r/" + "é" * 1100 + ".mp4")], {})
    assert list(store.videos()) == [] and list(store.remembered()) == []
    assert len(store.insert([video("/r/good.mp4")], {})) == 1


def test_sqlite_uses_wal(sqlite: Backend) -> None:
    sqlite.store()
    assert sqlite.sql("PRAGMA journal_mode") == [("wal",)]


def test_a_stopped_server_is_unavailable_and_never_shows_the_password(mysql: Backend) -> None:
    backend = mysql
    store = backend.store()
    store.insert([video("/r/a.mp4")], {})
    token = store.lease("/r", 0, 15).token
    assert token
    backend.mariadb.stop()
    try:
        with pytest.raises(StoreUnavailable) as err:
            store.insert([video("/r/b.mp4")], {})
        assert backend.database.password not in str(err.value)
        with pytest.raises(StoreUnavailable):
            store.lease("/r", token, 15)                         # an error, never a silent standby
        with pytest.raises(StoreUnavailable):
            list(store.remembered())                             # the connection went with the error
        with pytest.raises(StoreUnavailable) as err:
            store.open()
        assert backend.database.password not in str(err.value)
    finally:
        backend.mariadb.start()
    store.open()
    assert store.lease("/r", token, 15) == (token, "")            # renewed: nobody took it meanwhile
    assert [r.path for r in store.remembered()] == ["/r/a.mp4"]


def test_a_wrong_password_is_unavailable_without_the_password(mysql: Backend) -> None:
    wrong = Database(**{**mysql.database.__dict__, "password": "not-the-Pw-42"})
    with pytest.raises(StoreUnavailable) as err:
        open_store(wrong).open()
    assert "not-the-Pw-42" not in str(err.value) and "Access denied" in str(err.value)


# --- leases -----------------------------------------------------------------------------

def test_a_second_lease_is_refused_naming_the_holder(backend: Backend) -> None:
    first, second = backend.store(), backend.store()
    token = first.lease("/srv/a", 0, 15).token
    assert token > 0
    assert first.lease("/srv/a", token, 15) == (token, "")     # renewing is harmless
    first.open()                                               # a reconnect keeps the lease
    assert first.lease("/srv/a", token, 15) == (token, "")
    refusal = second.lease("/srv/a", 0, 15)
    assert refusal.token == 0 and refusal.holder.endswith(f"pid {os.getpid()}")
    b_token = second.lease("/srv/b", 0, 15).token
    assert b_token > 0                                         # another root: both write
    assert first.lease("/srv/b", 0, 15).token == 0
    first.release("/srv/a", token)
    taken = second.lease("/srv/a", 0, 15).token
    assert taken > 0 and (backend.kind == "sqlite" or taken > token)   # a takeover grows the token
    assert first.lease("/srv/a", token, 15).token == 0         # the old token renews nothing
    second.release("/srv/a", taken)
    second.release("/srv/b", b_token)                          # a clean stop: free at once
    assert first.lease("/srv/a", 0, 15).token and first.lease("/srv/b", 0, 15).token


def test_a_write_whose_lease_was_taken_over_commits_nothing(backend: Backend) -> None:
    first, second = backend.store(), backend.store()
    token = first.lease("/srv/a", 0, 0.3).token
    [row] = first.insert([video("/srv/a/1.mp4", 1)], {"/srv/a": token})
    if backend.kind == "mysql":
        time.sleep(0.4)                                        # the lease lapses (the server's clock)
        with pytest.raises(LeaseLost):                         # lapsed: no write, even before a takeover
            first.insert([video("/srv/a/2.mp4", 2)], {"/srv/a": token})
        assert second.lease("/srv/a", 0, 15).token == token + 1
    else:
        os.unlink(first.claim_path("/srv/a"))                  # an operator "cleaning up"
        assert second.lease("/srv/a", 0, 15).token
    with pytest.raises(LeaseLost) as lost:
        first.insert([video("/srv/a/3.mp4", 3)], {"/srv/a": token})
    assert lost.value.roots == ("/srv/a",)
    for write in (lambda: first.withdraw([row], {"/srv/a": token}),
                  lambda: first.move("/srv/a/1.mp4", "/srv/a/4.mp4", "/srv/a", "u1", "u4", {"/srv/a": token}),
                  lambda: first.resignal([Remembered(row, "/srv/a/1.mp4", Version(1, 1, 9, 9))], {"/srv/a": token}),
                  lambda: first.remember([Remembered(row, "/srv/a/1.mp4", Version(1, 1, 9, 9))], {"/srv/a": token})):
        with pytest.raises(LeaseLost):
            write()
            first.sync()                                       # a commit in the background fails here
    assert [(r.id, r.path, r.status) for r in first.videos()] == [(row, "/srv/a/1.mp4", 1)]
    assert [(e.video_id, e.version) for e in first.remembered()] == [(row, video("/srv/a/1.mp4", 1).version)]
    assert len(first.insert([video("/srv/b/1.mp4")], {})) == 1  # the connection goes on


def test_a_holder_stopped_between_its_fence_and_its_commit_does_not_block_a_takeover(mysql: Backend) -> None:
    """The fence's row lock is held to the commit: a holder stopped there (SIGSTOP) would make
    a takeover on this server wait for as long as it stays stopped. The server ends such an
    idle write after half a lease (2 s at least)."""
    database = Database(**{**mysql.database.__dict__, "lease_seconds": 2})
    stalled, other = open_store(database), mysql.store()
    stalled.open()
    token = stalled.lease("/srv/a", 0, 1).token
    with stalled._conn.cursor() as cursor:                   # a write's fence, its commit never sent
        cursor.execute("UPDATE vfs_notifier_leases SET writes = writes + 1 WHERE root = %s", ("/srv/a",))
    time.sleep(1.1)                                          # its lease lapses
    waited = time.monotonic()
    while not other.lease("/srv/a", 0, 15).token:            # each try waits 1 s for the row lock
        assert time.monotonic() - waited < 8, "the stalled write still blocks the takeover"
        time.sleep(0.2)
    print(f"\ntakeover {time.monotonic() - waited:.1f} s after the lease lapsed, past a stalled write")
    with pytest.raises((StoreUnavailable, LeaseLost)):      # the stalled holder: nothing commits
        stalled.insert([video("/srv/a/x.mp4")], {"/srv/a": token})
    assert list(other.videos()) == []


def test_a_root_a_version_1_1_instance_claims_is_left_to_it(mysql: Backend) -> None:
    from vfs_notifier.store_mysql import old_lock_name
    old = mysql.mariadb.connect(mysql.database.name)       # 1.1 claimed a root by GET_LOCK alone
    with old.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", (old_lock_name(mysql.database.name, "/srv/a"),))
        assert cursor.fetchone()[0] == 1
    store = mysql.store()
    try:
        refused = store.lease("/srv/a", 0, 15)
        assert refused.token == 0 and "1.1" in refused.holder
        assert store.lease("/srv/b", 0, 15).token            # another root is free
    finally:
        with old.cursor() as cursor:                       # the 1.1 instance stops (cleanly, as
            cursor.execute("SELECT RELEASE_LOCK(%s)",       # its release() did)
                           (old_lock_name(mysql.database.name, "/srv/a"),))
        old.close()
    token = store.lease("/srv/a", 0, 15).token
    assert token and store.lease("/srv/a", token, 15) == (token, "")


CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from vfs_notifier.settings import Database
from vfs_notifier.store_factory import open_store
store = open_store(Database(**json.loads(sys.argv[2])))
store.open()
print(store.lease(sys.argv[3], 0, 1.0).token and "held", flush=True)
time.sleep(600)
"""


def test_a_lease_outlives_a_killed_holder_by_its_length_at_most(backend: Backend) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(REPO), json.dumps(backend.database.__dict__),
                              "/srv/a"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        store = backend.store()
        assert store.lease("/srv/a", 0, 15).holder.endswith(f"pid {child.pid}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        while not store.lease("/srv/a", 0, 15).token:
            assert time.monotonic() - killed < 3, "the lease outlived its holder"
            time.sleep(0.05)
        print(f"\nlease free {time.monotonic() - killed:.2f} s after SIGKILL on {backend.kind} (lease 1 s)")
    finally:
        child.kill()
        child.wait()


def test_no_backend_imports_the_factory() -> None:
    code = ("import sys, vfs_notifier.store_mysql, vfs_notifier.store_sqlite; "
            "print('vfs_notifier.store_factory' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_call_while_a_stream_is_open_is_refused_not_silently_truncated(backend: Backend) -> None:
    store = backend.store()
    ids = store.insert([video(f"/r/{n}.mp4", n) for n in range(3)], {})
    stream = store.remembered()
    next(stream)
    with pytest.raises(RuntimeError):
        store.existing(ids)
    assert len(list(stream)) == 2                               # the stream was not drained
    assert store.existing(ids) == set(ids)
    stream = store.remembered()
    next(stream)
    stream.close()                                              # abandoning one is fine
    assert store.existing(ids) == set(ids)


def test_renames_that_only_change_case_or_hold_like_wildcards(backend: Backend) -> None:
    store = backend.store()
    paths = ["/r/dir/x.mp4", "/r/50%_off!/y.mp4", "/r/50%_off!/z/w.mp4", "/r/50x_off!/y.mp4", "/r/a.mp4"]
    ids = store.insert([video(p, n) for n, p in enumerate(paths)], {})
    assert store.move("/r/dir", "/r/Dir", "/r", "http://media.test/r/dir", "http://media.test/r/Dir", {}) == 1
    assert store.move("/r/a.mp4", "/r/A.mp4", "/r", "http://media.test/r/a.mp4", "http://media.test/r/A.mp4", {}) == 1
    assert store.move("/r/50%_off!", "/r/sale", "/r", "http://media.test/r/50%_off!",
                      "http://media.test/r/sale", {}) == 2
    assert {v.id: v.path for v in store.videos()} == dict(zip(ids, [
        "/r/Dir/x.mp4", "/r/sale/y.mp4", "/r/sale/z/w.mp4", "/r/50x_off!/y.mp4", "/r/A.mp4"]))
    assert sorted(r.path for r in store.remembered_below("/r/sale")) == ["/r/sale/y.mp4", "/r/sale/z/w.mp4"]


def test_remembered_columns_are_the_remembered_entries(backend: Backend) -> None:
    store = backend.store()
    assert list(store.remembered_columns()) == []
    names = ["a b.mp4", "Réunion d'équipe #1 100%.mkv", "会议 .avi", "x" * 900 + ".mp4", "\n.mp4"]
    videos = [video(f"/r/{ino}{name}", ino) for ino, name in enumerate(names * 3, 1)]
    store.insert(videos, {})
    columns = [entry for batch in store.remembered_columns() for entry in zip(*batch)]
    assert sorted(columns) == sorted((r.video_id, r.path, *r.version) for r in store.remembered())
    assert len(columns) == len(videos)


def test_remembered_columns_of_groups_too_long_are_read_entry_by_entry(mysql: Backend, monkeypatch) -> None:
    """A group past group_concat_max_len comes back cut short: it is read again, whole."""
    from vfs_notifier.store_mysql import bulk_read
    monkeypatch.setattr(bulk_read, "GROUP", 4)
    monkeypatch.setattr(bulk_read, "GROUP_BYTES", 1024)
    store = mysql.store()
    # Cut at a byte count, on a character's boundary: long names of one byte a character and
    # of three (a cut may fall short of the limit by up to a character).
    long = {0: "y" * 980, 1: "€" * 330, 2: "😀" * 250}
    videos = [video(f"/r/{i:03d} " + long.get(i % 5, "y" * 10) + ".mp4", i) for i in range(40)]
    store.insert(videos, {})
    columns = [entry for batch in store.remembered_columns() for entry in zip(*batch)]
    assert sorted(columns) == sorted((r.video_id, r.path, *r.version) for r in store.remembered())
