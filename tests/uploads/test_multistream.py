"""Downloads that make the file its full size first and fill it from several places at once,
killed midway, then resumed: `rclone copy --multi-thread-streams 4` and `lftp pget -n 4`
from the local HTTP server. No row until the file is whole, then exactly one.

Such a file has its header, its index and every declared size in place long before its
media: what holds it is the file system's holes (both tools leave ranges never written),
the media the framing places being zeros, and lftp's NAME.lftp-pget-status beside it.
The kill comes when the server has sent part of the file over all the streams, so that
each of them left a range unwritten. Here the stream of the file's last range is served at
full speed and the others slowly (streams over real networks never keep pace): the tail
(moov, Cues, idx1) is written when the tool dies, so the framing is whole and only the
missing middle can hold the file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.uploads import http_range
from tests.uploads.http_range import RangeServer, Served, publish
from tests.uploads.support import assert_no_row, assert_one_row, needs

STREAMS = "4"
SLOW_RATE = 300_000      # bytes/s of each stream but the last


class _UnevenHandler(http_range._Handler):
    def _send(self, file: Path, start: int, length: int, record: Served, rate: Optional[int]) -> None:
        last_range = start > 0 and start + length == file.stat().st_size
        super()._send(file, start, length, record, None if last_range else rate)


@pytest.fixture
def uneven(tmp_path: Path) -> Iterator[RangeServer]:
    """The range server, its /slow/ ranges paced but the one that ends the file."""
    (tmp_path / "served").mkdir()
    server = RangeServer(tmp_path / "served", rate=SLOW_RATE)
    server.RequestHandlerClass = _UnevenHandler
    server.start()
    yield server
    server.stop()


def _tail_written(server: RangeServer, path: str, size: int) -> int:
    """Bytes the server sent of `path`, once the range ending the file was sent whole (0
    before): the kill waits for the tail and a third of the file."""
    records = server.served(path)
    tail = [r for r in records if r.start > 0 and r.status == 206 and r.start + r.sent == size]
    return sum(r.sent for r in records) if tail else 0


@pytest.fixture(scope="module")
def faststart(sources, tmp_path_factory) -> Path:
    """The source MP4 with its moov moved to the front (ffmpeg's +faststart, no re-encoding):
    the index arrives with the first stream, the media after it."""
    target = tmp_path_factory.mktemp("faststart") / "source.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(sources["mp4"]), "-c", "copy",
                    "-movflags", "+faststart", str(target)], check=True, timeout=120)
    return target


def _holes_or_zeros(path: Path, size: int) -> bool:
    """The killed tool really left the file unfinished: unwritten ranges (holes) or zeros."""
    with open(path, "rb") as handle:
        data = handle.read()
    return len(data) < size or any(data[at:at + 65536].count(0) == len(data[at:at + 65536])
                                   for at in range(0, len(data), 65536))


def _rclone(server: RangeServer, remote: str, target: Path, config: Path, *extra: str) -> list[str]:
    return ["rclone", "copy", "--config", str(config), "--http-url", server.url,
            f":http:{remote}", str(target), "--multi-thread-cutoff", "1M",
            "--multi-thread-streams", STREAMS, "--retries", "1", "--low-level-retries", "1", *extra]


@needs("rclone")
@pytest.mark.parametrize("kind", ["mkv", "faststart"])
def test_rclone_multi_thread_killed_then_run_again(kind, watched, utree, sources, faststart, procs,
                                                   uneven, tmp_path):
    daemon, history = watched
    source = faststart if kind == "faststart" else sources[kind]
    name = f"rclone {kind}.{'mp4' if kind == 'faststart' else kind}"
    publish(uneven, source, name)
    config = tmp_path / "rclone.conf"
    config.write_text("")
    final = utree.root / name
    proc = procs.spawn(_rclone(uneven, f"slow/{name}", utree.root, config))
    size = source.stat().st_size
    procs.interrupt(proc, lambda: _tail_written(uneven, f"/slow/{name.replace(' ', '%20')}", size),
                    size // 3)
    assert final.exists(), f"rclone left nothing: {list(utree.root.iterdir())}"
    assert _holes_or_zeros(final, size), "rclone finished before it was killed"
    assert final.stat().st_size == size, "the tail was written: the file is its full size"
    assert_no_row(history, utree.root, "rclone --multi-thread-streams, killed", resumed_later=True)
    # Run again plainly, rclone 1.60 left the killed file as it was (same size: taken as
    # unchanged), held for good, rightly; --ignore-times makes it copy the file again.
    procs.run(_rclone(uneven, name, utree.root, config, "--ignore-times"))
    assert_one_row(history, final, source)


def _pget(url: str, target: Path, resume: bool) -> list[str]:
    again = "-c " if resume else ""
    return ["lftp", "-c", f"set net:max-retries 1; set pget:min-chunk-size 64k; "
            f"pget {again}-n {STREAMS} '{url}' -o '{target}'"]


@needs("lftp")
def test_lftp_pget_killed_then_resumed(watched, utree, faststart, procs, uneven):
    daemon, history = watched
    name = "pget clip.mp4"
    publish(uneven, faststart, name)
    final = utree.root / name
    status = utree.root / f"{name}.lftp-pget-status"
    quoted = name.replace(" ", "%20")
    proc = procs.spawn(_pget(f"{uneven.url}/slow/{quoted}", final, resume=False))
    size = faststart.stat().st_size
    procs.interrupt(proc, lambda: _tail_written(uneven, f"/slow/{quoted}", size), size // 3)
    assert final.exists() and status.exists(), f"lftp left: {list(utree.root.iterdir())}"
    assert _holes_or_zeros(final, size), "lftp finished before it was killed"
    assert_no_row(history, utree.root, "lftp pget -n 4, killed", resumed_later=True)
    procs.run(_pget(f"{uneven.url}/{quoted}", final, resume=True))
    assert not status.exists(), "lftp kept its status file after finishing"
    assert_one_row(history, final, faststart)


@needs("lftp")
def test_lftp_pget_killed_is_held_by_its_holes_without_the_status_file(watched, utree, faststart,
                                                                      procs, uneven):
    """The status file removed by hand (or never seen: another tool): the holes alone hold
    the file, until a plain download rewrites it whole."""
    daemon, history = watched
    name = "pget orphan.mp4"
    publish(uneven, faststart, name)
    final = utree.root / name
    quoted = name.replace(" ", "%20")
    proc = procs.spawn(_pget(f"{uneven.url}/slow/{quoted}", final, resume=False))
    size = faststart.stat().st_size
    procs.interrupt(proc, lambda: _tail_written(uneven, f"/slow/{quoted}", size), size // 3)
    (utree.root / f"{name}.lftp-pget-status").unlink()
    assert_no_row(history, utree.root, "lftp pget -n 4, killed, status file removed",
                  resumed_later=True)
    procs.run(["lftp", "-c", f"set net:max-retries 1; set xfer:clobber on; "
                             f"get '{uneven.url}/{quoted}' -o '{final}'"])
    assert_one_row(history, final, faststart)
