"""The life of a row, against the real service, real inotify and both real stores (issue 10).

One writer per root; a row a consumer deleted is never resurrected (start, restart, reload,
rescan, overflow recovery), but a new upload at its path is a new video; renames keep ids
and statuses; an overwrite is signalled once; a directory replaced by one with the same
names keeps every row; a table filled by the previous version is adopted, not doubled.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

from tests.conftest import write_file
from tests.faults.helpers import wait_until
from tests.support.media import video_bytes


def ids_by_path(tree) -> dict[str, tuple[int, int]]:
    rows = tree.table.execute("SELECT id, des_video_path, status FROM videos ORDER BY id")
    return {path: (video_id, status) for video_id, path, status in rows}


def test_two_services_on_one_root_one_writes_the_other_takes_over(store_tree, start_service):
    first = start_service()
    second = start_service(wait_ready=True)
    second.notify.wait_for("standing by", timeout=20)
    files = [write_file(store_tree.root / f"a{i}.mp4") for i in range(20)]
    store_tree.table.wait_for_paths(files, timeout=20)
    time.sleep(1.5)
    assert store_tree.table.duplicates() == []
    first.kill()          # SIGKILL: its claim goes with its process (and its connection)
    later = [write_file(store_tree.root / f"b{i}.mp4") for i in range(5)]
    store_tree.table.wait_for_paths(files + later, timeout=30)
    assert "took over" in second.log() or "took over" in open(second.output).read()
    assert store_tree.table.duplicates() == []


def test_two_services_on_two_roots_share_one_table(store_tree, start_service, tmp_path):
    other = store_tree.base / "other"
    other.mkdir()
    start_service()
    start_service({**store_tree.env, "CLIENT_VIDEO_DIR": str(other),
                   "LOG_BASE_DIRECTORY": str(store_tree.work / "log2")})
    mine = [write_file(store_tree.root / f"m{i}.mp4") for i in range(5)]
    theirs = [write_file(other / f"t{i}.mkv") for i in range(5)]
    store_tree.table.wait_for_paths(mine + theirs, timeout=20)


def test_a_row_a_consumer_deleted_never_comes_back(store_tree, start_service):
    env = {**store_tree.env, "VFS_NOTIFIER_RESCAN_INTERVAL": "1"}
    keep = write_file(store_tree.root / "keep.mp4")
    drop = write_file(store_tree.root / "sub" / "drop.mp4")
    daemon = start_service(env)
    store_tree.table.wait_for_paths([keep, drop])
    store_tree.table.execute("DELETE FROM videos WHERE des_video_path = %s", (str(drop),))
    time.sleep(2.5)                         # periodic rescans ran
    daemon.signal(signal.SIGHUP)            # reload
    daemon.notify.wait_for("READY=1", after=len(daemon.notify.messages))
    daemon.stop()
    again = start_service(env)              # restart
    time.sleep(1.5)
    # queue overflow recovery: a burst far beyond the kernel's default queue
    burst_dir = store_tree.root / "burst"
    burst_dir.mkdir()
    data = video_bytes("mp4")
    for i in range(3000):
        (burst_dir / f"{i}.mp4").write_bytes(data)
    wait_until(lambda: len(store_tree.table.paths()) == 3001, timeout=60, what="the burst registered")
    assert str(drop) not in store_tree.table.paths()
    # A new upload at that path is a new video.
    drop.unlink()
    write_file(drop, data=video_bytes("faststart"))
    wait_until(lambda: str(drop) in store_tree.table.paths(), timeout=10, what="a row for the new upload")
    assert store_tree.table.duplicates() == []
    again.stop()


def test_renames_keep_ids_and_statuses(store_tree, start_service):
    start_service()
    show = store_tree.root / "show"
    files = [write_file(show / f"e{i:04}.mp4") for i in range(1000)]
    single = write_file(store_tree.root / "single.mkv")
    store_tree.table.wait_for_paths(files + [single], timeout=60)
    store_tree.table.execute("UPDATE videos SET status = 2")
    before = ids_by_path(store_tree)
    os.rename(show, store_tree.root / "Show (2024)")
    os.rename(single, store_tree.root / "renamed.mkv")
    expected = {str(p).replace("/show/", "/Show (2024)/"): v for p, v in before.items() if "/show/" in str(p)}
    expected[str(store_tree.root / "renamed.mkv")] = before[str(single)]
    wait_until(lambda: ids_by_path(store_tree) == expected, timeout=20, what="rows moved in place")
    rows = {r.path: r.url for r in store_tree.table.rows()}
    assert rows[str(store_tree.root / "Show (2024)" / "e0007.mp4")].endswith("/videos/Show%20%282024%29/e0007.mp4")


def test_an_overwrite_in_place_is_signalled_once(store_tree, start_service):
    start_service()
    path = write_file(store_tree.root / "clip.mp4")
    store_tree.table.wait_for_paths([path])
    store_tree.table.execute("UPDATE videos SET status = 3")
    (video_id, _), = ids_by_path(store_tree).values()
    with open(path, "wb") as handle:      # re-uploaded in place: new content
        handle.write(video_bytes("faststart"))
    wait_until(lambda: ids_by_path(store_tree) == {str(path): (video_id, 1)}, timeout=10,
               what="the row signalled again")
    time.sleep(1)
    assert ids_by_path(store_tree) == {str(path): (video_id, 1)}


def test_a_directory_replaced_by_one_with_the_same_names_keeps_every_row(store_tree, start_service, tmp_path):
    start_service()
    upload = store_tree.root / "upload"
    files = [write_file(upload / f"{i}.mp4", mtime_ago=3600) for i in range(5)]
    store_tree.table.wait_for_paths(files)
    staging = tmp_path / "staging" / "upload"
    for f in files:
        write_file(staging / f.name, mtime_ago=3600)
    shutil.rmtree(upload)
    os.rename(staging, upload)
    time.sleep(3)
    store_tree.table.wait_for_paths(files, timeout=10)


def test_a_table_filled_by_the_previous_version_is_adopted(store_tree, start_service):
    files = [write_file(store_tree.root / f"old{i}.mp4", mtime_ago=3600) for i in range(10)]
    daemon = start_service()
    store_tree.table.wait_for_paths(files)
    daemon.stop()
    # As 1.0 left it: rows, no memory of versions; the consumer moved some along.
    store_tree.table.execute("DROP TABLE vfs_notifier_files")
    store_tree.table.execute("UPDATE videos SET status = 2")
    before = ids_by_path(store_tree)
    start_service()
    time.sleep(2)
    assert ids_by_path(store_tree) == before
