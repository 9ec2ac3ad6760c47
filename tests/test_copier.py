"""copier.py on real files: the queue, completions and failures, restarts, problems.

Disk problems are real ones: a full tmpfs (mounted here as root) and an immutable
directory (chattr +i, which stops even root), each fixed while the copier retries.
"""

from __future__ import annotations

import filecmp
import logging
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.capabilities import as_root, can_mount_tmpfs, skip_unless
from tests.support.video_files import large_video, small_video
from vfs_notifier.copier import Copier
from vfs_notifier.copy_file import TEMP_PREFIX


# A 600 MB source (long enough a copy to interrupt) and its copy, with room to spare.
BIG_AND_ITS_COPY_MB = 1300


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def wait_completed(copier: Copier, count: int, timeout: float = 60) -> list:
    done: list = []
    deadline = time.monotonic() + timeout
    while len(done) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(done)} of {count} copies completed; problems: {copier.problems}"
        select.select([copier.fileno()], [], [], min(left, 0.5))
        done += copier.completed()
    return done


@pytest.fixture
def copier_factory():
    made: list[Copier] = []

    def make(**options) -> Copier:
        made.append(Copier(**options))
        return made[-1]
    yield make
    for c in made:
        c.close()


def test_a_copier_cleans_before_it_copies_and_reports_completions(tmp_path, copier_factory):
    out = tmp_path / "out"
    stale = out / (TEMP_PREFIX + "x.mp4.deadbeef")
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    sources = [small_video(tmp_path / "in" / f"{i}.mp4") for i in range(5)]
    copier = copier_factory(clean_below=str(out))
    # The workers take nothing while the test holds their lock: on a fast disk (a tmpfs /tmp)
    # 0.mp4 was otherwise copied before it was submitted again, and made a second job.
    with copier._lock:
        for s in sources:
            assert copier.submit(str(s), str(out / s.name), s.name)
        assert copier.submit(str(sources[0]), str(out / sources[0].name), "again")   # one job, newest token
    done = wait_completed(copier, 5)
    assert sorted(token for token, _ in done) == ["1.mp4", "2.mp4", "3.mp4", "4.mp4", "again"]
    assert copier.pending == 0 and copier.failed() == []
    assert all(filecmp.cmp(s, out / s.name, shallow=False) for s in sources)
    assert temporaries(out) == []


def test_a_full_queue_refuses_more_and_keeps_failing_copies(tmp_path, copier_factory):
    source = small_video(tmp_path / "a.mp4")
    blocked = tmp_path / "a file, not a directory"
    blocked.write_text("")
    copier = copier_factory(limit=2, backoff_first=5)
    # Copies into a "directory" that is a file fail and wait for their retry: still pending.
    assert copier.submit(str(source), str(blocked / "1.mp4"), 1)
    assert copier.submit(str(source), str(blocked / "2.mp4"), 2)
    assert copier.full and not copier.submit(str(source), str(blocked / "3.mp4"), 3)
    assert copier.submit(str(source), str(blocked / "2.mp4"), "2 again")   # already queued: taken
    time.sleep(0.5)
    assert copier.pending == 2 and copier.completed() == [] and copier.failed() == []


def test_a_vanished_source_is_reported_failed_not_retried(tmp_path, copier_factory):
    copier = copier_factory()
    copier.submit(str(tmp_path / "gone.mp4"), str(tmp_path / "out" / "gone.mp4"), "t")
    deadline = time.monotonic() + 10
    failed: list = []
    while not failed and time.monotonic() < deadline:
        select.select([copier.fileno()], [], [], 0.5)
        copier.completed()
        failed = copier.failed()
    assert failed == [("t", "gone before it could be copied")] and copier.pending == 0


@pytest.mark.slow
def test_small_files_do_not_wait_behind_a_large_one(tmp_path, room_for, copier_factory):
    room_for(BIG_AND_ITS_COPY_MB, tmp_path / "in", tmp_path / "out")
    big = large_video(tmp_path / "in" / "big.mkv", 600)
    smalls = [small_video(tmp_path / "in" / f"s{i}.mp4") for i in range(3)]
    copier = copier_factory(small_bytes=8 * 1024 * 1024)
    out = tmp_path / "out"
    copier.submit(str(big), str(out / "big.mkv"), "big")
    time.sleep(0.05)   # the large one is being copied by the general worker
    for s in smalls:
        copier.submit(str(s), str(out / s.name), s.name)
    order = [token for token, _ in wait_completed(copier, 4, timeout=120)]
    assert order.index("big") == 3, order
    assert filecmp.cmp(big, out / "big.mkv", shallow=False)


@pytest.mark.slow
def test_close_in_the_middle_of_a_copy_leaves_no_temporary(tmp_path, room_for):
    room_for(BIG_AND_ITS_COPY_MB, tmp_path / "in", tmp_path / "out")
    big = large_video(tmp_path / "in" / "big.mkv", 600)
    out = tmp_path / "out"
    copier = Copier()
    copier.submit(str(big), str(out / "big.mkv"), "big")
    deadline = time.monotonic() + 30
    while not (out.exists() and temporaries(out)) and time.monotonic() < deadline:
        time.sleep(0.002)
    copier.close()
    assert temporaries(out) == []
    # Stopped mid-copy: no copy under the real name (or, on a fast disk, the whole one).
    assert not (out / "big.mkv").exists() or filecmp.cmp(big, out / "big.mkv", shallow=False)


@pytest.mark.slow
def test_a_full_disk_is_logged_once_retried_and_does_not_block_others(tmp_path, copier_factory, caplog):
    full = tmp_path / "full"
    full.mkdir()
    _mount_tmpfs(full, "1m")
    try:
        big = large_video(tmp_path / "in" / "big.mkv", 17)   # far more than the 1 MB tmpfs holds
        others = [small_video(tmp_path / "in" / f"o{i}.mp4", seconds=0.2) for i in range(3)]
        copier = copier_factory(backoff_first=0.2, backoff_max=0.5)
        with caplog.at_level(logging.DEBUG, logger="vfs_notifier"):
            copier.submit(str(big), str(full / "big.mkv"), "big")
            time.sleep(1.5)   # several failed attempts
            for o in others:
                copier.submit(str(o), str(full / o.name), o.name)
            done = wait_completed(copier, 3)
            assert sorted(t for t, _ in done) == ["o0.mp4", "o1.mp4", "o2.mp4"]
            lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(lines) == 1, lines
            assert "No space left on device" in lines[0] and str(big) in lines[0] and "MB free" in lines[0]
            assert copier.problems and copier.pending == 1
            assert temporaries(full) == []           # a failed attempt leaves nothing behind
            subprocess.run(["mount", "-o", "remount,size=64m", str(full)], check=True)
            assert [t for t, _ in wait_completed(copier, 1, timeout=30)] == ["big"]
        assert filecmp.cmp(big, full / "big.mkv", shallow=False)
        assert any("copying works again" in r.getMessage() for r in caplog.records)
        assert copier.problems == []
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)


@pytest.mark.slow
def test_a_directory_that_refuses_writes_is_retried_until_it_accepts(tmp_path, copier_factory, caplog):
    skip_unless(as_root("chattr +i"))
    out = tmp_path / "out"
    out.mkdir()
    if subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable flag (chattr +i)")
    try:
        source = small_video(tmp_path / "in" / "a.mp4")
        copier = copier_factory(backoff_first=0.2, backoff_max=0.5)
        with caplog.at_level(logging.INFO, logger="vfs_notifier"):
            copier.submit(str(source), str(out / "a.mp4"), "a")
            time.sleep(1.5)
            assert copier.completed() == [] and copier.pending == 1
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(errors) == 1 and "Operation not permitted" in errors[0], errors
        subprocess.run(["chattr", "-i", str(out)], check=True)
        assert [t for t, _ in wait_completed(copier, 1)] == ["a"]
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=False)


def _mount_tmpfs(directory: Path, size: str) -> None:
    skip_unless(can_mount_tmpfs())
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
