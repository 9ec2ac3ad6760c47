"""curl, wget and aria2c downloading into the tree from the local HTTP server, killed part
way, then resumed (`curl -C -`, `wget -c`, `aria2c -c`): no row until the file is whole.

The server paces /slow/ URLs itself (curl --limit-rate does not slow loopback); the
resume fetches the normal URL at full speed. Its request log proves that curl and wget
really resumed: they asked for `Range: bytes=N-` where N is what the killed run left.
"""

from __future__ import annotations



from tests.uploads.http_range import publish
from tests.uploads.support import (BOTH_STORES, assert_interrupted, assert_no_row, assert_one_row,
                                   assert_preallocated, bytes_below, needs)

KILL_AT = 300_000
SERVER_MTIME = 1622505600   # 2021-06-01: the server's Last-Modified, which wget and curl -R copy


def _assert_resumed_from(http_server, name: str, offset: int) -> None:
    ranges = [r.range for r in http_server.served("/" + name)]
    assert f"bytes={offset}-" in ranges, f"the resume did not ask for bytes={offset}-: {ranges}"


@BOTH_STORES
@needs("curl")
def test_curl_killed_then_resumed(backend, watched, utree, sources, procs, http_server):
    daemon, history = watched
    name = f"curl-{backend}.mp4"
    publish(http_server, sources["mp4"], name, SERVER_MTIME)
    final = utree.root / name
    proc = procs.spawn(["curl", "-sS", "-R", "-o", str(final), f"{http_server.url}/slow/{name}"])
    procs.interrupt(proc, lambda: bytes_below(utree.root), KILL_AT)
    assert_interrupted(final, sources["mp4"])
    left = final.stat().st_size
    assert_no_row(history, utree.root, "curl -o, killed", resumed_later=True)
    procs.run(["curl", "-sS", "-R", "-C", "-", "-o", str(final), f"{http_server.url}/{name}"])
    _assert_resumed_from(http_server, name, left)
    assert_one_row(history, final, sources["mp4"])


@needs("wget")
def test_wget_killed_then_resumed(watched, utree, sources, procs, http_server):
    daemon, history = watched
    name = "wget clip.avi"
    publish(http_server, sources["avi"], name, SERVER_MTIME)
    final = utree.root / name
    url = f"{http_server.url}/slow/wget%20clip.avi"
    proc = procs.spawn(["wget", "-q", "--no-proxy", "-P", str(utree.root), url])
    procs.interrupt(proc, lambda: bytes_below(utree.root), KILL_AT)
    assert_interrupted(final, sources["avi"])
    left = final.stat().st_size
    assert_no_row(history, utree.root, "wget, killed", resumed_later=True)
    procs.run(["wget", "-q", "--no-proxy", "-c", "-P", str(utree.root),
               f"{http_server.url}/wget%20clip.avi"])
    _assert_resumed_from(http_server, "wget%20clip.avi", left)
    assert int(final.stat().st_mtime) == SERVER_MTIME, "wget gave the file the server's mtime"
    assert_one_row(history, final, sources["avi"])


ARIA2_OPTIONS = ["--file-allocation=prealloc", "--no-file-allocation-limit=1M",
                 "--auto-file-renaming=false", "--allow-overwrite=false", "--console-log-level=warn",
                 "--summary-interval=0", "--download-result=hide", "--no-conf"]


@needs("aria2c")
def test_aria2c_preallocated_killed_then_resumed(watched, utree, sources, procs, http_server):
    """aria2c makes the file full length (zeros) before the first byte arrives, with
    NAME.aria2 beside it: a killed one leaves a file of the right size that does not play."""
    daemon, history = watched
    name = "aria2 clip.mkv"
    publish(http_server, sources["mkv"], name, SERVER_MTIME)
    final, control = utree.root / name, utree.root / f"{name}.aria2"
    base = ["aria2c", *ARIA2_OPTIONS, "-d", str(utree.root), "-o", name]
    proc = procs.spawn([*base, f"{http_server.url}/slow/aria2%20clip.mkv"])
    procs.interrupt(proc, lambda: http_server.sent("/slow/aria2%20clip.mkv"), KILL_AT)
    assert_preallocated(final, sources["mkv"])
    assert control.exists(), "aria2c left no control file"
    assert_no_row(history, utree.root, "aria2c, killed", resumed_later=True)
    procs.run([*base, "-c", f"{http_server.url}/aria2%20clip.mkv"])
    assert not control.exists(), "aria2c kept its control file after finishing"
    assert_one_row(history, final, sources["mkv"])
