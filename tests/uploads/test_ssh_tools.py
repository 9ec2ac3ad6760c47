"""scp and sftp through a local sshd, killed part way: the server side closes a truncated
file under its final name (events of a finished upload); no row until it is complete."""

from __future__ import annotations

import shutil
import time

from tests.uploads.support import (BOTH_STORES, assert_interrupted, assert_no_row, assert_one_row,
                                   bytes_below)

LIMIT_KBIT = "8000"   # scp/sftp -l: 1 MB/s, so a 5 MB upload takes about 5 s
KILL_AT = 300_000


def _wait_closed(final, sshd, timeout: float = 10) -> None:
    """The server's sftp process notices the dropped connection and closes the file: wait for
    its size to stop changing (the kill may leave a chunk in flight)."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        size = final.stat().st_size if final.exists() else -1
        if size == last and size > 0:
            return
        last = size
        time.sleep(0.2)


@BOTH_STORES
def test_scp_killed_then_completed(backend, watched, utree, sources, procs, staging, sshd):
    daemon, history = watched
    upload = staging / "scp clip.mov"
    shutil.copyfile(sources["mov"], upload)
    final = utree.root / upload.name
    remote = f"{sshd.target}:{utree.root}/"
    proc = procs.spawn(sshd.scp_command("-p", "-l", LIMIT_KBIT, str(upload), remote))
    procs.interrupt(proc, lambda: bytes_below(utree.root), KILL_AT)
    _wait_closed(final, sshd)
    assert_interrupted(final, upload)
    assert_no_row(history, utree.root, "scp, killed", resumed_later=True)
    procs.run(sshd.scp_command("-p", str(upload), remote))
    assert_one_row(history, final, upload)


def test_sftp_put_killed_then_resumed_with_reput(watched, utree, sources, procs, staging, sshd):
    daemon, history = watched
    upload = staging / "sftp clip.mkv"
    shutil.copyfile(sources["mkv"], upload)
    final = utree.root / upload.name
    batch = staging / "put.sftp"
    batch.write_text(f'put "{upload}" "{final}"\n')
    proc = procs.spawn(sshd.sftp_command(batch, "-l", LIMIT_KBIT))
    procs.interrupt(proc, lambda: bytes_below(utree.root), KILL_AT)
    _wait_closed(final, sshd)
    assert_interrupted(final, upload)
    inode = final.stat().st_ino
    assert_no_row(history, utree.root, "sftp put, killed", resumed_later=True)
    batch.write_text(f'reput "{upload}" "{final}"\n')   # resume: append the missing tail
    procs.run(sshd.sftp_command(batch))
    assert final.stat().st_ino == inode, "reput wrote a new file instead of resuming"
    assert_one_row(history, final, upload)
