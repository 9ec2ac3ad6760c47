"""Downloads that make the file its full size first and fill it from several places at once,
killed midway, then resumed: `rclone copy --multi-thread-streams 4` and `lftp pget -n 4`
from the local HTTP server. No row until the file is whole, then exactly one.

Such a file has its header, its index and every declared size in place long before its
media: what holds it is the file system's holes (both tools leave ranges never written),
the media the framing places being zeros, and lftp's NAME.lftp-pget-status beside it.
The kill comes when the server has sent part of the file over all the streams, so that
each of them left a range unwritten.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.uploads.http_range import publish
from tests.uploads.support import assert_no_row, assert_one_row, needs

STREAMS = "4"


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


def _rclone(http_server, remote: str, target: Path, config: Path) -> list[str]:
    return ["rclone", "copy", "--config", str(config), "--http-url", http_server.url,
            f":http:{remote}", str(target), "--multi-thread-cutoff", "1M",
            "--multi-thread-streams", STREAMS, "--retries", "1", "--low-level-retries", "1"]


@needs("rclone")
@pytest.mark.parametrize("kind", ["mkv", "faststart"])
def test_rclone_multi_thread_killed_then_run_again(kind, watched, utree, sources, faststart, procs,
                                                   http_server, tmp_path):
    daemon, history = watched
    source = faststart if kind == "faststart" else sources[kind]
    name = f"rclone {kind}.{'mp4' if kind == 'faststart' else kind}"
    publish(http_server, source, name)
    config = tmp_path / "rclone.conf"
    config.write_text("")
    final = utree.root / name
    proc = procs.spawn(_rclone(http_server, f"slow/{name}", utree.root, config))
    size = source.stat().st_size
    procs.interrupt(proc, lambda: http_server.sent(f"/slow/{name.replace(' ', '%20')}"), size // 3)
    assert final.exists(), f"rclone left nothing: {list(utree.root.iterdir())}"
    assert _holes_or_zeros(final, size), "rclone finished before it was killed"
    assert_no_row(history, utree.root, "rclone --multi-thread-streams, killed", resumed_later=True)
    procs.run(_rclone(http_server, name, utree.root, config))
    assert_one_row(history, final, source)


def _pget(url: str, target: Path, resume: bool) -> list[str]:
    again = "-c " if resume else ""
    return ["lftp", "-c", f"set net:max-retries 1; set pget:min-chunk-size 64k; "
            f"pget {again}-n {STREAMS} '{url}' -o '{target}'"]


@needs("lftp")
def test_lftp_pget_killed_then_resumed(watched, utree, faststart, procs, http_server):
    daemon, history = watched
    name = "pget clip.mp4"
    publish(http_server, faststart, name)
    final = utree.root / name
    status = utree.root / f"{name}.lftp-pget-status"
    quoted = name.replace(" ", "%20")
    proc = procs.spawn(_pget(f"{http_server.url}/slow/{quoted}", final, resume=False))
    size = faststart.stat().st_size
    procs.interrupt(proc, lambda: http_server.sent(f"/slow/{quoted}"), size // 3)
    assert final.exists() and status.exists(), f"lftp left: {list(utree.root.iterdir())}"
    assert _holes_or_zeros(final, size), "lftp finished before it was killed"
    assert_no_row(history, utree.root, "lftp pget -n 4, killed", resumed_later=True)
    procs.run(_pget(f"{http_server.url}/{quoted}", final, resume=True))
    assert not status.exists(), "lftp kept its status file after finishing"
    assert_one_row(history, final, faststart)


@needs("lftp")
def test_lftp_pget_killed_is_held_by_its_holes_without_the_status_file(watched, utree, faststart,
                                                                      procs, http_server):
    """The status file removed by hand (or never seen: another tool): the holes alone hold
    the file, until a plain download rewrites it whole."""
    daemon, history = watched
    name = "pget orphan.mp4"
    publish(http_server, faststart, name)
    final = utree.root / name
    quoted = name.replace(" ", "%20")
    proc = procs.spawn(_pget(f"{http_server.url}/slow/{quoted}", final, resume=False))
    procs.interrupt(proc, lambda: http_server.sent(f"/slow/{quoted}"), faststart.stat().st_size // 3)
    (utree.root / f"{name}.lftp-pget-status").unlink()
    assert_no_row(history, utree.root, "lftp pget -n 4, killed, status file removed",
                  resumed_later=True)
    procs.run(["lftp", "-c", f"set net:max-retries 1; set xfer:clobber on; get '{http_server.url}/{quoted}' -o '{final}'"])
    assert_one_row(history, final, faststart)
