"""The looker: files read by a helper process, on real files, and what the judge makes of it.

A Look is evidence the judge may use only for the file it describes, unchanged; whatever the
helper does (answers late, dies, is never asked), no verdict may differ from the judge's own
reading of the file.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from tests.support.media import cut_video, preallocated_video, video_bytes, write_video
from tests.test_judge import hold_open_for_writing, release
from vfs_notifier.judge import FINISHED, HELD, Judge, Names, identity
from vfs_notifier.looker import Looker
from vfs_notifier.looker_process import look

EXTENSIONS = ("mp4", "avi", "mov", "mkv")


@pytest.fixture
def looker():
    handle = Looker()
    yield handle
    handle.close()


def read(looker: Looker, path: str):
    """The Look for `path`, waiting for the helper's answer."""
    looker.wait_for(path)
    return looker.take(path)


def judge() -> Judge:
    return Judge(Names(EXTENSIONS), settle_seconds=0.3)


@pytest.mark.parametrize("kind", ["mp4", "mov", "mkv", "avi"])
def test_a_look_says_what_the_judges_own_reading_says(tmp_path, looker, kind):
    whole = write_video(tmp_path / f"whole.{kind}", kind=kind)
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(cut_video(kind))
    zeros = tmp_path / f"zeros.{kind}"
    zeros.write_bytes(preallocated_video(kind))
    for path in (whole, cut, zeros):
        assert looker.ask(str(path))
    for path in (whole, cut, zeros):
        look = read(looker, str(path))
        assert look is not None and look.identity == identity(os.lstat(path))
        mine = judge().judge_file(str(path), path.name, closed=True)
        theirs = judge().judge_file(str(path), path.name, closed=True, look=look)
        assert (theirs.state, theirs.reason) == (mine.state, mine.reason)
    assert judge().judge_file(str(whole), whole.name, True, look=read(looker, str(whole))).state == FINISHED
    assert looker.taken == 3


def test_a_file_changed_after_its_look_is_read_again_by_the_judge(tmp_path, looker):
    path = tmp_path / "grown.mp4"
    data = video_bytes("mp4")
    path.write_bytes(data[:len(data) // 2])
    looker.ask(str(path))
    look = read(looker, str(path))
    assert look is not None and look.complete is False       # the half file, as read
    path.write_bytes(data)                                     # finished since
    verdict = judge().judge_file(str(path), path.name, closed=True, look=look)
    assert verdict.state == FINISHED, verdict                 # the judge read it itself

    path.write_bytes(data[:len(data) // 2])                   # and the other way round
    assert judge().judge_file(str(path), path.name, True, look=look).state == HELD


def test_a_writer_that_holds_the_file_is_in_the_look(tmp_path, looker):
    path = write_video(tmp_path / "paused.mp4")
    writer = hold_open_for_writing(path)
    try:
        looker.ask(str(path))
        look = read(looker, str(path))
    finally:
        release(writer)
    assert look is not None and look.writer is True
    verdict = judge().judge_file(str(path), path.name, closed=True, look=look)
    assert verdict[:2] == (HELD, "open for writing")


def test_what_was_not_asked_or_cannot_be_read_has_no_look(tmp_path, looker):
    assert read(looker, str(tmp_path / "never asked.mp4")) is None
    os.mkfifo(tmp_path / "fifo.mp4")
    for name in ("missing.mp4", "fifo.mp4"):
        assert looker.ask(str(tmp_path / name))
        assert read(looker, str(tmp_path / name)) is None   # not read: the judge looks itself
    assert looker.taken == 0 and not looker.broken


def test_odd_names_travel_intact(tmp_path, looker):
    names = ["été – prise #1.mp4", "tab\there.mp4", "new\nline.mp4", "日本語.mkv", " lead and trail .avi"]
    for name in names:
        write_video(tmp_path / name, kind=name.rpartition(".")[2])
        assert looker.ask(str(tmp_path / name))
    for name in names:
        look = read(looker, str(tmp_path / name))
        assert look is not None and look.complete is True, name


def test_a_helper_that_dies_costs_speed_not_files(tmp_path, looker, caplog):
    paths = [write_video(tmp_path / f"{i}.mp4") for i in range(40)]
    assert looker.ask(str(paths[0]))
    assert read(looker, str(paths[0])) is not None
    os.kill(looker.proc.pid, signal.SIGKILL)
    looker.proc.wait()
    with caplog.at_level(logging.WARNING, logger="vfs_notifier"):
        for path in paths[1:]:
            looker.ask(str(path))
        for path in paths[1:]:
            look = read(looker, str(path))
            assert look is None
            # The judge reads every file itself from now on.
            assert judge().judge_file(str(path), path.name, closed=True, look=look).state == FINISHED
    assert looker.broken
    assert looker.ask(str(paths[0])) is False
    assert sum("framing reader process failed" in r.getMessage() for r in caplog.records) == 1


def test_many_files_under_way_never_block_the_loop(tmp_path, looker):
    """Far more asked than a pipe holds, none taken: what is under way stays within the pipe
    (a write never waits on a helper that may itself wait for its answers to be read)."""
    long_name = str(write_video(tmp_path / ("d" * 200) / ("f" * 200 + ".mp4")))
    signal.alarm(60)       # a deadlock fails the test instead of hanging the suite
    try:
        assert looker.ask(long_name)
        for i in range(20000):    # names of 400 characters that are not there: answered None
            looker.ask(f"{long_name[:-4]} {i:05d}.mp4")
            assert looker._unanswered + looker._batch_bytes <= looker._pipe_bytes
        assert read(looker, long_name) is not None
        assert read(looker, f"{long_name[:-4]} 19999.mp4") is None
    finally:
        signal.alarm(0)
    assert not looker.broken


def test_the_helper_exits_when_the_loop_closes_it(tmp_path):
    handle = Looker()
    assert handle.ask(str(write_video(tmp_path / "a.mp4")))
    proc = handle.proc
    handle.close()
    assert proc.poll() == 0


def test_an_idle_helper_is_stopped_and_started_again_when_needed(tmp_path, looker):
    first, second = write_video(tmp_path / "a.mp4"), write_video(tmp_path / "b.mp4")
    assert looker.ask(str(first))
    helper = looker.proc
    looker.stop_if_idle(time.monotonic())                  # in use: kept
    assert looker.proc is helper
    assert read(looker, str(first)) is not None
    looker.stop_if_idle(looker.stop_due() - 0.1)            # not idle long enough: kept
    assert looker.proc is helper
    looker.stop_if_idle(looker.stop_due())
    assert looker.proc is None and helper.poll() == 0 and looker.stop_due() is None
    assert looker.ask(str(second))                          # the next burst starts another
    assert read(looker, str(second)) is not None
    assert looker.started == 2 and not looker.broken


def test_the_loop_does_not_wait_on_a_helper_behind_it(tmp_path, looker):
    """A file whose answer is not in yet is read by the judge itself (take without waiting);
    the helper's answer, when it comes, is dropped, never handed out for a later take."""
    path = write_video(tmp_path / "a.mp4")
    assert looker.ask(str(write_video(tmp_path / "warm-up.mp4")))
    assert read(looker, str(tmp_path / "warm-up.mp4")) is not None
    os.kill(looker.proc.pid, signal.SIGSTOP)        # a helper that fell behind
    try:
        assert looker.ask(str(path))
        looker.send()
        started = time.monotonic()
        assert looker.take(str(path)) is None
        assert time.monotonic() - started < 0.5
        assert judge().judge_file(str(path), path.name, closed=True).state == FINISHED
    finally:
        os.kill(looker.proc.pid, signal.SIGCONT)
    while looker.backlog:
        looker._receive(block=True)
    assert looker.unused == 1 and looker.take(str(path)) is None


def test_the_helper_is_a_small_process(tmp_path, looker):
    path = str(write_video(tmp_path / "a.mp4"))
    assert looker.ask(path)
    assert read(looker, path) is not None         # running: it has answered
    status = open(f"/proc/{looker.proc.pid}/status").read()
    argv = open(f"/proc/{looker.proc.pid}/cmdline").read().split("\0")
    assert "-S" in argv                                     # no site packages imported
    rss_kb = int(status.split("VmRSS:")[1].split()[0])
    assert rss_kb < 16 * 1024, rss_kb


def test_look_reads_a_file_in_this_process_too(tmp_path):
    path = write_video(tmp_path / "a.mkv")
    found = look(str(path))
    assert found is not None and found[1] is True and found[0] == identity(os.lstat(path))
    assert look(str(tmp_path)) is None and look(str(tmp_path / "missing.mkv")) is None

