"""The running service against real inotify, real directories and both real stores."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import date

import pytest

from tests.conftest import BASE_URL, write_file
from tests.support.media import video_bytes
from tests.support.capabilities import can_mount_tmpfs, can_trace, skip_unless

# Every test here runs the real service: the integration layer, not the quick lane.
pytestmark = pytest.mark.slow


def test_a_single_file_lands_in_milliseconds(store_tree, start_service):
    start_service()
    path = store_tree.root / "one.mp4"
    write_file(path)
    closed = time.monotonic()
    rows = store_tree.table.wait_for_paths([path], timeout=10)
    assert time.monotonic() - closed < 1.0   # far below the 1 s poll interval plus a round trip
    assert rows[0].url == f"{BASE_URL}/videos/one.mp4"
    assert rows[0].main_dir == str(store_tree.root) and rows[0].status == 1


def test_a_file_still_open_is_registered_only_when_closed(store_tree, start_service):
    start_service()
    path = store_tree.root / "growing.mkv"
    data = video_bytes("mkv")
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])
        handle.flush()
        time.sleep(1.5)
        assert store_tree.table.paths() == []
        handle.write(data[len(data) // 2:])
    store_tree.table.wait_for_paths([path], timeout=10)


def test_a_populated_tree_moved_in(store_tree, start_service, tmp_path):
    start_service()
    outside = tmp_path / "staging" / "show"
    expected = [write_file(outside / f"s{i}" / f"e{j}.mp4", mtime_ago=3600)
                for i in range(5) for j in range(20)]
    write_file(outside / "readme.txt")
    os.rename(outside, store_tree.root / "show")
    moved = [str(p).replace(str(outside), str(store_tree.root / "show")) for p in expected]
    store_tree.table.wait_for_paths(moved, timeout=20)


def test_a_new_subdirectory_filled_at_once(store_tree, start_service):
    start_service()
    made = []
    for i in range(10):
        directory = store_tree.root / "fresh" / f"d{i}" / "deeper"
        directory.mkdir(parents=True)
        made += [write_file(directory / f"f{j}.avi") for j in range(10)]
    store_tree.table.wait_for_paths(made, timeout=20)


ODD_NAMES = ["with space.mp4", "quote's \"double\".mp4", "hash#tag.mp4", "what?.mov", "100% sure.mkv",
             "café ünïcode.mp4", "emoji 🎬.mp4", "back\\slash.avi", "e\u0301-combining.mp4",
             "semi;colon&and=.mp4", "UPPER.MP4"]


def test_odd_names_get_correct_rows_and_invalid_utf8_is_skipped(store_tree, start_service):
    daemon = start_service()
    good = [write_file(store_tree.root / name) for name in ODD_NAMES]
    bad = os.path.join(os.fsencode(store_tree.root), b"latin1-\xe9t\xe9.mp4")
    with open(bad, "wb") as handle:
        handle.write(video_bytes("mp4"))
    after = write_file(store_tree.root / "after-the-bad-one.mp4")
    rows = store_tree.table.wait_for_paths(good + [after], timeout=15)
    from urllib.parse import unquote
    for row in rows:
        assert unquote(row.url) == BASE_URL + "/videos/" + os.path.basename(row.path)
        assert "?" not in row.url and "#" not in row.url and " " not in row.url
    assert "skipped" in daemon.log() and "latin1-\\xe9t\\xe9.mp4: file name is not valid UTF-8" in daemon.log()


def test_rsync_style_temp_then_rename_registers_only_the_final_name(store_tree, start_service):
    start_service()
    temp = write_file(store_tree.root / ".clip.mp4.Xa81Qz")
    final = store_tree.root / "clip.mp4"
    os.rename(temp, final)
    partial = write_file(store_tree.root / "movie.mp4.part")
    os.rename(partial, store_tree.root / "movie.mp4")
    store_tree.table.wait_for_paths([final, store_tree.root / "movie.mp4"], timeout=10)


def test_symlinks_are_never_registered_or_followed(store_tree, start_service, tmp_path):
    outside = tmp_path / "outside"
    write_file(outside / "secret.mp4", mtime_ago=60)
    start_service()
    os.symlink(outside / "secret.mp4", store_tree.root / "link.mp4")
    os.symlink(outside, store_tree.root / "linkdir")
    real = write_file(store_tree.root / "real.mp4")
    write_file(outside / "later.mp4")
    store_tree.table.wait_for_paths([real], timeout=10)
    time.sleep(1.0)
    assert store_tree.table.paths() == [str(real)]


def test_deleted_and_moved_files_leave_the_table_mirroring_the_disk(store_tree, start_service):
    start_service()
    a, b = write_file(store_tree.root / "a.mp4"), write_file(store_tree.root / "sub" / "b.mp4")
    store_tree.table.wait_for_paths([a, b])
    a.unlink()
    os.rename(store_tree.root / "sub", store_tree.root / "renamed")
    store_tree.table.wait_for_paths([store_tree.root / "renamed" / "b.mp4"])


def test_restart_registers_what_came_meanwhile_and_doubles_nothing(store_tree, start_service):
    daemon = start_service()
    first = [write_file(store_tree.root / f"a{i}.mp4") for i in range(50)]
    store_tree.table.wait_for_paths(first)
    assert daemon.stop() == 0
    second = [write_file(store_tree.root / "later" / f"b{i}.mp4", mtime_ago=10) for i in range(50)]
    first[0].unlink()
    start_service()
    store_tree.table.wait_for_paths(first[1:] + second)
    assert store_tree.table.duplicates() == []


def _burst(root, count, prefix="burst"):
    paths = []
    for i in range(count):
        paths.append(write_file(root / f"{prefix}{i // 100}" / f"{prefix}-{i}.mp4"))
    return paths


def test_sigkill_during_a_burst_then_restart(store_tree, start_service):
    daemon = start_service()
    writer_paths: list = []
    writer = threading.Thread(target=lambda: writer_paths.extend(_burst(store_tree.root, 3000)))
    writer.start()
    time.sleep(0.3)
    daemon.kill()
    writer.join()
    start_service()
    store_tree.table.wait_for_paths(writer_paths, timeout=60)
    assert store_tree.table.duplicates() == []


def test_database_outage_during_a_burst(tree, mysql_env, mariadb, start_service):
    tree.env.update(mysql_env)
    daemon = start_service()
    paths = _burst(tree.root, 1000, "before")
    mariadb.kill()
    paths += _burst(tree.root, 1000, "during")
    daemon.notify.wait_for("database unavailable", timeout=30)
    mariadb.start()
    paths += _burst(tree.root, 500, "after")
    tree.table.wait_for_paths(paths, timeout=60)
    assert tree.table.duplicates() == []
    assert daemon.proc.poll() is None


def test_systemd_notifications_on_a_real_socket(tree, start_service):
    daemon = start_service(WATCHDOG_USEC="600000")
    ready = daemon.wait_ready()
    assert "STATUS=" in ready and "Watching" in ready
    notify = daemon.notify
    notify.wait_for("WATCHDOG=1", timeout=5)
    seen = len(notify.messages)
    notify.wait_for("WATCHDOG=1", timeout=5, after=seen)   # it keeps coming, at half the timeout
    write_file(tree.root / "x.mp4")
    notify.wait_for("(1 since start)", timeout=10)
    seen = len(notify.messages)
    daemon.signal(signal.SIGHUP)
    notify.wait_for("RELOADING=1", timeout=10, after=seen)
    notify.wait_for("READY=1", timeout=10, after=seen)
    assert daemon.stop() == 0
    notify_after = [m for m in notify.messages]
    assert any("STOPPING=1" in m for m in notify_after)


NOTIFY_WORDS = ("READY=1", "STATUS=", "WATCHDOG=1", "STOPPING=1", "RELOADING=1")


def _traced_run(tree, env: dict) -> str:
    """Run the service under strace until one file is registered; every socket send it made."""
    from tests.support.daemon import PYTHON, REPO
    skip_unless(can_trace())
    trace = tree.work / f"trace-{time.monotonic_ns()}.txt"
    proc = subprocess.Popen(["strace", "-f", "-qq", "--seccomp-bpf", "-s", "512", "-o", str(trace),
                             "-e", "trace=sendmsg,sendto,sendmmsg,connect",
                             PYTHON, "-m", "vfs_notifier", "run"],
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **tree.env, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        name = f"x-{time.monotonic_ns()}.mp4"
        deadline = time.monotonic() + 20
        while not tree.table.paths() and time.monotonic() < deadline:
            write_file(tree.root / name)   # again until seen: the first may land before the watch
            time.sleep(0.5)
        tree.table.wait_for(lambda rows: len(rows) >= 1, what="a row from the traced service")
        time.sleep(1.2)                    # a STATUS update would follow the registration
        # To the service, not to strace (which would detach and leave it running).
        service_pid = int(open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()[0])
        os.kill(service_pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stdout.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return trace.read_text(errors="replace")


def test_without_notify_socket_nothing_is_sent(tree):
    """Outside systemd the service runs, registers, stops cleanly, and sends no notification.

    strace sees every message the process sends through a socket: with NOTIFY_SOCKET the same
    trace shows READY=1 and STATUS= (so the check can fail), without it none of them.
    """
    from tests.support.daemon import NotifySocket
    listener = NotifySocket(tree.work / "control.sock")
    try:
        with_socket = _traced_run(tree, {"NOTIFY_SOCKET": listener.path})
    finally:
        listener.close()
    assert "READY=1" in with_socket and "STATUS=" in with_socket, with_socket[-2000:]
    assert any("READY=1" in m for m in listener.messages)

    (tree.work / "videos.sqlite3").unlink()   # a fresh table: the next run must register anew
    without = _traced_run(tree, {})
    sent = [line for line in without.splitlines() if any(word in line for word in NOTIFY_WORDS)]
    assert sent == []


def test_reload_applies_a_changed_base_url(tree, start_service):
    config = tree.work / "live.toml"
    config.write_text('[urls]\nbase_url = "http://old.test/v"\n')
    env = {k: v for k, v in tree.env.items() if k != "NGINX_BASE_URL"}
    env["VFS_NOTIFIER_CONFIG"] = str(config)
    daemon = start_service(env)
    write_file(tree.root / "before.mp4")
    tree.table.wait_for(lambda rows: len(rows) == 1)
    config.write_text('[urls]\nbase_url = "http://new.test/v"\n')
    seen = len(daemon.notify.messages)
    daemon.signal(signal.SIGHUP)
    daemon.notify.wait_for("READY=1", after=seen)
    write_file(tree.root / "after.mp4")
    rows = tree.table.wait_for(lambda rows: len(rows) == 2)
    assert [r.url for r in rows] == ["http://old.test/v/videos/before.mp4", "http://new.test/v/videos/after.mp4"]


def test_a_broken_reload_keeps_the_running_settings(tree, start_service):
    config = tree.work / "live.toml"
    config.write_text("")
    daemon = start_service(VFS_NOTIFIER_CONFIG=str(config))
    config.write_text("[service]\nrescan_interval = 'often'\n")
    seen = len(daemon.notify.messages)
    daemon.signal(signal.SIGHUP)
    daemon.notify.wait_for("READY=1", after=seen)
    write_file(tree.root / "still.mp4")
    tree.table.wait_for_paths([tree.root / "still.mp4"])
    assert "reload refused" in daemon.log() and "service.rescan_interval: not a number" in daemon.log()


def test_second_root_uses_its_own_base_url(tree, start_service):
    storage = tree.base / "storage"
    storage.mkdir()
    start_service(STORAGE_PC_VIDEO_DIR=str(storage), STORAGE_PC_BASE_URL="http://storage.test/x")
    a, b = write_file(tree.root / "a.mp4"), write_file(storage / "b.mp4")
    rows = {r.path: r for r in tree.table.wait_for_paths([a, b])}
    assert rows[str(a)].url == f"{BASE_URL}/videos/a.mp4" and rows[str(a)].main_dir == str(tree.root)
    assert rows[str(b)].url == "http://storage.test/x/storage/b.mp4" and rows[str(b)].main_dir == str(storage)


def test_dated_log_file_holds_the_registrations(tree, start_service):
    daemon = start_service()
    write_file(tree.root / "logged.mp4")
    tree.table.wait_for_paths([tree.root / "logged.mp4"])
    daemon.stop()
    log_file = tree.work / "log" / (date.today().strftime("%d-%m-%Y") + "_vfs_tusker_notifier_videos.log")
    text = log_file.read_text()
    assert f"registered {tree.root}/logged.mp4 as {BASE_URL}/videos/logged.mp4" in text


def test_missing_root_is_waited_for(tree, start_service):
    shutil.rmtree(tree.root)
    daemon = start_service()
    assert "does not exist" in daemon.log()
    write_file(tree.root / "late.mp4", mtime_ago=30)
    tree.table.wait_for_paths([tree.root / "late.mp4"], timeout=15)


def test_a_long_first_walk_extends_the_start_timeout(tree, start_service):
    from tests.faults.helpers import aged_tree
    aged_tree(tree.root, 20000, subdirs=200)
    daemon = start_service(wait_ready=False)
    first = daemon.notify.wait_for("STATUS=Scanning", timeout=30)
    assert "EXTEND_TIMEOUT_USEC=30000000" in first
    daemon.wait_ready(timeout=120)


def test_a_hard_link_into_the_tree_is_registered(tree, start_service, tmp_path):
    outside = write_file(tmp_path / "elsewhere" / "linked.mp4", mtime_ago=600)
    start_service()
    os.link(outside, tree.root / "linked.mp4")
    tree.table.wait_for_paths([tree.root / "linked.mp4"], timeout=10)


@pytest.mark.skipif(can_mount_tmpfs() is not None, reason=can_mount_tmpfs() or "")   # the same right as a bind mount
def test_a_root_unmounted_and_mounted_again_keeps_its_rows(tree, start_service, tmp_path):
    disk = tmp_path / "disk"                 # what a mounted file system holds, kept across mounts
    files = [write_file(disk / f"m{i}.mp4", mtime_ago=600) for i in range(5)]
    mount = ["mount", "--bind", str(disk), str(tree.root)]
    subprocess.run(mount, check=True)
    try:
        daemon = start_service(VFS_NOTIFIER_RESCAN_INTERVAL="1")
        on_root = [tree.root / f.name for f in files]
        tree.table.wait_for_paths(on_root)
        subprocess.run(["umount", str(tree.root)], check=True)
        time.sleep(3)                        # rescans of the bare mount point forget nothing
        assert sorted(tree.table.paths()) == sorted(str(f) for f in on_root)
        subprocess.run(mount, check=True)
        on_root.append(write_file(tree.root / "after-remount.mp4"))
        tree.table.wait_for_paths(on_root, timeout=15)
        assert "unmounted" in daemon.log() and "another directory now" in daemon.log()
    finally:
        subprocess.run(["umount", str(tree.root)], check=False, stderr=subprocess.DEVNULL)
