"""The limit: what the database and file system allow, with no service logic at all.

    cold: os.scandir walk, then PyMySQL executemany of 1,000 rows per commit (one multi-row INSERT).
    cold-kept: cold, and in each transaction the same rows' entries in the companion table the
        service keeps (vfs_notifier_files: path and version of every registered file, by id), as
        the service's own statements write them. What the database must do for a cold start of
        1.1.0, with no judging at all: the floor of the service's cold start.
    warm: the reference for a restart: a bare walk plus one read of every registered path.
    warm-kept: the floor of the service's warm restart (issue 24): a walk that lstats every
        video file, and one SELECT of every companion entry (vfs_notifier_files: the versions the
        service remembers), read whole. What a restart must do at least to know nothing changed.

Run as a process (`python3 -m bench.limit cold|warm`) with the service's environment variables,
so it is started and timed exactly like the daemon.
"""
from __future__ import annotations

import json
import os
import sys
import time

from .db import INSERT_ROW, DbParams, connect, row_for
from .walk import video_files

BATCH = 1000


def cold(root: str, base_path: str, base_url: str, params: DbParams, kept: bool = False) -> dict:
    """`kept`: each transaction also writes its rows' companion entries (cold-kept)."""
    from vfs_notifier.store_mysql import CREATE_FILES, UPSERT_FILES_HEAD, UPSERT_FILES_TAIL
    t0 = time.perf_counter()
    paths = list(video_files(root))
    t_walk = time.perf_counter() - t0
    conn = connect(params)
    with conn.cursor() as cur:
        if kept:
            cur.execute(CREATE_FILES)
        for i in range(0, len(paths), BATCH):
            part = paths[i:i + BATCH]
            cur.executemany(INSERT_ROW, [row_for(p, root, base_path, base_url) for p in part])
            if kept:
                first = cur.lastrowid     # consecutive ids (MariaDB's innodb_autoinc_lock_mode=1)
                stats = [os.lstat(p) for p in part]
                cur.execute(UPSERT_FILES_HEAD + ", ".join(
                    f"({first + k}, {conn.escape(p)}, {st.st_dev}, {st.st_ino}, {st.st_size}, {st.st_mtime_ns})"
                    for k, (p, st) in enumerate(zip(part, stats))) + UPSERT_FILES_TAIL)
            conn.commit()
    conn.close()
    return {"files": len(paths), "walk_s": t_walk, "total_s": time.perf_counter() - t0}


def warm(root: str, params: DbParams) -> dict:
    t0 = time.perf_counter()
    on_disk = set(video_files(root))
    t_walk = time.perf_counter() - t0
    conn = connect(params)
    with conn.cursor() as cur:
        cur.execute("SELECT des_video_path FROM videos")
        registered = {r[0] for r in cur.fetchall()}
    conn.close()
    missing = on_disk - registered
    return {"files": len(on_disk), "missing": len(missing), "walk_s": t_walk,
            "total_s": time.perf_counter() - t0}


def warm_kept(root: str, params: DbParams) -> dict:
    from vfs_notifier.store_mysql.schema import FILE_COLUMNS
    t0 = time.perf_counter()
    stats = {path: os.lstat(path) for path in video_files(root)}
    t_walk = time.perf_counter() - t0
    conn = connect(params)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {FILE_COLUMNS} FROM vfs_notifier_files")
        remembered = cur.fetchall()
    conn.close()
    return {"files": len(stats), "remembered": len(remembered), "walk_s": t_walk,
            "total_s": time.perf_counter() - t0}


def main(argv: list[str]) -> int:
    e = os.environ
    root, base_path, base_url = e["CLIENT_VIDEO_DIR"], e["BASE_PATH"], e["NGINX_BASE_URL"]
    params = DbParams.from_env()
    if argv[0] in ("cold", "cold-kept"):
        result = cold(root, base_path, base_url, params, kept=argv[0] == "cold-kept")
    elif argv[0] == "warm-kept":
        result = warm_kept(root, params)
    else:
        result = warm(root, params)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
