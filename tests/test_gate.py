"""The gate, fed Change values directly, with the real judge and a registrar on real SQLite.

No daemon and no inotify: what the gate does with each kind of change, how walks are
charged to the turn's budget, and that nothing reaches the store but through the registrar.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.media import video_bytes
from vfs_notifier.gate import Budget, Gate
from vfs_notifier.judge import Judge, Names
from vfs_notifier.registrar import Registrar
from vfs_notifier.settings import Root
from vfs_notifier.store_sqlite import SQLiteStore
from vfs_notifier.watcher import (DIR_ARRIVED, DIR_LEFT, DIR_MOVED, FILE_ATTRIB, FILE_DONE, FILE_GONE,
                                  FILE_MOVED, Change)

EXTENSIONS = ("mp4", "avi", "mov", "mkv")


class World:
    def __init__(self, tmp_path: Path) -> None:
        base = tmp_path / "srv"
        self.root_dir = base / "videos"
        self.root_dir.mkdir(parents=True)
        self.db = str(tmp_path / "db.sqlite3")
        self.root = Root(path=str(self.root_dir), base_url="http://h/v", base_path=str(base))
        self.registrar = Registrar(SQLiteStore(self.db), [self.root], forget_removed=True)
        assert self.registrar.connect()
        self.judge = Judge(Names(EXTENSIONS), settle_seconds=0.3)
        self.gate = Gate((self.root,), EXTENSIONS, self.judge, self.registrar)

    def video(self, relative: str, kind: str = "mp4", data: bytes | None = None) -> Path:
        path = self.root_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(video_bytes(kind) if data is None else data)
        return path

    def run(self, *changes: Change, turns: int = 50) -> None:
        self.gate.accept(list(changes))
        for _ in range(turns):
            self.gate.step(Budget(0.05))
            self.registrar.flush()
            if not self.gate.busy and not self.registrar.pending:
                return

    def rows(self) -> dict[str, tuple[int, int]]:
        with sqlite3.connect(self.db) as conn:
            return {p: (i, s) for i, p, s in conn.execute("SELECT id, des_video_path, status FROM videos")}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_closed_complete_video_is_registered_in_one_turn(world):
    path = world.video("a.mp4")
    world.gate.accept([Change(FILE_DONE, str(path))])
    world.gate.step(Budget(0.05))
    world.registrar.flush()
    assert list(world.rows()) == [str(path)]


def test_a_truncated_video_is_held_with_a_reason_then_registered_when_finished(world):
    data = video_bytes("mp4")
    path = world.video("cut.mp4", data=data[: len(data) // 2])
    world.run(Change(FILE_DONE, str(path)))
    assert world.rows() == {} and str(path) in world.judge.held
    path.write_bytes(data)
    world.run(Change(FILE_DONE, str(path)))
    assert list(world.rows()) == [str(path)] and world.judge.held == {}


def test_hidden_and_temporary_names_never_reach_the_registrar(world):
    for name in (".x.mp4", ".~tmp~/y.mp4", "._Clip.MOV", "z.mp4.part"):
        world.run(Change(FILE_DONE, str(world.video(name))))
    assert world.rows() == {} and world.registrar.pending == 0


def test_an_aria2_download_is_judged_again_when_its_control_file_goes(world):
    data = video_bytes("mkv")
    path = world.video("dl.mkv", data=data)
    control = world.root_dir / "dl.mkv.aria2"
    control.write_bytes(b"aria2 control")
    world.run(Change(FILE_DONE, str(path)))
    assert world.rows() == {}
    control.unlink()
    world.run(Change(FILE_GONE, str(control)))
    assert list(world.rows()) == [str(path)]


def test_a_control_file_listed_by_a_walk_holds_its_download(world):
    held = world.video("show/dl.mp4")
    (world.root_dir / "show" / "dl.mp4.aria2").write_bytes(b"aria2 control")
    free = world.video("other/free.mp4")
    world.gate.reconcile(world.root)
    world.run()
    assert list(world.rows()) == [str(free)]
    assert "aria2c download in progress" in world.judge.held[str(held)]


def test_a_control_file_arriving_after_the_listing_holds_its_download(world):
    """A directory a walk listed without control files is known clean, until one arrives."""
    world.video("show/first.mp4")
    world.gate.reconcile(world.root)
    world.run()
    show = world.root_dir / "show"
    control = show / "dl.mkv.aria2"
    control.write_bytes(b"aria2 control")
    download = world.video("show/dl.mkv", "mkv")     # complete framing: only the control file says no
    world.run(Change(FILE_DONE, str(control)), Change(FILE_DONE, str(download)))
    assert str(download) not in world.rows()
    assert "aria2c download in progress" in world.judge.held[str(download)]
    control.unlink()
    world.run(Change(FILE_GONE, str(control)))
    assert str(download) in world.rows()


def test_a_walk_registers_and_a_rename_keeps_the_row(world):
    files = [world.video(f"show/{i}.avi", "avi") for i in range(30)]
    world.gate.reconcile(world.root)
    world.run()
    assert sorted(world.rows()) == sorted(map(str, files))
    before = world.rows()
    os.rename(world.root_dir / "show", world.root_dir / "renamed")
    world.run(Change(DIR_MOVED, str(world.root_dir / "renamed"), str(world.root_dir / "show")))
    after = world.rows()
    assert sorted(after.values()) == sorted(before.values())
    assert all("/renamed/" in p for p in after)
    os.rename(world.root_dir / "renamed" / "3.avi", world.root_dir / "three.avi")
    world.run(Change(FILE_MOVED, str(world.root_dir / "three.avi"), str(world.root_dir / "renamed" / "3.avi")))
    assert world.rows()[str(world.root_dir / "three.avi")] == before[str(world.root_dir / "show" / "3.avi")]


def test_a_file_renamed_before_its_queued_row_is_written_leaves_no_row_behind(world):
    a = world.video("a.mp4")
    world.gate.accept([Change(FILE_DONE, str(a))])
    world.gate.step(Budget(0.05))              # queued, not written yet
    b = world.root_dir / "b.mp4"
    os.rename(a, b)
    world.run(Change(FILE_MOVED, str(b), str(a)))
    assert list(world.rows()) == [str(b)]


def test_deleted_files_and_directories_lose_their_rows(world):
    keep, lone = world.video("keep.mp4"), world.video("lone.mp4")
    inner = [world.video(f"d/{i}.mov", "mov") for i in range(3)]
    world.gate.reconcile(world.root)
    world.run()
    lone.unlink()
    for f in inner:
        f.unlink()
    (world.root_dir / "d").rmdir()
    world.run(Change(FILE_GONE, str(lone)), Change(DIR_LEFT, str(world.root_dir / "d")))
    assert list(world.rows()) == [str(keep)]


def test_a_walk_is_charged_to_the_budget_and_resumes(world):
    data = video_bytes("mp4")
    for i in range(3000):
        (world.root_dir / f"{i % 30}").mkdir(exist_ok=True)
        (world.root_dir / f"{i % 30}" / f"{i}.mp4").write_bytes(data)
    world.gate.reconcile(world.root)
    turns = longest = 0
    while world.gate.busy or world.registrar.pending:
        started = time.monotonic()
        world.gate.step(Budget(0.02))
        world.registrar.flush()
        longest = max(longest, time.monotonic() - started)
        turns += 1
    assert len(world.rows()) == 3000
    assert turns > 3            # not one long turn
    # A rescan of the registered tree: no file is judged again, no row written.
    world.gate.reconcile(world.root)
    while world.gate.busy:
        world.gate.step(Budget(0.02))
    assert world.gate.counts.already >= 3000 and world.registrar.pending == 0


def test_an_unprovable_file_waits_for_stability_on_the_service_clock(world):
    data = video_bytes("fragmented")
    # Without its closing mfra index (its size is the file's last four bytes, in mfro), a
    # fragmented MP4 tiles exactly yet nothing marks the last fragment: framing cannot tell.
    data = data[:-int.from_bytes(data[-4:], "big")]
    path = world.video("frag.mp4", data=data)
    os.utime(path, (4102444800, 4102444800))    # 2100: a clock far ahead must not matter
    world.run(Change(FILE_DONE, str(path)), turns=1)
    assert world.rows() == {}
    deadline = time.monotonic() + 5
    while not world.rows() and time.monotonic() < deadline:
        world.run(turns=1)
        time.sleep(0.05)
    assert list(world.rows()) == [str(path)]


def test_an_attribute_change_judges_a_held_file_again(world):
    data = video_bytes("mp4")
    path = world.video("late.mp4", data=data[:100])
    world.run(Change(FILE_DONE, str(path)))
    assert str(path) in world.judge.held
    with open(path, "r+b") as handle:
        handle.write(data)
    world.run(Change(FILE_ATTRIB, str(path)))
    assert list(world.rows()) == [str(path)]


def test_nothing_is_walked_while_the_store_is_away(world):
    world.video("a.mp4")
    world.registrar.store.close()
    world.registrar.flush()            # notices nothing; the next write fails
    world.registrar.connected = False
    world.gate.reconcile(world.root)
    world.gate.step(Budget(0.05))
    assert world.gate.walking and world.registrar.queue == {}


def test_new_files_are_left_to_the_reconcile_while_the_store_is_away(world):
    """An outage: closed files are not judged (nothing could be written, and memory must stay
    flat however many arrive); the walk after reconnecting registers each one once."""
    world.registrar.store.close()
    world.registrar.connected = False
    done = world.video("during/done.mp4")
    cut = world.video("during/cut.mp4", data=video_bytes("mp4")[:-100])
    world.run(Change(FILE_DONE, str(done)), Change(FILE_DONE, str(cut)), turns=3)
    assert world.registrar.queue == {} and world.judge.held == {}
    world.registrar.retry_at = 0
    assert world.registrar.connect()
    world.gate.reconcile(world.root)   # what the service does on reconnecting
    world.run()
    assert list(world.rows()) == [str(done)] and list(world.judge.held) == [str(cut)]


def test_a_directory_arrived_is_walked_before_full_reconciles(world):
    world.gate.reconcile(world.root)
    new = world.video("new/x.mp4")
    world.gate.accept([Change(DIR_ARRIVED, str(new.parent))])
    assert world.gate.jobs[-1].full
    world.run()
    assert str(new) in world.rows()


# --- bursts: each file judged as it is when its turn comes ---------------------------

def test_a_burst_file_cut_after_its_close_is_judged_as_it_is_now(world):
    data = video_bytes("mp4")
    paths = [world.video(f"burst/{i:02d}.mp4", data=data) for i in range(40)]
    paths[5].write_bytes(data[:len(data) // 2])                # rewritten, cut
    world.run(*[Change(FILE_DONE, str(p)) for p in paths])
    assert str(paths[5]) not in world.rows() and str(paths[5]) in world.judge.held
    assert len(world.rows()) == 39


def test_a_burst_file_renamed_before_its_judging_is_registered_where_it_is(world):
    """Closed files of a burst are judged as they are when their turn comes (an lstat taken
    then), after the disk moved on."""
    paths = [world.video(f"burst/{i:02d}.mp4") for i in range(40)]
    moved = world.root_dir / "burst" / "renamed.mp4"
    os.rename(paths[7], moved)
    os.unlink(paths[8])
    world.run(*[Change(FILE_DONE, str(p)) for p in paths],
                Change(FILE_MOVED, str(moved), str(paths[7])), Change(FILE_GONE, str(paths[8])))
    expected = {str(p) for p in paths} - {str(paths[7]), str(paths[8])} | {str(moved)}
    assert set(world.rows()) == expected
