"""The benchmark's own instruments (bench/probes.py, bench/media.py, bench/stress_report.py): the
figures of issues 9, 10 and 14 rest on them, so they are checked against known inputs and real
kernel behaviour (inotify, ffmpeg), not against the daemon."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from bench import media
from bench.probes import DirOpens, Sampler, longest_gap
from bench.stress_report import turn


def test_longest_gap_spans_the_window_from_the_ping_before_to_the_ping_after() -> None:
    pings = [0.0, 0.05, 0.10, 0.95, 1.00, 1.05]
    gap, at, inside = longest_gap(pings, 0.2, 0.9)
    assert gap == pytest.approx(850)           # 0.10 -> 0.95: the stall straddles the window
    assert at == pytest.approx(-0.1)
    assert inside == 0


def test_longest_gap_without_a_ping_after_the_window_runs_to_its_end() -> None:
    gap, _, _ = longest_gap([0.0, 0.05], 0.0, 2.0)
    assert gap == pytest.approx(1950)


def test_turn_verdict_is_decided_only_where_the_bounds_agree() -> None:
    assert turn({"longest_gap_ms": 90, "ping_interval_ms": 50})[1] == "PASS"
    assert turn({"longest_gap_ms": 160, "ping_interval_ms": 50})[1] == "FAIL"
    assert turn({"longest_gap_ms": 120, "ping_interval_ms": 50})[1] == "UNSURE"
    assert turn({"longest_gap_ms": 5000, "ping_interval_ms": 50, "gap_open_ended": True})[1] == "FAIL"


@pytest.mark.slow   # seconds of sampling, and timing-sensitive on a loaded machine
def test_sampler_sees_a_busy_process_and_then_an_idle_one() -> None:
    busy = subprocess.Popen(["/usr/bin/python3", "-c",
                             "import time\nt=time.time()\nwhile time.time()-t<1.0: pass\n"
                             "time.sleep(30)"])
    try:
        sampler = Sampler(busy.pid).start()
        t0 = time.time()
        idle = sampler.wait_idle(t0, quiet=0.5, timeout=20)
        sampler.stop()
        assert idle is not None and idle - t0 >= 0.6
        windows = sampler.busy_windows(t0, time.time())
        assert windows and windows[0][1] - windows[0][0] >= 0.5
    finally:
        busy.kill()
        busy.wait()


def test_dir_opens_sees_a_walk_but_not_the_skipped_directory(tmp_path) -> None:
    for d in ("a/b", "a/c", "probe"):
        (tmp_path / d).mkdir(parents=True)
    opens = DirOpens(str(tmp_path), skip=str(tmp_path / "probe")).start()
    try:
        time.sleep(0.2)
        (tmp_path / "probe" / "x.mp4").write_bytes(b"")
        os.listdir(tmp_path / "probe")
        time.sleep(0.3)
        assert opens.opens == []
        for _ in os.walk(tmp_path / "a"):
            pass
        time.sleep(0.3)
        assert len(opens.opens) >= 3              # a, a/b, a/c
        assert len(opens.bursts(0, time.time() + 1)) == 1
    finally:
        opens.stop()


@pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                    reason="ffmpeg/ffprobe not installed (scripts/bench installs them)")
def test_clips_are_real_containers_matching_their_extension(tmp_path) -> None:
    clips = media.prepare(str(tmp_path / "media"))
    expected = {".mp4": "mov,mp4", ".mov": "mov,mp4", ".mkv": "matroska", ".avi": "avi"}
    for name in ("a.mp4", "b.MOV", "c.mkv", "d.avi", "e.Mp4"):
        path = tmp_path / name
        clips.write(str(path))
        fmt = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=format_name",
                              "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                             check=True).stdout.strip().strip("\"")
        assert fmt.startswith(expected[os.path.splitext(name)[1].lower()]), (name, fmt)
        assert 0 < path.stat().st_size < 20_000
