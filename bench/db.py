"""The `videos` table and how a file becomes its row, shared by every contender and the harness.

Connection settings travel in the same MYSQL_* environment variables the service reads, so every
contender is started the same way.
"""
from __future__ import annotations

import os
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

import pymysql

# Exactly the deployed table (issue 2); never altered by the benchmark.
VIDEOS_TABLE = """
CREATE TABLE `videos` (
  `id` int(11) NOT NULL AUTO_INCREMENT, `main_dir` varchar(512) DEFAULT NULL,
  `des_video_path` varchar(1024) NOT NULL, `status` int(11) DEFAULT 1,
  `created_date` datetime DEFAULT current_timestamp(), `des_url` varchar(1024) DEFAULT NULL,
  PRIMARY KEY (`id`), KEY `idx_des_video_path` (`des_video_path`(255)), KEY `idx_status` (`status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
"""

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")

# Every value a placeholder: PyMySQL then turns executemany into one multi-row INSERT.
INSERT_ROW = ("INSERT INTO videos (main_dir, des_video_path, status, des_url) "
              "VALUES (%s, %s, %s, %s)")


@dataclass(frozen=True)
class DbParams:
    host: str
    port: int
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        """The service's own variable names, for any contender process."""
        return {"MYSQL_HOST": self.host, "MYSQL_PORT": str(self.port), "MYSQL_USER": self.user,
                "MYSQL_PASS": self.password, "MYSQL_DB_NAME": self.database}

    @classmethod
    def from_env(cls) -> "DbParams":
        e = os.environ
        return cls(e["MYSQL_HOST"], int(e.get("MYSQL_PORT", "3306")), e["MYSQL_USER"],
                   e.get("MYSQL_PASS", ""), e["MYSQL_DB_NAME"])


def connect(params: DbParams, autocommit: bool = False) -> pymysql.connections.Connection:
    return pymysql.connect(host=params.host, port=params.port, user=params.user,
                           password=params.password, database=params.database,
                           charset="utf8mb4", autocommit=autocommit)


def is_video(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def url_for(path: str, base_path: str, base_url: str) -> str:
    """base_url + "/" + the path relative to base_path, each segment percent-encoded."""
    rel = os.path.relpath(path, base_path)
    return base_url.rstrip("/") + "/" + "/".join(urllib.parse.quote(s, safe="") for s in rel.split("/"))


def row_for(path: str, main_dir: str, base_path: str, base_url: str) -> tuple[str, str, int, str]:
    return (main_dir, path, 1, url_for(path, base_path, base_url))


class RowWatcher:
    """Counts rows as they arrive, cheaply enough to poll every few milliseconds.

    COUNT(*) over the whole table costs milliseconds at 100k rows, so the watcher only counts rows
    above the highest id it has seen (an index range scan over the new rows). Every contender
    writes through one connection, so rows become visible in id order and none is skipped.
    """

    def __init__(self, params: DbParams) -> None:
        self.conn = connect(params, autocommit=True)
        self.max_id = 0
        self.count = 0

    def poll(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*), MAX(id) FROM videos WHERE id > %s", (self.max_id,))
            n, top = cur.fetchone()
        if n:
            self.count += n
            self.max_id = top
        return self.count

    def resync(self) -> int:
        """Recount the whole table: catches rows committed out of id order (several connections)."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM videos")
            n, top = cur.fetchone()
        self.count, self.max_id = int(n), int(top)
        return self.count

    def wait_for(self, target: int, timeout: float, interval: float = 0.02,
                 alive: Callable[[], bool] | None = None) -> float | None:
        """Poll until `target` rows are in; the time they were first seen, or None on timeout."""
        deadline = time.monotonic() + timeout
        last_progress, last_count = time.monotonic(), -1
        while True:
            n = self.poll()
            now = time.monotonic()
            if n >= target:
                return time.time()
            if n != last_count:
                last_progress, last_count = now, n
            elif now - last_progress > 0.5:
                last_progress = now
                if self.resync() >= target:
                    return time.time()
            if now > deadline or (alive is not None and not alive()):
                return time.time() if self.resync() >= target else None
            time.sleep(interval)

    def totals(self) -> tuple[int, int]:
        """(rows, distinct paths) over the whole table: the check that nothing was doubled."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*), COUNT(DISTINCT CAST(des_video_path AS BINARY)) FROM videos")
            rows, distinct = cur.fetchone()
        return int(rows), int(distinct)

    def wrong_rows(self, main_dir: str, base_path: str, base_url: str, sample: int = 1000) -> int:
        """Of up to `sample` rows, how many differ from what the row of their path must be."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT main_dir, des_video_path, status, des_url FROM videos "
                        "ORDER BY RAND() LIMIT %s", (sample,))
            rows = cur.fetchall()
        return sum(1 for r in rows if tuple(r) != row_for(r[1], main_dir, base_path, base_url))

    def close(self) -> None:
        self.conn.close()
