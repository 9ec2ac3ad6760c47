"""judge.Names and judge.Judge against real files: real containers made by ffmpeg, cut and
preallocated copies, real writers holding files open in another process, a fake monotonic
clock for the settle window (never the wall clock: future and 1970 mtimes behave alike)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.capabilities import as_root, skip_unless
from tests.support.media import video_bytes, write_video
from vfs_notifier.judge import (FINISHED, GONE, HELD, NOT_CANDIDATE, RELEASE_HINT, RELEASE_XATTR, Judge,
                                Names, download_target, open_writer)
from vfs_notifier.judge import release as release_file

VIDEOS = ("mp4", "avi", "mov", "mkv")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def judge(clock: Clock) -> Judge:
    return Judge(Names(VIDEOS), check_structure=True, settle_seconds=2.0, clock=clock)


def ask(judge: Judge, root: Path, relative: str, closed: bool = True):
    return judge.judge(str(root / relative), relative, closed)


# --- names ------------------------------------------------------------------------------

@pytest.mark.parametrize("relative, why", [
    (".clip.mp4.Xa81Qz", "a hidden file"),                          # rsync's temporary name
    ("._Clip.MOV", "a hidden file"),                                # macOS resource fork
    (".mp4", "a hidden file"),
    ("show/.~tmp~/ep1.mp4", "inside the hidden directory .~tmp~"),  # rsync --delay-updates
    (".rsync-partial/big.mkv", "inside the hidden directory .rsync-partial"),
    (".Trash-1000/files/old.avi", "inside the hidden directory .Trash-1000"),
    ("movie.mp4.part", "a partial download's name (.part)"),
    ("movie.MP4.PARTIAL", "a partial download's name (.partial)"),
    ("movie.mp4.crdownload", "a partial download's name (.crdownload)"),
    ("movie.mp4.download", "a partial download's name (.download)"),
    ("movie.mp4.aria2", "a partial download's name (.aria2)"),
    ("movie.mp4.filepart", "a partial download's name (.filepart)"),
    ("movie.mp4.tmp", "a partial download's name (.tmp)"),
    ("movie.mp4~", "a partial download's name (~)"),
    ("readme.txt", "not a video file name"),
    ("mp4", "not a video file name"),
    ("folder.mp4/notes", "not a video file name"),
])
def test_names_that_are_not_candidates(relative, why):
    assert Names(VIDEOS).not_candidate(relative) == why


@pytest.mark.parametrize("relative", [
    "a.mp4", "UPPER.MOV", "sub dir/x.Mkv", "a.part.mp4", "x.temp.mp4", "~tilde.avi",
    "dots...mp4", "a/b/c/d.avi", "trailing space .mp4",
])
def test_names_that_are_candidates(relative):
    assert Names(VIDEOS).not_candidate(relative) is None


def test_ignore_globs_match_the_relative_path_or_the_name():
    names = Names(VIDEOS, ignore=["*.sample.mp4", "incoming/*", "proxy-*"])
    assert names.not_candidate("film.sample.mp4") == "ignored by the pattern '*.sample.mp4'"
    assert names.not_candidate("a/b/film.sample.mp4") == "ignored by the pattern '*.sample.mp4'"
    assert names.not_candidate("incoming/deep/x.mp4") == "ignored by the pattern 'incoming/*'"
    assert names.not_candidate("show/proxy-1.mov") == "ignored by the pattern 'proxy-*'"
    assert names.not_candidate("show/incoming/x.mp4") is None
    assert names.not_candidate("film.mp4") is None


def test_extensions_are_compared_in_any_case_and_configurable():
    names = Names(["MP4", ".webm"])
    assert names.not_candidate("a.mp4") is None and names.not_candidate("a.WEBM") is None
    assert names.not_candidate("a.mkv") == "not a video file name"


def test_download_target():
    assert download_target("/srv/v/a.mp4.aria2") == "/srv/v/a.mp4"
    assert download_target("/srv/v/a.mp4.lftp-pget-status") == "/srv/v/a.mp4"
    assert download_target("/srv/v/a.mp4") is None
    assert download_target("/srv/v/.aria2") is None


# --- structure: finished at once, or held with the reason ------------------------------

@pytest.mark.parametrize("kind, name", [
    ("mp4", "a.mp4"), ("mov", "a.mov"), ("mkv", "a.mkv"), ("avi", "a.avi"),
    ("faststart", "fast.mp4"), ("fragmented", "frag.mp4"),
])
def test_complete_closed_files_finish_at_once(judge, tmp_path, kind, name):
    write_video(tmp_path / name, kind=kind)
    verdict = ask(judge, tmp_path, name)
    assert verdict.state == FINISHED, verdict
    assert verdict.stat is not None and verdict.stat.st_size == len(video_bytes(kind))
    assert judge.held == {} and judge.next_due() is None


@pytest.mark.parametrize("name", ["a.mp4", "a.mov", "a.mkv", "a.avi"])
def test_truncated_files_are_held_with_the_reason_until_complete(judge, tmp_path, name):
    data = video_bytes(name.rsplit(".")[1])
    path = write_video(tmp_path / name, data=data[:len(data) // 2])
    verdict = ask(judge, tmp_path, name)
    assert verdict.state == HELD and verdict.reason.startswith(("truncated", "no moov")), verdict
    assert judge.held == {str(path): verdict.reason}
    assert judge.next_due() is None                 # nothing to wait for: the next event decides
    with open(path, "ab") as handle:                # the transfer resumes and ends
        handle.write(data[len(data) // 2:])
    assert ask(judge, tmp_path, name).state == FINISHED
    assert judge.held == {}


def test_reason_has_thousands_separators(judge, tmp_path):
    data = video_bytes("mp4")
    write_video(tmp_path / "a.mp4", data=data[:1000])
    assert ask(judge, tmp_path, "a.mp4").reason == \
        "truncated: mdat declares 1,874 bytes, 960 present" + RELEASE_HINT


def test_a_held_file_the_operator_releases_is_finished_while_its_size_stays(judge, tmp_path):
    """A file that plays but whose framing is odd would be held for ever: its reason tells
    how to let this one file through, and `release` does, for the size it had then."""
    data = video_bytes("mp4")
    path = write_video(tmp_path / "odd.mp4", data=data[:1000])
    held = ask(judge, tmp_path, "odd.mp4")
    assert held.state == HELD and held.reason.endswith("vfs-notifier release FILE"), held
    assert release_file(str(path)) == 1000
    assert os.getxattr(path, RELEASE_XATTR) == b"1000"
    verdict = ask(judge, tmp_path, "odd.mp4")
    assert verdict.state == FINISHED and verdict.reason.startswith("released by the operator"), verdict
    assert judge.held == {}
    with open(path, "ab") as handle:                # it changed since: judged afresh
        handle.write(data[1000:1200])
    assert ask(judge, tmp_path, "odd.mp4").state == HELD
    assert ask(judge, tmp_path, "ok.mp4").state == GONE
    os.setxattr(write_video(tmp_path / "ok.mp4"), RELEASE_XATTR, b"1")   # a mark on a good file: no matter
    assert ask(judge, tmp_path, "ok.mp4").state == FINISHED


def test_zero_filled_preallocation_is_held(judge, tmp_path):
    data = video_bytes("mp4")
    write_video(tmp_path / "a.mp4", data=data[:1000] + b"\0" * (len(data) - 1000))
    verdict = ask(judge, tmp_path, "a.mp4")
    assert verdict.state == HELD and "zero-filled" in verdict.reason


def test_aria2_control_file_holds_the_download_until_it_goes(judge, tmp_path):
    path = write_video(tmp_path / "dl.mp4")            # complete bytes: the control file decides
    control = tmp_path / "dl.mp4.aria2"
    control.write_bytes(b"\0\1aria2 control")
    verdict = ask(judge, tmp_path, "dl.mp4")
    assert verdict == (HELD, "aria2c download in progress (dl.mp4.aria2 beside it)", verdict.stat)
    assert str(path) in judge.held
    assert ask(judge, tmp_path, "dl.mp4.aria2").state == NOT_CANDIDATE
    control.unlink()
    assert ask(judge, tmp_path, download_target("dl.mp4.aria2")).state == FINISHED


def test_lftp_pget_status_file_holds_the_download_until_it_goes(judge, tmp_path):
    """`lftp pget -n N` makes the file full size and fills N ranges at once, keeping
    NAME.lftp-pget-status beside it until the last range is in."""
    path = write_video(tmp_path / "dl.mkv")
    status = tmp_path / "dl.mkv.lftp-pget-status"
    status.write_text("size=100\n0.pos=0\n0.limit=50\n")
    verdict = ask(judge, tmp_path, "dl.mkv")
    assert verdict == (HELD, "lftp pget download in progress (dl.mkv.lftp-pget-status beside it)",
                       verdict.stat)
    assert ask(judge, tmp_path, "dl.mkv.lftp-pget-status").reason == \
        "a partial download's name (.lftp-pget-status)"
    # A walk's listing saw it (control=True): still held, with the tool named.
    verdict = judge.judge_file(str(path), "dl.mkv", closed=False, control=True)
    assert verdict.state == HELD and "lftp pget" in verdict.reason
    status.unlink()
    assert ask(judge, tmp_path, "dl.mkv").state == FINISHED


def test_empty_gone_and_not_regular(judge, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert ask(judge, tmp_path, "empty.mp4")[:2] == (HELD, "empty")
    (tmp_path / "empty.mp4").unlink()
    assert ask(judge, tmp_path, "empty.mp4")[:2] == (GONE, "gone")
    assert judge.held == {}
    (tmp_path / "dir.mp4").mkdir()
    assert ask(judge, tmp_path, "dir.mp4")[:2] == (NOT_CANDIDATE, "not a regular file")
    os.symlink(write_video(tmp_path / "real.mp4"), tmp_path / "link.mp4")
    assert ask(judge, tmp_path, "link.mp4")[:2] == (NOT_CANDIDATE, "not a regular file")
    os.mkfifo(tmp_path / "fifo.mp4")
    assert ask(judge, tmp_path, "fifo.mp4")[:2] == (NOT_CANDIDATE, "not a regular file")
    assert ask(judge, tmp_path, "missing-dir/x.mp4")[:2] == (GONE, "gone")
    write_video(tmp_path / "file.mp4")
    assert ask(judge, tmp_path, "file.mp4/x.mp4")[:2] == (GONE, "gone")


def test_not_candidate_forgets_a_held_path(judge, tmp_path):
    write_video(tmp_path / "a.mp4", data=b"")
    assert ask(judge, tmp_path, "a.mp4").state == HELD
    judge.names = Names(VIDEOS, ignore=["a.mp4"])
    assert ask(judge, tmp_path, "a.mp4").state == NOT_CANDIDATE and judge.held == {}


# --- stability, on the service's own clock ----------------------------------------------

def test_due_gives_each_held_file_once_in_time_order_after_re_holds_and_forgets(judge, clock, tmp_path):
    """Many files settling at once (a cold start with the framing check off): due() and
    next_due() follow re-judgements that move a file's time and files forgotten meanwhile."""
    paths = [write_video(tmp_path / f"live{n}.mkv", kind="streamed-mkv") for n in range(6)]
    for n, path in enumerate(paths):
        clock.now = 100.0 + n * 0.1                 # held at 100.0, 100.1, ... due 2 s later
        assert ask(judge, tmp_path, path.name).state == HELD
    assert judge.next_due() == pytest.approx(102.0)
    judge.forget(str(paths[0]))                     # registered or gone meanwhile
    assert judge.next_due() == pytest.approx(102.1)
    path = paths[1]
    os.utime(path, ns=(1, 1))                       # touched again: its window starts over
    clock.now = 101.0
    assert ask(judge, tmp_path, path.name).state == HELD
    clock.now = 102.35
    assert judge.due() == [str(p) for p in paths[2:4]]
    assert judge.due() == [] and judge.next_due() == pytest.approx(102.4)
    clock.now = 103.0
    got = judge.due()
    assert [p.rsplit("/", 1)[1] for p in got] == [p.name for p in paths[4:] + paths[1:2]]   # 102.4, 102.5, 103.0
    assert judge.due() == [] and judge.next_due() is None



@pytest.mark.parametrize("mtime_ago", [0, -10 * 365 * 86400, time.time() - 1, 3600])
def test_unknown_size_matroska_settles_on_the_monotonic_clock_whatever_its_mtime(
        judge, clock, tmp_path, mtime_ago):
    """Future (+10 years), 1970, fresh and old mtimes: the same settle window."""
    path = write_video(tmp_path / "live.mkv", kind="streamed-mkv", mtime_ago=mtime_ago)
    first = ask(judge, tmp_path, "live.mkv")
    assert first.state == HELD and first.reason.startswith("settling"), first
    assert judge.next_due() == clock.now + 2.0 and judge.due() == []
    clock.now += 1.0
    assert ask(judge, tmp_path, "live.mkv", closed=False).state == HELD
    clock.now += 1.0
    assert judge.due() == [str(path)] and judge.due() == []
    verdict = ask(judge, tmp_path, "live.mkv", closed=False)
    assert verdict.state == FINISHED and verdict.reason.startswith("unchanged for 2.0 s"), verdict
    assert judge.held == {} and judge.next_due() is None


def test_a_change_restarts_the_settle_window(judge, clock, tmp_path):
    path = write_video(tmp_path / "live.mkv", kind="streamed-mkv")
    assert ask(judge, tmp_path, "live.mkv").state == HELD
    clock.now += 1.5
    with open(path, "ab") as handle:            # another cluster arrives (a complete element)
        handle.write(bytes.fromhex("1f43b675") + bytes([0x80 | 4]) + b"\xe7\x81\x00\xec")
    assert ask(judge, tmp_path, "live.mkv").state == HELD
    clock.now += 1.5
    assert ask(judge, tmp_path, "live.mkv").state == HELD      # 1.5 s since the change
    clock.now += 0.5
    assert ask(judge, tmp_path, "live.mkv").state == FINISHED


def test_fragmented_mp4_without_its_index_settles(judge, clock, tmp_path):
    data = video_bytes("fragmented")
    cut = data.rindex(b"mfra") - 4
    write_video(tmp_path / "frag.mp4", data=data[:cut])
    verdict = ask(judge, tmp_path, "frag.mp4")
    assert verdict.state == HELD and "fragmented MP4" in verdict.reason
    clock.now += 2
    assert ask(judge, tmp_path, "frag.mp4", closed=False).state == FINISHED


def test_complete_files_with_future_or_1970_mtimes_finish_at_once(judge, tmp_path):
    write_video(tmp_path / "future.mp4", mtime_ago=-5 * 365 * 86400)
    os.utime(write_video(tmp_path / "epoch.mkv"), (0, 0))
    assert ask(judge, tmp_path, "future.mp4", closed=False).state == FINISHED
    assert ask(judge, tmp_path, "epoch.mkv", closed=False).state == FINISHED


def test_interrupted_rsync_partial_renamed_into_place_with_1970_mtime_is_held(judge, tmp_path):
    data = video_bytes("mkv")
    temp = write_video(tmp_path / ".ep.mkv.Xa81Qz", data=data[:1500])
    assert ask(judge, tmp_path, ".ep.mkv.Xa81Qz").state == NOT_CANDIDATE
    final = tmp_path / "ep.mkv"
    os.utime(temp, (0, 0))
    os.rename(temp, final)
    verdict = ask(judge, tmp_path, "ep.mkv")
    assert verdict.state == HELD and verdict.reason.startswith("truncated"), verdict


# --- structure check off ----------------------------------------------------------------

def test_without_the_structure_check_a_close_finishes_at_once(clock, tmp_path):
    judge = Judge(Names(VIDEOS), check_structure=False, settle_seconds=2.0, clock=clock)
    write_video(tmp_path / "odd.mp4", data=b"an odd producer's bytes")
    verdict = ask(judge, tmp_path, "odd.mp4", closed=True)
    assert verdict[:2] == (FINISHED, "closed by its writer")
    # Found by a walk (no close seen): stability decides.
    first = ask(judge, tmp_path, "odd.mp4", closed=False)
    assert first.state == HELD and first.reason.startswith("settling")
    clock.now += 2
    assert ask(judge, tmp_path, "odd.mp4", closed=False).state == FINISHED


# --- open writers, seen through a read lease ---------------------------------------------

WRITER = ("import sys, time\n"
          "handle = open(sys.argv[1], 'ab')\n"
          "print('open', flush=True)\n"
          "sys.stdin.read()\n")


def hold_open_for_writing(path: Path) -> subprocess.Popen:
    """Another process that has `path` open for writing until its stdin closes."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "open"
    return writer


def release(writer: subprocess.Popen) -> None:
    writer.stdin.close()
    writer.wait(timeout=10)


def test_a_complete_file_held_open_by_a_writer_is_held_until_closed(judge, clock, tmp_path):
    path = write_video(tmp_path / "paused.mp4")
    writer = hold_open_for_writing(path)
    try:
        verdict = ask(judge, tmp_path, "paused.mp4", closed=False)
        assert verdict[:2] == (HELD, "open for writing"), verdict
        assert judge.next_due() == clock.now + 2.0
    finally:
        release(writer)
    clock.now += 2
    assert judge.due() == [str(path)]
    assert ask(judge, tmp_path, "paused.mp4", closed=True).state == FINISHED


def test_a_settled_file_held_open_is_held(judge, clock, tmp_path):
    path = write_video(tmp_path / "live.mkv", kind="streamed-mkv")
    writer = hold_open_for_writing(path)
    try:
        assert ask(judge, tmp_path, "live.mkv").state == HELD
        clock.now += 5
        assert ask(judge, tmp_path, "live.mkv")[:2] == (HELD, "open for writing")
    finally:
        release(writer)
    # The window starts again after the writer goes: it could still have been writing.
    assert ask(judge, tmp_path, "live.mkv").reason.startswith("settling")
    clock.now += 2
    assert ask(judge, tmp_path, "live.mkv").state == FINISHED


def test_structure_check_off_close_with_a_writer_still_open_is_held(clock, tmp_path):
    judge = Judge(Names(VIDEOS), check_structure=False, clock=clock)
    path = write_video(tmp_path / "a.avi")
    writer = hold_open_for_writing(path)
    try:
        assert ask(judge, tmp_path, "a.avi", closed=True)[:2] == (HELD, "open for writing")
    finally:
        release(writer)
    assert ask(judge, tmp_path, "a.avi", closed=True).state == FINISHED


def test_open_writer_probe(tmp_path):
    path = write_video(tmp_path / "a.mp4")

    def probe() -> "bool | None":
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return open_writer(fd)
        finally:
            os.close(fd)     # releases the lease the probe took

    assert probe() is False
    writer = hold_open_for_writing(path)      # would wait for a lease still held
    try:
        assert probe() is True
    finally:
        release(writer)
    assert probe() is False
    read_end, write_end = os.pipe()
    try:
        assert open_writer(read_end) is None         # no lease on a pipe: cannot tell
    finally:
        os.close(read_end)
        os.close(write_end)


# --- bookkeeping -------------------------------------------------------------------------

def test_forget_and_forget_below(judge, tmp_path):
    for relative in ("a/x.mp4", "a/b/y.mkv", "ab/z.mp4", "c.mp4"):
        write_video(tmp_path / relative, data=b"")
        assert ask(judge, tmp_path, relative).state == HELD
    write_video(tmp_path / "a/live.mkv", kind="streamed-mkv")
    ask(judge, tmp_path, "a/live.mkv")
    judge.forget_below(str(tmp_path / "a"))
    assert sorted(judge.held) == [str(tmp_path / "ab/z.mp4"), str(tmp_path / "c.mp4")]
    assert judge.next_due() is None
    judge.forget(str(tmp_path / "c.mp4"))
    assert list(judge.held) == [str(tmp_path / "ab/z.mp4")]


AS_ANOTHER_USER = (
    "import sys; sys.path.insert(0, sys.argv[1])\n"
    "from vfs_notifier.judge import Judge, Names\n"
    "judge = Judge(Names(['mp4', 'mkv']), clock=lambda: 0.0)\n"
    "for name in sys.argv[3:]:\n"
    "    v = judge.judge(sys.argv[2] + '/' + name, name, True)\n"
    "    print(name, v.state, v.reason, sep='|')\n")


def test_without_lease_rights_the_structure_alone_decides():
    """The service user may not lease others' files (no CAP_LEASE, or PrivateUsers=yes):
    then a complete file is finished on its structure, a file of unknown framing settles."""
    skip_unless(as_root("running the judge as another user"))
    import shutil
    import tempfile
    from tests.faults.helpers import NOBODY, package_copy
    top = Path(tempfile.mkdtemp(prefix="vfs-judge-"))   # pytest's tmp_path is 0700 up the tree
    try:
        top.chmod(0o755)
        path = write_video(top / "theirs.mp4")
        write_video(top / "live.mkv", kind="streamed-mkv")
        code = package_copy(top)
        writer = hold_open_for_writing(path)
        try:
            out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                  sys.executable, "-c", AS_ANOTHER_USER, code, str(top),
                                  "theirs.mp4", "live.mkv"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
        finally:
            release(writer)
    finally:
        shutil.rmtree(top)
    lines = dict(line.split("|", 1) for line in out.splitlines())
    assert lines["theirs.mp4"].startswith(FINISHED + "|complete"), out
    assert lines["live.mkv"].startswith(HELD + "|settling"), out


LEASE_HOLDER = ("import fcntl, os, signal, sys\n"
                "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                "def give_up(*_):\n"
                "    fcntl.fcntl(fd, 1024, fcntl.F_UNLCK)\n"
                "    os.write(1, b'released\\n')   # not print(): it may interrupt print('leased')\n"
                "signal.signal(signal.SIGIO, give_up)\n"
                "fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)\n"
                "print('leased', flush=True)\n"
                "sys.stdin.read()\n")


def test_a_file_under_another_programs_lease_is_held_then_judged_once_released(judge, clock, tmp_path):
    """Samba's kernel oplocks hold write leases on files its clients have open: our open is
    refused at once (O_NONBLOCK), the holder is told to give the lease up, and a moment later
    the file is judged."""
    path = write_video(tmp_path / "smb.mp4")
    holder = subprocess.Popen([sys.executable, "-c", LEASE_HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "leased"
        verdict = ask(judge, tmp_path, "smb.mp4")
        assert verdict[:2] == (HELD, "open by another program holding a lease"), verdict
        assert judge.next_due() == clock.now + 1.0
        assert holder.stdout.readline().strip() == "released"
        assert ask(judge, tmp_path, "smb.mp4").state == FINISHED
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
