"""Parts of the MySQL store on their own: the commit thread (threads only), and on the session's
real MariaDB server the table creation, the lease connection's session, an insert's
quoting and statements and the reads, each on a connection of the store's own kind."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Iterator

import pymysql
import pytest

from vfs_notifier.settings import Database
from vfs_notifier.store import LeaseLost, NewVideo, RowsRejected, StoreUnavailable, Version
from vfs_notifier.store_mysql import bulk_read, insert, leases, reads
from vfs_notifier.store_mysql.commit_thread import CommitThread
from vfs_notifier.store_mysql.schema import create_missing
from vfs_notifier.store_mysql.servers import connect, quietly_close, servers


# --- the commit thread ---------------------------------------------------------------------

def test_a_write_on_the_commit_thread_is_busy_until_done_and_its_error_is_raised_once() -> None:
    thread = CommitThread(timeout=5)
    assert not thread.busy
    thread.wait()                                       # nothing under way: nothing to wait for
    release, names = threading.Event(), []

    def write() -> None:
        names.append(threading.current_thread().name)
        release.wait(5)
        raise pymysql.OperationalError(2013, "Lost connection")
    thread.start(write)
    assert thread.busy
    release.set()
    with pytest.raises(pymysql.OperationalError):
        thread.wait()
    assert not thread.busy and names[0].startswith("store-commit")
    thread.wait()                                       # told once: forgotten after


def test_a_write_past_the_timeout_is_a_timeout_and_settle_swallows_any_end() -> None:
    thread = CommitThread(timeout=0.1)
    release = threading.Event()
    thread.start(release.wait, 5)
    with pytest.raises(FuturesTimeout):
        thread.wait()
    release.set()
    future = thread.start(lambda: 1 / 0)
    thread.settle()
    assert future.done() and not thread.busy


def test_writes_run_one_at_a_time_in_order() -> None:
    thread = CommitThread(timeout=5)
    seen: list[int] = []
    futures = [thread.start(lambda n=n: (time.sleep(0.01 * (3 - n)), seen.append(n))) for n in range(3)]
    thread.wait()
    assert all(f.done() for f in futures) and seen == [0, 1, 2]


# --- on the server -------------------------------------------------------------------------

@pytest.fixture
def database(mysql_env: dict[str, str]) -> Database:
    env = mysql_env
    return Database(env["MYSQL_HOST"], int(env["MYSQL_PORT"]), "", env["MYSQL_USER"], env["MYSQL_DB_NAME"],
                    env["MYSQL_PASS"], "", lease_seconds=9)


@pytest.fixture
def conn(database: Database) -> Iterator[pymysql.connections.Connection]:
    conn = connect(database, servers(database)[0], autocommit=False)
    yield conn
    quietly_close(conn)


def tables(conn: pymysql.connections.Connection) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        return sorted(r[0] for r in cursor.fetchall())


def test_missing_tables_are_created_and_a_table_there_is_left_as_it_is(conn, database) -> None:
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE `videos` (`id` int NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                       "`des_video_path` varchar(1024) NOT NULL)")
        cursor.execute("INSERT INTO `videos` (`des_video_path`) VALUES ('/r/kept.mp4')")
        create_missing(cursor, database)
        create_missing(cursor, database)
        cursor.execute("SELECT `des_video_path` FROM `videos`")
        assert cursor.fetchall() == (("/r/kept.mp4",),)
    assert tables(conn) == ["vfs_notifier_files", "vfs_notifier_leases", "videos"]


def test_a_user_who_may_not_create_a_missing_table_is_told_to_run_init_db(database, mariadb) -> None:
    user = "weak_" + uuid.uuid4().hex[:8]
    with mariadb.connect() as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'w'")
        cursor.execute(f"GRANT SELECT, INSERT, DELETE ON `{database.name}`.* TO '{user}'@'%%'")
    try:
        weak = Database(database.host, database.port, "", user, database.name, "w", "")
        conn = connect(weak, servers(weak)[0], autocommit=False)
        try:
            with pytest.raises(StoreUnavailable, match=f"table `videos` is missing in {database.name} and "
                                                       f"{user} may not create it: run `vfs-notifier init-db`"):
                with conn.cursor() as cursor:
                    create_missing(cursor, weak)
        finally:
            conn.close()
    finally:
        with mariadb.connect() as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP USER '{user}'@'%%'")


def test_the_lease_session_bounds_its_lock_waits_and_idle_writes(conn) -> None:
    leases.prepare_session(conn, lease_seconds=9, galera=False)
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.idle_write_transaction_timeout")
        assert cursor.fetchone() == (1, 5)              # half a lease, rounded up
    conn.close()
    with pytest.raises(StoreUnavailable):
        leases.prepare_session(conn, lease_seconds=9, galera=False)


HOSTILE = ["/r/it's.mp4", '/r/say "hi".mp4', "/r/back\\slash.mp4", "/r/new\nline.mp4", "/r/é %_.mp4"]


def new_video(path: str, ino: int) -> NewVideo:
    return NewVideo("/r", path, "http://media.test" + path, Version(2049, ino, 100, 1_700_000_000_000_000_000))


def no_fence(cursor) -> None:
    pass


def run(conn, videos: list[NewVideo], check_fence=no_fence) -> list[int]:
    values, paths = insert.quote(conn, videos)
    return insert.run(conn, 0, check_fence, videos, values, paths, None)


def rows(conn) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT v.`id`, v.`des_video_path`, v.`des_url`, f.`path` FROM `videos` v "
                       "JOIN `vfs_notifier_files` f ON f.`video_id` = v.`id` ORDER BY v.`id`")
        found = list(cursor.fetchall())
    conn.commit()
    return found


def test_an_insert_quotes_any_name_and_commits_its_rows_and_entries(conn, database) -> None:
    with conn.cursor() as cursor:
        create_missing(cursor, database)
    videos = [new_video(p, n) for n, p in enumerate(HOSTILE)]
    ids = run(conn, videos)
    assert [(i, p, "http://media.test" + p, p) for i, p in zip(ids, HOSTILE)] == rows(conn)


def test_an_insert_refused_or_fenced_off_commits_nothing_and_keeps_the_connection(conn, database) -> None:
    with conn.cursor() as cursor:
        create_missing(cursor, database)
    with pytest.raises(RowsRejected):                   # varchar(1024) counts characters
        run(conn, [new_video("/r/a.mp4", 1), new_video("/r/" + "é" * 1100 + ".mp4", 2)])

    def lost(cursor) -> None:
        raise LeaseLost(["/r"])
    with pytest.raises(LeaseLost):
        run(conn, [new_video("/r/a.mp4", 1)], lost)
    assert rows(conn) == []
    [row] = run(conn, [new_video("/r/a.mp4", 1)])
    assert [r[0] for r in rows(conn)] == [row]


def test_the_reads_find_below_a_directory_exactly_whatever_its_name_holds(conn, database) -> None:
    """LIKE's own characters (%, _ and the escape !) and the general collation's case and
    trailing spaces must not widen `below`; the rows' shapes are the interface's."""
    with conn.cursor() as cursor:
        create_missing(cursor, database)
    names = ["/r/a%b/1.mp4", "/r/aXb/2.mp4", "/r/a_b/3.mp4", "/r/a!b/4.mp4", "/r/A%B/5.mp4", "/r/a%b /6.mp4",
             "/r/a%b/sub/7.mp4", "/r/a%b/8.mp4"]
    ids = run(conn, [new_video(p, n) for n, p in enumerate(names)])
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO `videos` (`des_video_path`) VALUES ('/r/unremembered.mp4')")
    conn.commit()

    def stream(query: str, args: tuple) -> Iterator[tuple]:
        with conn.cursor() as cursor:
            cursor.execute(query, args or None)
            return iter(cursor.fetchall())

    assert sorted(e.path for e in reads.remembered_below(stream, "/r/a%b")) == [
        "/r/a%b/1.mp4", "/r/a%b/8.mp4", "/r/a%b/sub/7.mp4"]
    assert [e.path for e in reads.remembered_below(stream, "/r/a_b")] == ["/r/a_b/3.mp4"]
    assert [e.path for e in reads.remembered_below(stream, "/r/a!b")] == ["/r/a!b/4.mp4"]
    first = list(reads.remembered_below(stream, "/r/a%b", limit=2))
    rest = list(reads.remembered_below(stream, "/r/a%b", after_id=first[-1].video_id, limit=2))
    assert [e.video_id for e in first + rest] == [ids[0], ids[6], ids[7]]
    entry = next(e for e in reads.remembered(stream) if e.video_id == ids[1])
    assert entry.path == "/r/aXb/2.mp4" and entry.version == new_video("", 1).version
    with conn.cursor() as cursor:
        [lonely] = bulk_read.unremembered_ids(cursor)
        assert reads.paths_of(cursor, [lonely, ids[0], lonely + 1]) == [(ids[0], "/r/a%b/1.mp4"),
                                                                      (lonely, "/r/unremembered.mp4")]
    rows = list(reads.videos(stream))
    assert [r.id for r in rows] == ids + [lonely] and isinstance(rows[0].created_date, str)
    with conn.cursor() as cursor:
        assert reads.existing(cursor, [ids[0], lonely, lonely + 1]) == {ids[0], lonely}
