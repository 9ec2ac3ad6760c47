"""The test servers' own failures: a fixture that cannot start mariadbd says why in mariadbd's
words, and fails at once the next time rather than waiting out its timeout again (a full /tmp
once turned into 103 bare "exited 1" errors, each later start waiting 60 s)."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from tests.support.capabilities import can_mount_tmpfs, skip_unless
from tests.support.mariadb import EPHEMERAL_RANGE, MariaDB, ServerFailed, free_port
from tests.support.servers import last_lines, tail_of


def test_last_lines_of_a_log_and_of_nothing(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert last_lines(log, 3) == "line 97\nline 98\nline 99"
    assert "never written" in last_lines(tmp_path / "missing.log")
    log.write_text("")
    assert "is empty" in last_lines(log)
    assert tail_of("a\nb\nc\n", 2) == "b\nc" and tail_of("") == "(no output)"


def test_free_ports_lie_outside_the_ephemeral_range_and_never_repeat():
    """A fixture binds its port again after each restart: the kernel must not have handed it
    to an outgoing connection meanwhile (a rejoining Galera node's SST port, taken so, failed
    8 tests of tests/ha in a container beside another run)."""
    low, high = (int(n) for n in EPHEMERAL_RANGE.read_text().split())
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports), ports
    assert [p for p in ports if low <= p <= high] == [], (low, high, ports)


@pytest.mark.slow
def test_a_server_that_cannot_start_says_why_and_later_starts_fail_at_once(tmp_path):
    server = MariaDB(tmp_path / "db")
    server.install()
    with socket.socket() as taken:   # its port, taken by something else (it accepts, never greets)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        with pytest.raises(ServerFailed) as first:
            server.start(timeout=60)
        assert "Address already in use" in str(first.value), str(first.value)
        began = time.monotonic()
        with pytest.raises(ServerFailed) as again:
            server.start(timeout=60)
        assert time.monotonic() - began < 1
        assert "not tried again" in str(again.value) and "Address already in use" in str(again.value)
    assert not server.running


@pytest.mark.slow
def test_an_install_on_a_full_disk_says_so(tmp_path):
    skip_unless(can_mount_tmpfs())
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(full)], check=True)
    try:
        with pytest.raises(ServerFailed) as failed:
            MariaDB(full / "db").install()
        said = str(failed.value)
        assert "mariadb-install-db exited" in said and "[ERROR]" in said, said
        assert "error 28" in said or "disk" in said.lower(), said
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)
