"""The earlier service's .env, verbatim, in both registration modes (issue 11).

Its CLIENT_VIDEO_DIR and INTERNAL_VIDEO_FOLDER_PATH are two different directories: the
first is watched, always; the second is unused in place (the default, with one warning)
and is where copy mode copies each finished video before its row names the copy.
Real service process, real inotify, real MariaDB and SQLite, real ffmpeg-made videos.
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BASE_URL
from tests.support.capabilities import can_mount_tmpfs, skip_unless
from tests.support.video_files import large_video, small_video
from vfs_notifier.copy_file import TEMP_PREFIX

# The earlier service's .env as its README documents it, with this test's directories.
EARLIER_ENV = """\
# Logging Configuration
LOG_BASE_DIRECTORY={log}

# MySQL Database Configuration
MYSQL_USER={MYSQL_USER}
MYSQL_PASS={MYSQL_PASS}
MYSQL_HOST={MYSQL_HOST}
MYSQL_PORT={MYSQL_PORT}
MYSQL_DB_NAME={MYSQL_DB_NAME}

# Video Directories
CLIENT_VIDEO_DIR={client}
INTERNAL_VIDEO_FOLDER_PATH={internal}

# URL Configuration
NGINX_BASE_URL={url}
NGINX_INTERNAL_PATH={base}
BASE_PATH={base}

# Optional Configuration
FOLDER_POLL_INTERVAL=1
STORAGE_PC_VIDEO_DIR=
STORAGE_PC_BASE_URL=
"""


def earlier_env(tree, **mode: str) -> dict[str, str]:
    """tree.env replaced by the earlier .env (read as `KEY=value` lines, as systemd and compose
    read it); the store stays the fixture's (MariaDB, or SQLite when MYSQL_HOST is empty)."""
    internal = tree.base / "internal"
    text = EARLIER_ENV.format(log=tree.work / "log", client=tree.root, internal=internal, url=BASE_URL,
                              base=tree.base, **{k: tree.env.get(k, "") for k in
                                                 ("MYSQL_USER", "MYSQL_PASS", "MYSQL_HOST", "MYSQL_PORT",
                                                  "MYSQL_DB_NAME")})
    env = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    if not env["MYSQL_HOST"]:
        env["MYSQL_PORT"] = "3306"   # an .env for the embedded store keeps a valid port line
    env.update(VFS_NOTIFIER_CONFIG=tree.env["VFS_NOTIFIER_CONFIG"],
               VFS_NOTIFIER_SQLITE_PATH=tree.env["VFS_NOTIFIER_SQLITE_PATH"], **mode)
    tree.env = env
    return env


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)] if directory.exists() else []


def arrive(tree, path: Path, make) -> Path:
    """Make a video outside the watched tree and rename it in whole, as an upload tool does."""
    made = make(tree.work / "staging" / path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.rename(made, path)
    return path


def test_in_place_watches_client_video_dir_and_says_internal_is_unused(store_tree, start_service):
    tree = store_tree
    env = earlier_env(tree)
    internal = Path(env["INTERNAL_VIDEO_FOLDER_PATH"])
    internal.mkdir()
    before = small_video(tree.root / "before.mp4", mtime_ago=3600)
    daemon = start_service()
    new = arrive(tree, tree.root / "sub dir" / "new #1.mkv", small_video)
    ignored = arrive(tree, internal / "not watched.mp4", small_video)
    rows = tree.table.wait_for_paths([before, new])
    by_path = {r.path: r for r in rows}
    assert by_path[str(before)] == (str(tree.root), str(before), f"{BASE_URL}/videos/before.mp4", 1)
    assert by_path[str(new)].url == f"{BASE_URL}/videos/sub%20dir/new%20%231.mkv"
    assert by_path[str(new)].main_dir == str(tree.root)
    time.sleep(1.5)
    assert str(ignored) not in tree.table.paths() and len(tree.table.rows()) == 2
    assert daemon.log().count("INTERNAL_VIDEO_FOLDER_PATH is set") == 1
    assert "unused: registration.mode is in-place" in daemon.log()


def test_copy_mode_registers_byte_identical_copies_once(store_tree, start_service):
    tree = store_tree
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    internal = Path(env["INTERNAL_VIDEO_FOLDER_PATH"])      # made by the service
    before = small_video(tree.root / "old" / "before.mp4", mtime_ago=3600)
    daemon = start_service()
    new = arrive(tree, tree.root / "sub dir" / "new #1.mkv", small_video)
    copies = [internal / "old" / "before.mp4", internal / "sub dir" / "new #1.mkv"]
    rows = tree.table.wait_for_paths(copies)
    by_path = {r.path: r for r in rows}
    assert by_path[str(copies[0])] == (str(tree.root), str(copies[0]), f"{BASE_URL}/internal/old/before.mp4", 1)
    assert by_path[str(copies[1])].url == f"{BASE_URL}/internal/sub%20dir/new%20%231.mkv"
    assert by_path[str(copies[1])].main_dir == str(tree.root)
    for source, copy in zip([before, new], copies):
        assert filecmp.cmp(source, copy, shallow=False)
        assert copy.stat().st_mtime_ns == source.stat().st_mtime_ns
    assert temporaries(internal) == [] and "is set" not in daemon.log()

    # A restart registers nothing twice; a source the client removes keeps its copy and row.
    daemon.stop()
    new.unlink()
    daemon = start_service()
    third = arrive(tree, tree.root / "third.avi", small_video)
    rows = tree.table.wait_for_paths([*copies, internal / "third.avi"])
    assert filecmp.cmp(third, internal / "third.avi", shallow=False)
    time.sleep(1.5)
    assert len(tree.table.rows()) == 3 and copies[1].exists()


def test_sigkill_in_the_middle_of_a_copy_registers_it_once_after_restart(store_tree, room_for, start_service):
    tree = store_tree
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    internal = Path(env["INTERNAL_VIDEO_FOLDER_PATH"])
    # A 600 MB source (long enough a copy to SIGKILL it midway) and its copy.
    room_for(1300, tree.work / "staging", tree.root / "big.mkv", internal)
    daemon = start_service()
    big = arrive(tree, tree.root / "big.mkv", lambda p: large_video(p, 600))
    deadline = time.monotonic() + 60
    while not temporaries(internal):
        assert time.monotonic() < deadline, f"no copy began:\n{daemon.log()}"
        time.sleep(0.002)
    daemon.kill()                                   # SIGKILL, mid-copy
    (temp,) = temporaries(internal)
    assert temp.stat().st_size < big.stat().st_size   # a half copy, left behind
    assert tree.table.rows() == [] and not (internal / "big.mkv").exists()

    daemon = start_service()
    tree.table.wait_for_paths([internal / "big.mkv"], timeout=120)
    assert filecmp.cmp(big, internal / "big.mkv", shallow=False)
    assert temporaries(internal) == []
    assert "removed 1 temporary copies" in daemon.log()
    time.sleep(1.5)
    assert len(tree.table.rows()) == 1


def test_a_full_destination_is_reported_and_recovers_when_space_returns(tree, start_service):
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    internal = Path(env["INTERNAL_VIDEO_FOLDER_PATH"])
    internal.mkdir()
    skip_unless(can_mount_tmpfs())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(internal)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        daemon = start_service()
        big = arrive(tree, tree.root / "big.mkv", lambda p: large_video(p, 17))    # 17 MB into 1 MB
        deadline = time.monotonic() + 30
        while "No space left on device" not in daemon.log():
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.1)
        small = arrive(tree, tree.root / "small.mp4", small_video)               # fits: not held up
        tree.table.wait_for_paths([internal / "small.mp4"])
        assert daemon.log().count("No space left on device") == 1
        assert temporaries(internal) == []

        subprocess.run(["mount", "-o", "remount,size=64m", str(internal)], check=True)
        tree.table.wait_for_paths([internal / "small.mp4", internal / "big.mkv"], timeout=60)
        assert filecmp.cmp(big, internal / "big.mkv", shallow=False)
        assert filecmp.cmp(small, internal / "small.mp4", shallow=False)
        assert "copying works again" in daemon.log()
        daemon.stop()
    finally:
        subprocess.run(["umount", "-l", str(internal)], check=False)


def test_check_config_shows_where_copies_go(tree):
    from tests.support.daemon import run_cli
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    shown = run_cli("check-config", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "registration.copy_to" in shown.stdout and "environment (INTERNAL_VIDEO_FOLDER_PATH)" in shown.stdout
    assert f"{tree.root}/example.mp4 -> copied to {tree.base}/internal/example.mp4 -> " \
           f"{BASE_URL}/internal/example.mp4" in shown.stdout
    in_place = run_cli("check-config", env={**env, "VFS_NOTIFIER_REGISTRATION_MODE": "in-place"})
    assert "warning: INTERNAL_VIDEO_FOLDER_PATH is set" in in_place.stdout


def test_copy_mode_refuses_a_destination_inside_the_watched_directory(tree):
    from tests.support.daemon import run_cli
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    env["INTERNAL_VIDEO_FOLDER_PATH"] = str(tree.root / "internal")
    refused = run_cli("run", env=env)
    assert refused.returncode == 78
    assert refused.stderr.strip().endswith(f"INTERNAL_VIDEO_FOLDER_PATH: {tree.root}/internal lies inside the "
                                           f"watched directory {tree.root}: copies would be seen as new files "
                                           f"(from environment)")


def test_copy_mode_survives_a_reload(tree, start_service):
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    internal = Path(env["INTERNAL_VIDEO_FOLDER_PATH"])
    daemon = start_service()
    arrive(tree, tree.root / "a.mp4", small_video)
    tree.table.wait_for_paths([internal / "a.mp4"])
    seen = len(daemon.notify.messages)
    daemon.signal(signal.SIGHUP)
    daemon.notify.wait_for("READY=1", after=seen)
    arrive(tree, tree.root / "b.mp4", small_video)
    tree.table.wait_for_paths([internal / "a.mp4", internal / "b.mp4"])
    assert daemon.stop() == 0


def test_scan_in_copy_mode_copies_then_registers(store_tree):
    from tests.support.daemon import run_cli
    tree = store_tree
    env = earlier_env(tree, VFS_NOTIFIER_REGISTRATION_MODE="copy")
    internal = Path(env["INTERNAL_VIDEO_FOLDER_PATH"])
    sources = [small_video(tree.root / f"{i}.mp4", mtime_ago=60) for i in range(3)]
    done = run_cli("scan", env=env)
    assert done.returncode == 0, done.stderr
    assert "found 3, newly registered 3" in done.stdout
    tree.table.wait_for_paths([internal / s.name for s in sources], timeout=5)
    again = run_cli("scan", env=env)
    assert "newly registered 0, already registered 3" in again.stdout
    assert len(tree.table.rows()) == 3 and temporaries(internal) == []
