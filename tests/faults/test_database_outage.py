"""The MariaDB server goes away (crash, clean stop) in the middle of a burst, or is down when
the service starts: the service keeps watching, says so, and catches up without doubling."""

from __future__ import annotations

import signal
import threading
import time

from tests.faults.helpers import WatchdogPings, aged_tree, assert_mirrors_disk, burst, wait_until

BURST = 3000


def _burst_with_outage(tree, mariadb, start_service, end_server) -> None:
    daemon = start_service()
    written: list = []
    writer = threading.Thread(target=lambda: written.extend(burst(tree.root, BURST, subdirs=10)))
    writer.start()
    wait_until(lambda: tree.table.rows(), timeout=20, what="the first rows of the burst")
    end_server()                               # in the middle of the burst's inserts
    down_at = len(list(tree.root.rglob("*.mp4")))
    writer.join()
    daemon.notify.wait_for("database unavailable", timeout=20)
    time.sleep(1.5)                            # the service retries (and fails) for a while
    assert daemon.proc.poll() is None, daemon.log()
    mariadb.start()
    rows = assert_mirrors_disk(tree, timeout=60)
    assert len(rows) == BURST and 0 < down_at <= BURST
    assert "unavailable" in daemon.log()
    assert "reconciling every root" in daemon.log()
    assert daemon.stop() == 0


def test_server_killed_mid_burst_then_back(db_tree, mariadb, start_service):
    _burst_with_outage(db_tree, mariadb, start_service, mariadb.kill)


def test_server_shut_down_mid_burst_then_back(db_tree, mariadb, start_service):
    _burst_with_outage(db_tree, mariadb, start_service, mariadb.stop)


def test_server_down_when_the_service_starts(db_tree, mariadb, start_service):
    """Rows of an earlier run exist; while the server is down files come and go; the service
    starts anyway (READY), reports the outage, and once the server is back the table mirrors
    the disk: new files added, deleted files' rows gone, nothing doubled."""
    tree = db_tree
    old = aged_tree(tree.root, 500)
    first = start_service()
    assert_mirrors_disk(tree)
    assert first.stop() == 0
    mariadb.stop()
    for path in old[:100]:
        path.unlink()
    burst(tree.root / "while-down", 500)
    daemon = start_service()                   # waits for READY=1: it starts without a database
    assert "database unavailable" in daemon.notify.wait_for("STATUS=", timeout=10)
    more = burst(tree.root / "after-ready", 300)
    time.sleep(1.5)
    assert daemon.proc.poll() is None
    mariadb.start()
    assert_mirrors_disk(tree, timeout=60)
    assert len(tree.table.rows()) == 400 + 500 + len(more)
    assert daemon.stop() == 0


def test_a_hung_server_never_stalls_the_loop_past_the_watchdog(db_tree, mariadb, start_service):
    """A server that stops answering (SIGSTOP: as a network partition looks, no RST) while a
    burst is being written. The unit has WatchdogSec=30s: the loop must keep pinging at
    least every 15 s, or systemd kills the service in the middle of an outage; and a stop
    in the middle of it must end within TimeoutStopSec=30s."""
    tree = db_tree
    daemon = start_service(WATCHDOG_USEC="2000000")          # a ping every second when healthy
    pings = WatchdogPings(daemon)

    burst(tree.root / "before", 200)
    assert_mirrors_disk(tree)
    pings.listen(2)
    mariadb.proc.send_signal(signal.SIGSTOP)
    try:
        burst(tree.root / "during", 500)                       # rows in flight when it hangs
        pings.listen(17)
        stopping = time.monotonic()
        assert daemon.stop(timeout=30) == 0                    # still hung: SIGTERM now
        stop_took = time.monotonic() - stopping
    finally:
        mariadb.proc.send_signal(signal.SIGCONT)
    pings.assert_never_silent_for(15)
    assert stop_took < 25, stop_took
    again = start_service()
    assert len(assert_mirrors_disk(tree, timeout=60)) == 700
    assert again.stop() == 0
