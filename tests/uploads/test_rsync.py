"""rsync, killed part way and run again: no row while the copy is unfinished, one row after.

What each mode leaves when its sender dies (checked here, not assumed):
- default: the receiver deletes its hidden temp file `.NAME.XXXXXX`; nothing at NAME.
- --inplace: NAME itself, a prefix of the source.
- --partial: the temp file renamed to NAME, with mtime 1970 under -t: its events are those
  of a finished transfer, which is why only the file's framing can tell.
- --delay-updates: the partial kept as `.~tmp~/NAME`, a hidden directory.
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.uploads.support import (assert_interrupted, assert_no_row, assert_one_row, bytes_below,
                                   needs)


# The sender paces itself to this (KB/s): a 5 MB source takes about 5 s.
BWLIMIT = "1000"
KILL_AT = 300_000   # bytes in the destination when the sender is killed

MODES = {"default": [], "inplace": ["--inplace"], "partial": ["--partial"],
         "delay-updates": ["--delay-updates"]}


def _interrupted_state(mode: str, root, name: str, source) -> None:
    final = root / name
    if mode == "default":
        assert not final.exists(), f"rsync left {final} although it was killed"
    elif mode == "delay-updates":
        assert_interrupted(root / ".~tmp~" / name, source)
        assert not final.exists()
    else:
        assert_interrupted(final, source)
        if mode == "partial":
            assert final.stat().st_mtime < 86400 * 365, "rsync --partial -t gave the partial a 1970 mtime"


@pytest.mark.parametrize("mode", list(MODES))
@needs("rsync")
def test_rsync_killed_then_resumed(mode, watched, utree, sources, procs, staging):
    _case(mode, watched, utree, sources, procs, staging)


@pytest.mark.parametrize("backend", ["mysql"])
@needs("rsync")
def test_rsync_partial_killed_across_a_restart(backend, watched, utree, sources, procs, staging,
                                               start_service):
    """The hardest one, on MariaDB (SQLite runs it above): the killed --partial file looks
    finished to inotify; a restart walks it again and must still hold it."""
    _case("partial", watched, utree, sources, procs, staging, restart=start_service)


@needs("rsync")
def test_rsync_partial_over_ssh_killed_then_resumed(watched, utree, sources, procs, staging, sshd):
    """The same through a real ssh connection, as uploads from another machine come: the
    connection drops and the remote receiver keeps the partial under the final name."""
    daemon, history = watched
    upload = staging / "over ssh.mp4"
    shutil.copyfile(sources["mp4"], upload)
    remote = f"{sshd.target}:{utree.root}/"
    command = ["rsync", "-t", "--partial", "-e", sshd.rsync_shell()]
    proc = procs.spawn([*command, f"--bwlimit={BWLIMIT}", str(upload), remote])
    procs.interrupt(proc, lambda: bytes_below(utree.root), KILL_AT)
    final = utree.root / upload.name
    _wait_for(lambda: final.exists(), "the remote receiver to keep the partial")
    assert_interrupted(final, upload)
    assert_no_row(history, utree.root, "rsync --partial over ssh, killed", resumed_later=True)
    procs.run([*command, str(upload), remote])
    assert_one_row(history, final, upload)


def _case(mode, watched, utree, sources, procs, staging, restart=None) -> None:
    daemon, history = watched
    upload = staging / f"Clip {mode}.mp4"
    shutil.copyfile(sources["mp4"], upload)
    command = ["rsync", "-t", *MODES[mode]]
    proc = procs.spawn([*command, f"--bwlimit={BWLIMIT}", str(upload), f"{utree.root}/"])
    procs.interrupt(proc, lambda: bytes_below(utree.root), KILL_AT)
    _interrupted_state(mode, utree.root, upload.name, upload)
    assert_no_row(history, utree.root, f"rsync {mode}, killed", resumed_later=True)
    if restart is not None:
        daemon.stop()
        restart()
        assert_no_row(history, utree.root, f"rsync {mode}, killed, after a restart",
                      resumed_later=True)
    procs.run([*command, str(upload), f"{utree.root}/"])
    if mode == "delay-updates":
        holding = utree.root / ".~tmp~"
        assert not holding.exists() or not any(holding.iterdir()), "rsync left its holding directory full"
    assert_one_row(history, utree.root / upload.name, upload)


def _wait_for(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
