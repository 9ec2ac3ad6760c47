"""store_sqlite/leases.py on real files and real flock()s: two Claims on one database are two
instances (flock() locks belong to open files, so they exclude each other in one process too)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.capabilities import can_mount_tmpfs, skip_unless
from vfs_notifier.store import Lease, holder
from vfs_notifier.store_sqlite.leases import Claims


@pytest.fixture
def claims(tmp_path: Path):
    made: list[Claims] = []

    def make(database: Path = tmp_path / "db" / "videos.sqlite3") -> Claims:
        made.append(Claims(str(database)))
        return made[-1]
    yield make
    for c in made:
        c.release_all()


def test_a_root_held_by_one_is_refused_to_the_other_who_is_told_the_holder(claims):
    first, second = claims(), claims()
    assert first.take("/srv/a") == Lease(1, "") and first.holds("/srv/a")
    assert first.take("/srv/a") == Lease(1, "")                    # kept, not taken again
    assert second.take("/srv/a") == Lease(0, holder()) and not second.holds("/srv/a")
    assert second.take("/srv/b") == Lease(1, "")                   # one lock file a root


def test_a_release_keeps_the_file_empties_it_and_frees_the_root(claims):
    first, second = claims(), claims()
    first.take("/srv/a")
    path = Path(first.path("/srv/a"))
    assert path.read_text() == holder() + "\n"
    first.release("/srv/a")
    assert path.exists() and path.read_bytes() == b"" and not first.holds("/srv/a")
    assert second.take("/srv/a").token == 1
    first.release("/srv/never")                                    # nothing held: nothing to do


def test_a_removed_lock_file_is_a_lost_root_and_the_next_take_locks_a_new_one(claims):
    first, second = claims(), claims()
    first.take("/srv/a")
    os.unlink(first.path("/srv/a"))
    assert not first.holds("/srv/a")
    assert second.take("/srv/a").token == 1                        # a new file, free
    assert first.take("/srv/a").token == 0                         # and this one lost it


def test_release_all_frees_every_root(claims):
    first, second = claims(), claims()
    for root in ("/srv/a", "/srv/b"):
        first.take(root)
    first.release_all()
    assert [second.take(root).token for root in ("/srv/a", "/srv/b")] == [1, 1]


def test_a_full_disk_cannot_cost_a_lease_taken(tmp_path: Path, claims):
    """The holder's name cannot be written on a full disk; the flock is the lease all the same."""
    skip_unless(can_mount_tmpfs())
    full = tmp_path / "full"
    full.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(full)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        first, second = claims(full / "videos.sqlite3"), claims(full / "videos.sqlite3")
        fd = os.open(full / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass                                                   # full
        finally:
            os.close(fd)
        assert first.take("/srv/a") == Lease(1, "") and first.holds("/srv/a")
        assert Path(first.path("/srv/a")).read_bytes() == b""         # the name did not fit
        assert second.take("/srv/a") == Lease(0, "another instance")
        first.release_all()
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)
