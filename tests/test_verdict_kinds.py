"""The kind of a judge's verdict: what ends a hold (the clock alone, or evidence), told by the
judge itself rather than by the words of its reason; and the hard-link rule for new files."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.media import write_video
from vfs_notifier.judge import (FINISHED, GONE, HELD, HELD_INCOMPLETE, HELD_SETTLING, NOT_CANDIDATE,
                                Judge, Names, whole_on_creation)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_settling_then_finished_by_kind(tmp_path: Path) -> None:
    clock = Clock()
    judge = Judge(Names(("mp4",)), check_structure=False, settle_seconds=2.0, clock=clock)
    path = tmp_path / "a.mp4"
    write_video(path)
    first = judge.judge(str(path), "a.mp4", closed=False)
    assert (first.state, first.kind, first.settling) == (HELD, HELD_SETTLING, True), first
    assert judge.settling == {str(path)} and judge.kind_of(str(path)) == HELD_SETTLING
    clock.now += 2.5
    done = judge.judge(str(path), "a.mp4", closed=False)
    assert (done.state, done.kind) == (FINISHED, FINISHED), done
    assert judge.settling == set() and judge.kind_of(str(path)) is None


def test_incomplete_is_no_settling(tmp_path: Path) -> None:
    judge = Judge(Names(("mp4",)), check_structure=True, settle_seconds=2.0, clock=Clock())
    path = tmp_path / "cut.mp4"
    write_video(path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    verdict = judge.judge(str(path), "cut.mp4", closed=True)
    assert (verdict.state, verdict.kind, verdict.settling) == (HELD, HELD_INCOMPLETE, False), verdict
    assert judge.kind_of(str(path)) == HELD_INCOMPLETE and judge.settling == set()


def test_settling_forgotten_below_a_directory(tmp_path: Path) -> None:
    judge = Judge(Names(("mp4",)), check_structure=False, settle_seconds=2.0, clock=Clock())
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "a.mp4"
    write_video(path)
    assert judge.judge(str(path), "d/a.mp4", closed=False).kind == HELD_SETTLING
    judge.forget_below(str(tmp_path / "d"))
    assert judge.settling == set() and judge.held == {}


def test_kinds_of_no_file(tmp_path: Path) -> None:
    judge = Judge(Names(("mp4",)), clock=Clock())
    assert judge.judge(str(tmp_path / "x.mp4.part"), "x.mp4.part", True).kind == NOT_CANDIDATE
    assert judge.judge(str(tmp_path / "gone.mp4"), "gone.mp4", True).kind == GONE


def test_whole_on_creation_only_for_a_hard_link(tmp_path: Path) -> None:
    first = tmp_path / "a.mp4"
    write_video(first)
    assert not whole_on_creation(str(first))
    os.link(first, tmp_path / "b.mp4")
    assert whole_on_creation(str(tmp_path / "b.mp4"))
    assert not whole_on_creation(str(tmp_path / "none.mp4"))
