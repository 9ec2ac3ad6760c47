"""Reading the `videos` table the service writes, from MySQL or SQLite alike."""

from __future__ import annotations

import collections
import sqlite3
import time
from typing import Callable, Mapping, NamedTuple

import pymysql


class Video(NamedTuple):
    main_dir: str
    path: str
    url: str
    status: int


class Table:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    @property
    def is_mysql(self) -> bool:
        return bool(self.env.get("MYSQL_HOST"))

    def rows(self) -> list[Video]:
        query = "SELECT main_dir, des_video_path, des_url, status FROM videos ORDER BY id"
        if self.is_mysql:
            env = self.env
            try:
                conn = pymysql.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]),
                                       user=env["MYSQL_USER"], password=env["MYSQL_PASS"],
                                       database=env["MYSQL_DB_NAME"], charset="utf8mb4", connect_timeout=5)
            except pymysql.MySQLError:
                return []
            try:
                with conn.cursor() as cur:
                    cur.execute("SHOW TABLES LIKE 'videos'")
                    if not cur.fetchone():
                        return []
                    cur.execute(query)
                    return [Video(*r) for r in cur.fetchall()]
            finally:
                conn.close()
        try:
            conn = sqlite3.connect(f"file:{self.env['VFS_NOTIFIER_SQLITE_PATH']}?mode=ro", uri=True, timeout=10)
        except sqlite3.OperationalError:
            return []
        try:
            return [Video(*r) for r in conn.execute(query)]
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def paths(self) -> list[str]:
        return [row.path for row in self.rows()]

    def duplicates(self) -> list[str]:
        return [p for p, n in collections.Counter(self.paths()).items() if n > 1]

    def wait_for(self, predicate: Callable[[list[Video]], bool], timeout: float = 20,
                 what: str = "rows") -> list[Video]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; table has {len(rows)} rows: "
                                     f"{[r.path for r in rows][:20]}")
            time.sleep(0.05)

    def wait_for_paths(self, expected, timeout: float = 20) -> list[Video]:
        """Wait until the table holds exactly these paths, each once."""
        want = sorted(str(p) for p in expected)
        return self.wait_for(lambda rows: sorted(r.path for r in rows) == want, timeout,
                             what=f"exactly {len(want)} paths")

    def execute(self, statement: str, args: tuple = ()) -> list[tuple]:
        """Run one statement as a consumer would (committed); its result rows.

        Written in MySQL's placeholder style (%s); it is translated for SQLite.
        """
        if self.is_mysql:
            env = self.env
            conn = pymysql.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]),
                                   user=env["MYSQL_USER"], password=env["MYSQL_PASS"],
                                   database=env["MYSQL_DB_NAME"], charset="utf8mb4", connect_timeout=5,
                                   autocommit=True)
            try:
                with conn.cursor() as cur:
                    cur.execute(statement, args or None)
                    return list(cur.fetchall())
            finally:
                conn.close()
        conn = sqlite3.connect(self.env["VFS_NOTIFIER_SQLITE_PATH"], timeout=10, isolation_level=None)
        try:
            return list(conn.execute(statement.replace("%s", "?"), args))
        finally:
            conn.close()
