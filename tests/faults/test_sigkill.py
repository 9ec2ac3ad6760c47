"""SIGKILL at random points of a startup scan and of a burst, then a restart: nothing lost,
nothing doubled. The random points come from a seed printed with any failure (set
VFS_FAULT_SEED to replay one)."""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Callable

import pymysql

from tests.faults.helpers import aged_tree, assert_mirrors_disk, burst


def _rng() -> random.Random:
    seed = int(os.environ.get("VFS_FAULT_SEED") or time.time_ns() % 10**9)
    print(f"VFS_FAULT_SEED={seed}")
    return random.Random(seed)


def _count_rows(env) -> Callable[[], int]:
    conn = pymysql.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]), user=env["MYSQL_USER"],
                           password=env["MYSQL_PASS"], database=env["MYSQL_DB_NAME"], autocommit=True)

    def count() -> int:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'videos'")
            if not cur.fetchone():
                return 0
            cur.execute("SELECT COUNT(*) FROM videos")
            return cur.fetchone()[0]
    return count


def test_sigkill_during_startup_scans(db_tree, start_service):
    """Each start finds new files (1,000 more) and is killed at a random moment, or just
    after a batch of its startup scan committed; the last start completes."""
    tree = db_tree
    rng = _rng()
    aged_tree(tree.root, 2000, subdirs=20)
    count = _count_rows(tree.env)
    partial = []
    for attempt in range(6):
        aged_tree(tree.root / f"batch{attempt}", 1000, subdirs=5)
        if attempt == 3:                              # and some go away between two runs
            for path in list(tree.root.glob("d00[0-2]/*.mp4"))[:50]:
                path.unlink()
        before = count()
        daemon = start_service(wait_ready=False)
        if attempt % 2:
            time.sleep(rng.uniform(0.1, 0.5))        # anywhere: Python's start, connecting, the walk
        else:                                         # or just after a batch committed
            deadline = time.monotonic() + 10
            while count() == before and daemon.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.02))
        daemon.kill()
        partial.append(count())
        assert tree.table.duplicates() == []
    daemon = start_service()
    rows = assert_mirrors_disk(tree, timeout=60)
    assert len(rows) == 2000 + 6000 - 50
    print("rows after each kill:", partial)
    assert len(set(partial)) > 1, partial             # the kills did land inside scans


def test_sigkill_during_a_burst(db_tree, start_service):
    tree = db_tree
    rng = _rng()
    daemon = start_service()
    writer = threading.Thread(target=burst, args=(tree.root, 3000), kwargs={"subdirs": 10})
    writer.start()
    kills = 0
    while writer.is_alive() and kills < 3:
        time.sleep(rng.uniform(0.05, 0.4))
        daemon.kill()
        kills += 1
        assert tree.table.duplicates() == []
        daemon = start_service()
    writer.join()
    assert kills >= 1
    rows = assert_mirrors_disk(tree, timeout=60)
    assert len(rows) == 3000
    assert daemon.stop() == 0
