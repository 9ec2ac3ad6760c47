"""An upload paused with its file open (the writer stopped: a suspended job, a stalled
client) across a reload and a restart: the half file gets no row while its writer holds
it, and one row once the writer goes on and finishes."""

from __future__ import annotations

import os
import signal
import time

from tests.uploads.support import (BOTH_STORES, PYTHON_FOR_TOOLS, assert_interrupted,
                                   assert_no_row, assert_one_row, wait_ready_again)

# Writes the first half of SOURCE into DEST, stops itself with the file open, and when
# continued writes the rest and closes: the pause is exactly where the test wants it.
WRITER = r"""
import os, signal, sys
data = open(sys.argv[1], "rb").read()
half = len(data) // 2
with open(sys.argv[2], "wb") as out:
    out.write(data[:half])
    out.flush()
    os.kill(os.getpid(), signal.SIGSTOP)
    out.write(data[half:])
"""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0]


def _holds_open(pid: int, path) -> bool:
    fd_dir = f"/proc/{pid}/fd"
    return any(os.readlink(os.path.join(fd_dir, fd)) == str(path) for fd in os.listdir(fd_dir))


@BOTH_STORES
def test_paused_writer_across_reload_and_restart(backend, watched, utree, sources, procs,
                                                 start_service):
    daemon, history = watched
    final = utree.root / "paused upload.mp4"
    writer = procs.spawn([PYTHON_FOR_TOOLS, "-c", WRITER, str(sources["mp4"]), str(final)])
    deadline = time.monotonic() + 20
    while _state(writer.pid) != "T":
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never paused"
        time.sleep(0.02)
    assert _holds_open(writer.pid, final), "the paused writer does not hold the file open"
    assert_interrupted(final, sources["mp4"])

    # Nothing closed the file yet: a short look is enough here; the waits that matter follow.
    assert_no_row(history, utree.root, "paused writer", wait=1.0, resumed_later=True)
    seen = len(daemon.notify.messages)
    daemon.signal(signal.SIGHUP)
    wait_ready_again(daemon, seen)
    assert_no_row(history, utree.root, "paused writer, after a reload", resumed_later=True)
    assert daemon.stop() == 0
    start_service()
    assert_no_row(history, utree.root, "paused writer, after a restart", resumed_later=True)

    assert _state(writer.pid) == "T"
    os.kill(writer.pid, signal.SIGCONT)
    assert writer.wait(timeout=30) == 0
    assert_one_row(history, final, sources["mp4"])
